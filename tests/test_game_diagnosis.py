"""benchmarks.game_diagnosis on tiny shapes: probes at the right steps, records and the plot."""

import os

import numpy as np
import tensorflow as tf

from benchmarks import game_diagnosis
from configs import get_config


class GameDiagnosisTest(tf.test.TestCase):
    def test_probes_game_and_fresh_attackers_gradients_and_frames(self):
        out = self.get_temp_dir()
        cfg = get_config("benchmark_tiny", [f"trainer.run_dir={out}", "trainer.attack_steps=0"])
        trainer, diagnosis = game_diagnosis.diagnosed_trainer(
            cfg, probe_every=2, fresh_steps=2, probe_batches=2
        )
        attributes = game_diagnosis.PRIVACY_ATTRIBUTES
        game_before = [w.numpy().copy() for w in trainer.players.privacy[0].weights]
        trainer.train()
        steps = [r["step"] for r in diagnosis.records]
        self.assertEqual(steps, [0, 2, 4])  # every probe_every steps, and after the last (4)
        for r in diagnosis.records:
            self.assertLen(r["game_ap"], cfg.adversary.num_models)
            for ap in [*r["game_ap"], r["fresh_ap"]]:
                self.assertLen(ap, len(attributes))
                self.assertTrue(np.all((np.asarray(ap) >= 0) & (np.asarray(ap) <= 1)))
            g = r["grad_norm"]
            self.assertGreater(g["task"], 0.0)
            self.assertGreater(g["adv"], 0.0)
            self.assertBetween(g["cosine"], -1.0 - 1e-6, 1.0 + 1e-6)
            self.assertEqual(r["frames"].shape[1:], (32, 32, 3))
        # The fresh attackers are separate models: the game's own were trained by the game only.
        after = [w.numpy() for w in trainer.players.privacy[0].weights]
        self.assertTrue(
            any(not np.array_equal(a, b) for a, b in zip(game_before, after, strict=True))
        )
        path = os.path.join(out, "diagnosis.png")
        game_diagnosis.plot(diagnosis.records, attributes, path, "tiny")
        self.assertGreater(os.path.getsize(path), 1000)


if __name__ == "__main__":
    tf.test.main()
