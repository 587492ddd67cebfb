"""Tests for tfprivacy/data/video_io.py: streaming decode and encode, errors naming the file."""

import os

import numpy as np
import tensorflow as tf

from tfprivacy.data import video_io


def _frames(n=6, h=24, w=40):
    """Smooth moving colour ramps (noise would be lost to yuv420p's chroma subsampling)."""
    t, y, x = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    rgb = [(4 * x + 8 * t) % 256, (6 * y + 5 * t) % 256, (2 * x + 3 * y) % 256]
    return np.stack(rgb, -1).astype(np.uint8)


class VideoIoTest(tf.test.TestCase):
    def test_stream_round_trip(self):
        path = os.path.join(self.get_temp_dir(), "a.avi")
        frames = _frames()
        with video_io.VideoWriter(path, fps=10) as writer:
            for frame in frames:
                writer.write(frame)
        self.assertEqual(writer.frames, 6)
        decoded = list(video_io.iter_video(path))
        self.assertLen(decoded, 6)
        self.assertEqual(decoded[0].shape, (24, 40, 3))
        # Near-lossless mpeg4: the same picture up to the codec's loss.
        diff = np.abs(np.stack(decoded).astype(float) - frames.astype(float))
        self.assertLess(float(diff.mean()), 6.0)
        self.assertAllEqual(video_io.read_video(path, max_frames=2), np.stack(decoded[:2]))
        self.assertLen(list(video_io.iter_video(path, max_frames=4)), 4)
        self.assertFalse(os.path.exists(os.path.join(self.get_temp_dir(), "a.partial.avi")))

    def test_interrupted_writer_leaves_nothing(self):
        path = os.path.join(self.get_temp_dir(), "b.avi")
        with self.assertRaisesRegex(RuntimeError, "stop"):
            with video_io.VideoWriter(path) as writer:
                writer.write(_frames(1)[0])
                raise RuntimeError("stop")
        self.assertEqual(os.listdir(self.get_temp_dir()), [])

    def test_bad_frames_are_named(self):
        path = os.path.join(self.get_temp_dir(), "c.avi")
        with self.assertRaisesRegex(ValueError, "c.avi: frame 1 is 24x48, the video 24x40"):
            with video_io.VideoWriter(path) as writer:
                writer.write(_frames(1)[0])
                writer.write(_frames(1, w=48)[0])
        with self.assertRaisesRegex(ValueError, "c.avi: frames must be uint8"):
            with video_io.VideoWriter(path) as writer:
                writer.write(np.zeros((4, 4, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "c.avi: no frames written"):
            video_io.write_video(path, np.zeros((0, 8, 8, 3), np.uint8))
        self.assertFalse(os.path.exists(path))

    def test_unreadable_videos_are_named(self):
        missing = os.path.join(self.get_temp_dir(), "missing.avi")
        with self.assertRaisesRegex(video_io.VideoReadError, "missing.avi: file does not exist"):
            next(video_io.iter_video(missing))
        junk = os.path.join(self.get_temp_dir(), "junk.avi")
        with open(junk, "wb") as f:
            f.write(b"not a video at all" * 10)
        with self.assertRaisesRegex(video_io.VideoReadError, "junk.avi: "):
            video_io.read_video(junk)


if __name__ == "__main__":
    tf.test.main()
