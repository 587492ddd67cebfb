"""A run killed with SIGKILL mid-training and started again with the same command ends with
the same result as an uninterrupted run (same degrader weights within 1e-5, same figures)."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import tensorflow as tf
from subprocess_util import ROOT, read_weights, trainer_command


def command(run_dir):
    return trainer_command(run_dir, "--steps=6", "--R=3", "--set=adversary.restart_steps=1")


def checkpoints(run_dir):
    path = os.path.join(run_dir, "ckpt")
    state = tf.train.get_checkpoint_state(path) if os.path.isdir(path) else None
    return [] if state is None else list(state.all_model_checkpoint_paths)


class ResumeTest(tf.test.TestCase):
    def test_killed_run_resumes_to_the_same_result(self):
        base = self.get_temp_dir()
        whole, killed = os.path.join(base, "whole"), os.path.join(base, "killed")
        subprocess.run(command(whole), cwd=ROOT, check=True, capture_output=True, timeout=600)

        proc = subprocess.Popen(
            command(killed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 600
        # Kill inside the adversarial phase: after its first in-phase checkpoint (ckpt-8).
        while not any(p.endswith("ckpt-8") for p in checkpoints(killed)):
            self.assertIsNone(proc.poll(), "run ended before it could be killed")
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertFalse(os.path.exists(os.path.join(killed, "summary.json")))

        resumed = subprocess.run(
            command(killed), cwd=ROOT, check=True, capture_output=True, text=True, timeout=600
        )
        self.assertIn("Resuming from", resumed.stdout)

        a = read_weights(os.path.join(whole, "degrader.weights.h5"))
        b = read_weights(os.path.join(killed, "degrader.weights.h5"))
        self.assertEqual(sorted(a), sorted(b))
        for name in a:
            np.testing.assert_allclose(a[name], b[name], atol=1e-5, err_msg=name)
        with open(os.path.join(whole, "summary.json")) as f:
            sa = json.load(f)
        with open(os.path.join(killed, "summary.json")) as f:
            sb = json.load(f)
        for key in ("raw", "adversarial", "degraded"):
            self.assertAllClose(sa[key]["action_top1"], sb[key]["action_top1"], atol=1e-6)
            self.assertAllClose(
                sa[key]["privacy_cmap_per_model"], sb[key]["privacy_cmap_per_model"], atol=1e-4
            )
