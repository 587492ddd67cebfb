"""Tests for serving/tflite.py: conversion per quant type, the LiteRT runner, PSNR."""

import contextlib
import io
import os
import re

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from configs.experiments import get_config
from serving import tflite
from serving.frame_size import pad_frame
from tests.cli_util import call_main
from tfprivacy import runtime
from tfprivacy.artifacts import save_degrader
from tfprivacy.models import build_degrader

SIZE = 32


def _degrader(seed=0):
    keras.utils.set_random_seed(seed)
    cfg = get_config("benchmark_tiny")
    model = build_degrader(cfg.model, frame_size=SIZE)
    # D's last conv starts at zero (f_d = identity); perturb it so the test sees real compute.
    for w in model.weights:
        if "kernel" in w.path and not np.any(w.numpy()):
            w.assign(np.random.default_rng(seed).normal(0, 0.05, w.shape).astype(np.float32))
    return model, cfg


def _frames(n=4, seed=0):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 3), dtype=np.float32)


class PsnrTest(tf.test.TestCase):
    def test_known_values(self):
        a = np.zeros((2, 2))
        # mse = 0.01 -> 10*log10(1/0.01) = 20 dB.
        self.assertAllClose(tflite.psnr(a, a + 0.1), 20.0)
        # 8-bit scale: mse = 255^2/100 -> 20 dB as well.
        self.assertAllClose(tflite.psnr(a, a + 25.5, max_val=255.0), 20.0)
        self.assertEqual(tflite.psnr(a, a), float("inf"))

    def test_shape_mismatch(self):
        with self.assertRaisesRegex(tflite.TFLiteError, "psnr: shapes differ"):
            tflite.psnr(np.zeros(3), np.zeros(4))

    def test_floor_warns_on_a_collapsed_conversion(self):
        lines, ok = tflite.psnr_lines({"float32": {"psnr_db": 60.0}, "int8": {"psnr_db": 2.8}})
        self.assertFalse(ok)
        self.assertNotIn("WARNING", lines[0])
        self.assertIn("PSNR vs float 2.8 dB  WARNING: below the 20 dB floor", lines[1])
        self.assertTrue(tflite.psnr_lines({"int8": {"psnr_db": 48.0, "bytes": 10}})[1])


