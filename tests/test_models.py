"""Tests for tfprivacy.models: shapes, ranges, seeding, gradients, frame averaging, twins."""

import dataclasses
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs import get_config
from tfprivacy import config as C
from tfprivacy import models
from tfprivacy.config import ModelConfig
from tfprivacy.models import privacy

CLIP = (4, 32, 32, 3)  # T, H, W, C: tiny so the suite stays fast on two shared cores
TINY = ModelConfig(degrader_width=4, degrader_res_blocks=1)


def _tiny(variant="full"):
    return dataclasses.replace(TINY, degrader=variant)


def _perturb(model, seed=0, scale=0.05):
    """Small random weights everywhere (incl. the zero-initialised delta conv) so that outputs
    differ from the input but stay unsaturated."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        base = 1.0 if "variance" in w.path or "gamma" in w.path else 0.0
        w.assign(base + scale * rng.standard_normal(w.shape).astype(np.float32))


def _clips(batch=2, seed=0):
    return tf.random.stateless_uniform((batch, *CLIP), seed=(seed, 1))


class DegraderTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.product(variant=models.DEGRADER_VARIANTS, norm=models.NORMS)
    def test_shape_range_and_identity_at_init(self, variant, norm):
        degrader = models.build_degrader(_tiny(variant), frame_size=32, norm=norm)
        x = _clips()[:, 0]
        if variant == "pyramid":  # gates start at sigmoid(-5): within the identity tolerance
            distance = float(tf.reduce_mean(tf.abs(degrader(x, training=False) - x)))
            self.assertLess(distance, 0.01)
        else:  # the delta conv starts at zero: f_d is exactly the identity before training
            self.assertAllClose(degrader(x, training=False), x)
        _perturb(degrader, scale=1.0)  # large weights: output must still be clipped to [0, 1]
        y = degrader(x, training=True)
        self.assertEqual(y.shape, x.shape)
        self.assertEqual(y.dtype, tf.float32)
        self.assertAllInRange(y, 0.0, 1.0)
        self.assertGreater(float(tf.reduce_max(tf.abs(y - x))), 0.0)

    def test_static_shapes_with_frame_size_dynamic_without(self):
        fixed = models.build_degrader(_tiny(), frame_size=32)
        self.assertEqual(tuple(fixed.output_shape), (None, 32, 32, 3))
        free = models.build_degrader(_tiny(), frame_size=None)
        self.assertEqual(tuple(free.output_shape), (None, None, None, 3))
        self.assertEqual(free(tf.zeros([1, 16, 24, 3])).shape, (1, 16, 24, 3))

    def test_light_runs_no_convolution_at_full_resolution(self):
        # The camera design: every conv sees at most half the frame's side (docs/camera.md,
        # "Which degrader on a camera").
        degrader = models.build_degrader(_tiny("light"), frame_size=32)
        convs = [
            layer
            for layer in degrader.layers
            if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D")
        ]
        self.assertNotEmpty(convs)
        for layer in convs:
            self.assertLessEqual(layer.output.shape[1], 16, layer.name)
        free = models.build_degrader(_tiny("light"), frame_size=None)
        self.assertEqual(tuple(free.output_shape), (None, None, None, 3))
        self.assertEqual(free(tf.zeros([1, 16, 24, 3])).shape, (1, 16, 24, 3))

    def test_pyramid_only_desaturates_and_smooths(self):
        degrader = models.build_degrader(_tiny("pyramid"), frame_size=32)
        (logits,) = [layer for layer in degrader.layers if layer.name.startswith("gate_logits")]
        kernel, bias = logits.get_weights()
        x = _clips(batch=3, seed=4)[:, 0]
        logits.set_weights([kernel, np.full_like(bias, -30.0)])  # every gate shut: x itself
        self.assertAllClose(degrader(x), x, atol=1e-6)
        logits.set_weights([kernel, np.full_like(bias, 30.0)])  # every gate open
        y = degrader(x).numpy()
        luma = np.tensordot(x.numpy(), [0.299, 0.587, 0.114], axes=1)
        self.assertAllClose(y[..., 0], y[..., 2], atol=1e-6)  # grey
        blocks = luma.reshape(3, 4, 8, 4, 8).mean(axis=(2, 4))  # the coarsest level's 8x8 means
        self.assertAllClose(
            y[:, 12:20, 12:20, 0].mean(axis=(1, 2)), blocks[:, 1:3, 1:3].mean((1, 2)), atol=0.03
        )
        self.assertLess(
            np.abs(np.diff(y, axis=1)).mean(), 0.3 * np.abs(np.diff(luma, axis=1)).mean()
        )
        rng = np.random.default_rng(0)  # any gates: each pixel a convex mix of input values
        for w in degrader.trainable_weights:
            w.assign(rng.standard_normal(w.shape).astype(np.float32))
        y = degrader(x).numpy()
        for frame, out in zip(x.numpy(), y, strict=True):
            self.assertGreaterEqual(out.min(), frame.min() - 1e-5)
            self.assertLessEqual(out.max(), frame.max() + 1e-5)

    def test_depth_to_space_layer_is_pixel_shuffle(self):
        import tf_keras

        x = tf.reshape(tf.range(2 * 3 * 12, dtype=tf.float32), (1, 2, 3, 12))
        for layers in (keras.layers, tf_keras.layers):
            layer = models.degrader.depth_to_space_layer(layers)(2)
            y = layer(x)
            self.assertEqual(y.shape, (1, 4, 6, 3))
            # Sub-pixel (i, j) of input pixel (h, w) lands at (2h + i, 2w + j).
            self.assertAllEqual(y[0, 2 * 1 + 1, 2 * 2 + 0], x[0, 1, 2, 6:9])
        layer = models.degrader.depth_to_space_layer(keras.layers)(2, name="d2s")
        restored = keras.layers.deserialize(keras.layers.serialize(layer))
        self.assertEqual((restored.block_size, restored.name), (2, "d2s"))

    def test_bad_arguments_are_named(self):
        with self.assertRaisesRegex(ValueError, "multiple of 4"):
            models.build_degrader(_tiny(), frame_size=30)
        with self.assertRaisesRegex(ValueError, "model.degrader"):
            models.build_degrader(_tiny("huge"))
        with self.assertRaisesRegex(ValueError, "norm"):
            models.build_degrader(_tiny(), norm="layer")

    def test_default_is_deployable_and_uses_registered_layers(self):
        # tfmot's default QAT scheme and TFLite's folding both know these layer types.
        allowed = {
            "InputLayer",
            "Conv2D",
            "DepthwiseConv2D",
            "BatchNormalization",
            "ReLU",
            "Add",
            "UpSampling2D",
            "DepthToSpace",  # weightless; serving.qat gives it a pass-through quantize config
            "AveragePooling2D",  # the pyramid's levels
            "BilinearUp",  # weightless; serving.qat gives it a pass-through quantize config
            "Activation",  # the pyramid's sigmoid gates
            "Subtract",  # the pyramid's blends: serving.qat quantizes their outputs
            "Multiply",
        }
        self.assertIn(models.DEGRADER_NORM, ("none", "batch"))
        self.assertEqual(ModelConfig().degrader_norm, models.DEGRADER_NORM)
        for variant in models.DEGRADER_VARIANTS:
            kinds = {type(layer).__name__ for layer in models.build_degrader(_tiny(variant)).layers}
            self.assertLessEqual(kinds, allowed, variant)

    @parameterized.parameters("none", "batch")
    def test_tf_keras_twin_matches(self, norm):
        import tf_keras

        cfg = _tiny("light")
        model = models.build_degrader(cfg, frame_size=32, norm=norm)
        twin = models.build_degrader(cfg, frame_size=32, norm=norm, keras_module=tf_keras)
        _perturb(model)
        twin.set_weights(model.get_weights())
        x = _clips()[:, 0]
        self.assertAllClose(twin(x, training=False), model(x, training=False), atol=1e-5)

    def test_degrade_clips_runs_per_frame(self):
        degrader = models.build_degrader(_tiny(), frame_size=32)
        _perturb(degrader)
        clips = _clips()
        out = models.degrade_clips(degrader, clips, training=False)
        self.assertEqual(out.shape, clips.shape)
        self.assertAllClose(out[1, 2], degrader(clips[1:2, 2], training=False)[0], atol=1e-6)
        with self.assertRaisesRegex(ValueError, "clips"):
            models.degrade_clips(degrader, clips[:, 0], training=False)


class DegraderRegistryTest(tf.test.TestCase):
    def test_a_registered_degrader_is_built_by_name_through_the_config(self):
        name = "test_only_toy"

        @models.register_degrader(name)
        def toy(recipes, frames, width, blocks):
            # x + a zero-initialised 1x1 conv of x: the identity until trained.
            delta = recipes.conv(frames, 3, 1, act=False, zero=True)
            return recipes.L.Add(name="toy_add")([frames, delta])

        self.addCleanup(models.unregister_degrader, name)  # other tests see the three again
        self.assertIn(name, models.degrader_names())
        self.assertIn(name, C.DEGRADERS)
        cfg = get_config("benchmark_tiny", [f"model.degrader={name}"])
        self.assertEqual(cfg.model.degrader, name)
        cfg = C.from_dict(C.ExperimentConfig, C.to_dict(cfg))  # as a saved run reads it back
        degrader = models.build_degrader(cfg.model, frame_size=32)
        self.assertIn("toy_add", [layer.name for layer in degrader.layers])
        x = _clips()[:, 0]
        self.assertAllClose(degrader(x, training=False), x)
        self.assertEqual(models.degrader.variant_multiple(name), 4)
        with self.assertRaisesRegex(ValueError, "registered twice"):
            models.register_degrader(name)(toy)

    def test_an_unknown_degrader_names_the_field_and_the_choices(self):
        with self.assertRaisesRegex(
            C.ConfigError, "model.degrader='toy': unknown 'toy'; allowed: full, light, pyramid"
        ):
            get_config("benchmark_tiny", ["model.degrader=toy"])
        with self.assertRaisesRegex(
            C.ConfigError, r"model.degrader: unknown variant 'toy'; use \('full', 'light', 'pyr"
        ):
            models.build_degrader(_tiny("toy"))
        with self.assertRaisesRegex(C.ConfigError, "model.degrader: unknown variant 'toy'"):
            models.degrader.variant_multiple("toy")


class FusedBatchNormTest(tf.test.TestCase):
    """The attackers' batch norm through TF's fused kernel is Keras' BatchNormalization."""

    def _pair(self, seed=0):
        from tfprivacy.models.privacy import BatchNormalization as FusedBatchNormalization

        keras.utils.set_random_seed(seed)
        x = tf.random.stateless_normal((6, 9, 7, 5), seed=(seed, 2)) * 3.0 + 1.5
        plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
        plain.build(x.shape)
        fused.build(x.shape)
        rng = np.random.default_rng(seed)
        weights = [rng.normal(1, 0.3, (5,)).astype(np.float32) for _ in range(2)]
        weights += [rng.normal(0, 0.5, (5,)).astype(np.float32), np.full(5, 2.0, np.float32)]
        plain.set_weights(weights)
        fused.set_weights(weights)
        return x, plain, fused

    def test_training_output_and_moving_statistics(self):
        x, plain, fused = self._pair()
        for _ in range(3):  # three updates of the moving averages
            want, got = plain(x, training=True), fused(x, training=True)
            self.assertAllClose(got, want, atol=1e-4)
        for a, b in zip(fused.get_weights(), plain.get_weights(), strict=True):
            self.assertAllClose(a, b, atol=1e-5)

    def test_inference_uses_the_moving_statistics(self):
        x, plain, fused = self._pair(1)
        self.assertAllClose(fused(x, training=False), plain(x, training=False), atol=1e-4)
        # Frozen (trainable=False) in training mode: the moving statistics, no update, as Keras.
        fused.trainable = plain.trainable = False
        self.assertAllClose(fused(x, training=True), plain(x, training=True), atol=1e-4)
        self.assertAllClose(fused.moving_mean, plain.moving_mean)

    def test_other_shapes_take_keras_path(self):
        from tfprivacy.models.privacy import BatchNormalization as FusedBatchNormalization

        x = tf.random.stateless_normal((4, 3, 5), seed=(3, 4))
        fused, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
        self.assertAllClose(fused(x, training=True), plain(x, training=True), atol=1e-5)

    def test_privacy_models_use_it_and_load_old_weights(self):
        from tfprivacy.models.privacy import BatchNormalization as FusedBatchNormalization

        model = models.build_privacy("plain", 5, CLIP, width=4)
        frame = models.frame_model_of(model)
        bns = [la for la in frame.layers if isinstance(la, keras.layers.BatchNormalization)]
        self.assertNotEmpty(bns)
        self.assertTrue(all(isinstance(la, FusedBatchNormalization) for la in bns))
        # Weights written by a model with Keras' own layer (before the fused one: caches and
        # judges' snapshots of earlier runs) load, and give the same outputs.
        with mock.patch.object(privacy, "BatchNormalization", keras.layers.BatchNormalization):
            old = models.build_privacy("plain", 5, CLIP, width=4)
        self.assertFalse(any(isinstance(la, FusedBatchNormalization) for la in old.layers))
        path = self.get_temp_dir() + "/privacy.weights.h5"
        _perturb(old, seed=3)
        old.save_weights(path)
        model.load_weights(path)
        clips = _clips(2)
        self.assertAllClose(model(clips), old(clips), atol=1e-5)
        self.assertAllClose(model(clips, training=True), old(clips, training=True), atol=1e-4)


