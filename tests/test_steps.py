"""Players, Steps and Streams on their own, on tiny shapes (no Trainer, no phases).

Each update kind changes only the weights it owns; a multi-step loop is the same as as many
single steps; the first non-finite step is reported by index; restarting is seeded; a stream
reopened with its consumed count continues where it stopped.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from configs.experiments import get_config
from tfprivacy.data.sources import build_sources
from tfprivacy.train.game import Players, Shapes
from tfprivacy.train.steps import Steps
from tfprivacy.train.streams import Streams, split_validation

B, T, S = 4, 4, 16
FRAMES = [0, 2]  # the privacy models' frames of each clip


def _cfg(**adversary):
    cfg = get_config("benchmark_tiny")
    cfg.model = dataclasses.replace(cfg.model, degrader="light")
    cfg.adversary = dataclasses.replace(cfg.adversary, num_models=2, **adversary)
    return cfg


def _players(cfg):
    shapes = Shapes((T, S, S, 3), (len(FRAMES), S, S, 3), 3)
    return Players(cfg, shapes, tf.distribute.get_strategy())


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    clips = tf.constant(rng.random((B, T, S, S, 3), np.float32))
    actions = tf.constant(rng.integers(0, 3, B), tf.int32)
    labels = tf.constant(rng.integers(0, 2, (B, 5)).astype(np.float32))
    return (clips, actions), (tf.gather(clips, FRAMES, axis=1), labels)


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


class PlayersTest(tf.test.TestCase):
    def test_ensemble_round_robin_and_one_optimizer_each(self):
        cfg = _cfg()
        cfg.adversary = dataclasses.replace(cfg.adversary, num_models=4)
        players = _players(cfg)
        families = list(cfg.model.privacy)
        self.assertEqual(players.archs, [families[i % len(families)] for i in range(4)])
        self.assertLen(players.privacy, 4)
        self.assertLen({id(o) for o in players.privacy_opts}, 4)

    def test_restart_is_seeded_and_clears_the_optimizer(self):
        players = _players(_cfg())
        steps = Steps(players, B, joint=True, frame_idx=FRAMES)
        _, privacy = _batches()
        steps.privacy(privacy)
        players.reinitialise_privacy(seed=7)
        first = [_weights(m) for m in players.privacy]
        for opt in players.privacy_opts:
            for var in opt.variables:
                if "iteration" not in var.path and "learning_rate" not in var.path:
                    self.assertAllEqual(var.numpy(), np.zeros_like(var.numpy()), var.path)
        after_restart = np.random.rand()
        steps.privacy(privacy)
        players.reinitialise_privacy(seed=7)
        for model, weights in zip(players.privacy, first, strict=True):
            for a, b in zip(weights, model.get_weights(), strict=True):
                self.assertAllEqual(a, b)
        players.seed_as_after_reinitialise(seed=7)  # what a resumed run calls instead
        self.assertEqual(np.random.rand(), after_restart)


class StepsTest(tf.test.TestCase):
    def test_each_update_changes_only_its_own_weights(self):
        players = _players(_cfg())
        steps = Steps(players, B, joint=True, frame_idx=FRAMES)
        action, privacy = _batches()
        models = {"degrader": players.degrader, "target": players.target}
        models.update({f"privacy_{i}": m for i, m in enumerate(players.privacy)})
        privacy_names = {f"privacy_{i}" for i in range(len(players.privacy))}
        updates = {
            "target": (lambda: steps.target(action), {"target"}),
            "target_and_degrader": (
                lambda: steps.target_and_degrader(action),
                {"target", "degrader"},
            ),
            "privacy": (lambda: steps.privacy(privacy), privacy_names),
            "degrader": (lambda: steps.degrader(action, privacy), {"degrader"}),
            "identity": (lambda: steps.identity(action), {"degrader"}),
        }
        for kind, (run, owned) in updates.items():
            before = {name: _weights(m) for name, m in models.items()}
            out = run()
            for value in tf.nest.flatten(out):
                self.assertTrue(np.all(np.isfinite(value.numpy())), kind)
            for name, model in models.items():
                self.assertEqual(_changed(before[name], model), name in owned, (kind, name))

    def test_privacy_step_returns_one_loss_per_model(self):
        players = _players(_cfg())
        steps = Steps(players, B, joint=True, frame_idx=FRAMES)
        loss, acc = steps.privacy(_batches()[1])
        self.assertEqual(loss.shape, (2,))
        self.assertAllInRange(acc.numpy(), 0.0, 1.0)

    def test_loop_equals_single_steps(self):
        n = 3
        batches = [_batches(seed)[1] for seed in range(n)]
        single = _players(_cfg())
        steps = Steps(single, B, joint=True, frame_idx=FRAMES)
        for batch in batches:
            last = steps.privacy(batch)
        looped = _players(_cfg())
        loop_steps = Steps(looped, B, joint=True, frame_idx=FRAMES)
        data = tf.data.Dataset.from_tensor_slices(
            tuple(tf.stack(parts) for parts in zip(*batches, strict=True))
        )
        (loss, acc), first_bad = loop_steps.loop("privacy", iter(data), lambda e: e, n)
        self.assertEqual(int(first_bad), -1)
        self.assertAllClose(loss, last[0], rtol=1e-5, atol=1e-6)
        self.assertAllClose(acc, last[1])
        for a, b in zip(single.privacy, looped.privacy, strict=True):
            for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
                self.assertAllClose(wa, wb, rtol=1e-5, atol=1e-6)

    def test_loop_reports_the_first_non_finite_step(self):
        players = _players(_cfg())
        steps = Steps(players, B, joint=True, frame_idx=FRAMES)
        good = _batches()[1]
        bad = (tf.fill(good[0].shape, np.nan), good[1])
        data = tf.data.Dataset.from_tensor_slices(
            tuple(tf.stack(parts) for parts in zip(good, good, bad, good, strict=True))
        )
        _, first_bad = steps.loop("privacy", iter(data), lambda e: e, 4)
        self.assertEqual(int(first_bad), 2)

    def test_strategy_term_reaches_the_degrader(self):
        # gamma = 0: f_d's step sees only L_T; gamma > 0 adds the strategy's term.
        action, privacy = _batches()
        moved = {}
        for gamma in (0.0, 1.0):
            players = _players(_cfg(gamma=gamma))
            steps = Steps(players, B, joint=True, frame_idx=FRAMES)
            task, adv, anchor = steps.degrader(action, privacy)
            self.assertEqual(float(anchor), 0.0)  # no anchor without adversary.anchor_weight
            moved[gamma] = players.degrader.get_weights()
            self.assertTrue(np.isfinite(float(adv)))
        self.assertFalse(
            all(np.array_equal(a, b) for a, b in zip(moved[0.0], moved[1.0], strict=True))
        )

    def test_anchor_term_reaches_the_degrader(self):
        # Two identical players (same seed); only the first step adds the anchor's loss.
        action, privacy = _batches()
        moved = []
        for weight in (1.0, 0.0):
            players = _players(_cfg(anchor_weight=1.0))
            players.freeze_anchor()
            steps = Steps(players, B, joint=True, frame_idx=FRAMES)
            steps.anchor_weight = weight  # read when the step is traced, on its first call
            _, _, anchor = steps.degrader(action, privacy)
            self.assertEqual(float(anchor) > 0.0, weight > 0.0)
            moved.append(players.degrader.get_weights())
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(moved[0], moved[1], strict=True)))


class StreamsTest(tf.test.TestCase):
    def test_validation_split_is_deterministic_and_disjoint(self):
        records = list(range(50))
        train, val = split_validation(records)
        self.assertEqual((train, val), split_validation(records))
        self.assertLen(val, 5)
        self.assertEmpty(set(train) & set(val))
        self.assertEqual(sorted(train + val), records)

    def test_resumed_stream_continues_where_it_stopped(self):
        cfg = get_config("benchmark_tiny")
        strategy = tf.distribute.get_strategy()
        sources = build_sources(cfg.data)
        whole = Streams(cfg, sources, strategy)
        whole.start_phase(phase=1, consumed=(0, 0))
        drawn = [whole.next_action()[0].numpy() for _ in range(3)]
        self.assertEqual(whole.consumed, (3, 0))
        resumed = Streams(cfg, sources, strategy)
        resumed.start_phase(phase=1, consumed=(2, 0))
        self.assertAllEqual(resumed.next_action()[0].numpy(), drawn[2])
        # A multi-step loop draws from the same iterator and counts with advance().
        iterator, which, pick = resumed.loop_source("privacy")
        clips, labels = pick(next(iterator))
        resumed.advance(which, 1)
        self.assertEqual(resumed.consumed, (4, 0))
        self.assertEqual(clips.shape[1], len(resumed.frame_idx))
        self.assertEqual(labels.shape[-1], 5)

    def test_phases_draw_different_batches(self):
        cfg = get_config("benchmark_tiny")
        strategy = tf.distribute.get_strategy()
        streams = Streams(cfg, build_sources(cfg.data), strategy)
        firsts = []
        for phase in (1, 2):
            streams.start_phase(phase=phase, consumed=(0, 0))
            firsts.append(streams.next_action()[0].numpy())
        self.assertNotAllEqual(firsts[0], firsts[1])

    def test_unknown_loop_kind(self):
        cfg = get_config("benchmark_tiny")
        streams = Streams(cfg, build_sources(cfg.data), tf.distribute.get_strategy())
        with self.assertRaisesRegex(ValueError, "unknown kind 'video'"):
            streams.loop_source("video")


if __name__ == "__main__":
    tf.test.main()