class ConvertTest(tf.test.TestCase, parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model, cls.cfg = _degrader()
        cls.frames = _frames()
        cls.reference = cls.model(cls.frames, training=False).numpy()

    @parameterized.parameters(
        ("float32", 60.0), ("float16", 40.0), ("dynamic", 30.0), ("int8", 25.0)
    )
    def test_quant_types_match_float(self, quant, min_psnr):
        rep = _frames(8, seed=1) if quant == "int8" else None
        path = os.path.join(self.get_temp_dir(), f"{quant}.tflite")
        fb = tflite.convert(self.model, SIZE, quant, rep, output_path=path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), fb)
        runner = tflite.TFLiteDegrader(path, num_threads=1)
        self.assertEqual(runner.frame_shape, (SIZE, SIZE, 3))
        out = runner(self.frames)
        self.assertEqual(out.dtype, np.float32)
        self.assertEqual(out.shape, self.frames.shape)
        self.assertBetween(float(out.min()), 0.0, 1.0)
        self.assertBetween(float(out.max()), 0.0, 1.0)
        self.assertGreater(tflite.psnr(self.reference, out), min_psnr)

    def test_int8_io_and_sizes(self):
        f32 = tflite.convert(self.model, SIZE, "float32")
        q8 = tflite.convert(self.model, SIZE, "int8", _frames(8, seed=1))
        runner = tflite.TFLiteDegrader(q8)
        self.assertEqual(runner.input_dtype, np.int8)
        # The black/white calibration frames pin the input range to [0, 1]: scale 1/255, zp -128.
        scale, zero = runner._in["quantization"]
        self.assertAllClose(scale, 1 / 255)
        self.assertEqual(zero, -128)
        # int8 weights: about a quarter of the float file (plus graph overhead).
        self.assertLess(len(q8), 0.5 * len(f32))

    def test_output_clip_lowered_without_standalone_relu(self):
        # f_d ends in ReLU(max_value=1); exported as relu-then-minimum the RELU fuses into the
        # residual ADD, leaving one MINIMUM and no standalone int8 RELU (slow, see the module).
        q8 = tflite.convert(self.model, SIZE, "int8", _frames(4, seed=1))
        ops = [o["op_name"] for o in tflite.TFLiteDegrader(q8).interpreter._get_ops_details()]
        self.assertEqual(ops.count("MINIMUM"), 1)
        self.assertNotIn("RELU", ops)

    def test_uint8_frames(self):
        q8 = tflite.convert(self.model, SIZE, "int8", _frames(8, seed=1))
        runner = tflite.TFLiteDegrader(q8)
        frames_u8 = np.round(self.frames * 255).astype(np.uint8)
        out_u8 = runner(frames_u8)
        self.assertEqual(out_u8.dtype, np.uint8)
        out_f = runner(frames_u8.astype(np.float32) / 255)
        # uint8 in, uint8 out is the float path rounded to 1/255: exactly, through the
        # top-bit flip (input and output both at scale 1/255, zero point -128).
        self.assertTrue(runner._uint8_exact)
        self.assertAllEqual(out_u8, np.round(out_f * 255).astype(np.uint8))
        small = frames_u8[:, :29, :30]  # padded and cropped back on the same path
        want = np.round(runner(small.astype(np.float32) / 255) * 255).astype(np.uint8)
        self.assertAllEqual(runner(small), want)

    def test_clips_and_bad_shapes(self):
        runner = tflite.TFLiteDegrader(tflite.convert(self.model, SIZE, "float32"))
        clips = self.frames.reshape(2, 2, SIZE, SIZE, 3)
        self.assertAllClose(runner(clips).reshape(self.frames.shape), runner(self.frames))
        # Smaller frames (refused before issue 25) are padded to the model's size by edge
        # replication and cropped back.
        small = self.frames[:2, :16, :13]
        out = runner(small)
        self.assertEqual(out.shape, small.shape)
        padded = np.stack([pad_frame(f, (SIZE, SIZE)) for f in small])
        self.assertAllClose(out, runner(padded)[:, :16, :13])
        for shape in ((1, 48, 48, 3), (1, 16, 33, 3), (1, 0, 16, 3), (1, 16, 16, 2)):
            with self.assertRaisesRegex(tflite.TFLiteError, "frames: shape"):
                runner(np.zeros(shape, np.float32))

    def test_run_dir_and_report(self):
        run_dir = os.path.join(self.get_temp_dir(), "run")
        save_degrader(run_dir, self.model, self.cfg)
        fb = tflite.convert(run_dir, SIZE, "float32")
        report = tflite.artifact_report(self.model, {"float32": fb}, self.frames)
        self.assertEqual(report["float32"]["bytes"], len(fb))
        self.assertGreater(report["float32"]["psnr_db"], 60.0)

    def test_cli_with_pipeline_frames(self):
        cfg = get_config("benchmark_tiny")
        cfg.data.data_dir = os.path.join(self.get_temp_dir(), "data")
        cfg.export.tflite_frame_size = SIZE
        run_dir = os.path.join(self.get_temp_dir(), "cli_run")
        save_degrader(run_dir, self.model, cfg)
        out = os.path.join(self.get_temp_dir(), "tfl")
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            call_main(
                tflite, "--run", run_dir, "--out", out, "--quant", "int8", "--representative", "8"
            )
        self.assertRegex(stdout.getvalue(), r"int8 +[0-9]+ bytes  PSNR vs float [0-9.]+ dB")
        runner = tflite.TFLiteDegrader(os.path.join(out, "degrader_int8.tflite"))
        self.assertEqual(runner.input_dtype, np.int8)

    def test_command_line_flags(self):
        def parse(*args):
            runtime.parse_flags(tflite.FLAGS, ["tflite", "--run=r", "--out=o", *args])
            return list(tflite.FLAGS.quant)

        self.assertEqual(parse(), ["all"])
        # Several after one --quant (as argparse took them), or the flag repeated (absl).
        self.assertEqual(parse("--quant", "int8", "float16", "--strict"), ["int8", "float16"])
        self.assertTrue(tflite.FLAGS.strict)
        self.assertEqual(parse("--quant=int8", "--quant=dynamic"), ["int8", "dynamic"])
        self.assertFalse(tflite.FLAGS.strict)  # each parse starts from the defaults
        # A bad choice is refused while parsing, naming the allowed ones.
        allowed = re.escape("<float32|float16|dynamic|int8|all>")
        with self.assertRaisesRegex(flags.IllegalFlagValueError, allowed):
            parse("--quant", "int4")
        with self.assertRaisesRegex(flags.Error, "--run"):
            runtime.parse_flags(tflite.FLAGS, ["tflite", "--out=o"])
        with self.assertRaisesRegex(flags.Error, "unexpected argument"):
            parse("--quant=int8", "stray")

    def test_frame_size_flag(self):
        def parse(*args):
            runtime.parse_flags(tflite.FLAGS, ["tflite", "--run=r", "--out=o", *args])
            return tflite.FLAGS.frame_size

        self.assertIsNone(parse())
        self.assertEqual(parse("--frame_size=224"), (224, 224))
        self.assertEqual(parse("--frame_size", "720x1280"), (720, 1280))
        with self.assertRaisesRegex(flags.IllegalFlagValueError, "--frame_size=720x0: .* >= 1"):
            parse("--frame_size=720x0")
        with self.assertRaisesRegex(flags.IllegalFlagValueError, "S .* or HxW"):
            parse("--frame_size=big")

    def test_bad_arguments(self):
        with self.assertRaisesRegex(tflite.TFLiteError, "quant"):
            tflite.convert(self.model, SIZE, "int4")
        with self.assertRaisesRegex(tflite.TFLiteError, "representative_frames"):
            tflite.convert(self.model, SIZE, "int8")
        # 30 is rounded up to f_d's multiple of 4: the model built for 32 converts (before
        # issue 25, "frame_size: 30 is not divisible by 4").
        fb = tflite.convert(self.model, 30, "float32")
        self.assertEqual(tflite.TFLiteDegrader(fb).frame_shape, (SIZE, SIZE, 3))
        with self.assertRaisesRegex(
            tflite.TFLiteError, "frame_size: 36 needs a model of 36 .*32x32"
        ):
            tflite.convert(self.model, 36, "float32")
        for bad in ("0x4", "720x", "axb", "1x2x3", -3):
            with self.assertRaisesRegex(tflite.TFLiteError, "frame_size"):
                tflite.convert(self.model, bad, "float32")
        with self.assertRaisesRegex(tflite.TFLiteError, "no_such.tflite"):
            tflite.TFLiteDegrader(os.path.join(self.get_temp_dir(), "no_such.tflite"))


