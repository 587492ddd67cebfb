"""The optimizer the fresh models use: Adam at a learning rate, constant or cosine-decayed.

One table of schedules (config.LR_SCHEDULES) for the evaluation's fresh models
(tfprivacy/eval/fit.py) and the trainer's judges (tfprivacy/train/judges.py).
"""

from __future__ import annotations

import keras

from tfprivacy.config import LR_SCHEDULES


def adam(
    learning_rate: float, schedule: str, steps: int, field: str = "eval.lr_schedule"
) -> keras.optimizers.Optimizer:
    """Adam at `learning_rate`; "cosine" decays it to 0 over `steps` optimizer steps (counted
    by the optimizer's own iterations, so zeroing them restarts the schedule). `field`: the
    config field `schedule` came from, named in the error."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"{field}: unknown {schedule!r}; use one of {LR_SCHEDULES}")
    if schedule == "constant":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, max(1, int(steps)))
    )
