"""Hand-made filters: shapes, range and values worked out by hand."""

import math

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.eval import baselines


class BaselinesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(*baselines.all_baselines())
    def test_shape_and_range_any_leading_dims(self, name):
        x = tf.random.stateless_uniform([2, 3, 32, 32, 3], seed=[1, 2])
        y = baselines.get_baseline(name)(x)
        self.assertEqual(y.shape, x.shape)
        self.assertEqual(y.dtype, tf.float32)
        self.assertGreaterEqual(float(tf.reduce_min(y)), -1e-6)
        self.assertLessEqual(float(tf.reduce_max(y)), 1 + 1e-6)

    @parameterized.parameters(*baselines.all_baselines())
    def test_constant_frame_is_kept(self, name):
        # Every filter averages pixels; grey keeps a grey constant (BT.601 weights sum to 0.9999).
        x = tf.fill([1, 16, 16, 3], 0.25)
        self.assertAllClose(baselines.get_baseline(name)(x), x, atol=1e-4)

    def test_registry_covers_the_issue(self):
        names = baselines.all_baselines()
        self.assertEqual(names[0], "raw")
        for n in [
            "down2",
            "down4",
            "down8",
            "down16",
            "blur1",
            "blur2",
            "blur4",
            "pixelate4",
            "pixelate8",
            "grey",
            "grey_down2",
            "grey_down4",
            "grey_down8",
        ]:
            self.assertIn(n, names)
        with self.assertRaisesRegex(ValueError, "unknown baseline 'nope'"):
            baselines.get_baseline("nope")
        self.assertEqual(baselines.resolve_baselines("raw,down4"), ["raw", "down4"])
        self.assertEqual(baselines.resolve_baselines("all"), names)

    def test_down2_of_fine_checkerboard_is_flat(self):
        # Period-1 checkerboard: every 2x2 area average is 0.5, and so is its bilinear upsample.
        i, j = np.mgrid[:4, :4]
        board = ((i + j) % 2).astype(np.float32)
        x = np.repeat(board[None, :, :, None], 3, axis=-1)
        self.assertAllClose(baselines.get_baseline("down2")(x), np.full_like(x, 0.5))

    def test_pixelate4_averages_blocks(self):
        # Pixel value = column / 7 on an 8x8 frame; 4x4 blocks average columns 0..3 -> 1.5/7
        # and 4..7 -> 5.5/7, repeated over each block.
        col = np.tile(np.arange(8, dtype=np.float32) / 7, (8, 1))
        x = np.repeat(col[None, :, :, None], 3, axis=-1)
        y = baselines.get_baseline("pixelate4")(x).numpy()
        self.assertAllClose(y[0, :, :4, 0], np.full((8, 4), 1.5 / 7))
        self.assertAllClose(y[0, :, 4:, 0], np.full((8, 4), 5.5 / 7))

    def test_grey_uses_bt601_luma(self):
        x = np.array([[[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]], np.float32)  # [1, 1, 3, 3]
        y = baselines.grey(x).numpy()
        self.assertAllClose(y[0, 0, :, 0], [0.2989, 0.5870, 0.1140])
        self.assertAllClose(y[..., 0], y[..., 2])

    def test_blur_impulse_centre(self):
        # sigma 1, radius 3: k0 = 1 / (1 + 2 (e^-1/2 + e^-2 + e^-9/2)) = 1 / 2.505949 = 0.399050;
        # the separable 2-D kernel's centre is k0^2 = 0.159241, and the mass stays 1.
        x = np.zeros((1, 15, 15, 3), np.float32)
        x[0, 7, 7] = 1.0
        y = baselines.get_baseline("blur1")(x).numpy()
        k0 = 1 / (1 + 2 * (math.exp(-0.5) + math.exp(-2) + math.exp(-4.5)))
        self.assertAllClose(y[0, 7, 7, 0], k0**2, atol=1e-6)
        self.assertAllClose(y[0, 7, 7, 0], 0.159241, atol=1e-5)
        self.assertAllClose(y[..., 1].sum(), 1.0, atol=1e-5)

    def test_blur_on_frames_smaller_than_kernel(self):
        # sigma 4 wants radius 12; an 8x8 frame truncates the kernel instead of failing.
        x = tf.random.stateless_uniform([2, 8, 8, 3], seed=[3, 4])
        y = baselines.get_baseline("blur4")(x)
        self.assertEqual(y.shape, x.shape)
        self.assertAllClose(tf.reduce_mean(y), tf.reduce_mean(x), atol=0.05)

    def test_grey_down_is_grey_then_down(self):
        x = tf.random.stateless_uniform([1, 16, 16, 3], seed=[5, 6])
        self.assertAllClose(
            baselines.get_baseline("grey_down4")(x), baselines.downsample(baselines.grey(x), 4)
        )

    def test_inside_tf_function(self):
        fn = tf.function(baselines.get_baseline("down4"))
        x = tf.random.stateless_uniform([3, 16, 16, 3], seed=[7, 8])
        self.assertAllClose(fn(x), baselines.get_baseline("down4")(x))


if __name__ == "__main__":
    tf.test.main()
