"""The players: degrader f_d, target f_T and privacy f_b models (Keras 3, channels-last).

All take float32 frames/clips in [0, 1] and return float32 outputs (logits for f_T and f_b),
also under mixed precision, and are built from functional Keras so they run under any
`tf.distribute` strategy.
"""

from tfprivacy.models.degrader import (
    DEGRADER_NORM,
    DEGRADER_VARIANTS,
    NORMS,
    build_degrader,
    degrade_clips,
    degrader_names,
    register_degrader,
    unregister_degrader,
)
from tfprivacy.models.privacy import (
    FRAME_ARCHS,
    PRIVACY_ARCHS,
    FrameLogitAverage,
    build_privacy,
    build_privacy_frame_model,
    frame_model_of,
    wrap_frame_model,
)
from tfprivacy.models.target import TARGET_ARCHS, build_target

__all__ = [
    "DEGRADER_NORM",
    "DEGRADER_VARIANTS",
    "FRAME_ARCHS",
    "NORMS",
    "PRIVACY_ARCHS",
    "TARGET_ARCHS",
    "FrameLogitAverage",
    "build_degrader",
    "build_privacy",
    "build_privacy_frame_model",
    "build_target",
    "degrade_clips",
    "degrader_names",
    "frame_model_of",
    "register_degrader",
    "unregister_degrader",
    "wrap_frame_model",
]
