"""Report files from a hand-made report dict: JSON round trip, tables, plots."""

import json
import os

import numpy as np
import tensorflow as tf

from tfprivacy.data.records import PRIVACY_ATTRIBUTES
from tfprivacy.eval import report


def _stat(*values):
    arr = np.asarray(values, np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": list(values)}


def _privacy(cmap):
    return {
        "cmap": _stat(cmap),
        "macro_f1": _stat(cmap / 2),
        "ap": {a: _stat(cmap) for a in PRIVACY_ATTRIBUTES},
    }


def _result(kind, top1, cmaps):
    worst = max(cmaps, key=cmaps.get)
    return {
        "kind": kind,
        "action_top1": _stat(top1),
        "panel": {a: _privacy(c) for a, c in cmaps.items()},
        "worst_case": {**_privacy(cmaps[worst]), "models": [worst]},
    }


def _report():
    return {
        "experiment": "unit",
        "run_dir": "/tmp/x",
        "seeds": [0],
        "eval": {"target": "c3d_wide", "privacy_panel": ["plain", "video"], "target_epochs": 2},
        "chance": {"action_top1": 0.125, "cmap": 0.5},
        "results": {
            "learned": _result("learned", 0.8, {"plain": 0.55, "video": 0.6}),
            "raw": _result("baseline", 0.9, {"plain": 0.9, "video": 0.85}),
            "down4": _result("baseline", 0.5, {"plain": 0.7, "video": 0.65}),
        },
        "timing": {"total_s": 12.0},
    }


class ReportTest(tf.test.TestCase):
    def test_markdown_tables(self):
        md = report.markdown(_report())
        self.assertIn("| learned | 80.0 | 60.0 | - | 30.0 | video |", md)
        self.assertIn("| raw | 90.0 | 90.0 | - | 45.0 | plain |", md)
        self.assertIn("| degrader | plain | video |", md)
        self.assertIn("| down4 | 70.0 | 65.0 |", md)
        self.assertIn("Chance: action top-1 12.5, cMAP 50.0", md)

    def test_action_of_raw_and_leakage_left(self):
        rel = report.relative_to_raw(_report())
        # learned: 0.8 / 0.9 of raw's action; (0.6 - 0.5) / (0.9 - 0.5) of its leakage.
        self.assertAlmostEqual(rel["learned"]["action_of_raw"], 0.8 / 0.9)
        self.assertAlmostEqual(rel["learned"]["leakage"], 0.25)
        self.assertAlmostEqual(rel["raw"]["leakage"], 1.0)
        self.assertIn("learned: action 88.9% of raw, leakage left 0.25", report.markdown(_report()))
        no_raw = _report()
        del no_raw["results"]["raw"]
        self.assertEqual(report.relative_to_raw(no_raw), {})

    def test_mean_std_shown_with_several_seeds(self):
        self.assertEqual(report._fmt(_stat(0.5, 0.7)), "60.0 ± 10.0")
        self.assertEqual(report._fmt(_stat(0.5)), "50.0")

    def test_interval_shown_when_present(self):
        stat = {**_stat(0.5, 0.7), "ci": [0.55, 0.66]}
        self.assertEqual(report._fmt(stat), "60.0 [55.0, 66.0]")

    def test_paired_comparisons_table(self):
        r = _report()
        d = {"mean": -0.02, "ci": [-0.05, 0.01], "sign": 0}
        r["comparisons"] = [
            {
                "reference": "learned",
                "other": "raw",
                "action_top1": d,
                "worst_cmap": d,
                "verdict": "undecided",
            }
        ]
        md = report.markdown(r)
        self.assertIn("## Paired comparisons with learned", md)
        self.assertIn("| raw | -2.0 [-5.0, +1.0] | -2.0 [-5.0, +1.0] | undecided |", md)

    def test_write_report_files(self):
        run = self.get_temp_dir()
        raw = np.zeros((3, 16, 16, 3), np.uint8)
        frames = {"raw": raw, "degraded (f_d)": raw + 50, "down4": raw + 100, "blur2": raw + 150}
        paths = report.write_report(run, _report(), frames)
        for key in ("json", "md", "tradeoff", "frames"):
            self.assertTrue(os.path.exists(paths[key]), key)
        with open(paths["json"]) as f:
            self.assertEqual(json.load(f)["results"]["raw"]["action_top1"]["mean"], 0.9)
        with open(paths["tradeoff"], "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_plot_frames_rejects_empty(self):
        with self.assertRaisesRegex(ValueError, "no frames"):
            report.plot_frames({"raw": np.zeros((0, 4, 4, 3), np.uint8)}, "/tmp/never.png")


if __name__ == "__main__":
    tf.test.main()
