"""The main job prints the same figures on a quiet and on a loaded machine.

Runs `python -m trainers.adversarial` (training, then the two-fold evaluation) on the tiny
benchmark twice in fresh processes, the second time while two other processes keep the cores
busy, and compares what a user compares: every printed line minus wall times, f_d's weights
bit for bit, and every figure of report.json (action top-1, each attacker's AP, the feature
probe, the intervals) exactly.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.subprocess_util import ROOT, read_weights

_BURNER = (
    "import numpy as np, time\n"
    "a = np.random.rand(400, 400)\n"
    "end = time.time() + 900\n"
    "while time.time() < end:\n"
    "    a = np.tanh(a @ a)\n"
)

_TIMES = ("seconds", "pretrain_seconds")
# Printed durations, which must differ under load: "in 12.3s", "wall time ...: 41 s".
_DURATION = re.compile(r" in [0-9.]+s|wall time.*$")


def _figures(report: dict) -> dict:
    """Every number of the results, minus timing."""
    out = {}
    for name, r in report["results"].items():
        r = {k: v for k, v in r.items() if k not in ("timing", "cached_seeds", "cache_keys")}
        r["per_seed"] = [
            {
                **s,
                "target": {k: v for k, v in s["target"].items() if k != "seconds"},
                "panel": {
                    a: {k: v for k, v in p.items() if k not in _TIMES}
                    for a, p in s["panel"].items()
                },
            }
            for s in r["per_seed"]
        ]
        out[name] = r
    return out


def _printed(stdout: str) -> list[str]:
    """stdout's lines with durations blanked; run-dir paths differ between the two runs."""
    return [_DURATION.sub("", line) for line in stdout.splitlines() if "run dir" not in line]


class ReproducibilityTest(tf.test.TestCase):
    def _main_job(self, run_dir: str, data_dir: str):
        cmd = [
            sys.executable,
            "-m",
            "trainers.adversarial",
            "--config=benchmark_tiny",
            f"--run_dir={run_dir}",
            f"--set=data.data_dir={data_dir}",
            "--set=eval.seeds=2",
            "--set=eval.baselines=raw,grey",
            "--set=eval.privacy_panel=plain",
            "--set=eval.bootstrap=200",
            f"--set=eval.cache_dir={os.path.join(run_dir, 'cache')}",  # nothing reused
        ]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        with open(os.path.join(run_dir, "report.json")) as f:
            report = json.load(f)
        weights = read_weights(os.path.join(run_dir, "degrader.weights.h5"))
        return _printed(proc.stdout), weights, report

    def test_same_figures_quiet_and_under_load(self):
        tmp = self.get_temp_dir()
        data = os.path.join(tmp, "data")
        quiet = self._main_job(os.path.join(tmp, "quiet"), data)
        burners = [subprocess.Popen([sys.executable, "-c", _BURNER]) for _ in range(2)]
        try:
            loaded = self._main_job(os.path.join(tmp, "loaded"), data)
        finally:
            for b in burners:
                b.kill()
                b.wait()
        (quiet_lines, quiet_w, quiet_r), (loaded_lines, loaded_w, loaded_r) = quiet, loaded
        # The training summary as printed (the tiny config prints no progress, so the
        # evaluation's figures are compared in report.json below).
        self.assertTrue(any("fresh f_b retrained on f_d" in line for line in quiet_lines))
        self.assertTrue(any(line.startswith("f_d output: PSNR") for line in quiet_lines))
        self.assertEqual(quiet_lines, loaded_lines)
        self.assertEqual(sorted(quiet_w), sorted(loaded_w))
        for name, value in quiet_w.items():
            np.testing.assert_array_equal(value, loaded_w[name], err_msg=name)
        self.assertEqual(_figures(quiet_r), _figures(loaded_r))
        self.assertIn("ci", quiet_r["results"]["raw"]["action_top1"])


if __name__ == "__main__":
    tf.test.main()
