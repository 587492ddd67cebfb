"""Honest verdicts: a run whose players never learnt or whose f_d collapsed is not a success."""

import types

import keras
import numpy as np
import tensorflow as tf

from configs.experiments import get_config
from tests.test_protocol import _cfg, _splits
from tfprivacy.eval import evaluate_lib, protocol
from tfprivacy.train.streams import Validation
from tfprivacy.train.summary import format_summary, run_problems, summarize
from tfprivacy.train.validation import Validator

CHANCE = {"action_top1": 0.125, "privacy_cmap_worst": 0.536}
HEALTHY_FIDELITY = {"psnr_db": 30.0, "output_std": 0.2, "input_std": 0.21}


def _results(raw_top1=0.9, raw_cmap=0.9, deg_top1=0.9, deg_cmap=0.55, fidelity=None):
    return {
        "raw": {"action_top1": raw_top1, "privacy_cmap_worst": raw_cmap},
        "degraded": {"action_top1": deg_top1, "privacy_cmap_worst": deg_cmap},
        "chance": CHANCE,
        "fidelity": fidelity or HEALTHY_FIDELITY,
    }


def _validator(degrader, clips):
    n = len(clips)
    val = Validation(clips, np.zeros(n, np.int32), clips, np.zeros((n, 5), np.float32))
    return Validator(types.SimpleNamespace(degrader=degrader), val, batch_size=4)


class RunHealthTest(tf.test.TestCase):
    def test_healthy_run_meets_its_criteria(self):
        s = summarize(_results(), get_config("benchmark_tiny"))
        self.assertEqual(s["problems"], [])
        self.assertTrue(all(s["criteria"].values()))
        self.assertNotIn("NOT A VALID RUN", format_summary(s))

    def test_collapsed_degrader_on_untrained_target_is_not_a_success(self):
        # What was seen on real-layout data: f_T at chance, f_d all black, and the old summary
        # said "action drop 0.0 (yes), privacy fell 99% of the way to chance (yes)".
        collapsed = {"psnr_db": 6.0, "output_std": 0.0, "input_std": 0.21}
        results = _results(raw_top1=0.13, deg_top1=0.13, deg_cmap=0.54, fidelity=collapsed)
        s = summarize(results, get_config("benchmark_tiny"))
        self.assertEqual(s["action_drop_points"], 0.0)
        self.assertGreater(s["privacy_fall_fraction"], 0.95)
        self.assertFalse(any(s["criteria"].values()))
        text = format_summary(s)
        self.assertIn("NOT A VALID RUN: the target is at chance", text)
        self.assertIn("NOT A VALID RUN: f_d's output is (nearly) constant", text)
        self.assertIn("PSNR 6.0 dB < 10 dB", text)

    def test_no_fresh_attacker_judges_nothing(self):
        # attack_steps 0: the attack phase's figures are those of untrained attackers (near
        # chance), which would "pass" the privacy criterion; they must not be shown or judged.
        cfg = get_config("benchmark_tiny")
        cfg.trainer.attack_steps = 0
        s = summarize(_results(deg_cmap=0.54), cfg)
        self.assertNotIn("degraded", s)
        self.assertNotIn("criteria", s)
        text = format_summary(s)
        self.assertNotIn("fresh f_b retrained", text)
        self.assertIn("no fresh f_b trained (trainer.attack_steps 0)", text)

    def test_each_rule(self):
        self.assertIn("privacy models are at chance", run_problems(_results(raw_cmap=0.55))[0])
        low = {"psnr_db": 8.0, "output_std": 0.2, "input_std": 0.21}
        self.assertIn("far from its input", run_problems(_results(fidelity=low))[0])
        self.assertEqual(run_problems({"raw": _results()["raw"]}), [])  # nothing to judge yet

    def test_fidelity_sees_a_constant_output(self):
        clips = np.random.default_rng(0).random((6, 2, 16, 16, 3)).astype(np.float32)
        frames = keras.Input((16, 16, 3))
        identity = keras.Model(frames, keras.layers.Identity()(frames))
        black = keras.Model(frames, keras.layers.Lambda(lambda x: x * 0.0)(frames))
        same = _validator(identity, clips).fidelity()
        self.assertGreater(same["psnr_db"], 100.0)
        self.assertAllClose(same["output_std"], same["input_std"])
        flat = _validator(black, clips).fidelity()
        self.assertEqual(flat["output_std"], 0.0)
        self.assertLess(flat["psnr_db"], 10.0)
        self.assertIn("has collapsed", run_problems(_results(fidelity=flat))[0])

    def test_evaluation_flags_a_collapsed_degrader_and_a_blind_ruler(self):
        cfg = _cfg(("plain",))
        black = protocol.evaluate_degrader(lambda x: x * 0.0, _splits(), cfg, 1, name="black")
        self.assertEqual(black["fidelity"]["output_std"], 0.0)
        raw = protocol.evaluate_degrader(lambda x: x, _splits(), cfg, 1, name="raw")
        self.assertGreater(raw["fidelity"]["psnr_db"], 100.0)
        chance = {"action_top1": 0.125, "cmap": 0.5}
        problems = evaluate_lib.evaluation_problems({"raw": raw, "learned": black}, chance)
        self.assertIn("has collapsed", " ".join(problems["learned"]))
        self.assertNotIn("raw", problems)
        # A ruler whose target and attackers learnt nothing on raw data judges nothing.
        blind = {**raw, "action_top1": {"mean": 0.13}, "worst_case": {"cmap": {"mean": 0.52}}}
        ruler = evaluate_lib.evaluation_problems({"raw": blind}, chance)["ruler"]
        self.assertEqual(len(ruler), 2)


if __name__ == "__main__":
    tf.test.main()
