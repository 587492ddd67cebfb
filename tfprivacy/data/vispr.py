"""VISPR images -> ImageRecords with the five PA-HMDB51 attributes.

Layout: `<root>/annotations/<split>/<id>.json` with
`{"id": ..., "image_path": "images/<split>/<id>.jpg", "labels": ["a0_safe", "a4_gender", ...]}`,
image paths relative to `<root>`; splits train2017, val2017, test2017.

The VISPR -> PA-HMDB51 attribute mapping follows the paper (arXiv 1906.05675): seven VISPR
attributes (a4_gender, a9_face_complete, a10_face_partial, a12_semi_nudity, a17_color,
a64_rel_personal, a65_rel_social) folded into five. Images with none of them get an all-zero
vector; the official code labelled them as the first attribute instead, a known defect.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tfprivacy.data.records import NUM_ATTRIBUTES, PRIVACY_ATTRIBUTES, DataError, ImageRecord

# PA-HMDB51 attribute -> the VISPR ids folded into its column; the one definition, also used by
# the built-in benchmark's VISPR-style stills (tfprivacy/data/synthetic.py). The loader folds
# every id of an attribute into one column, so the order of a tuple does not matter to it; the
# stills pick face's id by PA-HMDB51 value (1 partial, 2 complete), in this order.
VISPR_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "skin_color": ("a17_color",),
    "face": ("a10_face_partial", "a9_face_complete"),  # by value 1, 2
    "gender": ("a4_gender",),
    "nudity": ("a12_semi_nudity",),
    "relationship": ("a64_rel_personal", "a65_rel_social"),
}
# VISPR attribute id -> column in PRIVACY_ATTRIBUTES order.
_COLUMN = {
    vispr: PRIVACY_ATTRIBUTES.index(attribute)
    for attribute, ids in VISPR_ATTRIBUTES.items()
    for vispr in ids
}


def labels_to_multihot(labels: list[str]) -> np.ndarray:
    """VISPR attribute ids -> int8 [5]; ids outside the mapping (a0_safe, ...) are ignored."""
    out = np.zeros(NUM_ATTRIBUTES, np.int8)
    for label in labels:
        if label in _COLUMN:
            out[_COLUMN[label]] = 1
    return out


def load_vispr_split(root: str, split: str) -> list[ImageRecord]:
    """All annotated images of one split (e.g. "train2017"), sorted by annotation file name."""
    ann_dir = os.path.join(root, "annotations", split)
    if not os.path.isdir(ann_dir):
        raise DataError(f"{ann_dir}: VISPR annotation directory does not exist")
    records = []
    for name in sorted(f for f in os.listdir(ann_dir) if f.endswith(".json")):
        path = os.path.join(ann_dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: malformed JSON ({err})") from err
        except OSError as err:
            raise DataError(f"{path}: cannot read annotation ({err})") from err
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected an object with 'image_path' and 'labels'")
        image_path, labels = data.get("image_path"), data.get("labels")
        if not isinstance(image_path, str) or not image_path:
            raise DataError(f"{path}: field 'image_path' missing or not a string")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DataError(f"{path}: field 'labels' must be a list of attribute ids")
        full = os.path.join(root, image_path)  # an absolute image_path is kept as is
        if not os.path.isfile(full):
            raise DataError(f"{path}: image {full} does not exist")
        records.append(ImageRecord(path=full, labels=labels_to_multihot(labels)))
    if not records:
        raise DataError(f"{ann_dir}: no VISPR <id>.json annotation files")
    return records


def load_vispr(
    root: str,
    train_splits: tuple[str, ...] = ("train2017",),
    test_splits: tuple[str, ...] = ("test2017",),
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(train, test) image records; several splits per side are concatenated in order."""
    train = [r for s in train_splits for r in load_vispr_split(root, s)]
    test = [r for s in test_splits for r in load_vispr_split(root, s)]
    return train, test
