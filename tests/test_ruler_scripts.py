"""The calibration checks and the cost split of benchmarks/, on hand-made reports."""

import contextlib
import io
import json
import os

import tensorflow as tf
from absl import flags

from benchmarks import eval_cost, ruler_calibration
from tests.cli_util import call_main
from tfprivacy.data.records import PRIVACY_ATTRIBUTES


def _stat(v):
    return {"mean": v, "std": 0.0, "values": [v], "ci": [v - 0.01, v + 0.01]}


def _result(best: dict, cmap: float) -> dict:
    return {
        "worst_case": {"cmap": _stat(cmap), "best_ap": {a: _stat(v) for a, v in best.items()}},
        "timing": {"degrade_s": 2.0, "total_s": 100.0},
        "cached_seeds": [],
        "per_seed": [
            {
                "seed": 0,
                "target": {"seconds": 30.0},
                "panel": {
                    "plain": {"seconds": 40.0},
                    "plain_ft": {"seconds": 25.0, "pretrain_seconds": 15.0},
                },
            }
        ],
    }


def _report(grey_skin=0.52, down8_face=0.70):
    prevalence = dict.fromkeys(PRIVACY_ATTRIBUTES, 0.5)
    prevalence["face"] = 0.65
    raw = {"skin_color": 0.99, "face": 0.97, "gender": 0.98, "nudity": 0.85, "relationship": 0.9}
    grey = {**raw, "skin_color": grey_skin}
    down8 = {
        "skin_color": 0.9,
        "face": down8_face,
        "gender": 0.55,
        "nudity": 0.7,
        "relationship": 0.52,
    }
    return {
        "experiment": "unit",
        "seeds": [0],
        "chance": {"prevalence": prevalence},
        "results": {
            "raw": _result(raw, 0.93),
            "grey": _result(grey, 0.85),
            "down8": _result(down8, 0.7),
        },
        "timing": {"materialize_s": 5.0, "total_s": 305.0},
    }


class RulerScriptsTest(tf.test.TestCase):
    def test_calibration_passes_on_known_answers(self):
        results = ruler_calibration.checks(_report())
        self.assertTrue(all(passed for _, passed, _ in results), results)
        self.assertIn("raw best AP", ruler_calibration.table(_report()))

    def test_calibration_fails_loudly(self):
        results = dict((n, p) for n, p, _ in ruler_calibration.checks(_report(0.6, 0.8)))
        self.assertFalse(results["grey removes skin colour"])  # +10 points over prevalence
        self.assertFalse(results["x8 removes face"])  # +15 points
        self.assertTrue(results["x8 removes gender"])

    def test_calibration_needs_the_three_degraders(self):
        report = _report()
        del report["results"]["down8"]
        with self.assertRaisesRegex(ValueError, "down8"):
            ruler_calibration.checks(report)

    def test_cost_split(self):
        text = "\n".join(eval_cost.lines(_report()))
        self.assertIn("decode + sample every split once: 5.0 s", text)
        self.assertIn("plain_ft 25.0 (of which raw pretraining 15.0)", text)
        self.assertIn("without the once-per-seed raw pretraining 85.0 s: within", text)


class CommandLineTest(tf.test.TestCase):
    """Both scripts' main() on a report.json, their flags parsed as `python -m` parses them."""

    def _report_file(self, report) -> str:
        path = os.path.join(self.get_temp_dir(), "report.json")
        with open(path, "w") as f:
            json.dump(report, f)
        return path

    def _main(self, module, *args) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            call_main(module, *args)
        return out.getvalue()

    def test_report_is_read(self):
        path = self._report_file(_report())
        self.assertIn("ruler calibration passed", self._main(ruler_calibration, f"--report={path}"))
        self.assertIn("whole evaluation: 305.0 s", self._main(eval_cost, "--report", path))

    def test_failed_calibration_exits_1(self):
        path = self._report_file(_report(0.6, 0.8))
        with self.assertRaises(SystemExit) as stop:
            self._main(ruler_calibration, f"--report={path}")
        self.assertEqual(stop.exception.code, 1)

    def test_report_or_run_is_required(self):
        for module in (ruler_calibration, eval_cost):
            with self.assertRaisesRegex(flags.Error, "give --report REPORT_JSON or --run RUN_DIR"):
                call_main(module)


if __name__ == "__main__":
    tf.test.main()
