"""benchmarks.tradeoff_points: runs' ruler reports on the action / leakage plane."""

import contextlib
import io
import json
import os
import unittest

from benchmarks import tradeoff_points as T
from tests.cli_util import call_main


def _figure(mean, lo, hi):
    return {"mean": mean, "ci": [lo, hi], "values": [mean]}


def _report(action, cmap, seeds=(0,)):
    """A ruler report.json's fields the tool reads: raw 0.80 / 0.90, chance cMAP 0.50."""
    return {
        "seeds": list(seeds),
        "chance": {"cmap": 0.5, "action_top1": 0.125},
        "results": {
            "raw": {
                "action_top1": _figure(0.8, 0.78, 0.82),
                "worst_case": {"cmap": _figure(0.9, 0.89, 0.91)},
            },
            "learned": {
                "action_top1": _figure(action, action - 0.02, action + 0.02),
                "worst_case": {"cmap": _figure(cmap, cmap - 0.02, cmap + 0.02)},
            },
        },
    }


class TradeoffPointsTest(unittest.TestCase):
    def setUp(self):
        import tempfile

        self.dir = tempfile.mkdtemp()

    def _run_dir(self, name, report):
        path = os.path.join(self.dir, name)
        os.makedirs(path)
        if report is not None:
            with open(os.path.join(path, "report.json"), "w") as f:
                json.dump(report, f)
        return path

    def test_points_are_scaled_by_raw_and_judged_against_the_bar(self):
        good = self._run_dir("good", _report(0.78, 0.6))  # 97.5% of raw, leakage 0.25
        bad = self._run_dir("bad", _report(0.7, 0.62))  # 87.5%, leakage 0.30
        p = T.load_point("good", good)
        self.assertAlmostEqual(p["action"], 0.975)
        self.assertAlmostEqual(p["leakage"], 0.25)
        self.assertAlmostEqual(p["leakage_ci"][0], 0.2)
        self.assertAlmostEqual(p["action_ci"][1], 1.0)
        png = os.path.join(self.dir, "plot", "frontier.png")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = call_main(T, f"--point=good={good}", f"--point=bad={bad}", f"--out={png}")
        self.assertEqual(rc, 0)
        text = out.getvalue()
        self.assertIn("| good | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | yes |", text)
        self.assertIn("| bad | 87.5 [85.0, 90.0] | 0.30 [0.25, 0.35] | no |", text)
        self.assertGreater(os.path.getsize(png), 1000)
        # A stricter bar turns the verdict.
        with contextlib.redirect_stdout(io.StringIO()) as strict:
            call_main(T, f"--point=good={good}", "--bar_leakage=0.2")
        self.assertIn("| good | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | no |", strict.getvalue())

    def test_bad_points_are_refused_by_name(self):
        missing = self._run_dir("missing", None)
        other = self._run_dir("other", _report(0.78, 0.6, seeds=(1,)))
        good = self._run_dir("good", _report(0.78, 0.6))
        broken = self._run_dir("broken", None)
        with open(os.path.join(broken, "report.json"), "w") as f:
            f.write("{not json")
        cases = {
            "nolabel": "expected LABEL=RUN_DIR",
            f"m={missing}": "m: " + os.path.join(missing, "report.json") + " not found",
            f"b={broken}": "b: " + os.path.join(broken, "report.json") + " is not valid JSON",
        }
        for point, message in cases.items():
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(call_main(T, f"--point={point}"), 2)
            self.assertIn(message, err.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(call_main(T, f"--point=g={good}", f"--point=o={other}"), 2)
        self.assertIn("different ruler seeds (g [0], o [1])", err.getvalue())
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(call_main(T), 2)


if __name__ == "__main__":
    unittest.main()
