"""One tf.function per kind of update, each run through strategy.run.

A replica function sees its share of the global batch; per-example losses are reduced with
tf.nn.compute_average_loss(global_batch_size=...) so that summing over replicas gives the mean.
Each network runs once per input per step and its output feeds every loss that needs it.

Batches: `action` = (clips [B,T,H,W,3], actions [B]); `privacy` = (inputs [B,P,H,W,3],
labels [B,5]). In joint mode (one dataset with both labels) the privacy inputs are P frames of
the same clips, and the degrader step reuses its output on them instead of running again.
"""

from __future__ import annotations

import tensorflow as tf

from tfprivacy import losses
from tfprivacy.models import degrade_clips
from tfprivacy.train import strategies
from tfprivacy.train.game import Players


def _multilabel_accuracy(labels, logits):
    """Share of attributes predicted right per example [B]; unknown (-1) labels are left out
    (0 for an example with none known), and without any the plain mean runs, as losses do."""
    pred = tf.cast(logits > 0.0, labels.dtype)
    correct = tf.cast(tf.equal(pred, labels), tf.float32)

    def known_mean():
        known = tf.cast(labels >= 0, tf.float32)
        count = tf.reduce_sum(known, axis=-1)
        return tf.reduce_sum(correct * known, axis=-1) / tf.maximum(count, 1.0)

    return tf.cond(tf.reduce_any(labels < 0), known_mean, lambda: tf.reduce_mean(correct, axis=-1))


