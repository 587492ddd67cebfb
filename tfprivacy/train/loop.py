"""The training driver: phases, strategies' schedules, checkpoints, resume, summaries.

Phases (game.PHASES): f_d identity pretraining; f_T pretraining and f_b pretraining on f_d's
output; adversarial training with the configured strategy (grl, kbeam, entropy), ensemble of M
privacy models and optional restarting every R steps; finally "attack": fresh privacy models
trained on the frozen f_d, the training-time privacy figure f_d cannot have fooled in advance.

A run killed at any point and started again with the same command restores the latest
checkpoint (all players, optimizers, phase, step, batches consumed) and continues; when the
latest does not read back whole (cut short by a full disk), the one before it, with a warning.

Tools that watch or probe a run pass callbacks (tfprivacy/train/callbacks.py) to the Trainer
rather than subclassing it.
"""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

from tfprivacy import artifacts
from tfprivacy import config as C
from tfprivacy.data import pipeline
from tfprivacy.data.sources import build_sources
from tfprivacy.frames import privacy_frame_indices
from tfprivacy.progress import progress_bar
from tfprivacy.train import judges as J
from tfprivacy.train.callbacks import HOOKS, TrainerCallback
from tfprivacy.train.distribute import is_chief, make_strategy, worker_dir
from tfprivacy.train.game import PHASES, Players, Shapes
from tfprivacy.train.steps import Steps
from tfprivacy.train.streams import Streams
from tfprivacy.train.summary import privacy_fall, summarize
from tfprivacy.train.validation import Validator

log = logging.getLogger("tfprivacy.train")