class ClassifierTest(tf.test.TestCase, parameterized.TestCase):
    def tearDown(self):
        keras.mixed_precision.set_global_policy("float32")
        super().tearDown()

    @parameterized.parameters(*models.TARGET_ARCHS)
    def test_target_shapes(self, arch):
        model = models.build_target(arch, 7, CLIP, width=4)
        logits = model(_clips(3), training=False)
        self.assertEqual(logits.shape, (3, 7))
        self.assertEqual(logits.dtype, tf.float32)

    def test_diff3d_sees_motion_only(self):
        from tfprivacy.models.target import FrameDifference

        clips = np.arange(2 * 3 * 2 * 2 * 3, dtype=np.float32).reshape(2, 3, 2, 2, 3)
        diff = FrameDifference()(clips)
        self.assertAllClose(diff, clips[:, 1:] - clips[:, :-1])
        self.assertAllEqual(FrameDifference()(clips[:, :1]), np.zeros_like(clips[:, :1]))
        # A static clip (any scene, any brightness) gives the same logits as a black one.
        model = models.build_target("diff3d", 4, CLIP, width=4)
        frame = np.random.default_rng(0).random((1, 1, *CLIP[1:])).astype(np.float32)
        static = np.repeat(frame, CLIP[0], axis=1)
        black = np.zeros_like(static)
        self.assertAllClose(model(static, training=False), model(black, training=False))

    @parameterized.parameters(*models.PRIVACY_ARCHS)
    def test_privacy_shapes(self, arch):
        model = models.build_privacy(arch, 5, CLIP, width=4)
        self.assertEqual(model(_clips(3), training=False).shape, (3, 5))
        self.assertEqual(models.frame_model_of(model) is None, arch == "video")

    @parameterized.parameters(*models.FRAME_ARCHS)
    def test_frame_model_on_images(self, arch):
        model = models.build_privacy_frame_model(arch, 5, (32, 32, 3), width=4)
        self.assertEqual(model(tf.zeros([2, 32, 32, 3])).shape, (2, 5))

    @parameterized.parameters(*models.FRAME_ARCHS)
    def test_frame_logits_are_averaged_over_time(self, arch):
        model = models.build_privacy(arch, 5, CLIP, width=4)
        frame_model = models.frame_model_of(model)
        clips = _clips(2)
        # Identical frames: the clip logits are the frame model's logits.
        same = tf.repeat(clips[:, :1], CLIP[0], axis=1)
        self.assertAllClose(model(same), frame_model(clips[:, 0]), atol=1e-5)
        # Different frames: the mean of the per-frame logits.
        per_frame = tf.stack([frame_model(clips[:, t]) for t in range(CLIP[0])], axis=1)
        self.assertAllClose(model(clips), tf.reduce_mean(per_frame, axis=1), atol=1e-5)

    def test_wrapped_frame_model_shares_weights(self):
        frame_model = models.build_privacy_frame_model("plain", 5, CLIP[1:], width=4)
        clip_model = models.wrap_frame_model(frame_model, CLIP)
        self.assertLen(clip_model.trainable_variables, len(frame_model.trainable_variables))
        for a, b in zip(
            clip_model.trainable_variables, frame_model.trainable_variables, strict=True
        ):
            self.assertIs(a, b)

    def test_unknown_arch_and_bad_shape_are_named(self):
        with self.assertRaisesRegex(ValueError, "c3d_huge"):
            models.build_target("c3d_huge", 3, CLIP)
        with self.assertRaisesRegex(ValueError, "video"):
            models.build_privacy_frame_model("video", 5, CLIP[1:])
        with self.assertRaisesRegex(ValueError, "clip_shape"):
            models.build_privacy("plain", 5, (32, 32, 3))

    @parameterized.parameters("target", "privacy", "degrader")
    def test_seed_determinism(self, kind):
        def build():
            if kind == "target":
                return models.build_target("c3d_small", 3, CLIP, width=4)
            if kind == "privacy":
                return models.build_privacy("residual", 5, CLIP, width=4)
            return models.build_degrader(_tiny(), frame_size=32)

        keras.utils.set_random_seed(3)
        first = [w.numpy() for w in build().weights]
        keras.utils.set_random_seed(3)
        second = [w.numpy() for w in build().weights]
        keras.utils.set_random_seed(4)
        other = [w.numpy() for w in build().weights]
        for a, b in zip(first, second, strict=True):
            self.assertAllEqual(a, b)
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(first, other, strict=True)))

    @parameterized.parameters(
        ("target", "c3d_small"),
        ("target", "c3d_wide"),
        ("target", "r2plus1d"),
        ("privacy", "plain"),
        ("privacy", "residual"),
        ("privacy", "depthwise"),
        ("privacy", "video"),
    )
    def test_forward_backward_reaches_every_weight(self, kind, arch):
        if kind == "target":
            model = models.build_target(arch, 3, CLIP, width=4)
        else:
            model = models.build_privacy(arch, 5, CLIP, width=4)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(_clips(2), training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        self.assertTrue(all(g is not None for g in grads))
        self.assertTrue(all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads))

    def test_mixed_precision_keeps_float32_outputs(self):
        # bfloat16: the CPU has no float16 MaxPool3D kernel; on GPU mixed_float16 behaves alike.
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        clips = _clips(2)
        degraded = models.degrade_clips(
            models.build_degrader(_tiny(), frame_size=32), clips, training=True
        )
        self.assertEqual(degraded.dtype, tf.float32)
        self.assertAllClose(degraded, clips, atol=1e-6)  # identity at init survives the cast
        for model in (
            models.build_target("r2plus1d", 3, CLIP, width=4),
            models.build_privacy("depthwise", 5, CLIP, width=4),
        ):
            self.assertEqual(model(clips).dtype, tf.float32)

    def test_runs_under_a_distribution_strategy(self):
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            degrader = models.build_degrader(_tiny("light"), frame_size=32)
            privacy = models.build_privacy("plain", 5, CLIP, width=4)
            optimizer = keras.optimizers.Adam(1e-2)
        variables = degrader.trainable_variables + privacy.trainable_variables

        @tf.function
        def step(clips):
            def replica_step(clips):
                with tf.GradientTape() as tape:
                    logits = privacy(models.degrade_clips(degrader, clips, True), training=True)
                    loss = tf.reduce_mean(tf.square(logits))
                optimizer.apply(tape.gradient(loss, variables), variables)
                return loss

            return strategy.run(replica_step, (clips,))

        first = float(step(_clips(2)))
        self.assertTrue(np.isfinite(first))
        self.assertTrue(np.isfinite(float(step(_clips(2)))))


if __name__ == "__main__":
    tf.test.main()
