"""The tf.distribute strategy named by the config.

`multi_worker` reads the cluster from TF_CONFIG; it must be created before any other TF op
of the process, so entry points build the strategy first.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfprivacy import config as C

STRATEGIES = C.DISTRIBUTIONS


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "trainer.distribution=multi_worker needs TF_CONFIG set (cluster + task)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"trainer.distribution: unknown {name!r}; choose one of {STRATEGIES}")


def is_chief() -> bool:
    """True on the worker that writes checkpoints, summaries and artefacts."""
    tf_config = os.environ.get("TF_CONFIG")
    if not tf_config:
        return True
    task = json.loads(tf_config).get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and (
        task.get("type") == "chief" or int(task.get("index", 0)) == 0
    )


def worker_dir(run_dir: str) -> str:
    """Where this worker writes: run_dir on the chief, a private scratch dir elsewhere.

    Every MultiWorkerMirroredStrategy worker must take part in checkpoint saving (the save is
    a collective), but only the chief's copy is kept.
    """
    if is_chief():
        return run_dir
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    return os.path.join(run_dir, "workers", f"{task['type']}_{task['index']}")