class AnySizeTest(tf.test.TestCase, parameterized.TestCase):
    """A model converted for any H x W (rounded up to f_d's multiple) and frames padded to it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.models = {}
        for variant in ("full", "pyramid"):
            cfg = get_config("benchmark_tiny").model
            cfg.degrader = variant
            model = build_degrader(cfg, frame_size=None)  # free spatial dims
            rng = np.random.default_rng(3)
            model.set_weights([rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
            cls.models[variant] = model

    def _keras_padded(self, model, frames, shape):
        """f_d on the frames edge-padded to `shape`, cropped back (the reference)."""
        h, w = frames.shape[1:3]
        padded = np.stack([pad_frame(f, shape) for f in frames])
        return model(padded, training=False).numpy()[:, :h, :w]

    @parameterized.parameters(
        ("full", (13, 7), (16, 8)),
        ("full", "1x1", (4, 4)),
        ("pyramid", (13, 7), (16, 8)),
        ("pyramid", "12x20", (16, 24)),
    )
    def test_odd_sizes_convert_rounded_up_and_come_back_their_size(self, variant, size, model):
        keras_model = self.models[variant]
        runner = tflite.TFLiteDegrader(tflite.convert(keras_model, size, "float32"))
        self.assertEqual(runner.frame_shape, (*model, 3))
        height, width = tflite.parse_frame_size(size)
        frames = np.random.default_rng(0).random((2, height, width, 3), dtype=np.float32)
        out = runner(frames)
        self.assertEqual(out.shape, frames.shape)
        self.assertAllClose(out, self._keras_padded(keras_model, frames, model), atol=1e-3)
        # A 1 x 1 frame is padded to the whole model too.
        one = runner(frames[:1, :1, :1])
        self.assertEqual(one.shape, (1, 1, 1, 3))
        ref = self._keras_padded(keras_model, frames[:1, :1, :1], model)
        self.assertAllClose(one, ref, atol=1e-3)

    def test_multiples_are_not_padded(self):
        # At the model's own size nothing is padded: the unpadded f_d's output (TFLite's float
        # kernels against Keras': 1e-4 apart on these random weights, as at any size).
        keras_model = self.models["full"]
        runner = tflite.TFLiteDegrader(tflite.convert(keras_model, (16, 8), "float32"))
        frames = np.random.default_rng(1).random((2, 16, 8, 3), dtype=np.float32)
        first = frames[0]
        self.assertIs(pad_frame(first, (16, 8)), first)  # not even copied
        self.assertAllClose(runner(frames), keras_model(frames, training=False), atol=1e-3)

    def test_1279x719_frame(self):
        keras_model = self.models["full"]
        runner = tflite.TFLiteDegrader(tflite.convert(keras_model, "719x1279", "float32"))
        self.assertEqual(runner.frame_shape, (720, 1280, 3))
        frames = np.random.default_rng(2).integers(0, 256, (1, 719, 1279, 3)).astype(np.uint8)
        out = runner(frames)
        self.assertEqual(out.dtype, np.uint8)
        self.assertEqual(out.shape, (1, 719, 1279, 3))
        ref = self._keras_padded(keras_model, frames.astype(np.float32) / 255.0, (720, 1280))
        self.assertAllClose(out / 255.0, ref.clip(0, 1), atol=1 / 255 + 1e-4)

    def test_int8_calibrates_on_frames_of_the_size_asked(self):
        keras_model = self.models["full"]
        rep = np.random.default_rng(3).random((4, 13, 7, 3), dtype=np.float32)
        runner = tflite.TFLiteDegrader(tflite.convert(keras_model, (13, 7), "int8", rep))
        self.assertEqual(runner.frame_shape, (16, 8, 3))
        frames = np.round(rep * 255).astype(np.uint8)
        self.assertEqual(runner(frames).shape, frames.shape)
        with self.assertRaisesRegex(tflite.TFLiteError, "representative_frames: frame shape"):
            tflite.convert(keras_model, (13, 7), "int8", np.zeros((1, 17, 7, 3), np.float32))


class AnalysisScaleTest(tf.test.TestCase):
    """f_d at 1/K of the frame's resolution: block averages in, bilinear upsampling out."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cfg = get_config("benchmark_tiny").model
        cfg.degrader = "pyramid"
        cls.model = build_degrader(cfg, frame_size=None)
        rng = np.random.default_rng(4)
        cls.model.set_weights(
            [rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in cls.model.weights]
        )

    def test_is_f_d_on_block_averages_upsampled(self):
        k = 3
        frames = np.random.default_rng(5).random((2, 48, 72, 3), dtype=np.float32)
        got = tflite.analysis_model(self.model, k, (48, 72))(frames).numpy()
        blocks = frames.reshape(2, 16, k, 24, k, 3).mean(axis=(2, 4))
        small = self.model(blocks, training=False)
        want = tf.image.resize(small, (48, 72), method="bilinear").numpy()
        self.assertEqual(got.shape, frames.shape)
        self.assertAllClose(got, want, atol=1e-5)
        # Within [0, 1]: bilinear weights are convex and f_d clips its output.
        self.assertBetween(float(got.min()), 0.0, 1.0)
        self.assertBetween(float(got.max()), 0.0, 1.0)
        self.assertIs(tflite.analysis_model(self.model, 1), self.model)

    def test_converted_at_any_size_and_back(self):
        # 719 x 1279 at K = 11: rounded up to a multiple of 8 * 11 = 88 (792 x 1320), padded,
        # cropped back; int8 keeps the float model's output.
        frames = np.random.default_rng(6).random((1, 719, 1279, 3), dtype=np.float32)
        f32 = tflite.TFLiteDegrader(tflite.convert(self.model, "719x1279", "float32", scale=11))
        self.assertEqual(f32.frame_shape, (792, 1320, 3))
        out = f32(frames)
        self.assertEqual(out.shape, frames.shape)
        ref = tflite.analysis_model(self.model, 11)(pad_frame(frames[0], (792, 1320))[None])
        self.assertAllClose(out[0], ref.numpy()[0, :719, :1279], atol=1e-3)
        q8 = tflite.TFLiteDegrader(tflite.convert(self.model, "719x1279", "int8", frames, scale=11))
        self.assertGreater(tflite.psnr(out, q8(frames)), 30.0)

    def test_scale_arguments(self):
        self.assertEqual(tflite.auto_scale((720, 1280), 64), 11)
        self.assertEqual(tflite.auto_scale((720, 1280), 112), 6)
        self.assertEqual(tflite.auto_scale(32, 64), 1)  # never below the training size
        for bad in (0, -2, 1.5, True):
            with self.assertRaisesRegex(tflite.TFLiteError, "scale"):
                tflite.convert(self.model, 32, "float32", scale=bad)


if __name__ == "__main__":
    tf.test.main()