PHASE_RESULTS = "phase_results.json"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN/inf; the message names the phase, step and model."""


class CheckpointRestoreError(RuntimeError):
    """No checkpoint of a run dir restores; the message names each one and why it failed."""


def game_shapes(cfg: C.ExperimentConfig, sources) -> Shapes:
    """The players' input shapes: clips for f_d and f_T; for f_b the game's privacy frames of a
    clip, or single images when privacy labels come from an image dataset (cross-dataset)."""
    t, s = cfg.data.clip_length, cfg.data.frame_size
    p = len(privacy_frame_indices(t, cfg.adversary.privacy_frames))
    privacy_is_video = sources.joint or sources.privacy_images is None
    privacy_input = (p, s, s, 3) if privacy_is_video else (1, s, s, 3)
    return Shapes((t, s, s, 3), privacy_input, sources.num_actions)


class Trainer:
    """Trains the game's players phase by phase (game.PHASES) and writes the run dir.

    `Trainer(cfg, callbacks=[...])`: each callback a `TrainerCallback`
    (tfprivacy/train/callbacks.py), its hooks called with the Trainer, in the order given:
    `on_train_begin(trainer)`, `on_phase_begin(trainer, name)`,
    `on_adversarial_step_begin(trainer, step)` and `on_adversarial_step_end(trainer, step,
    figures)` around each adversarial step's updates (step 0-based, figures as floats),
    `on_phase_end(trainer, name)` after a phase's last step and before its end-of-phase figures,
    and `on_train_end(trainer, summary)`. Hooks may read the public attributes (cfg, strategy,
    sources, shapes, players, streams' records and frame indices, steps, validator, results,
    phase_name, phase_step) but must not draw from the streams' iterators.
    """

    def __init__(
        self,
        cfg: C.ExperimentConfig,
        strategy: tf.distribute.Strategy | None = None,
        callbacks=(),
    ):
        self.cfg = cfg
        self.callbacks: list[TrainerCallback] = list(callbacks)
        for callback in self.callbacks:
            missing = [h for h in HOOKS if not callable(getattr(callback, h, None))]
            if missing:
                raise TypeError(
                    f"Trainer callback {callback!r} lacks {', '.join(missing)}: subclass "
                    "tfprivacy.train.callbacks.TrainerCallback"
                )
        self.strategy = strategy or make_strategy(cfg.trainer.distribution)
        self.run_dir = cfg.trainer.run_dir
        self.chief = is_chief()
        self.out_dir = worker_dir(self.run_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        self._check_same_config()
        self.sources = build_sources(cfg.data)
        self.shapes = game_shapes(cfg, self.sources)
        self.players = Players(cfg, self.shapes, self.strategy)
        self.manager = tf.train.CheckpointManager(
            self.players.checkpoint,
            os.path.join(self.out_dir, artifacts.CHECKPOINT_DIR),
            max_to_keep=cfg.trainer.max_to_keep,
        )
        self.resumed_from = self._restore()
        if self.resumed_from is None and self.chief:
            C.save(cfg, os.path.join(self.run_dir, artifacts.CONFIG_FILE))
        self.streams = Streams(cfg, self.sources, self.strategy)
        self.steps = Steps(
            self.players, cfg.data.batch_size, self.sources.joint, self.streams.frame_idx
        )
        self.validator = Validator(self.players, self.streams.validation(), cfg.data.batch_size)
        self.results = self._load_results()
        self.judges = J.Judges(cfg, self.players, self.out_dir) if cfg.judge.every else None
        self._judge_train = None  # the judges' training arrays, decoded at the first judgement
        self._below = None  # last verdict of the target-accuracy threshold check
        tb = os.path.join(self.out_dir, artifacts.TENSORBOARD_DIR)
        self.writer = (
            tf.summary.create_file_writer(tb) if self.chief else tf.summary.create_noop_writer()
        )

    # ---- state and hooks (public) ------------------------------------------------------
    @property
    def phase_name(self) -> str:
        """The current phase (game.PHASES; "done" once training has finished)."""
        return self.players.phase_name

    @property
    def phase_step(self) -> int:
        """Steps the current phase has run."""
        return int(self.players.phase_step.numpy())

    def _notify(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _check_same_config(self) -> None:
        """A run dir holding a checkpoint resumes only under the config that wrote it."""
        ckpt_dir = os.path.join(self.out_dir, artifacts.CHECKPOINT_DIR)
        saved_path = os.path.join(self.run_dir, artifacts.CONFIG_FILE)
        if not (tf.train.latest_checkpoint(ckpt_dir) and os.path.exists(saved_path)):
            return
        saved = _flatten(C.to_dict(C.load(saved_path)))
        now = _flatten(C.to_dict(self.cfg))
        diffs = [
            f"{k}: {saved.get(k)!r} -> {now.get(k)!r}"
            for k in sorted(now)
            if saved.get(k) != now.get(k)
        ]
        if diffs:
            raise C.ConfigError(
                f"{self.run_dir} holds a checkpoint of a run with another config "
                f"({'; '.join(diffs[:5])}); rerun with the same flags to resume, or give a new "
                "--run_dir"
            )

    def _restore(self) -> str | None:
        """Restores the newest checkpoint that reads back whole; its path, None when none exist.

        A checkpoint cut short (a full disk, a copy or sync interrupted) fails to restore. The
        one before it is then tried, with a warning naming the bad one: repeating up to
        checkpoint_every steps beats a run that cannot resume. Whatever the failed restore
        assigned is overwritten by the next (same config, so the same variables), and the
        resumed run's next save, numbered from the restored save counter, replaces the bad
        files.
        """
        paths = self.manager.checkpoints
        failures = []
        for path in reversed(paths):
            # The checkpoint reader reports a short read as IndexError, other damage as TF
            # errors or ValueError / RuntimeError (C++ exceptions seen through pybind).
            try:
                self.players.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
                reason = _one_line(e)
                failures.append(f"{path}: {reason}")
                log.warning(
                    "checkpoint %s cannot be restored (%s); trying the one before it",
                    path,
                    reason,
                )
                continue
            if failures:
                log.warning("resuming from %s instead of %s", path, paths[-1])
            return path
        if failures:
            raise CheckpointRestoreError(
                f"{self.manager.directory}: none of the {len(failures)} checkpoints could be "
                f"restored ({'; '.join(failures)}); move the folder aside to start afresh"
            )
        return None

    # ---- persistence -------------------------------------------------------------------
    def _results_path(self) -> str:
        return os.path.join(self.out_dir, PHASE_RESULTS)

    def _load_results(self) -> dict:
        path = self._results_path()
        if self.resumed_from and os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return {}

    def _save_results(self) -> None:
        tmp = self._results_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.results, f, indent=2)
        os.replace(tmp, self._results_path())

    def _checkpoint(self) -> None:
        ok, where = self.players.all_finite()
        if not ok:
            raise NonFiniteLossError(
                f"phase {self.players.phase_name}, step {int(self.players.phase_step.numpy())}: "
                f"non-finite weights in {where}; checkpoint not written"
            )
        self.players.consumed.assign(list(self.streams.consumed))
        self.manager.save()

    # ---- checks and logging ------------------------------------------------------------
    def _check(self, values: dict) -> dict:
        out = {}
        for name, value in values.items():
            arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
            if not np.all(np.isfinite(arr)):
                raise NonFiniteLossError(
                    f"non-finite loss {name!r} in phase {self.players.phase_name} at step "
                    f"{int(self.players.phase_step.numpy())} (model: {_model_of(name)}); "
                    "stopping without writing a checkpoint"
                )
            out[name] = arr.tolist() if arr.ndim else float(arr)
        return out

    def _global_step(self) -> int:
        phase = int(self.players.phase.numpy())
        done = sum(self._phase_length(name) for name in PHASES[:phase])
        return done + int(self.players.phase_step.numpy())

    def _log_scalars(self, prefix: str, values: dict) -> None:
        step = self._global_step()
        with self.writer.as_default(step=step):
            for name, value in values.items():
                if isinstance(value, list):
                    for i, v in enumerate(value):
                        tf.summary.scalar(f"{prefix}/{name}_{i}", v)
                else:
                    tf.summary.scalar(f"{prefix}/{name}", value)

    def _log_images(self) -> None:
        clips = self.validator.val.clips[:2]
        degraded = self.validator.degraded_clips(clips)
        pairs = np.concatenate([clips[:, 0], degraded[:, 0]], axis=2)  # raw | degraded
        with self.writer.as_default(step=self._global_step()):
            tf.summary.image("frames/raw_vs_degraded", pairs, max_outputs=2)

    # ---- phases ------------------------------------------------------------------------
    def _phase_length(self, name: str) -> int:
        t = self.cfg.trainer
        return {
            "identity": t.identity_steps,
            "pretrain_target": t.pretrain_target_steps,
            "pretrain_privacy": t.pretrain_privacy_steps,
            # An adaptive game's length is known once it has ended (adversary.extend_until_fall).
            "adversarial": self.results.get("adversarial_steps_played", t.adversarial_steps),
            "attack": t.attack_steps,
        }[name]

    def _one_step(self, name: str, step: int) -> dict:
        s = self.steps
        if name == "identity":
            return {"identity_l1": s.identity(self.streams.next_action())}
        if name == "pretrain_target":
            loss, acc = s.target(self.streams.next_action())
            return {"target_loss": loss, "target_acc": acc}
        if name in ("pretrain_privacy", "attack"):
            loss, acc = s.privacy(self.streams.next_privacy())
            return {"privacy_loss": loss, "privacy_acc": acc}
        return self._adversarial_step(step)

    # Phases whose every step is one update of one kind: run as multi-step loops.
    _LOOPED = {"pretrain_target": "target", "pretrain_privacy": "privacy", "attack": "privacy"}

    def _chunk(self, name: str, step: int, total: int) -> int:
        """Steps the next call runs: 1, or for a looped phase up to trainer.steps_per_loop,
        never past the next logging or checkpoint step (so checkpoints, and with them a
        resumed run's batches, fall where single steps put them)."""
        t = self.cfg.trainer
        if name not in self._LOOPED or t.steps_per_loop <= 1:
            return 1
        to_log = t.log_every - step % t.log_every
        to_ckpt = t.checkpoint_every - step % t.checkpoint_every
        return max(1, min(t.steps_per_loop, to_log, to_ckpt, total - step))

    def _loop_steps(self, name: str, step: int, n: int) -> dict:
        kind = self._LOOPED[name]
        iterator, which, pick = self.streams.loop_source("action" if kind == "target" else kind)
        (loss, acc), first_bad = self.steps.loop(kind, iterator, pick, n)
        self.streams.advance(which, n)
        if int(first_bad) >= 0:
            raise NonFiniteLossError(
                f"non-finite loss '{kind}_loss' in phase {name} at step "
                f"{step + int(first_bad)} (model: {_model_of(kind)}); stopping without writing "
                "a checkpoint"
            )
        return {f"{kind}_loss": loss, f"{kind}_acc": acc}

    def _adversarial_step(self, step: int) -> dict:
        self._notify("on_adversarial_step_begin", step)
        adv = self.cfg.adversary
        out = {}
        if adv.restart_every and step > 0 and step % adv.restart_every == 0:
            self.players.reinitialise_privacy(seed=self.cfg.trainer.seed * 7919 + step)
            for _ in range(adv.restart_steps):
                self.privacy(out)
        self.steps.game_strategy.step(self, step, out)
        return out

    # ---- strategies.GameActions: one update each, figures into `out` --------------------
    def privacy(self, out: dict) -> None:
        out["privacy_loss"], out["privacy_acc"] = self.steps.privacy(self.streams.next_privacy())

    def target(self, out: dict) -> None:
        out["target_loss"], out["target_acc"] = self.steps.target(self.streams.next_action())

    def degrader(self, out: dict) -> None:
        task, adv, anchor = self.steps.degrader(*self.streams.next_both())
        out["task_loss"], out["adv_loss"] = task, adv
        if self.players.anchor is not None:
            out["anchor_loss"] = anchor

    def target_until_threshold(self, out: dict, step: int) -> None:
        """f_T + f_d on L_T while validation action accuracy is below the threshold.

        The threshold is a fraction of the pretrained target's raw validation accuracy. The
        check (a validation pass) runs every `threshold_check_every` steps; in between, the
        last verdict stands. A resumed run re-checks at once; with checkpoint_every a multiple
        of the period (as in every named config) that is where an uninterrupted run checks too.
        """
        adv = self.cfg.adversary
        if step % max(1, adv.threshold_check_every) == 0 or self._below is None:
            level = adv.target_val_threshold * self.results["raw"]["action_top1"]
            self._below = self.validator.action_accuracy(limit=adv.threshold_val_videos) < level
        if not self._below:
            return
        for _ in range(adv.max_inner_steps):
            out["target_loss"], out["target_acc"] = self.steps.target_and_degrader(
                self.streams.next_action()
            )

    def _attack_seed(self) -> int:
        return self.cfg.trainer.seed * 7919 + 10**6

    def _enter_phase(self, name: str) -> None:
        if name == "attack" and self._phase_length("attack"):
            # Fresh attackers: nothing they learnt during the game carries over.
            self.players.reinitialise_privacy(seed=self._attack_seed())

    def _end_phase(self, name: str) -> None:
        v = self.validator
        if name == "pretrain_privacy":
            self.results["raw"] = v.figures(degrade=False)
            self.results["identity"] = v.figures(degrade=True)
            self.results["chance"] = v.chance(self.shapes.num_actions)
            if self.judges is not None:
                # The judges start from f_b as pretraining left them (judges.snapshot) and a
                # fresh target (or a raw-trained one, judge.target_from); their raw figures are
                # the same procedure on raw clips.
                seed = self.cfg.trainer.seed * 7919 + 3 * 10**6
                self.judges.snapshot(self.judge_train(), seed=seed)
                self.results["judge_raw"] = self._judge_raw()
        elif name == "adversarial":
            if self.judges is not None:
                self._keep_judged_checkpoint()
            self.results["adversarial"] = v.figures(degrade=True)
            self.results["adversarial_steps_played"] = int(self.players.phase_step.numpy())
        elif name == "attack":
            if self._phase_length("attack"):  # else no fresh attackers exist to validate
                self.results["degraded"] = v.figures(degrade=True)
            self.results["fidelity"] = v.fidelity()
        elif name == "pretrain_target":
            self.results["pretrain_target_val_top1"] = v.action_accuracy(degrade=True)
            self.players.freeze_anchor()
        self.results["bad_inputs"] = pipeline.bad_inputs()
        if self.chief:
            self._save_results()
            self._log_images()
            for key in ("raw", "adversarial", "degraded"):
                if key in self.results and name in ("pretrain_privacy", "adversarial", "attack"):
                    self._log_scalars(f"val_{key}", self.results[key])

    def _game_length_check(self, step: int, total: int) -> bool:
        """Whether the adaptive game length is judged at this step: at trainer.adversarial_steps
        and every trainer.checkpoint_every steps after it (a resumed run judges where an
        uninterrupted one did), and at the cap."""
        t = self.cfg.trainer
        if step < t.adversarial_steps:
            return False
        return step == total or (step - t.adversarial_steps) % t.checkpoint_every == 0

    def _game_can_stop(self, step: int) -> bool:
        """adversary.extend_until_fall: has the game's own worst attacker's validation cMAP
        fallen that fraction of the way from raw to chance? Each verdict is kept in the
        results (game_length_checks) and logged to TensorBoard."""
        worst = max(self.validator.privacy_cmaps(degrade=True))
        fall = privacy_fall(
            self.results["raw"]["privacy_cmap_worst"],
            worst,
            self.results["chance"]["privacy_cmap_worst"],
        )
        if not np.isfinite(fall):  # raw attackers at chance: nothing to wait for
            fall = 1.0
        stop = fall >= self.cfg.adversary.extend_until_fall
        checks = [c for c in self.results.get("game_length_checks", []) if c["step"] != step]
        checks.append({"step": step, "privacy_cmap_worst": worst, "fall": fall, "stop": stop})
        self.results["game_length_checks"] = checks
        log.info(
            "adversarial step %d: the game's own f_b read %.3f worst-case cMAP, %.0f%% of the "
            "way from raw to chance (stop at %.0f%%): %s",
            step,
            worst,
            100 * fall,
            100 * self.cfg.adversary.extend_until_fall,
            "the game ends" if stop else "playing on",
        )
        if self.chief:
            self._save_results()
            with self.writer.as_default(step=self._global_step()):
                tf.summary.scalar("game_length/own_privacy_cmap_worst", worst)
                tf.summary.scalar("game_length/privacy_fall_fraction", fall)
        return stop

    # ---- judges (judge.every) ------------------------------------------------------------
    def judge_train(self):
        """The judges' training arrays (decoded at the first judgement, then kept)."""
        if self._judge_train is None:
            with pipeline.clean_errors():
                self._judge_train = self.streams.judge_train()
        return self._judge_train

    def _judge_figures(self, degrade: bool, step: int) -> dict:
        seed = self.cfg.trainer.seed * 7919 + 2 * 10**6 + step
        fn = self.judges.degrader_fn() if degrade else None
        return self.judges.judge(self.judge_train(), self.validator.val, fn, seed=seed)

    def _judge_raw(self) -> dict:
        """Raw's judged figures, averaged over judge.raw_repeats judgements (seeds of judged
        steps 0, -1, -2, ...: the first is the single judgement of raw_repeats=1)."""
        repeats = range(self.cfg.judge.raw_repeats)
        runs = [self._judge_figures(degrade=False, step=-k) for k in repeats]
        return J.mean_figures(runs)

    def _game_models(self) -> dict:
        """The players a rewind restores: f_d, f_T and every f_b (their weights)."""
        models = {"degrader": self.players.degrader, "target": self.players.target}
        models.update({f"privacy_{i}": m for i, m in enumerate(self.players.privacy)})
        return models

    def _save_game(self, step: int) -> None:
        for name, model in self._game_models().items():
            model.save_weights(self._judged(step, name))

    def _rewind_game(self, step: int) -> None:
        """The players' weights as they were at judged step `step` (optimizers go on)."""
        for name, model in self._game_models().items():
            model.load_weights(self._judged(step, name))

    def _judged(self, step: int, name: str) -> str:
        return os.path.join(self.judges.dir, f"{name}_step{step}.weights.h5")

    def _judged_weights(self, step: int) -> str:
        return self._judged(step, "degrader")

    def _judge(self, step: int) -> bool:
        """Judges f_d at this adversarial step, records the verdict, steers the game; returns
        whether the game ends here (a qualifying checkpoint with little leakage)."""
        j = self.cfg.judge
        weight = float(self.players.action_weight.numpy())
        # The weight never relaxes below the one that last cost the action (times the boost).
        floor = self.results.get("judge_weight_floor", j.min_action_weight)
        self._save_game(step)
        figures = self._judge_figures(degrade=True, step=step)
        v = J.verdict(step, figures, self.results["judge_raw"], weight)
        verdicts = [x for x in self.results.get("judgements", []) if x["step"] < step]
        earlier_ok = [x for x in verdicts if J.qualifies(x, j) and not x.get("rewound")]
        stop = False
        if J.qualifies(v, j):
            stop = step >= self.cfg.trainer.adversarial_steps and v["leakage"] <= j.stop_leakage
            if not stop and not v["leakage"] <= j.stop_leakage:
                # The action holds but f_d still leaks: lean the game towards hiding.
                weight = max(floor, j.min_action_weight, weight / j.action_boost)
        else:
            weight = min(j.max_action_weight, weight * j.action_boost)
            self.results["judge_weight_floor"] = weight
            if j.rewind and earlier_ok and v["action_of_raw"] < j.action_bar - j.rewind_margin:
                # Replay from the last judged game that kept the action, with more weight on it.
                back = earlier_ok[-1]["step"]
                self._rewind_game(back)
                v["rewound_to"] = back
        self.players.action_weight.assign(weight)
        v["next_action_weight"] = weight
        verdicts.append(v)
        self.results["judgements"] = verdicts
        log.info(
            "judges at adversarial step %d: validation action %.1f%% of raw, leakage %.2f%s; "
            "action weight %.2f%s",
            step,
            100 * v["action_of_raw"],
            v["leakage"],
            f", back to step {v['rewound_to']}" if "rewound_to" in v else "",
            weight,
            ": the game ends" if stop else "",
        )
        if self.chief:
            self._save_results()
            with self.writer.as_default(step=self._global_step()):
                tf.summary.scalar("judges/action_of_raw", v["action_of_raw"])
                tf.summary.scalar("judges/leakage", v["leakage"])
                tf.summary.scalar("judges/action_weight", weight)
        return stop

    def _keep_judged_checkpoint(self) -> None:
        """f_d becomes the judged checkpoint judges.pick keeps; the choice and whether it meets
        the bar go to the results (the summary's judges line, or its NOT MET line)."""
        j = self.cfg.judge
        verdicts = self.results.get("judgements", [])
        kept, why = J.pick(verdicts, j)
        if kept is None:
            self.results["judge"] = {"met": False, "failed": ["action", "privacy"], "why": why}
            return
        self.players.degrader.load_weights(self._judged_weights(kept["step"]))
        self.players.degrader.save_weights(os.path.join(self.judges.dir, J.BEST_DEGRADER))
        self.results["judge"] = {
            "kept_step": kept["step"],
            "why": why,
            "met": J.meets_bar(kept, j),
            "failed": J.failed_sides(kept, j),
            "verdict": kept,
            "action_bar": j.action_bar,
            "leakage_bar": j.leakage_bar,
            "target": self.judges.describe_target(),
        }

    def _starts_as_identity(self) -> bool:
        """f_d already within trainer.identity_tolerance (mean |f_d(x) - x|) of the identity."""
        clips = self.validator.val.clips[: self.cfg.data.batch_size]
        distance = float(np.mean(np.abs(self.validator.degraded_clips(clips) - clips)))
        self.results["identity_start_l1"] = distance
        return distance < self.cfg.trainer.identity_tolerance

    def run_phase(self, name: str) -> None:
        total = self._phase_length(name)
        start = int(self.players.phase_step.numpy())
        if name == "identity" and start == 0 and total and self._starts_as_identity():
            log.info(
                "identity phase skipped: f_d starts %.4f from the identity (tolerance %s)",
                self.results["identity_start_l1"],
                self.cfg.trainer.identity_tolerance,
            )
            self.results["identity_skipped"] = True
            total = 0
        t = self.cfg.trainer
        adaptive = name == "adversarial" and self.cfg.adversary.extend_until_fall > 0
        judged = name == "adversarial" and self.judges is not None
        bar = progress_bar(
            max(total, start),
            f"{name:>16}",
            enabled=t.progress and self.chief,
            initial=start,
            leave=True,
            mininterval=0.1,
        )
        if adaptive or judged:
            total = max(t.adversarial_max_steps, t.adversarial_steps)
            bar.total = total
        self._notify("on_phase_begin", name)
        last = {}
        step = start
        while step < total:
            n = self._chunk(name, step, total)
            last = self._check(
                self._loop_steps(name, step, n) if n > 1 else self._one_step(name, step)
            )
            step += n
            self.players.phase_step.assign(step)
            if name == "adversarial":  # one step per call (_chunk): its number is step - 1
                self._notify("on_adversarial_step_end", step - 1, last)
            bar.update(n)
            bar.set_postfix({k: _short(v) for k, v in last.items()}, refresh=False)
            if self.chief and step % t.log_every == 0:
                self._log_scalars(f"train_{name}", last)
            if adaptive and self._game_length_check(step, total):
                if self._game_can_stop(step):
                    break
                bar.total = min(total, step + t.checkpoint_every)
                bar.refresh()
            if judged and (step % self.cfg.judge.every == 0 or step == total):
                if self._judge(step):
                    break
                if step < total:
                    self._checkpoint()  # the verdict's steering (weight, rewind) resumes too
                    continue
            if step % t.checkpoint_every == 0 and step < total:
                self._checkpoint()
        bar.close()
        self._notify("on_phase_end", name)
        self._end_phase(name)
        # Advance atomically: the next phase starts from a checkpoint at its step 0.
        self.players.phase.assign_add(1)
        self.players.phase_step.assign(0)
        self.streams.reset_consumed()
        self._enter_phase(PHASES[int(self.players.phase.numpy())])
        self._checkpoint()

    def train(self) -> dict:
        self._notify("on_train_begin")
        start = time.time()
        if self.resumed_from and self.chief:
            print(
                f"Resuming from {self.resumed_from} (phase {self.players.phase_name}, "
                f"step {int(self.players.phase_step.numpy())})",
                flush=True,
            )
        while self.players.phase_name != "done":
            phase = int(self.players.phase.numpy())
            if PHASES[phase] == "attack":
                # The phase's shuffles read TF's global seed, which entering it (fresh privacy
                # models, seeded) left set; set it the same way in a run resumed inside it.
                self.players.seed_as_after_reinitialise(self._attack_seed())
            self.streams.start_phase(phase, tuple(int(c) for c in self.players.consumed.numpy()))
            with pipeline.clean_errors():  # too many bad videos: one clear error, not a TF trace
                self.run_phase(PHASES[phase])
        self.results["train_seconds_this_process"] = round(time.time() - start, 1)
        # Non-chief workers keep a scratch copy in their worker dir (lets tests compare them).
        artifacts.save_degrader(self.out_dir, self.players.degrader, self.cfg)
        summary = summarize(self.results, self.cfg)
        if self.chief:
            with open(os.path.join(self.run_dir, artifacts.SUMMARY_FILE), "w") as f:
                json.dump(summary, f, indent=2)
            self.writer.flush()
        self._notify("on_train_end", summary)
        return summary


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def _one_line(error: Exception) -> str:
    """A TF error's first line (its message goes on with the op's trace-back)."""
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    return f"{type(error).__name__}: {(text.strip().splitlines() or [''])[0]}"


def _model_of(loss_name: str) -> str:
    if loss_name.startswith(("privacy", "adv")):
        return "privacy models"
    if loss_name.startswith("target") or loss_name.startswith("task"):
        return "target"
    return "degrader"


def _short(value):
    if isinstance(value, list):
        return "/".join(f"{v:.3f}" for v in value)
    return f"{value:.3f}"
