"""tf.data input pipelines: records -> decoded, cached, sampled, normalised batches.

Stages (video): record indices -> parallel PyAV decode (tf.numpy_function) -> skip bad videos
(counted by a BadVideoTracker) -> resize to frame_size, kept uint8 -> cache -> [train: seeded
shuffle, repeat] -> temporal sampling of T frames (labels gathered with the same indices)
-> [train: scale-jitter crop] -> process_clip -> batch -> prefetch.

`process_clip` is the one preprocessing function shared with evaluation and export; the
uint8 <-> [0, 1] conversion and the frame-index formulas live in tfprivacy.frames.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import tensorflow as tf
from absl import logging

from tfprivacy.config import DataConfig
from tfprivacy.data import video_io
from tfprivacy.data.records import NUM_ATTRIBUTES, DataError, ImageRecord, VideoRecord
from tfprivacy.frames import (
    eval_frame_indices,
    spread_frame_indices,
    to_unit_float,
    train_frame_indices,
)

# Training crops keep at least this fraction of the side before resizing back (scale jitter).
MIN_CROP_SCALE = 0.9
_ERROR_MARKER = "TooManyBadInputsError"
_MAX_LISTED = 5


class TooManyBadInputsError(DataError):
    """More than max_bad_fraction of a dataset's videos/images could not be decoded."""


# ---------------------------------------------------------------------------------------------
# Bad input accounting


# Every input skipped in this process, path -> reason: each is warned once per run (not once
# per phase or epoch), and summaries and reports list them (bad_inputs()).
_BAD_INPUTS: dict[str, str] = {}
_BAD_LOCK = threading.Lock()


def bad_inputs() -> list[dict]:
    """The inputs skipped so far in this process: [{"path", "reason"}], in the order met."""
    with _BAD_LOCK:
        return [{"path": p, "reason": r} for p, r in _BAD_INPUTS.items()]


class BadVideoTracker:
    """Counts skipped inputs; raises once more than `max_bad_fraction` of `total` are bad.

    Thread-safe: decode functions run on tf.data's parallel threads. Paths are counted once,
    so re-decoding in later epochs (cache off) does not inflate the count.
    """

    def __init__(self, total: int, max_bad_fraction: float):
        if total < 0 or not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(
                f"BadVideoTracker: need total >= 0 and 0 <= max_bad_fraction <= 1, "
                f"got {total}, {max_bad_fraction}"
            )
        self.total = total
        self.max_bad_fraction = max_bad_fraction
        self.bad: list[tuple[str, str]] = []
        self._bad_paths: set[str] = set()
        self._seen_paths: set[str] = set()
        self._lock = threading.Lock()

    @property
    def seen(self) -> int:
        return len(self._seen_paths)

    def add_ok(self, path: str) -> None:
        with self._lock:
            self._seen_paths.add(path)

    def add_bad(self, path: str, reason: str) -> None:
        """Records a skipped input (logged once) and raises if the threshold is now exceeded."""
        with self._lock:
            self._seen_paths.add(path)
            if path not in self._bad_paths:
                self._bad_paths.add(path)
                self.bad.append((path, reason))
                with _BAD_LOCK:
                    first = path not in _BAD_INPUTS
                    _BAD_INPUTS.setdefault(path, reason)
                if first:
                    logging.warning("Skipping unreadable input %s: %s", path, reason)
        self.check()

    def too_many(self) -> bool:
        n = len(self.bad)
        # All bad is always an error, even with max_bad_fraction = 1 (nothing to train on).
        return n > self.max_bad_fraction * self.total or (n > 0 and n >= self.total)

    def check(self) -> None:
        with self._lock:
            if not self.too_many():
                return
            listed = "; ".join(f"{p} ({r})" for p, r in self.bad[:_MAX_LISTED])
            more = (
                f"; ... and {len(self.bad) - _MAX_LISTED} more"
                if len(self.bad) > _MAX_LISTED
                else ""
            )
            message = (
                f"{len(self.bad)} of {self.total} inputs could not be decoded, more than "
                f"data.max_bad_fraction={self.max_bad_fraction}: {listed}{more}"
            )
        raise TooManyBadInputsError(message)


