"""The two-fold protocol on tiny in-memory splits (no video decoding)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from configs.experiments import get_config
from tfprivacy.eval import baselines, fit, protocol


def _cfg(panel=("plain", "video"), finetune=()):
    cfg = get_config("benchmark_tiny")
    cfg.eval = dataclasses.replace(
        cfg.eval,
        privacy_panel=panel,
        finetune_panel=finetune,
        target_width=4,
        privacy_width=4,
        target_epochs=1,
        privacy_epochs=1,
        pretrain_epochs=1,
        finetune_epochs=1,
        batch_size=4,
        privacy_batch_size=8,
        bootstrap=50,
    )
    return cfg


def _splits(images=False, n=8):
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (n, 4, 32, 32, 3), dtype=np.uint8)
    actions = (np.arange(n) % 3).astype(np.int32)
    labels = (rng.random((n, 5)) < 0.5).astype(np.float32)
    labels[0] = 1  # every attribute has a positive, so AP is defined
    if images:
        imgs = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return protocol.EvalSplits(
            (clips, actions),
            (clips, actions),
            (imgs, labels),
            (imgs, labels),
            3,
            privacy_on_images=True,
        )
    return protocol.EvalSplits(
        (clips, actions), (clips, actions), (clips, labels), (clips, labels), 3, shared=True
    )


class DictCache:
    def __init__(self):
        self.data = {}

    def get(self, seed):
        return self.data.get(seed)

    def put(self, seed, result):
        self.data[seed] = result


class ProtocolTest(tf.test.TestCase, parameterized.TestCase):
    def test_to_uint8_rounds_and_clips(self):
        self.assertAllEqual(protocol.to_uint8([-0.1, 0.0, 0.5, 1.0, 1.5]), [0, 0, 128, 255, 255])

    def test_degrade_array_keeps_shape_and_applies_fn(self):
        x = np.full((2, 3, 8, 8, 3), 200, np.uint8)
        # Halving: 200/255 * 0.5 * 255 = 100 exactly.
        y = protocol.degrade_array(lambda f: f * 0.5, x, chunk_frames=4)
        self.assertEqual(y.shape, x.shape)
        self.assertAllEqual(y, np.full_like(x, 100))

    def test_degrade_array_rejects_shape_change(self):
        with self.assertRaisesRegex(ValueError, "keep the frame shape"):
            protocol.degrade_array(lambda f: f[:, ::2], np.zeros((2, 8, 8, 3), np.uint8))

    def test_shared_splits_degraded_once(self):
        calls = []

        def fn(frames):
            calls.append(int(frames.shape[0]))
            return frames

        splits = _splits()
        out = protocol.degrade_splits(fn, splits)
        # Train and test clips only: 8 clips x 4 frames each, the privacy side is shared.
        self.assertEqual(sum(calls), 2 * 8 * 4)
        self.assertIs(out.privacy_train[0], out.action_train[0])

    def test_chance_levels(self):
        splits = _splits()
        chance = splits.chance()
        self.assertAllClose(chance["action_top1"], 1 / 3)
        self.assertAllClose(chance["cmap"], splits.privacy_test[1].mean())

    def test_panel_drops_video_on_images(self):
        cfg = _cfg(("plain", "residual", "depthwise", "video"), finetune=("plain",))
        self.assertEqual(
            protocol.panel_archs(cfg, True), ["plain", "residual", "depthwise", "plain_ft"]
        )
        self.assertLen(protocol.panel_archs(cfg, False), 5)

    def test_aggregate_worst_case_per_seed(self):
        def priv(cmap):
            return {
                "cmap": cmap,
                "macro_f1": cmap / 2,
                "ap": dict.fromkeys(
                    ("skin_color", "face", "gender", "nudity", "relationship"), cmap
                ),
            }

        seeds = []
        for seed, (a, b, top1) in enumerate([(0.6, 0.8, 0.5), (0.9, 0.7, 0.7)]):
            seeds.append(
                {
                    "seed": seed,
                    "action_top1": top1,
                    "target": {"arch": "c3d_wide"},
                    "panel": {"plain": priv(a), "video": priv(b)},
                    "worst_case": {"model": "video" if b > a else "plain", **priv(max(a, b))},
                }
            )
        agg = protocol.aggregate(seeds)
        # Worst case per seed: 0.8 (video), 0.9 (plain): mean 0.85, population std 0.05.
        self.assertAllClose(agg["worst_case"]["cmap"]["mean"], 0.85)
        self.assertAllClose(agg["worst_case"]["cmap"]["std"], 0.05)
        self.assertEqual(agg["worst_case"]["models"], ["video", "plain"])
        self.assertAllClose(agg["action_top1"]["mean"], 0.6)
        self.assertAllClose(agg["panel"]["plain"]["cmap"]["mean"], 0.75)

    def test_evaluate_degrader_clips_and_cache(self):
        cfg = _cfg()
        cache = DictCache()
        r = protocol.evaluate_degrader(
            baselines.get_baseline("down2"), _splits(), cfg, 1, name="down2", seed_cache=cache
        )
        self.assertEqual(r["seeds"], [0])
        self.assertEqual(set(r["panel"]), {"plain", "video"})
        self.assertBetween(r["action_top1"]["mean"], 0.0, 1.0)
        worst = max(r["panel"], key=lambda a: r["panel"][a]["cmap"]["mean"])
        self.assertAllClose(r["worst_case"]["cmap"]["mean"], r["panel"][worst]["cmap"]["mean"])
        self.assertIn(0, cache.data)
        # Intervals over test items and seeds bracket the point estimates; per-item
        # predictions stay in the cache, not in the aggregated result.
        for stat in (r["action_top1"], r["worst_case"]["cmap"], r["feature_probe"]["cmap"]):
            lo, hi = stat["ci"]
            self.assertLessEqual(lo, hi)
        self.assertNotIn("correct", r["per_seed"][0]["target"])
        self.assertLen(cache.data[0]["target"]["correct"], 8)

        def fail(frames):
            raise AssertionError("a fully cached degrader must not be run")

        again = protocol.evaluate_degrader(fail, _splits(), cfg, 1, seed_cache=cache)
        self.assertEqual(again["cached_seeds"], [0])
        self.assertEqual(again["worst_case"]["cmap"], r["worst_case"]["cmap"])

    def test_fresh_models_are_deterministic(self):
        # benchmarks.quantized_eval reuses float's results for bit-identical output: that is
        # only honest if the same inputs and seed give the same figures.
        cfg = _cfg()
        a = protocol.evaluate_seed(_splits(), cfg, 3)
        b = protocol.evaluate_seed(_splits(), cfg, 3)
        self.assertEqual(a["action_top1"], b["action_top1"])
        self.assertEqual(a["worst_case"], b["worst_case"])

    def test_transfer_scores_other_test_splits_with_the_same_models(self):
        cfg = _cfg()
        splits = _splits()
        dark = protocol.degrade_splits(lambda f: f * 0.2, splits)
        r = protocol.evaluate_seed(splits, cfg, 0, transfer={"same": splits, "dark": dark})
        same = r["transfer"]["same"]
        self.assertEqual(same["action_top1"], r["action_top1"])
        self.assertEqual(same["worst_case"]["cmap"], r["worst_case"]["cmap"])
        self.assertBetween(r["transfer"]["dark"]["action_top1"], 0.0, 1.0)
        self.assertIn(r["transfer"]["dark"]["worst_case"]["model"], ("plain", "video"))

    def test_lr_schedule_is_checked(self):
        cfg = _cfg()
        cfg.eval = dataclasses.replace(cfg.eval, lr_schedule="step")
        with self.assertRaisesRegex(ValueError, "eval.lr_schedule"):
            protocol.train_target(_splits(), cfg, 0)

    def test_sampled_clips_do_not_depend_on_the_global_seed(self):
        from tfprivacy.data.sources import build_sources

        cfg = get_config("benchmark_tiny")
        sources = build_sources(cfg.data)
        arrays = []
        for global_seed in (1, 2):
            tf.random.set_seed(global_seed)  # what training leaves behind in the main job
            tf.random.uniform([4])
            arrays.append(protocol.materialize_splits(sources, cfg).action_train[0])
        self.assertAllEqual(arrays[0], arrays[1])

    def test_finetuned_attacker_pretrains_on_raw_once(self):
        cfg = _cfg(("plain",), finetune=("plain",))
        splits = _splits()
        store = protocol.PretrainedWeights(self.get_temp_dir())
        r = protocol.evaluate_seed(splits, cfg, 0, raw=splits, pretrained=store)
        self.assertIn("plain_ft", r["panel"])
        key = protocol._pretrained_key(cfg, 0, "plain")
        self.assertIn(key, store._memory)
        protocol.PretrainedWeights._memory.clear()  # a new process: the file remains
        calls = []
        orig = fit._fit  # train_privacy's fitting loop lives in eval/fit.py
        try:
            fit._fit = lambda *a, **k: calls.append(a[5]) or orig(*a, **k)
            again = protocol.train_privacy("plain_ft", splits, cfg, 0, raw=splits, pretrained=store)
        finally:
            fit._fit = orig
        # Only the fine-tuning ran (finetune_epochs), not the raw pretraining.
        self.assertEqual(calls, [cfg.eval.finetune_epochs])
        self.assertEqual(again["cmap"], r["panel"]["plain_ft"]["cmap"])

    def _fit_descs(self, fn):
        calls, orig = [], fit._fit
        try:
            fit._fit = lambda *a, **k: calls.append(a[7]) or orig(*a, **k)
            result = fn()
        finally:
            fit._fit = orig
        return calls, result

    @parameterized.parameters(True, False)
    def test_raw_from_scratch_attacker_is_the_pretraining(self, equal_epochs):
        cfg = _cfg(("plain",), finetune=("plain",))
        if not equal_epochs:
            cfg.eval = dataclasses.replace(cfg.eval, pretrain_epochs=2)
        splits = _splits()
        # Equal content in another array: what the raw baseline's degrade step returns.
        degraded = dataclasses.replace(
            splits, privacy_train=(splits.privacy_train[0].copy(), splits.privacy_train[1])
        )
        protocol.PretrainedWeights._memory.clear()
        store = protocol.PretrainedWeights()
        calls, r = self._fit_descs(
            lambda: protocol.evaluate_seed(degraded, cfg, 0, raw=splits, pretrained=store)
        )
        privacy_calls = [c for c in calls if c.startswith("privacy")]
        self.assertIn(protocol._pretrained_key(cfg, 0, "plain"), store._memory)
        if equal_epochs:  # raw's "plain" is the pretraining: trained once, then fine-tuned
            self.assertEqual(privacy_calls, ["privacy plain", "privacy plain_ft"])
        else:
            self.assertEqual(
                privacy_calls, ["privacy plain", "privacy plain on raw", "privacy plain_ft"]
            )
        self.assertIn("plain_ft", r["panel"])
        # Other training frames: the from-scratch attacker trains, whatever the store holds.
        other = dataclasses.replace(
            splits, privacy_train=(255 - splits.privacy_train[0], splits.privacy_train[1])
        )
        calls, _ = self._fit_descs(
            lambda: protocol.train_privacy("plain", other, cfg, 0, raw=splits, pretrained=store)
        )
        self.assertEqual(calls, ["privacy plain"])

    def test_finetuned_attacker_needs_raw_splits(self):
        cfg = _cfg(("plain",), finetune=("plain",))
        with self.assertRaisesRegex(ValueError, "raw splits"):
            protocol.train_privacy("plain_ft", _splits(), cfg, 0)

    def test_frame_attackers_train_on_single_frames_with_their_labels(self):
        splits = _splits()
        frame_labels = np.zeros((8, 4, 5), np.float32)
        frame_labels[:, 2] = 1.0  # present only in frame 2 of each clip
        splits = dataclasses.replace(splits, privacy_train_frame_labels=frame_labels)
        x, y = protocol._frame_training_set(splits, 0)
        self.assertEqual(x.shape, (32, 32, 32, 3))
        self.assertAllEqual(y.reshape(8, 4, 5)[:, 2], np.ones((8, 5)))
        self.assertEqual(y.sum(), 8 * 5)
        x2, y2 = protocol._frame_training_set(splits, 2)  # frames 0 and 3
        self.assertEqual(x2.shape[0], 16)
        self.assertEqual(y2.sum(), 0)

    def test_evaluate_degrader_images_skip_video_model(self):
        r = protocol.evaluate_degrader(lambda f: f, _splits(images=True), _cfg(), 1)
        self.assertEqual(list(r["panel"]), ["plain"])
        self.assertEqual(r["sizes"]["privacy_train"], 8)

    def test_learns_a_separable_task(self):
        # Action = brightness level of the whole clip, attribute 0 = red channel on: both are
        # trivially separable, so a few epochs must beat chance by far.
        n = 24
        rng = np.random.default_rng(1)
        actions = (np.arange(n) % 2).astype(np.int32)
        labels = np.zeros((n, 5), np.float32)
        labels[:, 0] = (np.arange(n) // 2) % 2
        labels[:, 1:] = rng.random((n, 4)) < 0.5
        clips = np.zeros((n, 4, 32, 32, 3), np.uint8)
        # Action 1 flickers between frames, action 0 is still: motion, which every target
        # (the frame-difference one too) sees.
        flicker = actions[:, None] * (np.arange(4)[None, :] % 2)
        clips[...] = (40 + 160 * flicker)[:, :, None, None, None]
        clips[..., 0] = np.where(labels[:, 0, None, None, None] > 0, 255, 0)
        splits = protocol.EvalSplits(
            (clips, actions), (clips, actions), (clips, labels), (clips, labels), 2, shared=True
        )
        cfg = _cfg(("plain",))
        cfg.eval = dataclasses.replace(
            cfg.eval, target_epochs=8, privacy_epochs=8, learning_rate=1e-2
        )
        r = protocol.evaluate_degrader(lambda f: f, splits, cfg, 1)
        self.assertGreater(r["action_top1"]["mean"], 0.9)
        self.assertGreater(r["worst_case"]["ap"]["skin_color"]["mean"], 0.9)


def _bce(y, z):
    """Elementwise BCE from logits in float64 (the reference for the masked loss)."""
    z = np.asarray(z, np.float64)
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


class UnknownLabelsTest(tf.test.TestCase):
    """Labels -1 (no annotation covers the frame): left out of the attackers' loss and scores."""

    def test_privacy_fit_loss_is_keras_bce_unless_a_label_is_unknown(self):
        labels = _splits().privacy_train[1]
        loss = protocol.privacy_fit_loss(labels)
        # Without -1 the attackers train with Keras' own loss object, as before: figures on
        # fully annotated data (the built-in benchmark) cannot move.
        self.assertIs(type(loss), keras.losses.BinaryCrossentropy)
        self.assertTrue(loss.get_config()["from_logits"])
        unknown = labels.copy()
        unknown[1, 2] = -1
        self.assertIsInstance(protocol.privacy_fit_loss(unknown), protocol.MaskedBinaryCrossentropy)

    def test_masked_bce_leaves_unknown_entries_out(self):
        rng = np.random.default_rng(0)
        y = (rng.random((16, 5)) < 0.4).astype(np.float32)
        z = (3 * rng.standard_normal((16, 5))).astype(np.float32)
        masked = protocol.MaskedBinaryCrossentropy()
        keras_bce = keras.losses.BinaryCrossentropy(from_logits=True)
        # Nothing unknown: Keras' value (the masked loss is not used then, see above).
        self.assertAllClose(masked(y, z), keras_bce(y, z), rtol=1e-6, atol=0)
        y[rng.random((16, 5)) < 0.3] = -1
        y[3] = -1  # an example with nothing known contributes 0
        known = y >= 0
        per_entry = np.where(known, _bce(np.maximum(y, 0), z), 0.0)
        per_example = per_entry.sum(1) / np.maximum(known.sum(1), 1)
        self.assertEqual(per_example[3], 0.0)
        self.assertAllClose(masked(y, z), per_example.mean(), rtol=1e-6, atol=0)
        # Keras trains with it (traced, as model.fit runs it) and gets a finite loss.
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5)])
        model.compile(optimizer="sgd", loss=masked)
        history = model.fit(z, y, batch_size=8, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())

    def test_clip_and_frame_labels_keep_unknown(self):
        frame_labels = np.zeros((8, 4, 5), np.float32)
        frame_labels[:, 2, 0] = 1.0
        frame_labels[:, 0, 1] = -1.0  # frame 0 uncovered for face: frames 1-3 decide (absent)
        frame_labels[0, :, 2] = -1.0  # no frame of clip 0 covered for gender: unknown
        clip = protocol._clip_labels(frame_labels)
        self.assertAllEqual(clip[0], [1, 0, -1, 0, 0])
        self.assertAllEqual(clip[1], [1, 0, 0, 0, 0])
        splits = dataclasses.replace(_splits(), privacy_train_frame_labels=frame_labels)
        _, y = protocol._frame_training_set(splits, 0)
        self.assertAllEqual(y.reshape(8, 4, 5), frame_labels)

    def test_chance_prevalence_over_known_labels(self):
        splits = _splits()
        exact = splits.chance()
        self.assertEqual(
            list(exact["prevalence"].values()), splits.privacy_test[1].mean(axis=0).tolist()
        )
        labels = splits.privacy_test[1].copy()
        labels[1:4, 0] = -1
        splits = dataclasses.replace(splits, privacy_test=(splits.privacy_test[0], labels))
        chance = splits.chance()
        known = labels[labels[:, 0] >= 0, 0]
        self.assertAllClose(chance["prevalence"]["skin_color"], known.mean())
        self.assertAllClose(chance["cmap"], np.mean([known.mean(), *labels[:, 1:].mean(axis=0)]))

    def test_feature_probe_leaves_unknown_clips_out(self):
        inputs = keras.Input((4, 32, 32, 3))
        features = keras.Model(inputs, keras.layers.GlobalAveragePooling3D()(inputs))
        splits = _splits()
        labels = splits.privacy_train[1].copy()
        labels[:, 0] = np.arange(8) % 2 == 0
        labels[1:3, 0] = -1  # two clips of unknown skin_color
        labels[:, 1] = -1  # face unknown everywhere: nothing to learn
        splits = dataclasses.replace(splits, privacy_train=(splits.privacy_train[0], labels))
        result = protocol.feature_probe(features, splits, 4)
        probs = np.array(result["probs"])
        self.assertAllEqual(probs[:, 1], np.zeros(8))
        # skin_color: the logistic regression fitted on the known clips only.
        train_x = protocol._predict(features, splits.privacy_train[0], 4)
        scaler = StandardScaler().fit(train_x)
        known = labels[:, 0] >= 0
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(
            scaler.transform(train_x)[known], labels[known, 0]
        )
        test_x = scaler.transform(protocol._predict(features, splits.privacy_test[0], 4))
        self.assertAllClose(probs[:, 0], clf.predict_proba(test_x)[:, 1], atol=1e-6)
        self.assertTrue(np.isfinite(result["cmap"]))


if __name__ == "__main__":
    tf.test.main()
