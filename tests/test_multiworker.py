"""Two MultiWorkerMirroredStrategy workers as local processes on loopback ports: after training
steps their degrader weights agree."""

import json
import os
import socket
import subprocess

import numpy as np
import tensorflow as tf
from subprocess_util import ROOT, read_weights, trainer_command


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MultiWorkerTest(tf.test.TestCase):
    def test_two_workers_agree(self):
        run_dir = os.path.join(self.get_temp_dir(), "mw")
        workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
        procs = []
        for index in range(2):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            )
            env["CUDA_VISIBLE_DEVICES"] = ""
            procs.append(
                subprocess.Popen(
                    trainer_command(
                        run_dir, "--distribution=multi_worker", "--strategy=grl", "--steps=3"
                    ),
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        outputs = []
        for p in procs:
            try:
                out, _ = p.communicate(timeout=600)
            finally:
                if p.poll() is None:
                    p.kill()
            outputs.append(out)
            self.assertEqual(p.returncode, 0, out[-3000:])
        chief = read_weights(os.path.join(run_dir, "degrader.weights.h5"))
        other = read_weights(os.path.join(run_dir, "workers", "worker_1", "degrader.weights.h5"))
        self.assertEqual(sorted(chief), sorted(other))
        for name in chief:
            np.testing.assert_allclose(chief[name], other[name], atol=1e-6, err_msg=name)
        with open(os.path.join(run_dir, "summary.json")) as f:
            self.assertIn("degraded", json.load(f))