class Steps:
    """The update steps of one game; built once, traced once per input signature."""

    def __init__(self, players: Players, global_batch: int, joint: bool, frame_idx: list[int]):
        self.p = players
        self.strategy = players.strategy
        self.global_batch = global_batch
        self.joint = joint
        self.frame_idx = list(frame_idx)  # the privacy models' frames of each clip (joint mode)
        adv = players.cfg.adversary
        self.game_strategy = strategies.build(adv)
        self.gamma = float(adv.gamma)
        self.l1_weight = float(adv.l1_weight)
        self.anchor_weight = float(adv.anchor_weight) if players.anchor is not None else 0.0
        self.steered = bool(players.cfg.judge.every)
        self.identity = tf.function(self._identity)
        self.target = tf.function(lambda batch: self._target(batch, train_degrader=False))
        self.target_and_degrader = tf.function(
            lambda batch: self._target(batch, train_degrader=True)
        )
        self.privacy = tf.function(self._privacy)
        self.degrader = tf.function(self._degrader)
        self._loops: dict = {}

    # ---- several steps of one kind in one call (fixed-length phases) --------------------
    def loop(self, kind: str, iterator, pick, n: int):
        """Runs n updates of `kind` ("target" or "privacy") in one graph call, drawing each
        batch as pick(next(iterator)); returns the last step's figures and the index of the
        first step whose figures were not finite (-1: none). The host sees the losses once per
        call, not once per step."""
        if kind not in self._loops:
            step = {
                "target": lambda batch: self._target(batch, train_degrader=False),
                "privacy": self._privacy,
            }[kind]

            def finite(values):
                return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in values])

            def run(iterator, n):
                out = step(pick(next(iterator)))
                first_bad = tf.where(finite(out), -1, 0)
                for i in tf.range(1, n):
                    out = step(pick(next(iterator)))
                    first_bad = tf.where((first_bad < 0) & ~finite(out), i, first_bad)
                return out, first_bad

            self._loops[kind] = tf.function(run)
        return self._loops[kind](iterator, tf.constant(n, tf.int32))

    # ---- helpers -----------------------------------------------------------------------
    def _avg(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def _sum(self, value):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    def _apply(self, opt, tape, loss, variables):
        grads = tape.gradient(opt.scale_loss(loss), variables)
        opt.apply(grads, variables)

    # ---- f_d identity pretraining ------------------------------------------------------
    def _identity(self, dist_batch):
        def replica(batch):
            clips = batch[0]
            with tf.GradientTape() as tape:
                out = degrade_clips(self.p.degrader, clips, training=True)
                per_example = losses.degrader_l1_loss(clips, out)
                loss = self._avg(per_example)
            self._apply(self.p.degrader_opt, tape, loss, self.p.degrader.trainable_variables)
            return loss

        return self._sum(self.strategy.run(replica, args=(dist_batch,)))

    # ---- f_T (optionally with f_d) on L_T ----------------------------------------------
    def _target(self, dist_batch, train_degrader: bool):
        def replica(batch):
            clips, actions = batch[0], batch[1]
            with tf.GradientTape() as tape:
                degraded = degrade_clips(self.p.degrader, clips, training=train_degrader)
                logits = self.p.target(degraded, training=True)
                loss = self._avg(losses.target_loss(actions, logits))
            variables = list(self.p.target.trainable_variables)
            if train_degrader:
                variables += self.p.degrader.trainable_variables
            grads = tape.gradient(self.p.target_opt.scale_loss(loss), variables)
            n_t = len(self.p.target.trainable_variables)
            self.p.target_opt.apply(grads[:n_t], variables[:n_t])
            if train_degrader:
                self.p.degrader_opt.apply(grads[n_t:], variables[n_t:])
            correct = tf.cast(
                tf.equal(tf.argmax(logits, -1, output_type=tf.int32), actions), tf.float32
            )
            return loss, self._avg(correct)

        loss, acc = self.strategy.run(replica, args=(dist_batch,))
        return self._sum(loss), self._sum(acc)

    # ---- every f_b on its own L_B ------------------------------------------------------
    def _privacy(self, dist_batch):
        def replica(batch):
            inputs, labels = batch
            degraded = degrade_clips(self.p.degrader, inputs, training=False)
            out_losses, out_accs = [], []
            for model, opt in zip(self.p.privacy, self.p.privacy_opts, strict=True):
                with tf.GradientTape() as tape:
                    logits = model(degraded, training=True)
                    loss = self._avg(losses.privacy_loss(labels, logits))
                self._apply(opt, tape, loss, model.trainable_variables)
                out_losses.append(loss)
                out_accs.append(self._avg(_multilabel_accuracy(labels, logits)))
            return tf.stack(out_losses), tf.stack(out_accs)

        loss, acc = self.strategy.run(replica, args=(dist_batch,))
        return self._sum(loss), self._sum(acc)

    # ---- f_d on L_T + gamma * L_adv (+ anchor_weight * L_anchor; f_T and f_b fixed) -----
    def _degrader(self, dist_action, dist_privacy):
        def replica(action_batch, privacy_batch):
            clips, actions = action_batch[0], action_batch[1]
            with tf.GradientTape() as tape:
                degraded = degrade_clips(self.p.degrader, clips, training=True)
                target_logits = self.p.target(degraded, training=False)
                task = losses.target_loss(actions, target_logits)
                if self.joint:  # same clips: reuse f_d's output on the privacy frames
                    p_degraded = tf.gather(degraded, self.frame_idx, axis=1)
                    labels = privacy_batch[1]
                else:
                    p_inputs, labels = privacy_batch
                    p_degraded = degrade_clips(self.p.degrader, p_inputs, training=True)
                p_logits = [m(p_degraded, training=False) for m in self.p.privacy]
                adv = self.game_strategy.degrader_term(labels, p_logits)
                task_loss = self._avg(task)
                adv_loss = self._avg(adv)
                if self.steered:  # judge.every: the judges' weight on the action term
                    loss = self.p.action_weight * task_loss + self.gamma * adv_loss
                else:
                    loss = task_loss + self.gamma * adv_loss
                if self.l1_weight:
                    loss += self.l1_weight * self._avg(losses.degrader_l1_loss(clips, degraded))
                anchor_loss = tf.constant(0.0)
                if self.anchor_weight:
                    anchor_logits = self.p.anchor(degraded, training=False)
                    anchor_loss = self._avg(losses.target_loss(actions, anchor_logits))
                    loss += self.anchor_weight * anchor_loss
            self._apply(self.p.degrader_opt, tape, loss, self.p.degrader.trainable_variables)
            return task_loss, adv_loss, anchor_loss

        task, adv, anchor = self.strategy.run(replica, args=(dist_action, dist_privacy))
        return self._sum(task), self._sum(adv), self._sum(anchor)
