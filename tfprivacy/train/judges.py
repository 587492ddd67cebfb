"""Judges the game cannot fool: raw-trained models fine-tuned on f_d's output, scoring f_d.

The game's own f_T and f_b co-adapt with f_d, so their validation figures say little about what
a new model would read from f_d's output: a game stops "hiding" the moment its own attackers
are fooled, and its own target keeps up with whatever f_d leaves. A judgement instead starts
the attackers from the weights f_b had at the end of their pretraining (saved once in the run dir)
and fine-tunes them on f_d's output of training clips with f_d frozen (as the ruler's
fine-tuned attacker does); the judge target is of the evaluation's kind (judge.target "ruler":
eval.target), trained from scratch on f_d's output as the ruler trains it (judge.target_from
"scratch"), or started from a copy trained on raw clips when pretraining ends and fine-tuned
(target_from "raw"; judge.target "game": f_T as its pretraining left it, fine-tuned). All are
scored on the validation set:

- action: the judge target's validation top-1, as a fraction of the same procedure on raw
  clips (judged judge.raw_repeats times with distinct seeds when pretraining ends, averaged);
- leakage: (worst judge attacker's validation cMAP - chance) / (raw's - chance), the
  evaluation's leakage ratio on the validation set.

The Trainer judges every judge.every adversarial steps, keeps the best qualifying f_d (action
>= judge.action_bar of raw, least leakage), steers the game while none qualifies and ends it
early once one qualifies with little leakage (tfprivacy/train/loop.py). Nothing here reads a
test video: the judges train on the training split and score the validation set.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy import losses, optim
from tfprivacy.data.records import NUM_ATTRIBUTES
from tfprivacy.metrics import cmap, cmap_chance
from tfprivacy.models import build_privacy, build_target, degrade_clips
from tfprivacy.train.game import Players

JUDGE_DIR = "judges"
BEST_DEGRADER = "best_degrader.weights.h5"


def leakage(worst_cmap: float, raw_cmap: float, chance: float) -> float:
    """(cMAP - chance) / (raw's - chance): 1 leaks as much as raw, 0 is chance (nan when raw is
    not above chance). It is 1 - summary.privacy_fall, written out so its digits are the
    evaluation's ratio's."""
    span = raw_cmap - chance
    return (worst_cmap - chance) / span if span > 0 else float("nan")


def qualifies(verdict: dict, cfg: C.JudgeConfig) -> bool:
    return verdict["action_of_raw"] >= cfg.action_bar  # nan (raw at 0) never qualifies


def meets_bar(verdict: dict, cfg: C.JudgeConfig) -> bool:
    return qualifies(verdict, cfg) and verdict["leakage"] <= cfg.leakage_bar


def failed_sides(verdict: dict, cfg: C.JudgeConfig) -> list[str]:
    """Which side of the bar a judged checkpoint misses: [], ["action"], ["privacy"] or both."""
    sides = []
    if not verdict["action_of_raw"] >= cfg.action_bar:
        sides.append("action")
    if not verdict["leakage"] <= cfg.leakage_bar:  # nan counts as a miss
        sides.append("privacy")
    return sides


def _or(value: float, default: float) -> float:
    return value if np.isfinite(value) else default


def pick(verdicts: list[dict], cfg: C.JudgeConfig) -> tuple[dict | None, str]:
    """The checkpoint to keep and why: the least leakage among those whose action is >= the
    bar; when none is, the one nearest the bar (the least action shortfall, then leakage)."""
    if not verdicts:
        return None, "no checkpoint was judged"
    ok = [v for v in verdicts if qualifies(v, cfg)]
    if ok:
        best = min(ok, key=lambda v: (_or(v["leakage"], 9.0), -v["action_of_raw"], v["step"]))
        return best, (
            f"the least validation leakage among the {len(ok)} of {len(verdicts)} judged "
            f"checkpoints whose validation action is >= {100 * cfg.action_bar:.0f}% of raw"
        )
    best = max(verdicts, key=lambda v: (_or(v["action_of_raw"], -1.0), -_or(v["leakage"], 9.0)))
    return best, (
        f"none of the {len(verdicts)} judged checkpoints keeps >= "
        f"{100 * cfg.action_bar:.0f}% of raw's validation action; this one keeps the most"
    )


def _restart(opt) -> None:
    """An optimizer back at its start: moments and step count zeroed (a schedule starts over);
    the learning rate stays."""
    for var in opt.variables:
        if "learning_rate" not in var.path:
            var.assign(tf.zeros_like(var))


def channel_stats(clips: np.ndarray, max_values: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of [0, 1] clips (a strided sample if huge): the statistics the
    ruler standardises its fresh target's inputs with (tfprivacy/eval/splits.py)."""
    flat = clips.reshape(-1, clips.shape[-1])
    flat = flat[:: max(1, flat.shape[0] // max_values)].astype(np.float64)
    return flat.mean(axis=0).astype(np.float32), np.maximum(flat.std(axis=0), 1e-3).astype(
        np.float32
    )


class Judges:
    """A judge target and judge attackers with their own optimizers, reset to their
    raw-trained weights before each judgement."""

    def __init__(self, cfg: C.ExperimentConfig, players: Players, out_dir: str):
        self.cfg = cfg
        self.p = players
        self.dir = os.path.join(out_dir, JUDGE_DIR)
        shapes = players.shapes
        j, ev = cfg.judge, cfg.eval
        self.ruler = j.target == "ruler"
        # The judge target: the ruler's kind, or the game's f_T. Built outside the distribution
        # strategy: a judgement is a small single-device job.
        arch, width = (
            (ev.target, ev.target_width)
            if self.ruler
            else (
                cfg.model.target,
                cfg.model.target_width,
            )
        )
        self._build_target = lambda: build_target(
            arch, shapes.num_actions, shapes.clip, width, name="judge_target"
        )
        self.target = self._build_target()
        # "scratch": every judgement trains a fresh, seeded target (no raw-trained snapshot).
        self.scratch = self.ruler and j.target_from == "scratch"
        # "ruler": the evaluation's batch (eval.batch_size clips), so that target_pretrain_steps
        # (720) sees as many clips as the ruler's 12 epochs over two clips per training video.
        self.target_batch = ev.batch_size if self.ruler else cfg.data.batch_size
        # Its inputs: (x - mean) / std, with the statistics of the frames it trains on, as the
        # ruler standardises (the game's f_T, trained on f_d's raw [0, 1] output: 0 and 1).
        channels = shapes.clip[-1]
        self.mean = tf.Variable(tf.zeros([channels]), trainable=False, name="judge_mean")
        self.std = tf.Variable(tf.ones([channels]), trainable=False, name="judge_std")
        self.privacy = [
            build_privacy(
                arch,
                NUM_ATTRIBUTES,
                shapes.privacy_input,
                cfg.model.privacy_width,
                name=f"judge_privacy_{i}_{arch}",
            )
            for i, arch in enumerate(players.archs)
        ]
        if self.ruler:
            self.target_opt = optim.adam(ev.learning_rate, ev.lr_schedule, j.target_steps)
            self.pretrain_opt = optim.adam(
                ev.learning_rate, ev.lr_schedule, j.target_pretrain_steps
            )
            self.pretrain_opt.build(self.target.trainable_variables)
            self._pretrain_loop = tf.function(self._pretrain_steps)
        else:
            self.target_opt = keras.optimizers.Adam(cfg.trainer.target_lr)
        self.privacy_opts = [keras.optimizers.Adam(cfg.trainer.privacy_lr) for _ in self.privacy]
        self.target_opt.build(self.target.trainable_variables)
        for opt, model in zip(self.privacy_opts, self.privacy, strict=True):
            opt.build(model.trainable_variables)
        self._target_loop = tf.function(self._fine_tune_steps)
        self._privacy_loop = tf.function(self._privacy_steps)
        self._degrade_batch = tf.function(
            lambda x: degrade_clips(self.p.degrader, x, training=False)
        )
        self._score_target = tf.function(lambda x: self.target(self._std(x), training=False))
        self._score_privacy = tf.function(lambda x: [m(x, training=False) for m in self.privacy])

    def describe_target(self) -> str:
        """How each judgement's target is trained, in words (the summary's judges line)."""
        j = self.cfg.judge
        if self.scratch:
            steps = j.target_pretrain_steps
            return f"the ruler's target trained from scratch on f_d's output, {steps} steps"
        start = "a raw-trained copy of the ruler's target" if self.ruler else "a copy of f_T"
        return f"{start} fine-tuned on f_d's output, {j.target_steps} steps"

    # ---- the raw-pretrained starting point -------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.weights.h5")

    def snapshot(self, train, seed: int) -> None:
        """The judges' starting point, saved in the run dir (a resumed run reads it back):
        each f_b's weights now (the end of their pretraining) and, unless each judgement trains
        its target from scratch, the judge target: "ruler", a fresh eval.target trained on the
        raw clips of `train` (the judges' training arrays) for judge.target_pretrain_steps;
        "game", f_T's weights now."""
        os.makedirs(self.dir, exist_ok=True)
        for i, model in enumerate(self.p.privacy):
            model.save_weights(self._path(f"privacy_init_{i}"))
        if self.scratch:
            return
        if not self.ruler:
            self.p.target.save_weights(self._path("target_init"))
            return
        self.pretrain_target(train, seed)

    def pretrain_target(self, train, seed: int) -> None:
        """target_from "raw": a fresh eval.target (seeded) trained on the raw clips of `train`
        for judge.target_pretrain_steps, saved as the judgements' starting point."""
        _restart(self.pretrain_opt)
        keras.utils.set_random_seed(seed)
        self.target.set_weights(self._build_target().get_weights())  # fresh, seeded
        self.mean.assign(channel_stats(train.clips)[0])
        self.std.assign(channel_stats(train.clips)[1])
        batches = self._batches((train.clips, train.actions), seed, self.target_batch)
        self._pretrain_loop(iter(batches), tf.constant(self.cfg.judge.target_pretrain_steps))
        self.target.save_weights(self._path("target_init"))

    def has_snapshot(self) -> bool:
        last = f"privacy_init_{len(self.privacy) - 1}" if self.scratch else "target_init"
        return os.path.exists(self._path(last))

    def _reset(self, seed: int) -> None:
        """Every judge back at its starting point (a fresh target, seeded, when from scratch),
        its optimizer's moments and step count zeroed; the seed set for what follows."""
        if self.scratch:
            keras.utils.set_random_seed(seed)
            self.target.set_weights(self._build_target().get_weights())
        else:
            self.target.load_weights(self._path("target_init"))
        for i, model in enumerate(self.privacy):
            model.load_weights(self._path(f"privacy_init_{i}"))
        target_opt = self.pretrain_opt if self.scratch else self.target_opt
        for opt in (target_opt, *self.privacy_opts):
            _restart(opt)
        keras.utils.set_random_seed(seed)

    # ---- fine-tuning on f_d's output -------------------------------------------------------
    def _std(self, x):
        return (x - self.mean) / self.std

    def _pretrain_steps(self, iterator, n):
        return self._target_steps(iterator, n, self.pretrain_opt)

    def _fine_tune_steps(self, iterator, n):
        return self._target_steps(iterator, n, self.target_opt)

    def _target_steps(self, iterator, n, opt):
        for _ in tf.range(n):
            x, actions = next(iterator)
            with tf.GradientTape() as tape:
                logits = self.target(self._std(x), training=True)
                loss = tf.reduce_mean(losses.target_loss(actions, logits))
            grads = tape.gradient(loss, self.target.trainable_variables)
            opt.apply(grads, self.target.trainable_variables)
        return tf.constant(0)

    def _privacy_steps(self, iterator, n):
        for _ in tf.range(n):
            x, labels = next(iterator)
            for model, opt in zip(self.privacy, self.privacy_opts, strict=True):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(losses.privacy_loss(labels, model(x, training=True)))
                grads = tape.gradient(loss, model.trainable_variables)
                opt.apply(grads, model.trainable_variables)
        return tf.constant(0)

    def _degraded(self, array: np.ndarray, degrade) -> np.ndarray:
        """`array` (clips in [0, 1]) through `degrade` in batches; `degrade` None: unchanged."""
        if degrade is None:
            return array
        bs = 4 * self.cfg.data.batch_size
        return np.concatenate(
            [np.asarray(degrade(tf.constant(array[i : i + bs]))) for i in range(0, len(array), bs)]
        )

    def degrader_fn(self):
        """f_d (the game's current weights) as a clips -> clips function for `judge`."""
        return self._degrade_batch

    def _batches(self, arrays, seed: int, batch_size: int | None = None) -> tf.data.Dataset:
        n = len(arrays[0])
        return (
            tf.data.Dataset.from_tensor_slices(arrays)
            .shuffle(n, seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size or self.cfg.data.batch_size, drop_remainder=True)
        )

    def judge(self, train, val, degrade, seed: int, privacy: bool = True) -> dict:
        """Trains the judges afresh on (f_d's output of) the training arrays `train` (streams.
        Validation-shaped: clips, actions, privacy inputs, labels; f_d runs once per judgement) and
        scores them on the validation tensors `val` (streams.Validation). `degrade`: a clips ->
        clips function (f_d: degrader_fn(); a hand-made filter), None for raw. Returns the
        figures: action_top1, privacy_cmap_per_model, privacy_cmap_worst, chance_cmap (privacy
        False: the action alone, the cMAPs nan)."""
        j = self.cfg.judge
        self._reset(seed)
        clips = self._degraded(train.clips, degrade)
        if self.ruler:  # standardised with the judged frames' statistics, as the ruler does
            mean, std = channel_stats(clips)
            self.mean.assign(mean)
            self.std.assign(std)
        batches = iter(self._batches((clips, train.actions), seed, self.target_batch))
        if self.scratch:  # the ruler's procedure: eval.learning_rate / lr_schedule, 720 steps
            self._pretrain_loop(batches, tf.constant(j.target_pretrain_steps))
        else:
            self._target_loop(batches, tf.constant(j.target_steps))
        del clips
        bs = self.cfg.data.batch_size
        val_clips = self._degraded(val.clips, degrade)
        preds = [
            np.argmax(self._score_target(tf.constant(val_clips[i : i + bs])).numpy(), -1)
            for i in range(0, len(val_clips), bs)
        ]
        top1 = float(np.mean(np.concatenate(preds) == val.actions))
        chance = float(cmap_chance(val.privacy_labels))
        if not privacy:
            nan = float("nan")
            return {
                "action_top1": top1,
                "privacy_cmap_per_model": [nan] * len(self.privacy),
                "privacy_cmap_worst": nan,
                "chance_cmap": chance,
            }
        inputs, labels = self._degraded(train.privacy_inputs, degrade), train.privacy_labels
        self._privacy_loop(
            iter(self._batches((inputs, labels), seed + 1)), tf.constant(j.privacy_steps)
        )
        del inputs
        val_inputs = self._degraded(val.privacy_inputs, degrade)
        scores = [[] for _ in self.privacy]
        for i in range(0, len(val_inputs), bs):
            for k, logits in enumerate(self._score_privacy(tf.constant(val_inputs[i : i + bs]))):
                scores[k].append(logits.numpy())
        cmaps = [cmap(val.privacy_labels, np.concatenate(s)) for s in scores]
        return {
            "action_top1": top1,
            "privacy_cmap_per_model": cmaps,
            "privacy_cmap_worst": float(max(cmaps)),
            "chance_cmap": chance,
        }


def mean_figures(runs: list[dict]) -> dict:
    """The mean of several judgements' figures (judge's return values) of one degrader: action
    top-1, each model's cMAP and the worst cMAP averaged; the single judgement itself when there
    is one; the repeats' own action and worst cMAP kept under "repeats"."""
    if len(runs) == 1:
        return runs[0]
    out = {
        "action_top1": float(np.mean([r["action_top1"] for r in runs])),
        "privacy_cmap_per_model": [
            float(v) for v in np.mean([r["privacy_cmap_per_model"] for r in runs], axis=0)
        ],
        "privacy_cmap_worst": float(np.mean([r["privacy_cmap_worst"] for r in runs])),
        "chance_cmap": runs[0]["chance_cmap"],
    }
    out["repeats"] = [
        {"action_top1": r["action_top1"], "privacy_cmap_worst": r["privacy_cmap_worst"]}
        for r in runs
    ]
    return out


def verdict(step: int, figures: dict, raw: dict, action_weight: float) -> dict:
    """A judged checkpoint's figures relative to the judges' raw ones."""
    return {
        "step": int(step),
        "action_top1": figures["action_top1"],
        "privacy_cmap_worst": figures["privacy_cmap_worst"],
        "action_of_raw": (
            figures["action_top1"] / raw["action_top1"] if raw["action_top1"] > 0 else float("nan")
        ),
        "leakage": leakage(
            figures["privacy_cmap_worst"], raw["privacy_cmap_worst"], raw["chance_cmap"]
        ),
        "action_weight": float(action_weight),
    }
