"""Shared vocabulary of the data layer: privacy attributes and the records loaders return.

Every loader (built-in benchmark, PA-HMDB51, HMDB51, UCF101, VISPR) turns its on-disk
format into these records; the tf.data pipelines only ever see records.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Label of a frame (or clip) whose attribute no annotation covers: unknown, not absent. Losses
# and metrics ignore it (tfprivacy.losses / tfprivacy.metrics treat every negative label so).
UNKNOWN = -1

# The five PA-HMDB51 attributes, in the order of every multi-hot vector in the project.
PRIVACY_ATTRIBUTES: tuple[str, ...] = ("skin_color", "face", "gender", "nudity", "relationship")
NUM_ATTRIBUTES = len(PRIVACY_ATTRIBUTES)

# Allowed values per attribute (PA-HMDB51). For scoring, present <=> value != 0.
ATTRIBUTE_VALUES: dict[str, tuple[int, ...]] = {
    "skin_color": (0, 1, 2, 3),  # unidentifiable, white, brown/yellow, black
    "face": (0, 1, 2),  # invisible, partial, complete
    "gender": (0, 1, 2, 3),  # unidentifiable, male, female, both
    "nudity": (0, 1, 2),  # long sleeves and pants, short sleeves/shorts/skirts, semi-nudity
    "relationship": (0, 1),  # unidentifiable, identifiable
}


class DataError(ValueError):
    """Malformed dataset input; the message names the file and the field."""


@dataclasses.dataclass
class VideoRecord:
    """One video: where it is, its action, and (if annotated) frame-wise privacy labels.

    frame_labels: int8 [num_frames, NUM_ATTRIBUTES] multi-hot (1 = attribute present in that
    frame, 0 = absent, UNKNOWN = -1 = no annotation covers that frame for that attribute), or
    None for action-only datasets.
    """

    path: str
    action: int
    num_frames: int = 0
    frame_labels: np.ndarray | None = None


@dataclasses.dataclass
class ImageRecord:
    """One still image with an image-level privacy multi-hot (VISPR-style datasets)."""

    path: str
    labels: np.ndarray  # int8 [NUM_ATTRIBUTES]


@dataclasses.dataclass
class VideoSplit:
    """Train/test records of a video dataset plus its class names; `unused`: the split's
    videos labelled 0 (HMDB51's "unused"), training side, when the loader was asked for them."""

    train: list[VideoRecord]
    test: list[VideoRecord]
    class_names: list[str]
    unused: list[VideoRecord] = dataclasses.field(default_factory=list)
