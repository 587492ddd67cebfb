"""Training and validation data for the game, in the shapes the steps expect.

Joint mode (one dataset carries both labels): one stream, each batch split into an action part
(clips, actions) and a privacy part (clips, clip-level labels). Cross-dataset mode: an action
stream of videos and a privacy stream of still images (fed as one-frame clips).

Resuming: each phase's datasets are seeded by (seed, phase) and the batches a stream has already
consumed in the phase are skipped, so a resumed run sees exactly the batches an uninterrupted run
would have seen.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy.data import pipeline
from tfprivacy.data.records import VideoRecord
from tfprivacy.data.sources import DatasetSources
from tfprivacy.frames import privacy_frame_indices

ACTION, PRIVACY = 0, 1


def split_validation(records: list, fraction: float = 0.1, minimum: int = 1):
    """Deterministically carves a validation subset out of the training records.

    Every k-th record (stable under the loaders' sorted order) goes to validation, so the
    test split stays untouched for the two-fold evaluation.
    """
    if len(records) < 2:
        return list(records), list(records)
    n_val = max(minimum, int(round(len(records) * fraction)))
    step = max(1, len(records) // n_val)
    val_idx = set(range(0, len(records), step)[:n_val])
    train = [r for i, r in enumerate(records) if i not in val_idx]
    val = [r for i, r in enumerate(records) if i in val_idx]
    return train, val


def privacy_part(clips, frame_labels, idx):
    """The privacy models' view of a clip: the chosen frames `idx` (Streams.frame_idx) and the
    labels of those frames (per attribute over the chosen frames annotation covers; -1 when it
    covers none of them, which the privacy losses and metrics ignore: see
    pipeline.clip_privacy_labels)."""
    return tf.gather(clips, idx, axis=1), pipeline.clip_privacy_labels(
        tf.gather(frame_labels, idx, axis=1)
    )


def _image_as_clip(images, labels):
    return images[:, tf.newaxis], labels


@dataclasses.dataclass
class Validation:
    """Fixed validation tensors: action clips/labels and privacy inputs/labels (numpy)."""

    clips: np.ndarray
    actions: np.ndarray
    privacy_inputs: np.ndarray
    privacy_labels: np.ndarray


class Streams:
    def __init__(self, cfg: C.ExperimentConfig, sources: DatasetSources, strategy):
        self.cfg = cfg
        self.sources = sources
        self.strategy = strategy
        self.joint = sources.joint
        self.global_batch = cfg.data.batch_size
        if self.global_batch % strategy.num_replicas_in_sync:
            raise C.ConfigError(
                f"data.batch_size={self.global_batch} must be divisible by the "
                f"{strategy.num_replicas_in_sync} replicas"
            )
        if sources.validation:
            # Training-side videos kept apart for validation (synthetic.extra_val_videos): the
            # game trains on the whole training split and is judged on videos it never saw.
            self.action_train, self.action_val = list(sources.action.train), sources.validation
        else:
            self.action_train, self.action_val = split_validation(sources.action.train)
        if self.joint:
            self.privacy_train, self.privacy_val = self.action_train, self.action_val
        elif sources.privacy_images is not None:
            self.privacy_train, self.privacy_val = split_validation(sources.privacy_images[0])
        elif sources.privacy_videos is not None:
            self.privacy_train, self.privacy_val = split_validation(sources.privacy_videos.train)
        else:
            raise C.ConfigError("the dataset has no privacy labels (data.dataset)")
        self.frame_idx = privacy_frame_indices(cfg.data.clip_length, cfg.adversary.privacy_frames)
        self._iters = [None, None]
        self._counts = [0, 0]

    def _joint_parts(self, clips, actions, frame_labels):
        return (clips, actions), privacy_part(clips, frame_labels, self.frame_idx)

    # ---- building ----------------------------------------------------------------------
    def _privacy_dataset(self, records, training: bool, seed: int):
        if records and isinstance(records[0], VideoRecord):
            ds = pipeline.video_dataset(records, self.cfg.data, training, seed=seed)
            return ds.map(lambda c, a, f: privacy_part(c, f, self.frame_idx))
        ds = pipeline.image_dataset(records, self.cfg.data, training, seed=seed)
        return ds.map(_image_as_clip)

    def _distribute(self, ds):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return self.strategy.experimental_distribute_dataset(ds.with_options(options))

    def start_phase(self, phase: int, consumed: tuple[int, int]) -> None:
        """Opens the phase's streams, skipping batches an interrupted run already used."""
        seed = self.cfg.trainer.seed * 100 + phase
        if self.joint:
            ds = pipeline.video_dataset(self.action_train, self.cfg.data, True, seed=seed)
            streams = [ds.map(self._joint_parts).skip(consumed[ACTION]), None]
        else:
            action = pipeline.video_dataset(
                self.action_train, self.cfg.data, True, seed=seed, with_privacy=False
            )
            privacy = self._privacy_dataset(self.privacy_train, True, seed + 50)
            streams = [action.skip(consumed[ACTION]), privacy.skip(consumed[PRIVACY])]
        self._iters = [iter(self._distribute(s)) if s is not None else None for s in streams]
        self._counts = list(consumed)

    @property
    def consumed(self) -> tuple[int, int]:
        return tuple(self._counts)

    def reset_consumed(self) -> None:
        """Counts no batch consumed (a phase has ended; the next one opens its own streams)."""
        self._counts = [0, 0]

    # ---- drawing -----------------------------------------------------------------------
    def _next(self, which: int):
        self._counts[which] += 1
        return next(self._iters[which])

    def next_action(self):
        return self._next(ACTION)[0] if self.joint else self._next(ACTION)

    def next_privacy(self):
        return self._next(ACTION)[1] if self.joint else self._next(PRIVACY)

    def loop_source(self, kind: str):
        """(iterator, pick) for a multi-step loop drawing `kind` ("action" or "privacy")
        batches inside a tf.function: pick(next(iterator)) is the batch; count them with
        `advance`."""
        if kind not in ("action", "privacy"):
            raise ValueError(f"loop_source: unknown kind {kind!r}")
        if self.joint:
            part = 0 if kind == "action" else 1
            return self._iters[ACTION], ACTION, (lambda element: element[part])
        which = ACTION if kind == "action" else PRIVACY
        return self._iters[which], which, (lambda element: element)

    def advance(self, which: int, n: int) -> None:
        """Counts n batches drawn from stream `which` by a multi-step loop."""
        self._counts[which] += n

    def next_both(self):
        if self.joint:
            return self._next(ACTION)
        return self._next(ACTION), self._next(PRIVACY)

    def judge_train(self) -> Validation:
        """The judges' training arrays (tfprivacy/train/judges.py): one clip per training video
        (evenly spaced frames) and the privacy inputs and labels, decoded once."""
        return self._fixed(self.action_train, self.privacy_train, max_batches=None)

    # ---- validation --------------------------------------------------------------------
    def validation(self) -> Validation:
        n = self.cfg.trainer.val_batches or None  # 0: every validation record
        return self._fixed(self.action_val, self.privacy_val, max_batches=n)

    def _fixed(self, action_records, privacy_records, max_batches) -> Validation:
        """Fixed tensors of `action_records` (and, cross-dataset, `privacy_records`): eval-mode
        clips, actions, the privacy models' inputs and labels (numpy)."""
        n = max_batches
        bs = self.cfg.data.batch_size
        if self.joint:
            ds = pipeline.video_dataset(action_records, self.cfg.data, False, batch_size=bs)
            clips, actions, frames = pipeline.materialize(ds, max_batches=n)
            p_inputs, p_labels = privacy_part(clips, frames, self.frame_idx)
            return Validation(clips, actions, p_inputs.numpy(), p_labels.numpy())
        ds = pipeline.video_dataset(
            action_records, self.cfg.data, False, batch_size=bs, with_privacy=False
        )
        clips, actions = pipeline.materialize(ds, max_batches=n)
        p_ds = self._privacy_dataset(privacy_records, False, 0)
        p_inputs, p_labels = pipeline.materialize(p_ds, max_batches=n)
        return Validation(clips, actions, p_inputs, p_labels)
