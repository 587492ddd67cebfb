"""The judges (tfprivacy/train/judges.py): the checkpoint the trainer keeps, how it steers the
game, the NOT MET verdict, resuming; and the split discipline (no training code reads a test
video)."""

import contextlib
import io
import json
import os
import shutil
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from cli_util import call_main

from benchmarks import judge_calibration
from configs import get_config
from tfprivacy import artifacts
from tfprivacy import config as C
from tfprivacy.data import video_io
from tfprivacy.data.sources import build_sources, final_test_records
from tfprivacy.train import judges as J
from tfprivacy.train.loop import Trainer
from tfprivacy.train.summary import format_summary

RAW = {
    "action_top1": 0.8,
    "privacy_cmap_per_model": [0.9],
    "privacy_cmap_worst": 0.9,
    "chance_cmap": 0.5,
}


def tiny(run_dir, *overrides):
    return get_config(
        "benchmark_tiny",
        [
            f"trainer.run_dir={run_dir}",
            "judge.every=2",
            "trainer.adversarial_max_steps=8",
            "judge.target_steps=2",
            "judge.target_pretrain_steps=2",
            "judge.privacy_steps=2",
            *overrides,
        ],
    )


def build_ruler_target(cfg, shapes):
    from tfprivacy.models import build_target

    ev = cfg.eval
    return build_target(ev.target, shapes.num_actions, shapes.clip, ev.target_width)


def figures(action_of_raw, leakage):
    cmap = RAW["chance_cmap"] + leakage * (RAW["privacy_cmap_worst"] - RAW["chance_cmap"])
    return {
        "action_top1": action_of_raw * RAW["action_top1"],
        "privacy_cmap_per_model": [cmap],
        "privacy_cmap_worst": cmap,
        "chance_cmap": RAW["chance_cmap"],
    }


def verdict(step, action_of_raw, leakage):
    return J.verdict(step, figures(action_of_raw, leakage), RAW, 1.0)


class PickTest(tf.test.TestCase):
    def test_least_leakage_among_those_that_keep_the_action(self):
        cfg = C.JudgeConfig()
        verdicts = [verdict(1, 0.99, 0.6), verdict(2, 0.96, 0.2), verdict(3, 0.90, 0.01)]
        kept, why = J.pick(verdicts, cfg)
        self.assertEqual(kept["step"], 2)
        self.assertIn("least validation leakage among the 2 of 3", why)
        self.assertTrue(J.meets_bar(kept, cfg))
        self.assertEqual(J.failed_sides(verdicts[0], cfg), ["privacy"])
        self.assertEqual(J.failed_sides(verdicts[2], cfg), ["action"])

    def test_none_keeps_the_action_the_nearest_is_kept_and_fails_on_action(self):
        cfg = C.JudgeConfig()
        kept, why = J.pick([verdict(1, 0.80, 0.1), verdict(2, 0.93, 0.3)], cfg)
        self.assertEqual(kept["step"], 2)
        self.assertIn("keeps the most", why)
        self.assertEqual(J.failed_sides(kept, cfg), ["action"])
        self.assertEqual(J.pick([], cfg), (None, "no checkpoint was judged"))

    def test_leakage_is_the_rulers_ratio(self):
        self.assertAlmostEqual(J.leakage(0.7, 0.9, 0.5), 0.5)
        self.assertTrue(np.isnan(J.leakage(0.7, 0.5, 0.5)))  # raw at chance: no ratio

    def test_config_rules(self):
        with self.assertRaisesRegex(C.ConfigError, "judge.every.*extend_until_fall=0"):
            get_config("benchmark", ["adversary.extend_until_fall=0.5"])
        with self.assertRaisesRegex(C.ConfigError, "judge.stop_leakage"):
            get_config("benchmark", ["judge.stop_leakage=0.6"])
        with self.assertRaisesRegex(C.ConfigError, "eval.test_set"):
            get_config("benchmark_cross", ["eval.test_set=final"])


