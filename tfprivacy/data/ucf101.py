"""UCF101 -> VideoSplit.

Layout as released: videos `<root>/<Class>/v_<Class>_gXX_cYY.avi`; in `<splits_dir>`
(`ucfTrainTestlist`): `classInd.txt` ("1 ApplyEyeMakeup", 1-based), `trainlist0N.txt`
("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", 1-based label) and `testlist0N.txt`
("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", label from the class directory).

Class names are matched case-insensitively: the release spells one class `HandstandPushups`
in classInd.txt but `HandStandPushups` in file names (and some copies in directory names).
"""

from __future__ import annotations

import os

from absl import logging

from tfprivacy.data.records import DataError, VideoRecord, VideoSplit


def _read_lines(path: str, what: str) -> list[tuple[int, list[str]]]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read UCF101 {what} ({err})") from err
    return [(n, line.split()) for n, line in enumerate(lines, 1) if line.strip()]


def read_class_index(path: str) -> list[str]:
    """classInd.txt -> class names in label order (label = 1-based index - 1)."""
    names: dict[int, str] = {}
    for number, fields in _read_lines(path, "class index"):
        if len(fields) != 2 or not fields[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<index> <ClassName>', got {fields!r}")
        names[int(fields[0])] = fields[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DataError(f"{path}: class indices must be 1..{len(names)}, got {sorted(names)}")
    return [names[i] for i in range(1, len(names) + 1)]


def load_ucf101(root: str, splits_dir: str, split: int = 1) -> VideoSplit:
    """Train and test records of UCF101 split `split` (1..3)."""
    class_names = read_class_index(os.path.join(splits_dir, "classInd.txt"))
    by_lower = {name.lower(): i for i, name in enumerate(class_names)}
    if not os.path.isdir(root):
        raise DataError(f"{root}: UCF101 video directory does not exist")
    # Real directory spelling per lower-cased class, so list entries resolve whatever the case.
    dirs = {d.lower(): d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))}
    missing: list[str] = []

    def record(list_path: str, number: int, rel: str, label: int | None) -> VideoRecord:
        class_dir, sep, filename = rel.replace("\\", "/").partition("/")
        if not sep or class_dir.lower() not in by_lower:
            raise DataError(f"{list_path}:{number}: {rel!r} is not '<Class>/<video>.avi'")
        index = by_lower[class_dir.lower()]
        if label is not None and label != index:
            raise DataError(
                f"{list_path}:{number}: label {label + 1} ({class_names[label]}) disagrees "
                f"with class directory {class_dir!r}"
            )
        path = os.path.join(root, dirs.get(class_dir.lower(), class_dir), filename)
        if not os.path.exists(path):
            missing.append(path)
        return VideoRecord(path=path, action=index)

    train = []
    train_path = os.path.join(splits_dir, f"trainlist{split:02d}.txt")
    for number, fields in _read_lines(train_path, "train list"):
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataError(f"{train_path}:{number}: expected '<Class>/<video>.avi <label>'")
        label = int(fields[1]) - 1
        if not 0 <= label < len(class_names):
            raise DataError(
                f"{train_path}:{number}: label {fields[1]} outside 1..{len(class_names)}"
            )
        train.append(record(train_path, number, fields[0], label))
    test = []
    test_path = os.path.join(splits_dir, f"testlist{split:02d}.txt")
    for number, fields in _read_lines(test_path, "test list"):
        if len(fields) != 1:
            raise DataError(f"{test_path}:{number}: expected '<Class>/<video>.avi'")
        test.append(record(test_path, number, fields[0], None))
    if missing:
        # Left in: the pipeline skips unreadable videos and fails past max_bad_fraction.
        logging.warning("UCF101: %d listed video(s) missing, e.g. %s", len(missing), missing[0])
    return VideoSplit(train=train, test=test, class_names=class_names)
