"""Tests for serving/qat.py: tf_keras twin, weight copy, tfmot QAT distillation, int8 TFLite."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs.experiments import get_config
from serving import qat, tflite
from tfprivacy.models import build_degrader

SIZE = 32


def _trained_like_degrader(norm=None, seed=0, variant="full"):
    keras.utils.set_random_seed(seed)
    cfg = get_config("benchmark_tiny").model
    cfg.degrader = variant
    model = build_degrader(cfg, frame_size=SIZE, norm=norm)
    # Give the zero-initialised last conv (identity f_d) some weights, as training would.
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "kernel" in w.path and not np.any(w.numpy()):
            w.assign(rng.normal(0, 0.05, w.shape).astype(np.float32))
    return model, cfg


def _frames(n, seed=1):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 3), dtype=np.float32)


class TwinTest(tf.test.TestCase):
    def test_copied_twin_matches_float_model(self):
        for norm in ("none", "batch"):
            model, cfg = _trained_like_degrader(norm)
            twin = qat.build_twin(cfg, SIZE, norm=norm)
            self.assertEqual(type(twin).__module__.split(".")[0], "tf_keras")
            qat.copy_weights(model, twin)
            x = _frames(2)
            self.assertAllClose(twin(x, training=False), model(x, training=False), atol=1e-5)

    def test_mismatched_twin_is_named(self):
        model, cfg = _trained_like_degrader()
        cfg.degrader = "light"  # a twin of another variant
        twin = qat.build_twin(cfg, SIZE)
        with self.assertRaisesRegex(qat.QATError, "does not line up"):
            qat.copy_weights(model, twin)

    def test_bad_frames(self):
        model, cfg = _trained_like_degrader()
        with self.assertRaisesRegex(qat.QATError, "frames: shape"):
            qat.qat_finetune(model, cfg, np.zeros((2, 16, 16, 3), np.float32), SIZE, steps=1)


class QatTest(tf.test.TestCase, parameterized.TestCase):
    # "light" has a DepthToSpace layer outside tfmot's registry (a pass-through config).
    @parameterized.parameters("full", "light")
    def test_finetune_reduces_loss_and_converts_to_int8(self, variant):
        model, cfg = _trained_like_degrader(variant=variant)
        frames = _frames(16)
        qat_model, history = qat.qat_finetune(
            model, cfg, frames, SIZE, steps=12, batch_size=4, learning_rate=1e-3
        )
        self.assertLen(history, 12)
        self.assertLess(np.mean(history[-3:]), np.mean(history[:3]))
        fb = qat.convert_qat(qat_model, SIZE, frames)
        runner = tflite.TFLiteDegrader(fb)
        self.assertEqual(runner.input_dtype, np.int8)
        test = _frames(4, seed=5)
        reference = model(test, training=False).numpy()
        self.assertGreater(tflite.psnr(reference, runner(test)), 25.0)
        # The QAT wrapper around the output clip is unwrapped at export like the float model's:
        # relu-then-minimum, the RELU fused into the residual ADD (no standalone int8 RELU).
        ops = [o["op_name"] for o in runner.interpreter._get_ops_details()]
        self.assertEqual(ops.count("MINIMUM"), 1)
        self.assertNotIn("RELU", ops)


if __name__ == "__main__":
    tf.test.main()
