"""PA-HMDB51 frame-wise privacy annotations -> per-frame multi-hot labels.

Format as released (github.com/VITA-Group/PA-HMDB51, `PrivacyAttributes/<action>.json`): one
JSON file per action class,

    {"<video>.avi": {"skin_color": [[start, end, value], ...], "face": [...], "gender": [...],
                     "nudity": [...], "relationship": [...], "review": true, "note": ""}}

with inclusive 0-based frame intervals and a mixed value written as a list (gender `[1, 2]`).

Decisions (documented here because the format leaves them open):
- present <=> value != 0; a list value is present when any element is != 0 (as the authors'
  own conversion script does, which tests `value != 0` on the list).
- Overlapping intervals of one attribute are OR-ed: a frame is present if any interval covering
  it says so, absent if every interval covering it says absent.
- Frames no interval of an attribute covers are UNKNOWN (-1, `records.UNKNOWN`), not absent:
  in the released annotations about 120 frames per attribute are uncovered (an annotation
  starting a few frames in, an internal gap, one attribute starting a frame later than the
  others), often where a person is plainly visible, so "absent" would be a false label. Losses
  and metrics ignore unknown entries; a clip's label is taken over its covered frames. This
  is not an error; `load_annotations` logs one line per load with the unknown frames per
  attribute (`unknown_frames`), so a systematically broken file is noticed.
- Malformed input (bad JSON, missing attribute, empty interval list, bad interval, value out of
  range) raises `DataError` naming the file, the video key and the attribute: fail fast, since a
  silently mislabelled sample poisons every privacy score computed on it.
- When the real frame count is known, intervals reaching past it are clipped (decoders and the
  annotation tool can disagree by a frame or two); logged once per file.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import logging

from tfprivacy.data.records import (
    ATTRIBUTE_VALUES,
    NUM_ATTRIBUTES,
    PRIVACY_ATTRIBUTES,
    UNKNOWN,
    DataError,
)


def _is_int(x) -> bool:
    # bool is an int subclass; `true` as a frame index or value is a typo, not a 1.
    return isinstance(x, int) and not isinstance(x, bool)


def _value_present(value, where: str, attribute: str) -> bool:
    allowed = ATTRIBUTE_VALUES[attribute]
    items = value if isinstance(value, list) else [value]
    if not items:
        raise DataError(f"{where}: empty mixed value [] for attribute {attribute!r}")
    for item in items:
        if not _is_int(item) or item not in allowed:
            raise DataError(
                f"{where}: attribute {attribute!r} has value {value!r}; allowed {list(allowed)}"
            )
    return any(item != 0 for item in items)


def _parse_intervals(intervals, where: str, attribute: str) -> list[tuple[int, int, bool]]:
    if not isinstance(intervals, list) or not intervals:
        raise DataError(
            f"{where}: attribute {attribute!r} must be a non-empty list of [start, end, value], "
            f"got {intervals!r}"
        )
    parsed = []
    for interval in intervals:
        if not isinstance(interval, list) or len(interval) != 3:
            raise DataError(
                f"{where}: attribute {attribute!r} has interval {interval!r}; "
                "expected [start, end, value]"
            )
        start, end, value = interval
        if not (_is_int(start) and _is_int(end)) or start < 0 or start > end:
            raise DataError(
                f"{where}: attribute {attribute!r} has bad interval {interval!r} "
                "(need integers 0 <= start <= end)"
            )
        parsed.append((start, end, _value_present(value, where, attribute)))
    return parsed


def parse_video_annotation(
    entry, *, source: str, video: str, num_frames: int | None = None
) -> tuple[np.ndarray, bool, bool]:
    """One video's entry -> (int8 [num_frames, 5] labels, has_gaps, was_clipped).

    Labels: 1 present, 0 absent, UNKNOWN (-1) where no interval of that attribute covers the
    frame; has_gaps says whether any entry is UNKNOWN.
    num_frames: the real frame count if known; otherwise max end + 1 over all attributes.
    `source` (the file) and `video` (the key) only make error messages precise.
    """
    where = f"{source}: video {video!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object of attributes, got {type(entry).__name__}")
    parsed = {}
    for attribute in PRIVACY_ATTRIBUTES:
        if attribute not in entry:
            raise DataError(f"{where}: attribute {attribute!r} is missing")
        parsed[attribute] = _parse_intervals(entry[attribute], where, attribute)
    annotated = 1 + max(end for ivs in parsed.values() for _, end, _ in ivs)
    if num_frames is None:
        num_frames = annotated
    elif not _is_int(num_frames) or num_frames <= 0:
        raise DataError(f"{where}: num_frames must be a positive int, got {num_frames!r}")
    labels = np.full((num_frames, NUM_ATTRIBUTES), UNKNOWN, np.int8)
    for column, attribute in enumerate(PRIVACY_ATTRIBUTES):
        for start, end, present in parsed[attribute]:
            # Slicing clips intervals that reach past a known frame count. The maximum makes a
            # covered frame known (-1 -> 0 or 1) and ORs overlapping intervals (1 stays 1).
            span = labels[start : end + 1, column]
            np.maximum(span, np.int8(present), out=span)
    return labels, bool((labels == UNKNOWN).any()), annotated > num_frames


def unknown_frames(videos) -> dict[str, int]:
    """Frames labelled UNKNOWN per attribute over {video: frame labels} (or a list of them)."""
    arrays = list(videos.values()) if isinstance(videos, dict) else list(videos)
    counts = np.zeros(NUM_ATTRIBUTES, np.int64)
    for labels in arrays:
        counts += (np.asarray(labels) == UNKNOWN).sum(axis=0)
    return {a: int(n) for a, n in zip(PRIVACY_ATTRIBUTES, counts, strict=True)}


def load_annotation_file(
    path: str, num_frames: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Reads one `<action>.json` -> {video name: int8 [num_frames, 5]} in file order.

    num_frames: optional real frame counts per video name (others use max end + 1).
    Uncovered frames are UNKNOWN (-1) and not logged here: `load_annotations` logs one summary
    line per load (count them with `unknown_frames`).
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise DataError(f"{path}: cannot read annotation file ({err})") from err
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: malformed JSON ({err})") from err
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object mapping video names to annotations")
    counts = num_frames or {}
    out, clipped = {}, 0
    for video, entry in data.items():
        labels, _, was_clipped = parse_video_annotation(
            entry, source=path, video=video, num_frames=counts.get(video)
        )
        out[video] = labels
        clipped += was_clipped
    if clipped:
        logging.warning(
            "%s: %d video(s) have intervals past the real frame count; clipped", path, clipped
        )
    return out


def load_annotations(
    annotations_dir: str, num_frames: dict[str, int] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Reads every `<action>.json` in a directory -> {action: {video: frame labels}}.

    The action is the file's stem (`brush_hair.json` -> `brush_hair`); actions come out sorted.
    Logs one line: how many frames are UNKNOWN (no interval covers them) per attribute.
    """
    if not os.path.isdir(annotations_dir):
        raise DataError(f"{annotations_dir}: PA-HMDB51 annotation directory does not exist")
    files = sorted(f for f in os.listdir(annotations_dir) if f.endswith(".json"))
    if not files:
        raise DataError(f"{annotations_dir}: no PA-HMDB51 <action>.json annotation files")
    out = {}
    seen: dict[str, str] = {}
    for name in files:
        path = os.path.join(annotations_dir, name)
        videos = load_annotation_file(path, num_frames)
        for video in videos:
            if video in seen:
                raise DataError(f"{path}: video {video!r} is also annotated in {seen[video]}")
            seen[video] = path
        out[name[: -len(".json")]] = videos
    all_labels = [labels for videos in out.values() for labels in videos.values()]
    unknown = unknown_frames(all_labels)
    logging.info(
        "%s: %d videos, %d frames; frames no interval covers (label unknown, -1: ignored by "
        "losses and metrics) per attribute: %s",
        annotations_dir,
        len(all_labels),
        sum(len(labels) for labels in all_labels),
        ", ".join(f"{a} {n}" for a, n in unknown.items()),
    )
    return out
