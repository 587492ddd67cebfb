"""HMDB51 (and the built-in benchmark, which uses its layout) -> VideoSplit.

Layout as released: videos `<root>/<action>/<video>.avi`; split files
`<splits_dir>/<action>_test_split{1,2,3}.txt`, one `<video>.avi <0|1|2>` per line
(0 unused, 1 train, 2 test). Videos are not decoded here (6,766 of them); the pipeline decodes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection

from absl import logging

from tfprivacy.data.records import DataError, VideoRecord, VideoSplit

UNUSED, TRAIN, TEST = 0, 1, 2
_SPLIT_FILE = re.compile(r"^(?P<action>.+)_test_split(?P<split>\d+)\.txt$")


def read_split_file(path: str) -> dict[str, int]:
    """`<video>.avi <0|1|2>` lines -> {video: 0|1|2}, in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read split file ({err})") from err
    out: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got {line!r}")
        if fields[0] in out:
            raise DataError(f"{path}:{number}: video {fields[0]!r} listed twice")
        out[fields[0]] = int(fields[1])
    return out


def split_files(splits_dir: str, split: int) -> dict[str, str]:
    """{action: path of `<action>_test_split<split>.txt`}, sorted by action."""
    if not os.path.isdir(splits_dir):
        raise DataError(f"{splits_dir}: HMDB51 split directory does not exist")
    found = {}
    for name in os.listdir(splits_dir):
        match = _SPLIT_FILE.match(name)
        if match and int(match["split"]) == split:
            found[match["action"]] = os.path.join(splits_dir, name)
    if not found:
        raise DataError(f"{splits_dir}: no '<action>_test_split{split}.txt' files")
    return dict(sorted(found.items()))


def read_split_assignments(splits_dir: str, split: int) -> dict[str, dict[str, int]]:
    """{action: {video: 0|1|2}} for HMDB51 split `split`."""
    return {
        action: read_split_file(path) for action, path in split_files(splits_dir, split).items()
    }


def load_hmdb51(
    root: str,
    splits_dir: str,
    split: int = 1,
    exclude: Collection[str] = (),
    class_names: list[str] | None = None,
    keep_unused: bool = False,
) -> VideoSplit:
    """Train (label 1) and test (label 2) records of HMDB51 split `split`; with keep_unused,
    the videos labelled 0 too (VideoSplit.unused).

    exclude: video names dropped from both train and test (the PA-HMDB51 videos, which are
      held out for privacy evaluation).
    class_names: label order; default sorted action names of the split files (the usual
      HMDB51 convention). Must name exactly the split files' actions.
    """
    assignments = read_split_assignments(splits_dir, split)
    if class_names is None:
        class_names = sorted(assignments)
    elif sorted(class_names) != sorted(assignments):
        raise DataError(
            f"{splits_dir}: split files name actions {sorted(assignments)}, "
            f"expected {sorted(class_names)}"
        )
    if not os.path.isdir(root):
        raise DataError(f"{root}: HMDB51 video directory does not exist")
    excluded = set(exclude)
    train, test, unused, missing = [], [], [], []
    for index, action in enumerate(class_names):
        action_dir = os.path.join(root, action)
        if not os.path.isdir(action_dir):
            raise DataError(f"{action_dir}: no video directory for action {action!r}")
        for video, label in assignments[action].items():
            if (label == UNUSED and not keep_unused) or video in excluded:
                continue
            path = os.path.join(action_dir, video)
            if not os.path.exists(path):
                missing.append(path)
            part = {TRAIN: train, TEST: test, UNUSED: unused}[label]
            part.append(VideoRecord(path=path, action=index))
    if missing:
        # Left in: the pipeline skips unreadable videos and fails past max_bad_fraction.
        logging.warning("HMDB51: %d listed video(s) missing, e.g. %s", len(missing), missing[0])
    return VideoSplit(train=train, test=test, class_names=list(class_names), unused=unused)
