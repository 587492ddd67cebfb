"""Normalised AP and AUC through the evaluation: protocol.aggregate's worst case and intervals,
and the tools that read report.json (benchmarks.report_cli, benchmarks.tradeoff_points), on
reports made since the measures exist and on older ones without them."""

import contextlib
import io
import json
import os
import tempfile
import types

import numpy as np
import tensorflow as tf

from benchmarks import report_cli
from benchmarks import tradeoff_points as T
from tests.cli_util import call_main
from tfprivacy import metrics
from tfprivacy.data.records import PRIVACY_ATTRIBUTES
from tfprivacy.eval import protocol

_PREVALENCE = np.array([0.9, 0.75, 0.95, 0.6, 0.16])


def _splits(rng, n):
    labels = (rng.random((n, 5)) < _PREVALENCE).astype(np.float32)
    labels[rng.random((n, 5)) < 0.05] = -1
    clips = np.zeros((n, 1, 1, 1, 3), np.uint8)
    actions = rng.integers(0, 4, n).astype(np.int32)
    return protocol.EvalSplits(
        action_train=(clips, actions),
        action_test=(clips, actions),
        privacy_train=(clips, labels),
        privacy_test=(clips, labels),
        num_actions=4,
        shared=True,
    )


def _seed_result(rng, seed, labels, strengths):
    """One seed as evaluate_seed returns it: the panel's privacy_metrics plus test probs."""
    signal = np.where(labels > 0, 1.0, -1.0)
    panel = {}
    for arch, strength in strengths.items():
        probs = 1.0 / (1.0 + np.exp(-(strength * signal + rng.normal(size=labels.shape))))
        probs = np.round(probs, 6)
        panel[arch] = {**metrics.privacy_metrics(labels, probs, PRIVACY_ATTRIBUTES), "probs": probs}
    worst_name, worst = metrics.worst_case(panel)
    n = len(labels)
    return {
        "seed": seed,
        "action_top1": 0.5,
        "target": {"arch": "c3d_wide", "correct": (rng.random(n) < 0.5).astype(int).tolist()},
        "panel": panel,
        "worst_case": {"model": worst_name, **{k: worst[k] for k in ("ap", "cmap", "macro_f1")}},
    }


class AggregateTest(tf.test.TestCase):
    def setUp(self):
        rng = np.random.default_rng(5)
        self.splits = _splits(rng, 240)
        labels = self.splits.privacy_test[1]
        self.per_seed = [
            _seed_result(rng, s, labels, {"plain": 0.3, "video": 0.9}) for s in range(3)
        ]
        self.ev = types.SimpleNamespace(bootstrap=300, confidence=0.95)

    def test_worst_case_and_intervals_of_normalised_ap_and_auc(self):
        out = protocol.aggregate(self.per_seed, self.splits, self.ev)
        w = out["worst_case"]
        for key, model_key in (("nap_mean", "nap_models"), ("auc_mean", "auc_models")):
            per_seed = [max(s["panel"][a][key] for a in ("plain", "video")) for s in self.per_seed]
            self.assertAllClose(w[key]["mean"], np.mean(per_seed))
            self.assertAllClose(w[key]["values"], per_seed)
            lo, hi = w[key]["ci"]
            self.assertBetween(w[key]["mean"], lo, hi)
            self.assertEqual(w[model_key], ["video"] * 3)
            for arch in ("plain", "video"):
                stat = out["panel"][arch][key]
                self.assertBetween(stat["mean"], *stat["ci"])
        self.assertIn("ci", w["cmap"])  # cMAP's worst case as before
        self.assertEqual(w["models"], [s["worst_case"]["model"] for s in self.per_seed])
        self.assertGreater(w["nap_mean"]["ci"][0], 0.0)
        self.assertGreater(w["auc_mean"]["ci"][0], 0.5)
        for key in ("nap", "auc"):
            self.assertEqual(set(out["panel"]["plain"][key]), set(PRIVACY_ATTRIBUTES))
        reps = out["replicates"]
        for key in ("worst_nap", "worst_auc", "worst_cmap"):
            self.assertEqual(reps[key].shape, (300,))
        self.assertEqual(set(reps["nap"]), {"plain", "video"})
        json.dumps({k: v for k, v in out.items() if k != "replicates"})  # JSON-ready

    def test_seeds_cached_before_the_measures_get_them_from_their_probs(self):
        fresh = protocol.aggregate(self.per_seed, self.splits, self.ev)
        old = []
        for s in self.per_seed:
            panel = {
                a: {k: p[k] for k in ("ap", "cmap", "macro_f1", "probs")}
                for a, p in s["panel"].items()
            }
            old.append({**s, "panel": panel})
        again = protocol.aggregate(old, self.splits, self.ev)
        for key in ("nap_mean", "auc_mean"):
            self.assertAllClose(again["worst_case"][key]["mean"], fresh["worst_case"][key]["mean"])
            self.assertAllClose(again["worst_case"][key]["ci"], fresh["worst_case"][key]["ci"])
        self.assertNotIn("nap_mean", old[0]["panel"]["plain"])  # the cached dicts untouched
        # Without the test labels there is nothing to fill them from: cMAP only, as before.
        bare = protocol.aggregate(old)
        self.assertNotIn("nap_mean", bare["worst_case"])
        self.assertNotIn("nap_mean", bare["panel"]["plain"])
        self.assertIn("cmap", bare["worst_case"])


