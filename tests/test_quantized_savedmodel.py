"""Tests for serving/quantized_savedmodel.py: int8 variables, same signature, <= 30% bytes."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs.experiments import get_config
from serving import export as E
from serving import quantized_savedmodel as Q
from serving import signatures as S
from tfprivacy.models import build_degrader


def _degrader(name, variant="full"):
    keras.utils.set_random_seed(0)
    cfg = get_config(name).model
    cfg.degrader = variant
    model = build_degrader(cfg)
    rng = np.random.default_rng(0)
    for w in model.weights:  # the zero last conv (identity f_d) would hide the dequantization
        if "kernel" in w.path and not np.any(w.numpy()):
            w.assign(rng.normal(0, 0.05, w.shape).astype(np.float32))
    return model


class QuantizePerChannelTest(tf.test.TestCase):
    def test_hand_values(self):
        w = np.array([[1.27, -0.5], [-0.635, 0.25]], np.float32)  # channels = last axis
        q, scale = Q.quantize_per_channel(w, axis=1)
        # channel 0: max|w| = 1.27 -> scale 0.01 -> [127, -63.5 -> -64]; channel 1: 0.5 -> 0.5/127.
        self.assertAllClose(scale, [[0.01, 0.5 / 127]])
        self.assertAllEqual(q, [[127, -127], [-64, 64]])
        self.assertEqual(q.dtype, np.int8)

    def test_zero_channel(self):
        q, scale = Q.quantize_per_channel(np.zeros((3, 2), np.float32), axis=1)
        self.assertAllEqual(q, np.zeros((3, 2)))
        self.assertAllEqual(scale, np.ones((1, 2)))


class ExportQuantizedTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters("full", "light")
    def test_same_signature_close_output_and_small_variables(self, variant):
        model = _degrader("benchmark", variant)  # the project's default width and blocks
        base = self.get_temp_dir()
        float_dir = E.export_degrader(model, base)
        quant_dir = Q.export_quantized(model, base)
        self.assertEqual(os.path.basename(os.path.dirname(quant_dir)), "degrader_int8")
        ratio = Q.variables_bytes(quant_dir) / Q.variables_bytes(float_dir)
        self.assertLess(ratio, 0.30)
        # No float kernel leaked into the checkpoint: every stored kernel is int8, and the
        # float32 values are the biases plus one scale per kernel channel.
        reader = tf.train.load_checkpoint(os.path.join(quant_dir, "variables", "variables"))
        dtypes = reader.get_variable_to_dtype_map()
        stored = {tf.int8: 0, tf.float32: 0}
        for k, shape in reader.get_variable_to_shape_map().items():
            if dtypes[k] in stored:
                stored[dtypes[k]] += int(np.prod(shape))
        kernels = [w for w in model.weights if len(w.shape) >= 2]
        small = sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) < 2)
        channels = sum(int(w.shape[2] if "depthwise" in w.path else w.shape[-1]) for w in kernels)
        self.assertEqual(stored[tf.int8], sum(int(np.prod(w.shape)) for w in kernels))
        self.assertEqual(stored[tf.float32], small + channels)

        sig_f = tf.saved_model.load(float_dir).signatures[S.SIGNATURE_KEY]
        sig_q = tf.saved_model.load(quant_dir).signatures[S.SIGNATURE_KEY]
        self.assertEqual(sig_q.structured_outputs.keys(), {S.OUTPUT_KEY})
        frames = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        out_f = sig_f(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY].numpy()
        out_q = sig_q(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY].numpy()
        self.assertEqual(out_q.dtype, np.uint8)
        self.assertEqual(out_q.shape, frames.shape)
        self.assertGreater(float(np.mean(out_f != frames)), 0.5)  # the degrader does something
        # int8 weights move the uint8 output by a few levels at most.
        self.assertLess(np.abs(out_f.astype(int) - out_q.astype(int)).mean(), 2.0)

    def test_missing_variables_is_named(self):
        with self.assertRaisesRegex(FileNotFoundError, "variables"):
            Q.variables_bytes(self.get_temp_dir())


if __name__ == "__main__":
    tf.test.main()