@contextlib.contextmanager
def clean_errors():
    """Re-raises a tf error caused by TooManyBadInputsError as that DataError, minus TF noise.

    Errors raised inside tf.numpy_function reach the iterator wrapped in a tf.errors.OpError
    whose message also carries a Python traceback; callers wrap their loop in this.
    """
    try:
        yield
    except tf.errors.OpError as err:
        text = err.message or str(err)
        start = text.find(_ERROR_MARKER + ": ")
        if start < 0:
            raise
        line = text[start + len(_ERROR_MARKER) + 2 :].split("\n", 1)[0].strip()
        raise TooManyBadInputsError(line) from None


# ---------------------------------------------------------------------------------------------
# Preprocessing shared with evaluation and export


def _resize_frames(frames: tf.Tensor, frame_size: int) -> tf.Tensor:
    """uint8 [..., H, W, 3] -> float32 [..., S, S, 3] in [0, 255] (bilinear).

    Plain bilinear (no antialias): it maps to TFLite's RESIZE_BILINEAR, so the exported
    on-camera graph and training see the same resampling.
    """
    frames = tf.convert_to_tensor(frames)
    if frames.dtype != tf.uint8:
        raise TypeError(f"process_clip: frames must be uint8, got {frames.dtype.name}")
    static = frames.shape
    if static.rank is not None and (static.rank < 3 or static[-1] not in (None, 3)):
        raise ValueError(f"process_clip: frames must be [..., H, W, 3], got shape {static}")
    size = int(frame_size)
    if static.rank is not None and static[-3] == size and static[-2] == size:
        return tf.cast(frames, tf.float32)  # already the right size: exact, and cheaper
    shape = tf.shape(frames)
    flat = tf.reshape(frames, tf.concat([[-1], shape[-3:]], axis=0))
    resized = tf.image.resize(tf.cast(flat, tf.float32), [size, size], method="bilinear")
    out = tf.reshape(resized, tf.concat([shape[:-3], [size, size, 3]], axis=0))
    if static.rank is not None:
        out.set_shape(static[:-3].concatenate([size, size, 3]))
    return tf.clip_by_value(out, 0.0, 255.0)


def process_clip(frames_uint8, frame_size: int) -> tf.Tensor:
    """uint8 frames [..., H, W, 3] -> float32 [..., frame_size, frame_size, 3] in [0, 1]."""
    return to_unit_float(_resize_frames(frames_uint8, frame_size))


def _resize_uint8(frames: tf.Tensor, frame_size: int) -> tf.Tensor:
    # Cached frames stay uint8 (4x smaller than float); rounding costs < 0.5/255.
    return tf.cast(tf.round(_resize_frames(frames, frame_size)), tf.uint8)


def clip_privacy_labels(frame_labels) -> tf.Tensor:
    """Per-frame labels [..., T, 5] -> clip labels [..., 5], per attribute over its COVERED
    frames: 1 if any covered frame is present, 0 if every covered frame is absent, -1
    (unknown) if no frame of the clip is covered.

    Frames no annotation covers are -1 (records.UNKNOWN), below 0 and 1, so the maximum over
    frames is exactly that rule; without -1 it is the plain "present in any frame".
    """
    return tf.reduce_max(tf.convert_to_tensor(frame_labels), axis=-2)


# ---------------------------------------------------------------------------------------------
# Sampling (which frames form a clip: tfprivacy.frames, imported above)


