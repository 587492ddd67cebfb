"""benchmarks.game_trajectory on a tiny run: f_d at each kept adversarial step, then the ruler."""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from benchmarks import game_trajectory as G
from configs import get_config
from tests.test_tradeoff_points import _report
from tfprivacy import artifacts
from tfprivacy.train.loop import Trainer


def _weights(run_dir):
    model, _ = artifacts.load_degrader(run_dir)
    return model.get_weights()


class GameTrajectoryTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tempfile

        cls.tmp = tempfile.mkdtemp()
        cls.run_dir = os.path.join(cls.tmp, "run")
        # 4 adversarial steps, a checkpoint every 2: step 2 is kept, step 4 is the final f_d.
        overrides = [f"trainer.run_dir={cls.run_dir}", "trainer.attack_steps=0"]
        Trainer(get_config("benchmark_tiny", overrides + ["trainer.max_to_keep=50"])).train()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def test_every_kept_step_and_the_final_f_d_become_run_dirs(self):
        out = os.path.join(self.get_temp_dir(), "traj")
        self.assertEqual(G.snapshot_degraders(self.run_dir, out), [2, 4])
        final, mid = _weights(G.step_dir(out, 4)), _weights(G.step_dir(out, 2))
        for a, b in zip(final, _weights(self.run_dir), strict=True):
            self.assertAllEqual(a, b)  # the game's final f_d, as the run saved it
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(mid, final, strict=True)))
        cfg = artifacts.load_config(G.step_dir(out, 2))
        self.assertEqual(cfg.model.degrader, artifacts.load_config(self.run_dir).model.degrader)

        # Some steps only; a step the run did not keep is refused, naming the kept ones.
        other = os.path.join(self.get_temp_dir(), "some")
        self.assertEqual(G.snapshot_degraders(self.run_dir, other, [4]), [4])
        self.assertFalse(os.path.exists(G.step_dir(other, 2)))
        with self.assertRaisesRegex(G.TrajectoryError, r"--steps 3: not kept .*kept: 2, 4"):
            G.snapshot_degraders(self.run_dir, other, [3])

    def test_an_out_of_another_run_is_refused_and_a_damaged_checkpoint_skipped(self):
        copy = os.path.join(self.get_temp_dir(), "copy")
        shutil.copytree(self.run_dir, copy)
        out = os.path.join(self.get_temp_dir(), "shared")
        G.snapshot_degraders(self.run_dir, out, [2])
        # Another run's step 2 into the same folder: its report.json would measure the wrong f_d.
        with self.assertRaisesRegex(G.TrajectoryError, r"step0002 holds f_d of step 2 of .*run"):
            G.snapshot_degraders(copy, out, [2])
        # A checkpoint cut short is skipped (with a warning); the others are still read.
        ckpt = os.path.join(copy, artifacts.CHECKPOINT_DIR)
        self.assertEqual(sorted(G._adversarial_checkpoints(ckpt)), [2])
        with open(G._adversarial_checkpoints(ckpt)[2] + ".index", "wb") as f:
            f.write(b"cut short")
        self.assertEqual(G._adversarial_checkpoints(ckpt), {})
        self.assertEqual(G.snapshot_degraders(copy, os.path.join(copy, "traj")), [4])

    def test_a_run_without_checkpoints_or_final_f_d_is_refused_by_name(self):
        bare = os.path.join(self.get_temp_dir(), "bare")
        os.makedirs(bare)
        shutil.copy(os.path.join(self.run_dir, artifacts.CONFIG_FILE), bare)
        with self.assertRaisesRegex(G.TrajectoryError, "max_to_keep"):
            G.snapshot_degraders(bare, os.path.join(self.get_temp_dir(), "o"))

    def test_each_step_is_measured_once_and_tabled(self):
        out = os.path.join(self.get_temp_dir(), "measured")
        steps = G.snapshot_degraders(self.run_dir, out)
        calls = []

        def runner(cmd, log):
            run = cmd[cmd.index("--run") + 1]
            calls.append(run)
            step = int(os.path.basename(run)[len("step") :])
            with open(os.path.join(run, "report.json"), "w") as f:
                json.dump(_report(0.78 if step == 2 else 0.70, 0.6), f)
            return 0

        G.measure(out, steps, 1, runner=runner, echo=lambda *_: None)
        self.assertEqual(calls, [G.step_dir(out, 2), G.step_dir(out, 4)])
        G.measure(out, steps, 1, runner=runner, echo=lambda *_: None)  # measured: skipped
        self.assertLen(calls, 2)
        text, points = G.trajectory_table(out, steps)
        self.assertIn("| step 2 | 97.5 [95.0, 100.0] | 0.25 [0.20, 0.30] | yes |", text)
        self.assertIn("| step 4 | 87.5", text)
        self.assertLen(points, 2)

        os.remove(os.path.join(G.step_dir(out, 4), "report.json"))
        with self.assertRaisesRegex(G.TrajectoryError, r"step 4: .* status 3; .*step0004.eval"):
            G.measure(out, steps, 1, runner=lambda cmd, log: 3, echo=lambda *_: None)


if __name__ == "__main__":
    tf.test.main()
