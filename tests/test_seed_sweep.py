"""benchmarks.seed_sweep: the main job over training seeds, scored on the final test set."""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

from benchmarks import seed_sweep as S
from tests.cli_util import call_main
from tests.test_tradeoff_points import _report


def _summary(met, action_of_raw, leakage, kept=300):
    verdict = {"step": kept, "action_of_raw": action_of_raw, "leakage": leakage}
    return {
        "bar_met": met,
        "adversarial_steps_played": kept + 100,
        "judge": {"kept_step": kept, "verdict": verdict, "met": met, "failed": []},
    }


class SeedSweepTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp()

    def _seed(self, seed, report, summary):
        run = S.run_dir(self.out, seed)
        os.makedirs(os.path.join(run, "final_test"))
        with open(os.path.join(run, "final_test", "report.json"), "w") as f:
            json.dump(report, f)
        with open(os.path.join(run, "summary.json"), "w") as f:
            json.dump(summary, f)

    def test_seeds_parse_ranges_and_lists(self):
        self.assertEqual(S.parse_seeds("100-103,7"), [100, 101, 102, 103, 7])
        self.assertEqual(S.parse_seeds("5"), [5])
        for bad in ("a", "3-1", "1,1", "-2", ""):
            with self.assertRaises(S.SweepError, msg=bad):
                S.parse_seeds(bad)

    def test_each_seed_is_the_main_job_on_the_final_test_set(self):
        cmd = S.command(101, self.out, "benchmark", ["judge.every=50"], "final")
        self.assertEqual(cmd[:3], [sys.executable, "-m", "trainers.adversarial"])
        self.assertIn("trainer.seed=101", cmd)
        self.assertIn("eval.test_set=final", cmd)
        self.assertIn("judge.every=50", cmd)
        self.assertEqual(cmd[cmd.index("--run_dir") + 1], os.path.join(self.out, "seed101"))

    def test_table_mean_worst_and_plot_from_the_runs_there(self):
        self._seed(100, _report(0.78, 0.6), _summary(True, 0.97, 0.1))  # 97.5%, leakage 0.25
        self._seed(101, _report(0.7, 0.62), _summary(False, 0.9, 0.2))  # 87.5%, leakage 0.30
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = call_main(S, "--seeds=100-102", f"--out={self.out}", "--table_only")
        self.assertEqual(rc, 0)
        text = out.getvalue()
        self.assertIn("| 100 | step 300 of 400, 97.0%, 0.10, MET | 97.5 [95.0, 100.0] |", text)
        self.assertIn("| 101 | step 300 of 400, 90.0%, 0.20, NOT MET | 87.5", text)
        self.assertIn("| mean of 2 | | 92.5 | 0.27 | 1 of 2 |", text)
        self.assertIn("| worst | | 87.5 | 0.30 | |", text)
        self.assertIn("not run yet: seeds 102", text)
        self.assertTrue(os.path.exists(os.path.join(self.out, "seed_sweep.png")))
