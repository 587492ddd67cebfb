"""Game strategies: registry, schedules (which updates, in which order) and loss terms."""

import numpy as np
import tensorflow as tf

from configs.experiments import get_config
from tfprivacy import config as C
from tfprivacy.train import strategies


class _Recorder:
    """A GameActions that records the updates a schedule asks for."""

    def __init__(self, privacy_acc=0.5):
        self.calls = []
        self.privacy_acc = privacy_acc

    def privacy(self, out):
        self.calls.append("privacy")
        out["privacy_acc"] = tf.constant([self.privacy_acc, 0.1])

    def target(self, out):
        self.calls.append("target")

    def degrader(self, out):
        self.calls.append("degrader")

    def target_until_threshold(self, out, step):
        self.calls.append(f"target_until_threshold@{step}")


def _strategy(name, **fields):
    cfg = get_config("benchmark", [f"adversary.strategy={name}"])
    for key, value in fields.items():
        setattr(cfg.adversary, key, value)
    return strategies.build(cfg.adversary)


class StrategiesTest(tf.test.TestCase):
    def test_the_papers_three_are_registered(self):
        self.assertEqual(strategies.names()[:3], ("grl", "kbeam", "entropy"))

    def test_schedules(self):
        cases = {
            "grl": ["privacy", "target", "degrader"],
            "entropy": ["degrader", "target_until_threshold@7", "privacy"],
        }
        for name, expected in cases.items():
            game = _Recorder()
            _strategy(name, privacy_steps=1).step(game, 7, {})
            self.assertEqual(game.calls, expected, name)

    def test_privacy_steps_per_adversarial_step(self):
        cases = {
            "grl": ["privacy", "privacy", "privacy", "target", "degrader"],
            "entropy": ["degrader", "target_until_threshold@1", "privacy", "privacy", "privacy"],
        }
        for name, expected in cases.items():
            game = _Recorder()
            _strategy(name, privacy_steps=3).step(game, 1, {})
            self.assertEqual(game.calls, expected, name)

    def test_kbeam_trains_privacy_until_its_threshold(self):
        game = _Recorder(privacy_acc=0.5)  # below the 0.9 threshold: every inner step runs
        _strategy("kbeam", max_inner_steps=3).step(game, 2, {})
        self.assertEqual(
            game.calls, ["degrader", "privacy", "privacy", "privacy", "target_until_threshold@2"]
        )
        game = _Recorder(privacy_acc=0.95)  # passes at once
        _strategy("kbeam", max_inner_steps=3).step(game, 2, {})
        self.assertEqual(game.calls, ["degrader", "privacy", "target_until_threshold@2"])

    def test_loss_terms_are_per_example(self):
        labels = tf.constant([[1.0, 0.0, 1.0, 0.0, 1.0], [0.0] * 5])
        logits = [tf.random.stateless_normal((2, 5), seed=(i, 0)) for i in range(2)]
        for name in ("grl", "kbeam", "entropy"):
            term = _strategy(name).degrader_term(labels, logits)
            self.assertEqual(term.shape, (2,), name)
            self.assertTrue(np.all(np.isfinite(term.numpy())), name)

    def test_a_fourth_strategy_is_one_class_and_its_registration(self):
        name = "test_only_target_first"
        if name not in strategies.names():

            @strategies.register(name)
            class TargetFirst(strategies.Strategy):
                def degrader_term(self, labels, privacy_logits):
                    return -tf.reduce_mean(tf.stack(privacy_logits), axis=(0, 2))

                def step(self, game, step, out):
                    game.target(out)
                    game.degrader(out)

        cfg = C.check(get_config("benchmark", [f"adversary.strategy={name}"]))
        game = _Recorder()
        strategies.build(cfg.adversary).step(game, 0, {})
        self.assertEqual(game.calls, ["target", "degrader"])
        with self.assertRaisesRegex(ValueError, "registered twice"):
            strategies.register(name)(strategies.Strategy)

    def test_unknown_strategy_fails_in_the_config(self):
        with self.assertRaisesRegex(C.ConfigError, "adversary.strategy='minimax': unknown"):
            get_config("benchmark", ["adversary.strategy=minimax"])


if __name__ == "__main__":
    tf.test.main()
