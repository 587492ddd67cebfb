"""Tests for serving/edge.py: the LiteRT video runner and its CLI."""

import contextlib
import io
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs.experiments import get_config
from serving import edge, tflite
from tests.cli_util import call_main
from tfprivacy.data.video_io import VideoReadError, read_video, write_video
from tfprivacy.models import build_degrader

SIZE = 32


class EdgeTest(tf.test.TestCase, parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        model = build_degrader(get_config("benchmark_tiny").model, frame_size=SIZE)
        rep = np.random.default_rng(1).random((4, SIZE, SIZE, 3), dtype=np.float32)
        cls.models = {}
        for quant in ("float32", "int8"):
            cls.models[quant] = tflite.convert(model, SIZE, quant, rep)
        # A non-square model, converted for 18 x 26 frames (rounded up to 20 x 28): the
        # identity f_d, built with free spatial dims.
        free = build_degrader(get_config("benchmark_tiny").model, frame_size=None)
        cls.models["wide"] = tflite.convert(free, "18x26", "float32")

    def _files(self, quant, video_size, frames=5):
        tmp = self.get_temp_dir()
        model_path = os.path.join(tmp, f"{quant}.tflite")
        with open(model_path, "wb") as f:
            f.write(self.models[quant])
        height, width = video_size if isinstance(video_size, tuple) else (video_size,) * 2
        rng = np.random.default_rng(0)
        video = rng.integers(0, 256, (frames, height, width, 3)).astype(np.uint8)
        video_in = os.path.join(tmp, f"in_{height}x{width}.avi")
        write_video(video_in, video)
        return model_path, video_in, os.path.join(tmp, f"out_{quant}_{height}x{width}.avi")

    @parameterized.parameters(
        ("float32", 32, (32, 32), False),
        ("int8", 32, (32, 32), False),
        # Larger than the model: resized to it, and written at its size.
        ("int8", 48, (32, 32), True),
        # Smaller (any size, 18 x 26 is no multiple of 4): padded, run, cropped back, and
        # written at its own size.
        ("int8", (18, 26), (18, 26), False),
        ("wide", (18, 26), (18, 26), False),
        ("wide", 32, (20, 28), True),
    )
    def test_cli_degrades_every_frame(self, quant, video_size, written, resized):
        model_path, video_in, video_out = self._files(quant, video_size)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            call_main(edge, "--model", model_path, "--video", video_in, "--out", video_out)
        note = r" \(resized to the model\)" if resized else ""
        self.assertRegex(
            stdout.getvalue(), rf"5 frames at {written[0]}x{written[1]}{note}: [0-9.]+ frames/s"
        )
        self.assertEqual(read_video(video_out).shape, (5, *written, 3))

    def test_identity_degrader_keeps_a_video_of_any_size(self):
        # 18 x 26 frames through the 20 x 28 identity model: padded, cropped back, unchanged
        # up to the codec's loss.
        model_path, video_in, video_out = self._files("wide", (18, 26))
        stats = edge.degrade_video(model_path, video_in, video_out, max_frames=3)
        self.assertEqual((stats["frames"], stats["frame_shape"]), (3, (18, 26)))
        self.assertFalse(stats["resized"])
        ref = read_video(video_in, max_frames=3).astype(np.float32)
        got = read_video(video_out).astype(np.float32)
        self.assertEqual(got.shape, ref.shape)
        self.assertGreater(tflite.psnr(ref, got, max_val=255.0), 25.0)

    def test_identity_degrader_keeps_the_video(self):
        # D's f_d is the identity at initialisation (zero last conv): the output video must
        # equal the input up to the codec's loss.
        model_path, video_in, video_out = self._files("float32", SIZE)
        stats = edge.degrade_video(model_path, video_in, video_out, max_frames=3)
        self.assertEqual(stats["frames"], 3)
        self.assertGreater(stats["model_fps"], 0.0)
        ref = read_video(video_in, max_frames=3).astype(np.float32)
        got = read_video(video_out).astype(np.float32)
        self.assertGreater(tflite.psnr(ref, got, max_val=255.0), 25.0)

    def test_dropped_at_rate(self):
        fps = 10.0  # a frame every 0.1 s
        self.assertEqual(edge.dropped_at_rate([0.05] * 20, fps), 0)
        self.assertEqual(edge.dropped_at_rate([0.1] * 20, fps), 0)  # exactly in time
        # 0.15 s a frame: free at 0.15, takes frame 1 (arrived at 0.1); free at 0.30, takes
        # frame 3 (arrived at 0.30), frame 2 is lost; and so on: every third frame is lost.
        self.assertEqual(edge.dropped_at_rate([0.15] * 9, fps), 2)
        # One slow frame (0.35 s) loses the three that arrive meanwhile but the newest.
        self.assertEqual(edge.dropped_at_rate([0.35] + [0.01] * 9, fps), 2)
        self.assertEqual(edge.dropped_at_rate([], fps), 0)
        with self.assertRaisesRegex(ValueError, "camera_fps"):
            edge.dropped_at_rate([0.1], 0)

    def test_cli_prints_the_frames_lost_at_camera_rate(self):
        model_path, video_in, video_out = self._files("float32", SIZE)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            call_main(
                edge, "--model", model_path, "--video", video_in, "--out", video_out,
                "--camera_fps", "25",
            )  # fmt: skip
        self.assertRegex(
            stdout.getvalue(), r"at 25 frames/s a camera would have lost [0-5] of 5 frames"
        )

    def test_missing_files_are_named(self):
        model_path, video_in, video_out = self._files("float32", SIZE, frames=2)
        with self.assertRaisesRegex(VideoReadError, "nope.avi"):
            edge.degrade_video(model_path, os.path.join(self.get_temp_dir(), "nope.avi"), video_out)
        with self.assertRaisesRegex(tflite.TFLiteError, "nope.tflite"):
            edge.degrade_video("nope.tflite", video_in, video_out)


if __name__ == "__main__":
    tf.test.main()
