"""benchmarks/quantized_eval.py: paired differences, verdicts and reuse of identical outputs."""

import dataclasses

import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks import quantized_eval as Q
from configs.experiments import get_config
from tfprivacy import runtime
from tfprivacy.eval import protocol


def _cfg():
    cfg = get_config("benchmark_tiny")
    cfg.eval = dataclasses.replace(
        cfg.eval,
        privacy_panel=("plain",),
        finetune_panel=(),
        target_width=4,
        privacy_width=4,
        batch_size=4,
        bootstrap=50,
    )
    return cfg


def _splits(n=8):
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (n, 4, 32, 32, 3), dtype=np.uint8)
    labels = (rng.random((n, 5)) < 0.5).astype(np.float32)
    labels[0] = 1
    actions = (np.arange(n) % 3).astype(np.int32)
    return protocol.EvalSplits(
        (clips, actions), (clips, actions), (clips, labels), (clips, labels), 3, shared=True
    )


class PairedDifferenceTest(tf.test.TestCase):
    def test_verdicts(self):
        ref = [70.0, 71.0, 70.0]
        self.assertEqual(Q.paired_difference([70.2, 71.1, 69.9], ref)["verdict"], "yes")
        self.assertEqual(Q.paired_difference([60.0, 61.0, 60.5], ref)["verdict"], "no")
        self.assertEqual(Q.combined_verdict("yes", "undecided"), "undecided")
        self.assertEqual(Q.combined_verdict("undecided", "no"), "no")
        # Mean inside the bar but the interval straddles it.
        d = Q.paired_difference([72.0, 68.0, 70.5], [70.0, 70.0, 70.0])
        self.assertEqual(d["verdict"], "undecided")
        self.assertAllClose(d["mean"], 0.1666667)
        self.assertLess(d["ci95"][0], -1.0)

    def test_one_seed_has_no_interval(self):
        d = Q.paired_difference([70.5], [70.0])
        self.assertIsNone(d["se"])
        self.assertEqual(d["verdict"], "yes")
        self.assertEqual(Q.paired_difference([68.0], [70.0])["verdict"], "no")

    def test_bad_lengths(self):
        with self.assertRaisesRegex(ValueError, "paired_difference"):
            Q.paired_difference([], [])


class EvaluateArtifactsTest(tf.test.TestCase):
    def test_identical_output_reuses_and_changed_output_retrains(self):
        calls = []

        def identity(frames):
            calls.append("identity")
            return frames

        def darker(frames):
            return frames * 0.5

        fns = {"float": (identity, None), "same": (identity, 10), "darker": (darker, 20)}
        logs = []
        out = Q.evaluate_artifacts(fns, _splits(), _cfg(), 1, "float", log=logs.append)
        self.assertEqual(out["same"]["changed"], 0.0)
        self.assertEqual(out["same"]["report"]["per_seed"], out["float"]["report"]["per_seed"])
        self.assertTrue(any("identical" in line for line in logs))
        self.assertGreater(out["darker"]["changed"], 0.4)
        rows = Q.summarize(out, "float", {"same": 99.0, "darker": 6.0})
        self.assertEqual([r["artifact"] for r in rows], ["float", "same", "darker"])
        self.assertEqual(rows[1]["d_top1"]["mean"], 0.0)
        # float's own models on an identical output: exactly float's figures.
        self.assertEqual(rows[1]["transfer_d_top1"]["mean"], 0.0)
        self.assertEqual(rows[1]["transfer_d_cmap"]["mean"], 0.0)
        self.assertIn("transfer_d_cmap", rows[2])
        self.assertNotIn("d_top1", rows[0])
        Q.print_table(rows, 1)  # formats every row kind without error
        path = Q.plot_differences(rows, self.get_temp_dir() + "/diff.png")
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class FlagsTest(tf.test.TestCase):
    def test_quants_are_checked_at_parse_time(self):
        runtime.parse_flags(Q.FLAGS, ["quantized_eval", "--run=r", "--quants=float16,int8"])
        self.assertEqual(Q.FLAGS.quants, ["float16", "int8"])
        with self.assertRaisesRegex(flags.Error, r"int4: .*<float32\|float16\|dynamic\|int8>"):
            runtime.parse_flags(Q.FLAGS, ["quantized_eval", "--run=r", "--quants=float32,int4"])


if __name__ == "__main__":
    tf.test.main()
