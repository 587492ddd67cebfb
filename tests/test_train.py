"""Training loop tests: every strategy with M=2 and restarting, cross-dataset mode, NaN guard."""

import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs import get_config
from tfprivacy import artifacts
from tfprivacy import config as C
from tfprivacy.train.loop import NonFiniteLossError, Trainer
from tfprivacy.train.summary import format_summary


def tiny(run_dir, *overrides):
    return get_config("benchmark_tiny", [f"trainer.run_dir={run_dir}", *overrides])


class TrainTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters("grl", "kbeam", "entropy")
    def test_strategy_with_ensemble_and_restarting(self, strategy):
        run_dir = os.path.join(self.get_temp_dir(), strategy)
        cfg = tiny(
            run_dir,
            f"adversary.strategy={strategy}",
            "adversary.num_models=2",
            "adversary.restart_every=2",
            "adversary.restart_steps=1",
        )
        trainer = Trainer(cfg)
        summary = trainer.train()
        self.assertEqual(len(trainer.players.privacy), 2)
        for key in ("raw", "identity", "adversarial", "degraded", "chance"):
            self.assertIn(key, summary)
            self.assertTrue(np.isfinite(summary[key]["action_top1"]))
            self.assertTrue(np.isfinite(summary[key]["privacy_cmap_worst"]))
        self.assertLen(summary["degraded"]["privacy_cmap_per_model"], 2)
        self.assertIn("action drop", format_summary(summary))
        # The artefacts other tools read back.
        model, loaded_cfg = artifacts.load_degrader(run_dir)
        self.assertEqual(loaded_cfg.adversary.strategy, strategy)
        for a, b in zip(model.get_weights(), trainer.players.degrader.get_weights(), strict=True):
            self.assertAllClose(a, b)
        with open(os.path.join(run_dir, artifacts.SUMMARY_FILE)) as f:
            self.assertEqual(json.load(f)["strategy"], strategy)
        self.assertEqual(trainer.players.phase_name, "done")

    def test_identity_phase_skipped_only_when_f_d_starts_as_the_identity(self):
        short = [f"trainer.{p}_steps=0" for p in ("pretrain_target", "pretrain_privacy")]
        short += ["trainer.adversarial_steps=0", "trainer.attack_steps=0"]
        for tolerance, runs in ((0.01, 0), (0.0, 3)):  # the full f_d starts exactly as identity
            run_dir = os.path.join(self.get_temp_dir(), f"identity_{tolerance}")
            trainer = Trainer(tiny(run_dir, *short, f"trainer.identity_tolerance={tolerance}"))
            calls = []
            step = trainer.steps.identity
            trainer.steps.identity = lambda batch, step=step, calls=calls: (
                calls.append(1) or step(batch)
            )
            summary = trainer.train()
            self.assertLen(calls, runs)
            self.assertEqual(summary.get("identity_skipped", False), runs == 0)
            self.assertEqual(summary["identity_start_l1"], 0.0)
            label = "no identity phase" if runs == 0 else "after identity pretraining"
            self.assertIn(label, format_summary(summary))

    def test_no_attack_steps_neither_reinitialises_nor_validates_attackers(self):
        run_dir = os.path.join(self.get_temp_dir(), "no_attack")
        trainer = Trainer(tiny(run_dir, "trainer.attack_steps=0"))
        calls = []
        trainer.players.reinitialise_privacy = lambda **kw: calls.append(kw)
        trainer.train()
        self.assertEqual(calls, [])  # the game's attackers are kept, not thrown away
        with open(os.path.join(run_dir, "phase_results.json")) as f:
            results = json.load(f)
        self.assertNotIn("degraded", results)  # no untrained attackers' figures written
        self.assertIn("fidelity", results)
        self.assertIn("adversarial", results)

    def test_utility_anchor_is_f_t_frozen_after_pretraining_and_checkpointed(self):
        run_dir = os.path.join(self.get_temp_dir(), "anchor")
        # grl trains f_T at every adversarial step, so the game moves it past the anchor.
        anchored = (
            "adversary.anchor_weight=1.0",
            "adversary.strategy=grl",
            "trainer.attack_steps=0",
        )
        trainer = Trainer(tiny(run_dir, *anchored))
        self.assertFalse(trainer.players.anchor.trainable)
        snapshot = {}
        end_phase = trainer._end_phase

        def spy(name):
            if name == "pretrain_target":
                snapshot["target"] = trainer.players.target.get_weights()
            end_phase(name)

        trainer._end_phase = spy
        trainer.train()
        anchor = trainer.players.anchor.get_weights()
        for a, b in zip(anchor, snapshot["target"], strict=True):
            self.assertAllEqual(a, b)
        # The game went on training f_T; the anchor stayed where pretraining left it.
        moved = trainer.players.target.get_weights()
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(anchor, moved, strict=True)))
        # A trainer on the same run dir restores the anchor from the checkpoint.
        again = Trainer(tiny(run_dir, *anchored))
        for a, b in zip(again.players.anchor.get_weights(), anchor, strict=True):
            self.assertAllEqual(a, b)
        # Without the anchor the same seed ends with another f_d (that the term itself moves
        # f_d is tests/test_steps.py::test_anchor_term_reaches_the_degrader).
        plain = Trainer(tiny(os.path.join(self.get_temp_dir(), "plain"), *anchored[1:]))
        self.assertIsNone(plain.players.anchor)
        plain.train()
        self.assertFalse(
            all(
                np.array_equal(a, b)
                for a, b in zip(
                    plain.players.degrader.get_weights(),
                    trainer.players.degrader.get_weights(),
                    strict=True,
                )
            )
        )

    def _scripted_game(self, run_dir, readings, stop_after_degrader_calls=None):
        """A tiny adaptive game (4 steps, cap 12, judged every 2) whose length checks see
        `readings` (the own f_b's worst cMAP: "raw" or "chance") in turn."""
        adaptive = ("adversary.extend_until_fall=0.5", "trainer.adversarial_max_steps=12")
        trainer = Trainer(tiny(run_dir, *adaptive))
        cmaps = trainer.validator.privacy_cmaps
        queue = list(readings)

        def scripted(degrade=True):
            if trainer.players.phase_name == "adversarial" and queue:
                which = queue.pop(0)
                return [trainer.results[which]["privacy_cmap_worst"]]
            return cmaps(degrade)

        trainer.validator.privacy_cmaps = scripted
        calls = []
        degrader = trainer.degrader

        def counted(out):
            if stop_after_degrader_calls is not None and len(calls) == stop_after_degrader_calls:
                raise KeyboardInterrupt("killed")
            calls.append(1)
            degrader(out)

        trainer.degrader = counted
        return trainer, calls

    def test_adaptive_game_length_plays_on_until_its_own_attackers_fall(self):
        run_dir = os.path.join(self.get_temp_dir(), "adaptive")
        trainer, calls = self._scripted_game(run_dir, ["raw", "raw", "chance"])
        summary = trainer.train()
        self.assertLen(calls, 8)  # 4 steps, then on to the check at 8
        self.assertEqual(summary["adversarial_steps_played"], 8)
        checks = summary["game_length_checks"]
        self.assertEqual([c["step"] for c in checks], [4, 6, 8])
        self.assertEqual([c["stop"] for c in checks], [False, False, True])
        self.assertAlmostEqual(checks[0]["fall"], 0.0)
        self.assertAlmostEqual(checks[2]["fall"], 1.0)
        text = format_summary(summary)
        self.assertIn("adaptive game length: 8 adversarial steps (cap 12)", text)
        self.assertIn("its own f_b had fallen 100% of the way to chance (ends at >= 50%)", text)

        # Never falling: the game plays to the cap, and says so.
        trainer, calls = self._scripted_game(os.path.join(self.get_temp_dir(), "cap"), ["raw"] * 5)
        summary = trainer.train()
        self.assertLen(calls, 12)
        self.assertEqual([c["step"] for c in summary["game_length_checks"]], [4, 6, 8, 10, 12])
        self.assertIn("at the cap, its own f_b had only fallen 0%", format_summary(summary))

        # A game that falls at once ends at adversarial_steps, as a fixed-length one does.
        trainer, calls = self._scripted_game(os.path.join(self.get_temp_dir(), "now"), ["chance"])
        self.assertEqual(trainer.train()["adversarial_steps_played"], 4)
        self.assertLen(calls, 4)

    def test_adaptive_game_resumed_inside_its_extension_keeps_its_verdicts(self):
        run_dir = os.path.join(self.get_temp_dir(), "adaptive_resume")
        trainer, calls = self._scripted_game(run_dir, ["raw", "raw"], stop_after_degrader_calls=7)
        with self.assertRaisesRegex(KeyboardInterrupt, "killed"):
            trainer.train()
        # Killed during step 8: the checkpoint of step 6 holds the game, after its verdict.
        again, calls = self._scripted_game(run_dir, ["chance"])
        self.assertEqual(int(again.players.phase_step.numpy()), 6)
        summary = again.train()
        self.assertLen(calls, 2)  # steps 7 and 8
        self.assertEqual([c["step"] for c in summary["game_length_checks"]], [4, 6, 8])
        self.assertEqual(summary["adversarial_steps_played"], 8)

    def test_cross_dataset_mode(self):
        run_dir = os.path.join(self.get_temp_dir(), "cross")
        cfg = tiny(run_dir, "data.dataset=benchmark_cross", "adversary.strategy=grl")
        trainer = Trainer(cfg)
        self.assertFalse(trainer.sources.joint)
        # Privacy models see still images as one-frame clips.
        self.assertEqual(trainer.shapes.privacy_input[0], 1)
        summary = trainer.train()
        self.assertTrue(np.isfinite(summary["degraded"]["privacy_cmap_worst"]))

    def test_non_finite_loss_stops_naming_phase_step_and_model(self):
        run_dir = os.path.join(self.get_temp_dir(), "nan_target")
        cfg = tiny(run_dir, "trainer.checkpoint_every=2")
        cfg.trainer.target_lr = float("nan")  # past the config check: a loss that blows up
        with self.assertRaisesRegex(
            NonFiniteLossError,
            r"'target_loss' in phase pretrain_target at step 1 \(model: target\)",
        ):
            Trainer(cfg).train()
        # The last checkpoint is the one written when identity pretraining ended (finite).
        latest = tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt"))
        reader = tf.train.load_checkpoint(latest)
        self.assertEqual(reader.get_tensor("phase/.ATTRIBUTES/VARIABLE_VALUE"), 1)
        self.assertEqual(reader.get_tensor("phase_step/.ATTRIBUTES/VARIABLE_VALUE"), 0)

    def test_resuming_under_another_config_fails_clearly(self):
        run_dir = os.path.join(self.get_temp_dir(), "other_config")
        Trainer(tiny(run_dir)).train()
        with self.assertRaisesRegex(C.ConfigError, r"adversary.gamma: 1.0 -> 2.0"):
            Trainer(tiny(run_dir, "adversary.gamma=2.0"))

    def test_non_finite_weights_are_never_checkpointed(self):
        # The degrader's output clip hides NaN weights from its loss: the weight check at
        # checkpoint time still refuses to write them.
        run_dir = os.path.join(self.get_temp_dir(), "nan_degrader")
        # identity_tolerance 0: the identity phase runs although f_d starts as the identity.
        cfg = tiny(run_dir, "trainer.checkpoint_every=2", "trainer.identity_tolerance=0")
        cfg.trainer.degrader_lr = float("nan")  # past the config check: weights that blow up
        with self.assertRaisesRegex(NonFiniteLossError, r"phase identity.*non-finite.*degrader"):
            Trainer(cfg).train()
        self.assertIsNone(tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt")))