class JudgedGameTest(tf.test.TestCase):
    def _scripted(self, run_dir, readings, stop_after_degrader_calls=None, *overrides):
        """A tiny judged game (4 steps, cap 8, judged every 2) whose judges read
        `readings[step]` = (action as a fraction of raw, leakage)."""
        trainer = Trainer(tiny(run_dir, *overrides))

        def scripted(degrade, step):
            return figures(*readings[step]) if degrade else dict(RAW)

        trainer._judge_figures = scripted
        calls = []
        degrader = trainer.degrader

        def counted(out):
            if stop_after_degrader_calls is not None and len(calls) == stop_after_degrader_calls:
                raise KeyboardInterrupt("killed")
            calls.append(1)
            degrader(out)

        trainer.degrader = counted
        return trainer, calls

    def _weights(self, trainer, step):
        model = artifacts.load_degrader(trainer.run_dir)[0]
        model.load_weights(trainer._judged_weights(step))
        return model.get_weights()

    def test_steers_rewinds_keeps_the_best_and_says_met(self):
        run_dir = os.path.join(self.get_temp_dir(), "judged")
        readings = {2: (0.90, 0.3), 4: (0.99, 0.4), 6: (0.90, 0.1), 8: (0.96, 0.15)}
        trainer, calls = self._scripted(run_dir, readings)
        # The tiny run's target is at chance on raw clips (a health problem that would turn
        # any verdict into NOT MET): judged as healthy here, the verdict is the judges'.
        with mock.patch("tfprivacy.train.summary.run_problems", return_value=[]):
            summary = trainer.train()
        self.assertLen(calls, 8)
        got = summary["judgements"]
        self.assertEqual([v["step"] for v in got], [2, 4, 6, 8])
        # Below the action bar: the weight rises; above it while f_d leaks: back down.
        # (Relaxing stops at the weight that last lost the action, 1.5.)
        self.assertEqual([v["action_weight"] for v in got], [1.0, 1.5, 1.5, 2.25])
        self.assertNotIn("rewound_to", got[0])  # nothing qualified before step 2
        self.assertEqual(got[2]["rewound_to"], 4)
        # A rewind restores the whole game as judged: f_d, f_T and every f_b were saved.
        for name in ("target", "privacy_0"):
            self.assertTrue(os.path.exists(trainer._judged(4, name)), name)
        self.assertEqual(summary["judge_weight_floor"], 2.25)
        judge = summary["judge"]
        self.assertEqual(judge["kept_step"], 8)
        self.assertTrue(judge["met"])
        self.assertTrue(summary["bar_met"])
        # The shipped f_d is the kept checkpoint's.
        kept = self._weights(trainer, 8)
        shipped = artifacts.load_degrader(run_dir)[0].get_weights()
        for a, b in zip(kept, shipped, strict=True):
            self.assertAllEqual(a, b)
        text = format_summary(summary)
        self.assertIn(
            "judges (a raw-trained copy of the ruler's target fine-tuned on f_d's output, 2 steps;",
            text,
        )
        self.assertIn("kept f_d of adversarial step 8", text)
        self.assertIn("MET on validation", text)
        self.assertNotIn("NOT MET", text)
        with open(os.path.join(run_dir, artifacts.SUMMARY_FILE)) as f:
            self.assertTrue(json.load(f)["bar_met"])

    def test_a_dip_within_the_rewind_margin_raises_the_weight_without_rewinding(self):
        run_dir = os.path.join(self.get_temp_dir(), "margin")
        readings = {2: (0.99, 0.6), 4: (0.93, 0.2), 6: (0.80, 0.1), 8: (0.96, 0.15)}
        trainer, _ = self._scripted(run_dir, readings, None, "judge.rewind_margin=0.05")
        summary = trainer.train()
        got = summary["judgements"]
        self.assertNotIn("rewound_to", got[1])  # 93%: within 5 points of the bar, kept going
        self.assertEqual(got[1]["next_action_weight"], got[1]["action_weight"] * 1.5)
        self.assertEqual(got[2]["rewound_to"], 2)  # 80%: back to the last qualifying step
        self.assertEqual(summary["judge"]["kept_step"], 8)

    def test_raw_reference_averaged_over_repeats(self):
        run_dir = os.path.join(self.get_temp_dir(), "raw_repeats")
        trainer = Trainer(tiny(run_dir, "judge.raw_repeats=3"))
        raws = {0: 0.76, -1: 0.84, -2: 0.83}
        seen = []

        def scripted(degrade, step):
            if degrade:
                return figures(0.99, 0.1)
            seen.append(step)
            return {**RAW, "action_top1": raws[step], "privacy_cmap_worst": 0.9 + step / 100}

        trainer._judge_figures = scripted
        summary = trainer.train()
        self.assertEqual(seen, [0, -1, -2])  # three seeds; the first is raw_repeats=1's
        raw = summary["judge_raw"]
        self.assertAlmostEqual(raw["action_top1"], 0.81)
        self.assertAlmostEqual(raw["privacy_cmap_worst"], 0.89)
        self.assertEqual([r["action_top1"] for r in raw["repeats"]], [0.76, 0.84, 0.83])
        got = summary["judgements"][0]
        self.assertAlmostEqual(got["action_of_raw"], 0.99 * RAW["action_top1"] / 0.81)
        # One repeat: the judgement itself, unchanged.
        self.assertIs(J.mean_figures([RAW]), RAW)

    def test_ends_early_once_a_checkpoint_qualifies_with_little_leakage(self):
        run_dir = os.path.join(self.get_temp_dir(), "early")
        # Step 2 is below trainer.adversarial_steps (4): the game does not end there.
        trainer, calls = self._scripted(run_dir, {2: (0.99, 0.1), 4: (0.99, 0.1)})
        summary = trainer.train()
        self.assertLen(calls, 4)
        self.assertEqual(summary["adversarial_steps_played"], 4)
        self.assertEqual(summary["judge"]["kept_step"], 2)  # ties: the earlier step

    def test_a_draw_that_fails_says_not_met_naming_the_side(self):
        run_dir = os.path.join(self.get_temp_dir(), "not_met")
        readings = {s: (0.5, 0.1) for s in (2, 4, 6, 8)}
        trainer, _ = self._scripted(run_dir, readings)
        summary = trainer.train()
        self.assertFalse(summary["bar_met"])
        self.assertEqual(summary["judge"]["failed"], ["action"])
        text = format_summary(summary)
        self.assertIn("NOT MET on validation", text)
        self.assertIn("the action side failed", text)
        self.assertNotIn(": yes", text)  # no success line anywhere
        self.assertEqual(max(v["action_weight"] for v in summary["judgements"]), 1.5**3)

        run_dir = os.path.join(self.get_temp_dir(), "leaky")
        trainer, _ = self._scripted(run_dir, {s: (0.99, 0.8) for s in (2, 4, 6, 8)})
        summary = trainer.train()
        self.assertEqual(summary["judge"]["failed"], ["privacy"])
        self.assertIn("the privacy side failed", format_summary(summary))

    def test_resumed_inside_the_game_keeps_verdicts_and_steering(self):
        run_dir = os.path.join(self.get_temp_dir(), "resume")
        readings = {2: (0.90, 0.3), 4: (0.90, 0.4), 6: (0.99, 0.3), 8: (0.96, 0.35)}
        trainer, _ = self._scripted(run_dir, readings, stop_after_degrader_calls=5)
        with self.assertRaisesRegex(KeyboardInterrupt, "killed"):
            trainer.train()
        again, calls = self._scripted(run_dir, readings)
        self.assertEqual(int(again.players.phase_step.numpy()), 4)
        self.assertAllClose(again.players.action_weight.numpy(), 1.5**2)
        summary = again.train()
        self.assertLen(calls, 4)  # steps 5 to 8
        self.assertEqual([v["step"] for v in summary["judgements"]], [2, 4, 6, 8])
        self.assertEqual(summary["judge"]["kept_step"], 6)

    def test_real_judges_train_the_target_from_scratch_on_the_judged_frames(self):
        run_dir = os.path.join(self.get_temp_dir(), "scratch")
        trainer = Trainer(
            tiny(run_dir, "data.synthetic.extra_val_videos=16", "judge.target_from=scratch")
        )
        summary = trainer.train()
        judges, train, val = trainer.judges, trainer.judge_train(), trainer.validator.val
        self.assertFalse(os.path.exists(judges._path("target_init")))  # no raw-trained copy
        self.assertTrue(judges.has_snapshot())
        self.assertLen(summary["judge_raw"]["repeats"], trainer.cfg.judge.raw_repeats)
        first = judges.judge(train, val, judges.degrader_fn(), seed=3)
        # Trained from the fresh target the seed draws (the ruler's initialisation) ...
        keras.utils.set_random_seed(3)
        fresh = judges._build_target()
        moved = sum(
            float(np.abs(a - b).sum())
            for a, b in zip(fresh.get_weights(), judges.target.get_weights(), strict=True)
        )
        self.assertGreater(moved, 0.0)
        # ... by the ruler's schedule for target_pretrain_steps, not the fine-tuning one ...
        self.assertEqual(
            int(judges.pretrain_opt.iterations.numpy()), trainer.cfg.judge.target_pretrain_steps
        )
        # ... and again from scratch at every judgement: the same seed, the same figures; the
        # previous judgement's weights do not carry over.
        judges.judge(train, val, None, seed=5)
        self.assertEqual(first, judges.judge(train, val, judges.degrader_fn(), seed=3))
        clips = judges._degraded(train.clips, judges.degrader_fn())
        self.assertAllClose(judges.mean.numpy(), J.channel_stats(clips)[0])

    def test_real_judges_fine_tune_from_the_snapshot_and_score_the_validation_set(self):
        run_dir = os.path.join(self.get_temp_dir(), "real")
        trainer = Trainer(tiny(run_dir, "data.synthetic.extra_val_videos=16"))
        self.assertEqual(trainer.cfg.judge.target_from, "raw")  # the default
        summary = trainer.train()
        raw = summary["judge_raw"]
        self.assertBetween(raw["privacy_cmap_worst"], 0.0, 1.0)
        for v in summary["judgements"]:
            self.assertTrue(np.isfinite(v["leakage"]))
        judges, train = trainer.judges, trainer.judge_train()
        first = judges.judge(train, trainer.validator.val, judges.degrader_fn(), seed=3)
        # The judges learnt (a learning rate of 0 would leave them at the snapshot) ...
        init = keras.models.clone_model(judges.target)
        init.load_weights(judges._path("target_init"))
        moved = sum(
            float(np.abs(a - b).sum())
            for a, b in zip(init.get_weights(), judges.target.get_weights(), strict=True)
        )
        self.assertGreater(moved, 0.0)
        # ... and every judgement starts again from the snapshot: the same seed, the same figures.
        again = judges.judge(train, trainer.validator.val, judges.degrader_fn(), seed=3)
        self.assertEqual(first, again)
        # The judge target is of the ruler's kind (eval.target), standardised with the judged
        # frames' statistics, not a copy of the game's f_T.
        cfg = trainer.cfg
        self.assertNotEqual(cfg.eval.target, cfg.model.target)
        ruler = build_ruler_target(cfg, trainer.players.shapes)
        self.assertEqual(judges.target.count_params(), ruler.count_params())
        clips = judges._degraded(train.clips, judges.degrader_fn())
        self.assertAllClose(judges.mean.numpy(), J.channel_stats(clips)[0])

    def test_calibration_tool_judges_over_seeds_with_either_target(self):
        run_dir = os.path.join(self.get_temp_dir(), "calibration")
        Trainer(tiny(run_dir, "data.synthetic.extra_val_videos=16")).train()
        other = os.path.join(self.get_temp_dir(), "other.weights.h5")
        shutil.copy(os.path.join(run_dir, artifacts.DEGRADER_WEIGHTS), other)
        before = sorted(os.listdir(os.path.join(run_dir, J.JUDGE_DIR)))
        for target_from, how in (("raw", "fine-tuned for 2 steps"), ("scratch", "from scratch")):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = call_main(
                    judge_calibration,
                    f"--run={run_dir}",
                    "--filters=grey",
                    "--seeds=0,1",
                    f"--degraders={other}",
                    f"--target_from={target_from}",
                    "--action_only",
                )
            self.assertEqual(rc, 0)
            text = out.getvalue()
            self.assertIn(how, text)
            rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
            names = [r.split(" | ")[0][2:] for r in rows]
            self.assertEqual(names, ["raw", "grey", "learned f_d (kept)", other])
            # raw is 100% of itself (nan if the tiny judges never read it: no ratio to 0); two
            # seeds give the others a spread; no attacker ran.
            raw_row = rows[0].split(" | ")
            self.assertEqual(raw_row[2:4], ["100.0" if float(raw_row[1]) > 0 else "nan", "-"])
            self.assertNotEqual(rows[1].split(" | ")[3], "-")
            self.assertTrue(rows[1].endswith("| nan | nan |"))
            # Every f_d row holds a judged top-1 (a percentage) and its spread over the seeds.
            for row in rows[2:]:
                cells = row.split(" | ")
                self.assertBetween(float(cells[1]), 0.0, 100.0)
                self.assertNotEqual(cells[3], "-")
        # The run's own judges folder is left as it was (the raw-trained targets went to a
        # temporary folder).
        self.assertEqual(sorted(os.listdir(os.path.join(run_dir, J.JUDGE_DIR))), before)

    def test_the_game_kind_starts_from_f_T(self):
        run_dir = os.path.join(self.get_temp_dir(), "game")
        trainer = Trainer(
            tiny(
                run_dir,
                "judge.target=game",
                "trainer.adversarial_steps=2",
                "trainer.adversarial_max_steps=2",
            )
        )
        trainer.train()
        judges = trainer.judges
        self.assertEqual(judges.target.count_params(), trainer.players.target.count_params())
        self.assertAllClose(judges.std.numpy(), np.ones(3))  # f_T reads f_d's [0, 1] frames


