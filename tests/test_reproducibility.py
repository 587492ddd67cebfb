"""The same evaluation command gives the same figures, also beside a CPU-heavy process.

Runs `python -m trainers.evaluate` on the tiny benchmark twice in fresh processes, the second
time while another process keeps the cores busy, and compares every figure of report.json
(action top-1, each attacker's AP, the feature probe, the intervals) exactly.
"""

import json
import os
import subprocess
import sys

import tensorflow as tf

from tests.subprocess_util import ROOT

_BURNER = (
    "import numpy as np, time\n"
    "a = np.random.rand(400, 400)\n"
    "end = time.time() + 600\n"
    "while time.time() < end:\n"
    "    a = np.tanh(a @ a)\n"
)


_TIMES = ("seconds", "pretrain_seconds")


def _figures(report: dict) -> dict:
    """Every number of the results, minus timing (which must differ under load)."""
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


class EvalDeterminismTest(tf.test.TestCase):
    def _evaluate(self, run_dir: str, data_dir: str) -> dict:
        cmd = [
            sys.executable,
            "-m",
            "trainers.evaluate",
            "--config=benchmark_tiny",
            f"--run={run_dir}",
            "--baselines=raw,grey",
            "--seeds=2",
            "--nocache",
            "--noprogress",
            f"--set=data.data_dir={data_dir}",
            "--set=eval.privacy_panel=plain",
            "--set=eval.finetune_panel=plain",
            "--set=eval.bootstrap=200",
        ]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        with open(os.path.join(run_dir, "report.json")) as f:
            return json.load(f)

    def test_same_figures_quiet_and_under_load(self):
        tmp = self.get_temp_dir()
        data = os.path.join(tmp, "data")
        quiet = self._evaluate(os.path.join(tmp, "quiet"), data)
        burners = [subprocess.Popen([sys.executable, "-c", _BURNER]) for _ in range(2)]
        try:
            loaded = self._evaluate(os.path.join(tmp, "loaded"), data)
        finally:
            for b in burners:
                b.kill()
                b.wait()
        self.assertEqual(_figures(quiet), _figures(loaded))
        self.assertIn("ci", quiet["results"]["raw"]["action_top1"])


if __name__ == "__main__":
    tf.test.main()
