"""tfprivacy.frames: the uint8 <-> [0, 1] contract and the clip frame-index helpers.

The `_old_*` functions are the formulas the call sites wrote out before they imported
tfprivacy.frames, copied verbatim: each new function must give the same bits on every input.
"""

from __future__ import annotations

import ast
import warnings

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy import frames as F

ALL_UINT8 = np.arange(256, dtype=np.uint8)


# --- the formulas as they were written at each call site --------------------------------------


def _old_protocol_to_uint8(x):  # tfprivacy.eval.protocol.to_uint8
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def _old_export_to_uint8(images):  # serving.export.to_uint8
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


def _old_tflite_to_uint8(outputs):  # serving.tflite.TFLiteDegrader.__call__, uint8 frames
    outputs = np.clip(outputs, 0.0, 1.0)
    return np.round(outputs * 255.0).astype(np.uint8)


def _old_edge_to_uint8(degraded):  # serving.edge.degrade_video
    return np.round(degraded * 255.0).astype(np.uint8)


def _old_signature_to_uint8(frames):  # benchmarks.quantized_eval._uint8_signature_fn
    return tf.cast(tf.round(frames * 255.0), tf.uint8)


def _bits(x) -> np.ndarray:
    """Float array -> its bit patterns, so that equality is bitwise (and NaN == NaN)."""
    x = np.asarray(x)
    return x.view({4: np.uint32, 8: np.uint64}[x.dtype.itemsize])


def _float32_cases() -> np.ndarray:
    """Every k/255 and (k + 0.5)/255, their float32 neighbours, a dense grid over [-0.5, 1.5]
    and the edge cases: negatives, -0, values above 1, +-inf and NaN."""
    k = np.arange(256, dtype=np.float64)
    centres = np.concatenate([k / 255.0, (k + 0.5) / 255.0]).astype(np.float32)
    up = np.nextafter(centres, np.float32(np.inf))
    down = np.nextafter(centres, np.float32(-np.inf))
    grid = np.linspace(-0.5, 1.5, 200_001, dtype=np.float32)
    edges = np.array(
        [-0.1, -0.0, 0.0, 0.5 / 255, 1.0, 1.0 + 1e-7, 1.2, 2.0, -1.0, np.inf, -np.inf, np.nan],
        np.float32,
    )
    return np.concatenate([centres, up, down, grid, edges])


class UnitFloatTest(tf.test.TestCase):
    def test_every_uint8_value_tf_and_numpy_agree_bitwise(self):
        tf_out = F.to_unit_float(ALL_UINT8).numpy()
        np_out = F.to_unit_float_np(ALL_UINT8)
        self.assertEqual(tf_out.dtype, np.float32)
        self.assertEqual(np_out.dtype, np.float32)
        np.testing.assert_array_equal(_bits(tf_out), _bits(np_out))
        self.assertEqual(tf_out[0], 0.0)
        self.assertEqual(tf_out[255], 1.0)
        self.assertTrue(np.all(np.diff(tf_out) > 0))

    def test_matches_the_old_call_site_formulas_bitwise(self):
        expected = _bits(np.asarray(tf.cast(ALL_UINT8, tf.float32) / 255.0))
        # export.to_unit_float, eval.splits.dataset, quantized_eval: tf.cast(.., float32) / 255.
        np.testing.assert_array_equal(
            _bits(F.to_unit_float(tf.constant(ALL_UINT8)).numpy()), expected
        )
        # eval.splits.degrade_array: tf.constant(uint8 array, tf.float32) / 255.
        old = tf.constant(ALL_UINT8, tf.float32) / 255.0
        np.testing.assert_array_equal(_bits(old.numpy()), expected)
        # pipeline.process_clip: float32 on the 0..255 scale (resized frames) / 255.
        scaled = np.random.default_rng(0).uniform(0, 255, 10_000).astype(np.float32)
        np.testing.assert_array_equal(
            _bits(F.to_unit_float(tf.constant(scaled)).numpy()),
            _bits((tf.constant(scaled) / 255.0).numpy()),
        )
        # serving.tflite._encode and quantized_eval's probe: uint8.astype(float32) / 255.
        np.testing.assert_array_equal(
            _bits(F.to_unit_float_np(ALL_UINT8)), _bits(ALL_UINT8.astype(np.float32) / 255.0)
        )
        # eval.splits.channel_stats: uint8.astype(float64) / 255.
        out64 = F.to_unit_float_np(ALL_UINT8, np.float64)
        self.assertEqual(out64.dtype, np.float64)
        np.testing.assert_array_equal(_bits(out64), _bits(ALL_UINT8.astype(np.float64) / 255.0))

    def test_shape_kept(self):
        x = np.zeros((2, 3, 4, 4, 3), np.uint8)
        self.assertEqual(F.to_unit_float(x).shape, x.shape)
        self.assertEqual(F.to_unit_float_np(x).shape, x.shape)


