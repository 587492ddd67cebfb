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


def _with_skew(result, nap, auc, ci=None):
    """A _result with the worst-case mean normalised AP and AUC of a report made since they
    exist (ci: half-width of their intervals)."""
    result = dict(result)
    stats = {"nap_mean": _stat(nap), "auc_mean": _stat(auc)}
    if ci is not None:
        for stat in stats.values():
            stat["ci"] = [stat["mean"] - ci, stat["mean"] + ci]
    result["worst_case"] = {**result["worst_case"], **stats}
    result["panel"] = {a: {**p, **stats} for a, p in result["panel"].items()}
    return result


def _new_report(raw_nap=0.4, raw_auc=0.8, ci=None):
    r = _report()
    figures = {"learned": (0.1, 0.6), "raw": (raw_nap, raw_auc), "down4": (0.2, 0.65)}
    for name, (nap, auc) in figures.items():
        r["results"][name] = _with_skew(r["results"][name], nap, auc, ci)
    return r


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
        # A report made before normalised AP and AUC existed: "n/a" in their columns.
        self.assertIn("| learned | 80.0 | 60.0 | n/a | n/a | - | 30.0 | video |", md)
        self.assertIn("| raw | 90.0 | 90.0 | n/a | n/a | - | 45.0 | plain |", md)
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

    def test_leakage_on_normalised_ap_and_auc(self):
        rel = report.relative_to_raw(_new_report(ci=0.02))
        # cMAP as before; normalised AP: 0.1 / 0.4 (chance 0); AUC: (0.6 - 0.5) / (0.8 - 0.5).
        self.assertAllClose(rel["learned"]["leakage"], 0.25)
        self.assertAllClose(rel["learned"]["leakage_nap"], 0.25)
        self.assertAllClose(rel["learned"]["leakage_auc"], 1 / 3)
        self.assertAllClose(rel["down4"]["leakage_nap"], 0.5)
        self.assertAllClose(rel["raw"]["leakage_nap"], 1.0)
        self.assertNotIn("leakage_refused", rel["learned"])
        md = report.markdown(_new_report(ci=0.02))
        self.assertIn(
            "| learned | 80.0 | 60.0 | 10.0 [8.0, 12.0] | 60.0 [58.0, 62.0] | - | 30.0 | video |",
            md,
        )
        self.assertIn(
            "learned: action 88.9% of raw, leakage left 0.25 of raw's (worst-case cMAP over "
            "chance), 0.25 on normalised AP, 0.33 on AUC",
            md,
        )
        self.assertIn("## Mean nAP of each attacker", md)
        self.assertIn("Chance: action top-1 12.5, cMAP 50.0 (mean test prevalence), nAP 0.0", md)
        self.assertNotIn("Raw too close to chance", md)

    def test_leakage_refused_when_raw_is_at_chance(self):
        # Raw's worst-case normalised AP 0.02 over chance (0): below the 0.05 a ratio needs.
        r = _new_report(raw_nap=0.02)
        rel = report.relative_to_raw(r)
        self.assertIsNone(rel["learned"]["leakage_nap"])
        self.assertIsNone(rel["raw"]["leakage_nap"])
        why = rel["learned"]["leakage_refused"]["leakage_nap"]
        self.assertIn("worst-case mean normalised AP", why)
        self.assertIn("raw's gap to chance is 2.0 points", why)
        self.assertEqual(list(rel["learned"]["leakage_refused"]), ["leakage_nap"])
        self.assertAllClose(rel["learned"]["leakage"], 0.25)  # the others still divide
        self.assertAllClose(rel["learned"]["leakage_auc"], 1 / 3)
        lines = report.relative_lines(r)
        self.assertIn(
            "0.25 of raw's (worst-case cMAP over chance), refused on normalised AP", lines[0]
        )
        self.assertIn(f"leakage ratio refused on {why}", lines)
        md = report.markdown(r)
        self.assertIn("Raw too close to chance to divide by: leakage ratio refused on", md)
        self.assertIn(why, md)
        # A gap wide enough but an interval that reaches chance: refused too.
        r = _new_report(raw_nap=0.3, raw_auc=0.56, ci=0.08)
        rel = report.relative_to_raw(r)
        self.assertAllClose(rel["learned"]["leakage_nap"], 1 / 3)
        self.assertIsNone(rel["learned"]["leakage_auc"])
        self.assertIn(
            "interval [48.0, 64.0] reaches chance 50.0",
            rel["learned"]["leakage_refused"]["leakage_auc"],
        )
        # cMAP's leakage follows the same rule: raw 0.51 over chance 0.5 is 0.02 of the range.
        r = _new_report()
        r["results"]["raw"]["worst_case"]["cmap"] = _stat(0.51)
        rel = report.relative_to_raw(r)
        self.assertIsNone(rel["learned"]["leakage"])
        self.assertIn("worst-case cMAP: raw's gap", rel["learned"]["leakage_refused"]["leakage"])
        self.assertIn("learned: action 88.9% of raw, leakage left refused", report.markdown(r))

    def test_old_report_without_the_new_keys_still_renders(self):
        old = _report()  # no nap_mean / auc_mean anywhere, no worst_nap in comparisons
        rel = report.relative_to_raw(old)
        self.assertIsNone(rel["learned"]["leakage_nap"])
        self.assertIsNone(rel["learned"]["leakage_auc"])
        self.assertNotIn("leakage_refused", rel["learned"])
        md = report.markdown(old)
        self.assertIn("leakage left 0.25 of raw's (worst-case cMAP over chance), n/a on ", md)
        self.assertNotIn("Mean nAP of each attacker", md)
        self.assertEqual(report._fmt(None), "n/a")
        paths = report.write_report(self.get_temp_dir(), old, None)
        self.assertTrue(os.path.exists(paths["md"]))
        # Raw with the new figures, a degrader without: that degrader's ratios are n/a.
        mixed = _new_report()
        mixed["results"]["down4"] = _report()["results"]["down4"]
        rel = report.relative_to_raw(mixed)
        self.assertIsNone(rel["down4"]["leakage_nap"])
        self.assertAllClose(rel["learned"]["leakage_nap"], 0.25)
        self.assertIn("| down4 | 50.0 | 70.0 | n/a | n/a |", report.markdown(mixed))

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
        self.assertIn("| raw | -2.0 [-5.0, +1.0] | n/a | -2.0 [-5.0, +1.0] | undecided |", md)
        self.assertIn("Verdicts on action top-1 and worst-case cMAP (this report has no nAP", md)
        r["comparisons"][0]["worst_nap"] = {"mean": 0.1, "ci": [0.05, 0.15], "sign": 1}
        r["comparisons"][0]["measure"] = "worst_nap"
        md = report.markdown(r)
        self.assertIn("| raw | -2.0 [-5.0, +1.0] | +10.0 [+5.0, +15.0] | -2.0 [-5.0, +1.0] |", md)
        self.assertIn("Verdicts on action top-1 and worst-case nAP", md)

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