class SplitDisciplineTest(tf.test.TestCase):
    def test_training_reads_no_test_video(self):
        """Every video the trainer decodes (game, judges, validation) is a training-side video:
        none of the test split the ruler reports on, none of the final test set."""
        run_dir = os.path.join(self.get_temp_dir(), "discipline")
        cfg = tiny(run_dir, "data.synthetic.extra_val_videos=16")
        sources = build_sources(cfg.data)
        test = {r.path for r in sources.action.test}
        final = {r.path for r in final_test_records(cfg.data)}
        self.assertTrue(test and final)
        self.assertLen(sources.validation, 16)
        read = []
        original = video_io.read_video

        def recording(path, *args, **kwargs):
            read.append(path)
            return original(path, *args, **kwargs)

        video_io.read_video = recording
        try:
            trainer = Trainer(cfg)
            trainer.train()
        finally:
            video_io.read_video = original
        self.assertNotEmpty(read)
        self.assertEmpty(set(read) & test)
        self.assertEmpty(set(read) & final)
        validation = {r.path for r in sources.validation}
        train = {r.path for r in trainer.streams.action_train}
        # Everything read is training side: the game's training videos or the validation set
        # (the tiny config validates on its first batch only).
        self.assertContainsSubset(set(read), train | validation)
        self.assertNotEmpty(set(read) & validation)
        self.assertEmpty(validation & train)

    def test_validation_videos_leave_the_rulers_splits_unchanged(self):
        base = get_config("benchmark_tiny")
        more = get_config("benchmark_tiny", ["data.synthetic.extra_val_videos=16"])
        a, b = build_sources(base.data), build_sources(more.data)
        names = lambda records: [os.path.basename(r.path) for r in records]  # noqa: E731
        self.assertEqual(names(a.action.train), names(b.action.train))
        self.assertEqual(names(a.action.test), names(b.action.test))
        self.assertIsNone(a.validation)
        self.assertLen(b.validation, 16)
        # The final test set is another draw of the generator: no video in common.
        frames = video_io.read_video(final_test_records(more.data)[0].path)
        for r in b.action.test[:8]:
            self.assertNotAllEqual(video_io.read_video(r.path), frames)