def _random_crop_resize(frames: tf.Tensor, frame_size: int, seed) -> tf.Tensor:
    """Crops one random square of side in [0.9, 1] * S (same for every frame), resizes to S."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    side = tf.shape(frames)[-2]
    scale = tf.random.stateless_uniform([], seeds[0], MIN_CROP_SCALE, 1.0)
    crop = tf.clip_by_value(tf.cast(tf.round(scale * tf.cast(side, tf.float32)), tf.int32), 1, side)

    def offset(s):
        return tf.random.stateless_uniform([], s, 0, tf.int32.max, tf.int32) % (side - crop + 1)

    y, x = offset(seeds[1]), offset(seeds[2])
    cropped = frames[..., y : y + crop, x : x + crop, :]
    return process_clip(cropped, frame_size)


# ---------------------------------------------------------------------------------------------
# Decoding


def decode_parallelism():
    """num_parallel_calls of the maps that decode files and resize frames: AUTOTUNE, or None
    (one at a time) under op determinism (the evaluation's). TF runs those maps sequentially
    under op determinism anyway (the decoder is stateful: it records bad files; the resize
    kernel is on TF's list), rewriting a parallel one and logging an E-level "NodeDef mentions
    attribute use_unbounded_threadpool" line as it does: building them sequential says the
    same without the line."""
    try:
        from tensorflow.python.framework import config as tf_config

        if tf_config.is_op_determinism_enabled():
            return None
    except (ImportError, AttributeError):  # a TF without the switch: nothing to avoid
        pass
    return tf.data.AUTOTUNE


def _parallel_map(ds: tf.data.Dataset, fn, deterministic: bool = True) -> tf.data.Dataset:
    calls = decode_parallelism()
    if calls is None:
        return ds.map(fn)
    return ds.map(fn, num_parallel_calls=calls, deterministic=deterministic)


def _check_video_records(records: list[VideoRecord]) -> None:
    for rec in records:
        labels = rec.frame_labels
        if labels is not None:
            labels = np.asarray(labels)
            if labels.ndim != 2 or labels.shape[1] != NUM_ATTRIBUTES or labels.shape[0] == 0:
                raise DataError(
                    f"{rec.path}: frame_labels must be [num_frames>0, {NUM_ATTRIBUTES}], "
                    f"got shape {labels.shape}"
                )
        if int(rec.action) < 0:
            raise DataError(f"{rec.path}: action must be a class index >= 0, got {rec.action}")


def _align_labels(labels: np.ndarray, num_frames: int) -> np.ndarray:
    """Pads with the last row (annotations shorter than the video) or truncates.

    Unknown (-1) entries of the last row stay unknown in the padded rows."""
    if labels.shape[0] >= num_frames:
        return labels[:num_frames]
    pad = np.repeat(labels[-1:], num_frames - labels.shape[0], axis=0)
    return np.concatenate([labels, pad], axis=0)


def decode_video_records(
    records: list[VideoRecord],
    max_bad_fraction: float,
    frame_size: int,
    cache: bool = True,
    *,
    tracker: BadVideoTracker | None = None,
    deterministic: bool = True,
) -> tf.data.Dataset:
    """Decodes every record once: (frames uint8 [N, S, S, 3], labels float32 [N, 5], action).

    Unreadable videos are skipped and counted; labels are zeros for unannotated records and
    keep -1 (unknown) entries of annotated ones.
    """
    records = list(records)
    _check_video_records(records)
    tracker = tracker or BadVideoTracker(len(records), max_bad_fraction)
    mismatch_logged = []

    def decode(index):
        rec = records[int(index)]
        try:
            frames = video_io.read_video(rec.path)
        except video_io.VideoReadError as err:
            frames, reason = None, err.reason
        if frames is None:
            # Outside the except block, so a threshold error carries no chained traceback.
            tracker.add_bad(rec.path, reason)
            empty = np.zeros([0, 1, 1, 3], np.uint8)
            return empty, np.zeros([0, NUM_ATTRIBUTES], np.float32), np.int32(0), False
        tracker.add_ok(rec.path)
        n = frames.shape[0]
        if rec.frame_labels is None:
            labels = np.zeros([n, NUM_ATTRIBUTES], np.float32)
        else:
            raw = np.asarray(rec.frame_labels)
            if raw.shape[0] != n and not mismatch_logged:
                mismatch_logged.append(rec.path)  # once per pipeline: real sets have many
                logging.warning(
                    "%s: %d frame label rows for %d decoded frames; padding with the last row "
                    "or truncating (further mismatches not logged).",
                    rec.path,
                    raw.shape[0],
                    n,
                )
            labels = _align_labels(raw, n).astype(np.float32)
        return frames, labels, np.int32(rec.action), True

    def decode_tf(index):
        frames, labels, action, ok = tf.numpy_function(
            decode, [index], [tf.uint8, tf.float32, tf.int32, tf.bool], stateful=True
        )
        frames.set_shape([None, None, None, 3])
        labels.set_shape([None, NUM_ATTRIBUTES])
        action.set_shape([])
        ok.set_shape([])
        return frames, labels, action, ok

    ds = tf.data.Dataset.range(len(records))
    ds = _parallel_map(ds, decode_tf, deterministic)
    ds = ds.filter(lambda frames, labels, action, ok: ok)
    ds = _parallel_map(
        ds,
        lambda frames, labels, action, ok: (_resize_uint8(frames, frame_size), labels, action),
        deterministic,
    )
    if cache:
        ds = ds.cache()
    return ds


def _has_privacy(records, with_privacy: bool) -> bool:
    if not with_privacy or not records:
        return False
    missing = [r.path for r in records if r.frame_labels is None]
    if not missing:
        return True
    if len(missing) == len(records):
        return False
    raise DataError(
        f"{len(missing)} of {len(records)} video records have no frame_labels (first: "
        f"{missing[0]}); pass with_privacy=False or give every record labels"
    )


def _seeded(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Pairs each element with its own stateless seed, so results do not depend on threads."""
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((ds, seeds))


def video_dataset(
    records: list[VideoRecord],
    data_cfg: DataConfig,
    training: bool,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    repeat: bool | None = None,
    drop_remainder: bool | None = None,
    with_privacy: bool = True,
    tracker: BadVideoTracker | None = None,
    clips_per_video: int = 1,
) -> tf.data.Dataset:
    """(clip float32 [B,T,S,S,3] in [0,1], action int32 [B][, privacy float32 [B,T,5]]).

    Privacy labels are yielded when `with_privacy` and the records carry frame_labels.
    Training: seeded shuffle, random temporal start, scale-jitter crop, no flips (they would
    swap walk_left/walk_right), repeat forever, full batches. Eval: evenly spaced frames, whole
    frame, one deterministic pass, last partial batch kept; with clips_per_video k > 1, k clips
    per video at spread starts (spread_frame_indices), in record order.
    """
    if clips_per_video < 1:
        raise ValueError(f"video_dataset: clips_per_video must be >= 1, got {clips_per_video}")
    records = list(records)
    if not records:
        raise DataError("video_dataset: no records")
    privacy = _has_privacy(records, with_privacy)
    size, length = data_cfg.frame_size, data_cfg.clip_length
    batch_size = batch_size or data_cfg.batch_size
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder

    ds = decode_video_records(
        records,
        data_cfg.max_bad_fraction,
        size,
        cache=data_cfg.cache_decoded,
        tracker=tracker,
        deterministic=True,  # keeps the seeded shuffle reproducible
    )
    if training:
        ds = ds.shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    if training:

        def sample(element, seed_pair):
            frames, labels, action = element
            seeds = tf.random.experimental.stateless_split(seed_pair, 2)
            idx = train_frame_indices(tf.shape(frames)[0], length, seeds[0])
            clip = _random_crop_resize(tf.gather(frames, idx), size, seeds[1])
            return clip, action, tf.gather(labels, idx)

        ds = _parallel_map(_seeded(ds, seed), sample)
    elif clips_per_video > 1:

        def sample_many(frames, labels, action):
            idx = spread_frame_indices(tf.shape(frames)[0], length, clips_per_video)
            clips = process_clip(tf.gather(frames, idx), size)
            actions = tf.fill([clips_per_video], action)
            return tf.data.Dataset.from_tensor_slices((clips, actions, tf.gather(labels, idx)))

        ds = ds.flat_map(sample_many)
    else:

        def sample(frames, labels, action):
            idx = eval_frame_indices(tf.shape(frames)[0], length)
            return process_clip(tf.gather(frames, idx), size), action, tf.gather(labels, idx)

        ds = _parallel_map(ds, sample)

    if not privacy:
        ds = ds.map(lambda clip, action, labels: (clip, action))
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------
# Images (privacy-only datasets such as VISPR)


def image_dataset(
    records: list[ImageRecord],
    data_cfg: DataConfig,
    training: bool,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    repeat: bool | None = None,
    tracker: BadVideoTracker | None = None,
) -> tf.data.Dataset:
    """(image float32 [B, S, S, 3] in [0, 1], labels float32 [B, 5]); same policy as videos."""
    records = list(records)
    if not records:
        raise DataError("image_dataset: no records")
    for rec in records:
        if np.asarray(rec.labels).shape != (NUM_ATTRIBUTES,):
            raise DataError(
                f"{rec.path}: labels must be [{NUM_ATTRIBUTES}], got {np.asarray(rec.labels).shape}"
            )
    size = data_cfg.frame_size
    batch_size = batch_size or data_cfg.batch_size
    repeat = training if repeat is None else repeat
    tracker = tracker or BadVideoTracker(len(records), data_cfg.max_bad_fraction)
    paths = [r.path for r in records]
    labels = np.stack([np.asarray(r.labels, np.float32) for r in records])

    def decode(index):
        # Eager (py_function) so a corrupt file becomes a skip naming it, not a graph error.
        path = paths[int(index)]
        try:
            image = tf.io.decode_image(
                tf.io.read_file(path), channels=3, expand_animations=False
            ).numpy()
        except (tf.errors.OpError, OSError) as err:
            text = getattr(err, "message", None) or str(err) or type(err).__name__
            image, reason = None, f"cannot decode image ({text.splitlines()[0]})"
        if image is not None and image.size == 0:
            image, reason = None, "empty image"
        if image is None:
            tracker.add_bad(path, reason)
            return np.zeros([1, 1, 3], np.uint8), False
        tracker.add_ok(path)
        return image, True

    def decode_tf(index):
        image, ok = tf.py_function(decode, [index], [tf.uint8, tf.bool])
        image.set_shape([None, None, 3])
        ok.set_shape([])
        return index, image, ok

    ds = tf.data.Dataset.range(len(records))
    ds = _parallel_map(ds, decode_tf)
    ds = ds.filter(lambda index, image, ok: ok)
    ds = _parallel_map(
        ds, lambda index, image, ok: (_resize_uint8(image, size), tf.gather(labels, index))
    )
    if data_cfg.cache_decoded:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        ds = _parallel_map(
            _seeded(ds, seed),
            lambda element, s: (_random_crop_resize(element[0], size, s), element[1]),
        )
    else:
        ds = ds.map(lambda image, label: (process_clip(image, size), label))
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------


def materialize(dataset: tf.data.Dataset, max_batches: int | None = None) -> tuple:
    """Concatenates a finite dataset's batches into numpy arrays, one per component."""
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    elif dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError("materialize: the dataset repeats forever; pass max_batches")
    spec = dataset.element_spec
    single = not isinstance(spec, tuple)
    specs = (spec,) if single else spec
    parts: list[list[np.ndarray]] = [[] for _ in specs]
    with clean_errors():
        for element in dataset:
            element = (element,) if single else element
            for part, value in zip(parts, element, strict=True):
                part.append(value.numpy())
    return tuple(
        np.concatenate(part, axis=0)
        if part
        else np.zeros([0, *[d or 0 for d in s.shape[1:]]], s.dtype.as_numpy_dtype)
        for part, s in zip(parts, specs, strict=True)
    )
