"""Validation figures of the players: action top-1 and privacy cMAP, raw or degraded."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfprivacy.metrics import cmap, cmap_chance, fidelity
from tfprivacy.models import degrade_clips
from tfprivacy.train.game import Players
from tfprivacy.train.streams import Validation


class Validator:
    """Runs the players on fixed validation tensors (no gradient, no distribution)."""

    def __init__(self, players: Players, val: Validation, batch_size: int):
        self.p = players
        self.val = val
        self.batch_size = batch_size
        self._degrade = tf.function(lambda x: degrade_clips(self.p.degrader, x, training=False))
        self._target = tf.function(lambda x: self.p.target(x, training=False))
        self._privacy = tf.function(lambda x: [m(x, training=False) for m in self.p.privacy])

    def _batches(self, array):
        for i in range(0, len(array), self.batch_size):
            yield tf.constant(array[i : i + self.batch_size])

    def degraded_clips(self, array) -> np.ndarray:
        return np.concatenate([self._degrade(b).numpy() for b in self._batches(array)])

    def action_accuracy(self, degrade: bool = True, limit: int = 0) -> float:
        """Top-1 on the validation clips (the first `limit` of them; 0: all)."""
        clips = self.val.clips[:limit] if limit else self.val.clips
        correct = []
        for b in self._batches(clips):
            x = self._degrade(b) if degrade else b
            correct.append(np.argmax(self._target(x).numpy(), -1))
        pred = np.concatenate(correct)
        return float(np.mean(pred == self.val.actions[: len(pred)]))

    def privacy_cmaps(self, degrade: bool = True) -> list[float]:
        """cMAP of each privacy model on the validation inputs."""
        scores = [[] for _ in self.p.privacy]
        for b in self._batches(self.val.privacy_inputs):
            x = self._degrade(b) if degrade else b
            for i, logits in enumerate(self._privacy(x)):
                scores[i].append(logits.numpy())
        return [cmap(self.val.privacy_labels, np.concatenate(s)) for s in scores]

    def fidelity(self, max_clips: int = 64) -> dict:
        """metrics.fidelity of f_d on the first max_clips validation clips."""
        clips = self.val.clips[:max_clips]
        return fidelity(clips, self.degraded_clips(clips))

    def figures(self, degrade: bool = True) -> dict:
        cmaps = self.privacy_cmaps(degrade)
        return {
            "action_top1": self.action_accuracy(degrade),
            "privacy_cmap_per_model": cmaps,
            "privacy_cmap_worst": float(max(cmaps)),
        }

    def chance(self, num_actions: int) -> dict:
        return {
            "action_top1": 1.0 / num_actions,
            "privacy_cmap_worst": cmap_chance(self.val.privacy_labels),
        }