class Uint8Test(tf.test.TestCase, parameterized.TestCase):
    def test_round_trip_of_every_uint8_value(self):
        unit = F.to_unit_float_np(ALL_UINT8)
        for to_uint8 in (F.to_uint8, F.to_uint8_np, F.round_to_uint8, F.round_to_uint8_np):
            with self.subTest(to_uint8.__name__):
                out = np.asarray(to_uint8(unit))
                self.assertEqual(out.dtype, np.uint8)
                np.testing.assert_array_equal(out, ALL_UINT8)

    def test_clips_out_of_range_values(self):
        x = np.array([-0.1, -1.0, -np.inf, 1.2, 2.0, np.inf], np.float32)
        expected = [0, 0, 0, 255, 255, 255]
        self.assertAllEqual(F.to_uint8(x), expected)
        self.assertAllEqual(F.to_uint8_np(x), expected)
        self.assertAllEqual(F.to_uint8_np([-0.1, 0.0, 0.5, 1.0, 1.5]), [0, 0, 128, 255, 255])

    def test_rounds_half_to_even(self):
        # Values whose float32 product with 255 is exactly k + 0.5 go to the even neighbour.
        k = np.arange(255)
        x = ((k + 0.5) / 255.0).astype(np.float32)
        exact = x * np.float32(255.0) == (k + 0.5)
        self.assertGreater(exact.sum(), 50)
        self.assertTrue(np.any(k[exact] % 2 == 0) and np.any(k[exact] % 2 == 1))
        even = np.where(k % 2 == 0, k, k + 1)[exact]
        for to_uint8 in (F.to_uint8, F.to_uint8_np, F.round_to_uint8, F.round_to_uint8_np):
            with self.subTest(to_uint8.__name__):
                self.assertAllEqual(np.asarray(to_uint8(x[exact])), even)
        # 0.5/255 scales to exactly 0.5 in float32: rounds down to 0, 1.6/255 up to 2.
        self.assertAllEqual(F.to_uint8_np([0.5 / 255, 1.6 / 255]), [0, 2])
        self.assertAllEqual(F.to_uint8(tf.constant([0.5 / 255, 1.6 / 255])), [0, 2])

    def test_new_functions_equal_the_old_call_site_formulas_on_every_case(self):
        x = _float32_cases()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN/inf -> uint8 casts
            pairs = [
                ("protocol", F.to_uint8_np(x), _old_protocol_to_uint8(x)),
                ("export", F.to_uint8(x).numpy(), _old_export_to_uint8(x).numpy()),
                ("edge", F.round_to_uint8_np(x), _old_edge_to_uint8(x)),
                ("quantized_eval", F.round_to_uint8(x).numpy(), _old_signature_to_uint8(x).numpy()),
                # tflite now clips, then calls to_uint8_np: the same as clip + np.round.
                ("tflite", F.to_uint8_np(np.clip(x, 0.0, 1.0)), _old_tflite_to_uint8(x)),
            ]
        for name, new, old in pairs:
            with self.subTest(name):
                self.assertEqual(new.dtype, np.uint8)
                np.testing.assert_array_equal(new, old)

    def test_clip_first_and_round_first_agree_on_float32(self):
        # to_uint8 (TF: clip, scale, round) and to_uint8_np (NumPy: scale, round, clip).
        x = _float32_cases()
        finite = ~np.isnan(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(F.to_uint8(x).numpy()[finite], F.to_uint8_np(x)[finite])

    def test_unclipped_rounding_equals_to_uint8_on_the_unit_interval_only(self):
        x = _float32_cases()
        unit = x[(x >= 0.0) & (x <= 1.0)]
        np.testing.assert_array_equal(F.round_to_uint8_np(unit), F.to_uint8_np(unit))
        np.testing.assert_array_equal(F.round_to_uint8(unit).numpy(), F.to_uint8(unit).numpy())
        # Outside [0, 1] they differ (the cast wraps on x86): why they are separate functions.
        out = np.array([-0.1, 1.2], np.float32)
        self.assertAllEqual(F.to_uint8_np(out), [0, 255])
        self.assertNotAllEqual(F.round_to_uint8_np(out), [0, 255])


class FrameIndicesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters(
        (16, 8, [1, 3, 5, 7, 9, 11, 13, 15]),
        (10, 4, [1, 3, 6, 8]),
        (4, 8, [0, 0, 1, 1, 2, 2, 3, 3]),
        (1, 3, [0, 0, 0]),
    )
    def test_eval_indices(self, n, t, expected):
        self.assertAllEqual(F.eval_frame_indices(n, t), expected)

    def test_train_indices_strided_seeded_and_looping(self):
        starts = set()
        for s in range(20):
            idx = F.train_frame_indices(16, 8, [s, 7]).numpy()
            self.assertAllEqual(idx, idx[0] + 2 * np.arange(8))
            self.assertAllEqual(idx, F.train_frame_indices(16, 8, [s, 7]))
            starts.add(int(idx[0]))
        self.assertEqual(starts, {0, 1})
        for s in range(5):
            idx = F.train_frame_indices(3, 4, [s, 1]).numpy()
            self.assertAllEqual(idx, (idx[0] + np.arange(4)) % 3)

    def test_spread_indices(self):
        self.assertAllEqual(
            F.spread_frame_indices(16, 8, 2),
            [[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]],
        )
        self.assertAllEqual(F.spread_frame_indices(40, 8, 3)[:, 0], [0, 2, 4])
        self.assertAllEqual(F.spread_frame_indices(16, 8, 3)[:, 0], [0, 1, 0])
        self.assertAllEqual(F.spread_frame_indices(8, 4, 1), [[0, 2, 4, 6]])
        # N=3 < T=4: stride 1, 3 starts, looping.
        self.assertAllEqual(F.spread_frame_indices(3, 4, 2), [[0, 1, 2, 0], [2, 0, 1, 2]])

    @parameterized.parameters(
        (8, 4, [1, 3, 5, 7]),
        (16, 3, [2, 8, 13]),
        (8, 1, [4]),
        (8, 0, list(range(8))),
        (8, -1, list(range(8))),
        (8, 8, list(range(8))),
        (8, 10, list(range(8))),
    )
    def test_privacy_indices(self, t, p, expected):
        self.assertEqual(F.privacy_frame_indices(t, p), expected)

    def test_privacy_indices_are_the_eval_segment_centres(self):
        for t in range(1, 33):
            for p in range(1, t):
                self.assertEqual(
                    F.privacy_frame_indices(t, p), F.eval_frame_indices(t, p).numpy().tolist()
                )


class WiringTest(tf.test.TestCase):
    def test_call_sites_use_this_module(self):
        from serving import export, tflite
        from tfprivacy.data import pipeline
        from tfprivacy.eval import protocol
        from tfprivacy.train import streams

        self.assertIs(pipeline.eval_frame_indices, F.eval_frame_indices)
        self.assertIs(pipeline.train_frame_indices, F.train_frame_indices)
        self.assertIs(pipeline.spread_frame_indices, F.spread_frame_indices)
        self.assertIs(streams.privacy_frame_indices, F.privacy_frame_indices)
        self.assertIs(protocol.to_uint8, F.to_uint8_np)
        self.assertIs(export.to_uint8, F.to_uint8)
        self.assertIs(export.to_unit_float, F.to_unit_float)
        self.assertIs(tflite.to_uint8_np, F.to_uint8_np)

    def test_imports_nothing_from_the_outer_packages(self):
        with open(F.__file__) as f:
            tree = ast.parse(f.read())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        roots = {m.split(".")[0] for m in modules}
        self.assertEqual(roots - {"__future__", "numpy", "tensorflow"}, set())
        self.assertFalse(roots & {"trainers", "configs", "serving", "benchmarks"})


if __name__ == "__main__":
    tf.test.main()