def _figure(mean, half=0.02):
    return {"mean": mean, "ci": [mean - half, mean + half], "values": [mean]}


def _tool_report(raw_nap=0.4, new=True):
    """A report.json's fields the tools read; with `new`, worst-case normalised AP and AUC."""

    def result(action, cmap, nap, auc):
        worst = {"cmap": _figure(cmap), "models": ["plain"], "macro_f1": _figure(0.3)}
        if new:
            worst.update(nap_mean=_figure(nap), auc_mean=_figure(auc))
        return {"action_top1": _figure(action), "worst_case": worst}

    return {
        "seeds": [0],
        "chance": {"cmap": 0.5, "action_top1": 0.125},
        "results": {
            "raw": result(0.8, 0.9, raw_nap, 0.8),
            "learned": result(0.78, 0.6, 0.1, 0.6),
        },
    }


class ToolsTest(tf.test.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def _write(self, name, report):
        path = os.path.join(self.dir, name)
        os.makedirs(path)
        with open(os.path.join(path, "report.json"), "w") as f:
            json.dump(report, f)
        return path

    def test_tradeoff_points_new_and_old_reports(self):
        new = self._write("new", _tool_report())
        old = self._write("old", _tool_report(new=False))
        refused = self._write("refused", _tool_report(raw_nap=0.01))
        p = T.load_point("new", new)
        self.assertAllClose(p["leakage"], 0.25)
        self.assertAllClose(p["leakage_nap"], 0.25)  # 0.1 / 0.4
        self.assertAllClose(p["leakage_nap_ci"], (0.2, 0.3))
        self.assertAllClose(p["leakage_auc"], 1 / 3)  # (0.6 - 0.5) / (0.8 - 0.5)
        self.assertIsNone(T.load_point("old", old)["leakage_nap"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = call_main(T, f"--point=new={new}", f"--point=old={old}", f"--point=r={refused}")
        self.assertEqual(rc, 0)
        text = out.getvalue()
        self.assertIn("| leakage (nAP) | leakage (AUC) |", text)
        self.assertIn(
            "| new | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | yes | 0.25 [0.20, 0.30] | "
            "0.33 [0.27, 0.40] |",
            text,
        )
        self.assertIn("| old | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | yes | n/a | n/a |", text)
        self.assertIn("| r | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | yes | refused | 0.33", text)
        self.assertIn("r: leakage ratio refused on worst-case mean normalised AP: raw's gap", text)

    def test_report_cli_summary_new_and_old_reports(self):
        lines = report_cli.summary_lines(_tool_report())
        self.assertIn(
            "learned: action top-1 78.0 [76.0, 80.0], worst-case cMAP 60.0 [58.0, 62.0], "
            "nAP 10.0 [8.0, 12.0], AUC 60.0 [58.0, 62.0]; leakage cMAP 0.25, nAP 0.25, AUC 0.33",
            lines,
        )
        old = report_cli.summary_lines(_tool_report(new=False))
        self.assertIn(
            "learned: action top-1 78.0 [76.0, 80.0], worst-case cMAP 60.0 [58.0, 62.0], "
            "nAP n/a, AUC n/a; leakage cMAP 0.25, nAP n/a, AUC n/a",
            old,
        )
        refused = report_cli.summary_lines(_tool_report(raw_nap=0.01))
        self.assertIn("leakage cMAP 0.25, nAP refused, AUC 0.33", refused[1])
        self.assertIn("leakage ratio refused on worst-case mean normalised AP", refused[-1])
        path = os.path.join(self._write("cli", _tool_report(new=False)), "report.json")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(call_main(report_cli, f"--report={path}"), 0)
        self.assertIn("nAP n/a, AUC n/a", out.getvalue())


if __name__ == "__main__":
    tf.test.main()
