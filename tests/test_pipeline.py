"""Tests for tfprivacy.data.pipeline on tiny videos written to temp dirs.

Frame k of every test video has uniform intensity 16 * k, and its labels are the 5 bits of k,
so a decoded clip tells which frames were picked and whether the labels were gathered with
the same indices.
"""

import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.config import DataConfig
from tfprivacy.data import pipeline, video_io
from tfprivacy.data.records import DataError, ImageRecord, VideoRecord

SIZE = 16  # pipeline frame size
STORED = 24  # stored video side: the pipeline must resize
STEP = 16  # intensity step between frames (mpeg4 at qscale 1 is within a few levels)


def _bits(k: int) -> np.ndarray:
    return np.array([(k >> b) & 1 for b in range(5)], np.int8)


def _write(path: str, num_frames: int) -> np.ndarray:
    frames = np.stack([np.full([STORED, STORED, 3], STEP * k, np.uint8) for k in range(num_frames)])
    video_io.write_video(path, frames)
    return np.stack([_bits(k) for k in range(num_frames)])


def _frame_ids(clips: np.ndarray) -> np.ndarray:
    """[..., T, S, S, 3] clips in [0, 1] -> [..., T] frame numbers k."""
    return np.round(clips.mean(axis=(-3, -2, -1)) * 255.0 / STEP).astype(int)


def _label_ids(labels: np.ndarray) -> np.ndarray:
    """[..., T, 5] bit labels -> [..., T] frame numbers k."""
    return (np.round(labels).astype(int) * (1 << np.arange(5))).sum(-1)


def _determinism_on() -> bool:
    from tensorflow.python.framework import config as tf_config

    return tf_config.is_op_determinism_enabled()


def _cfg(**kw) -> DataConfig:
    base = dict(frame_size=SIZE, clip_length=4, batch_size=2, shuffle_buffer=8)
    base.update(kw)
    return DataConfig(**base)


class PipelineTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()
        # Lengths: longer than T, equal, shorter (looping / repeating).
        self.records = []
        for i, n in enumerate([8, 4, 3]):
            path = os.path.join(self.dir, f"v{i}.avi")
            self.records.append(
                VideoRecord(path, action=i, num_frames=n, frame_labels=_write(path, n))
            )

    def _bad_records(self):
        corrupt = os.path.join(self.dir, "corrupt.avi")
        with open(corrupt, "wb") as f:
            f.write(np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes())
        empty = os.path.join(self.dir, "empty.avi")
        open(empty, "wb").close()
        missing = os.path.join(self.dir, "missing.avi")
        labels = np.zeros([4, 5], np.int8)
        return [VideoRecord(p, 0, 4, labels) for p in (corrupt, empty, missing)]

    # --- preprocessing ------------------------------------------------------------------------

    @parameterized.parameters(([7, 9, 3],), ([4, 7, 9, 3],), ([2, 4, 7, 9, 3],))
    def test_process_clip_shapes_and_range(self, shape):
        frames = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
        out = pipeline.process_clip(frames, 5)
        self.assertEqual(out.dtype, tf.float32)
        self.assertEqual(out.shape, tuple(shape[:-3]) + (5, 5, 3))
        self.assertAllInRange(out, 0.0, 1.0)

    def test_process_clip_values(self):
        # Uniform 255 -> 1.0 after any resize; same size is exactly x / 255.
        self.assertAllClose(
            pipeline.process_clip(np.full([2, 6, 6, 3], 255, np.uint8), 3), np.ones([2, 3, 3, 3])
        )
        frames = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape([2, 3, 3, 3])
        self.assertAllClose(pipeline.process_clip(frames, 3), frames / 255.0)

    def test_process_clip_rejects_float(self):
        with self.assertRaisesRegex(TypeError, "uint8"):
            pipeline.process_clip(np.zeros([4, 4, 3], np.float32), 2)

    def test_clip_privacy_labels(self):
        frame_labels = np.array([[[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]], np.float32)
        self.assertAllEqual(pipeline.clip_privacy_labels(frame_labels), [[1, 0, 1, 0, 0]])

    def test_clip_privacy_labels_from_covered_frames_only(self):
        # Per attribute over the frames an annotation covers (-1 = uncovered): present if any
        # covered frame is; absent if all covered frames are absent (the unknown ones do not
        # make it present, nor unknown); -1 if no frame of the clip is covered.
        frame_labels = np.array(
            [
                [[-1, 0, -1, -1, 1], [0, -1, -1, 1, -1], [-1, 1, -1, 0, 0]],
                [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]],  # no -1: max over frames
            ],
            np.float32,
        )
        expected = [[0, 1, -1, 1, 1], [1, 1, 1, 1, 1]]
        self.assertAllEqual(pipeline.clip_privacy_labels(frame_labels), expected)
        self.assertAllEqual(
            pipeline.clip_privacy_labels(frame_labels.astype(np.int8)), np.int8(expected)
        )
        # Inside a graph too (the streams map it over tf.data batches).
        graph = tf.function(pipeline.clip_privacy_labels)
        self.assertAllEqual(graph(tf.constant(frame_labels)), expected)

    # --- sampling -----------------------------------------------------------------------------

    @parameterized.parameters(
        (16, 8, [1, 3, 5, 7, 9, 11, 13, 15]),  # segment centres (2i+1)*16//16
        (10, 4, [1, 3, 6, 8]),  # (2i+1)*10//8 = 10//8, 30//8, 50//8, 70//8
        (4, 8, [0, 0, 1, 1, 2, 2, 3, 3]),  # shorter than T: each frame twice
        (1, 3, [0, 0, 0]),
    )
    def test_eval_indices(self, n, t, expected):
        self.assertAllEqual(pipeline.eval_frame_indices(n, t), expected)

    def test_train_indices_seeded_strided_and_looping(self):
        # N=16, T=8: stride 16//8 = 2, span 15, so the start is 0 or 1.
        seen = set()
        for s in range(20):
            idx = pipeline.train_frame_indices(16, 8, [s, 7]).numpy()
            self.assertAllEqual(np.diff(idx), [2] * 7)
            seen.add(int(idx[0]))
            self.assertAllEqual(idx, pipeline.train_frame_indices(16, 8, [s, 7]))
        self.assertEqual(seen, {0, 1})
        # N=3 < T=4: consecutive frames from a random start, looping: e.g. 2, 0, 1, 2.
        for s in range(5):
            idx = pipeline.train_frame_indices(3, 4, [s, 1]).numpy()
            self.assertAllEqual(idx, (idx[0] + np.arange(4)) % 3)

    # --- video pipelines ----------------------------------------------------------------------

    def test_decoding_under_op_determinism_logs_no_rewrite_error(self):
        # The evaluation turns op determinism on; a parallel map of the stateful decoder then
        # made TF log "E0000 ... NodeDef mentions attribute use_unbounded_threadpool" as it
        # rewrote the map to a sequential one.
        from tests.subprocess_util import run_python

        code = (
            "import sys, tensorflow as tf; from tfprivacy.config import DataConfig; "
            "from tfprivacy.data import pipeline; from tfprivacy.data.records import VideoRecord; "
            "tf.config.experimental.enable_op_determinism(); "
            "assert pipeline.decode_parallelism() is None; "
            f"cfg = DataConfig(frame_size={SIZE}, clip_length=4, batch_size=2); "
            "recs = [VideoRecord(p, 0) for p in sys.argv[1:]]; "
            "ds = pipeline.video_dataset(recs, cfg, training=False, with_privacy=False); "
            "print(sum(int(a.shape[0]) for _, a in ds))"
        )
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        paths = [r.path for r in self.records]
        proc = run_python("-c", code, *paths, env={**env, "TF_CPP_MIN_LOG_LEVEL": "1"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "3")
        self.assertNotIn("use_unbounded_threadpool", proc.stderr)
        self.assertEqual(pipeline.decode_parallelism() is None, _determinism_on())

    def test_element_specs(self):
        cfg = _cfg()
        train = pipeline.video_dataset(self.records, cfg, training=True)
        self.assertEqual(
            train.element_spec,
            (
                tf.TensorSpec([2, 4, SIZE, SIZE, 3], tf.float32),
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([2, 4, 5], tf.float32),
            ),
        )
        test = pipeline.video_dataset(self.records, cfg, training=False)
        self.assertEqual(
            test.element_spec,
            (
                tf.TensorSpec([None, 4, SIZE, SIZE, 3], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, 4, 5], tf.float32),
            ),
        )
        no_privacy = pipeline.video_dataset(self.records, cfg, training=False, with_privacy=False)
        self.assertLen(no_privacy.element_spec, 2)
        unlabelled = [VideoRecord(r.path, r.action) for r in self.records]
        self.assertLen(pipeline.video_dataset(unlabelled, cfg, training=True).element_spec, 2)

    def test_eval_frames_and_labels(self):
        clips, actions, labels = pipeline.materialize(
            pipeline.video_dataset(self.records, _cfg(), training=False)
        )
        self.assertAllEqual(actions, [0, 1, 2])  # deterministic order, partial batch kept
        expected = [[1, 3, 5, 7], [0, 1, 2, 3], [0, 1, 1, 2]]  # N = 8, 4, 3 with T = 4
        self.assertAllEqual(_frame_ids(clips), expected)
        self.assertAllEqual(_label_ids(labels), expected)
        self.assertAllInRange(clips, 0.0, 1.0)

    def test_train_frames_and_labels_match_and_repeat_by_seed(self):
        def first_batches(seed, cache):
            ds = pipeline.video_dataset(
                self.records, _cfg(cache_decoded=cache), training=True, seed=seed
            )
            return pipeline.materialize(ds, max_batches=6)

        clips, actions, labels = first_batches(3, cache=True)
        self.assertEqual(clips.shape, (12, 4, SIZE, SIZE, 3))
        ids = _frame_ids(clips)
        self.assertAllEqual(ids, _label_ids(labels))
        lengths = np.array([8, 4, 3])[actions]
        for row, n in zip(ids, lengths, strict=True):
            self.assertAllInRange(row, 0, n - 1)
            self.assertAllEqual(row, (row[0] + np.arange(4) * max(1, n // 4)) % n)
        again = first_batches(3, cache=False)
        for a, b in zip((clips, actions, labels), again, strict=True):
            self.assertAllClose(a, b)
        other = first_batches(4, cache=True)
        self.assertFalse(
            np.array_equal(actions, other[1]) and np.allclose(clips, other[0]),
            "a different seed gave the same batches",
        )

    def test_spread_indices_cover_the_video(self):
        # N=16, T=8: stride 2, starts 0 and 1: together every frame once.
        self.assertAllEqual(
            pipeline.spread_frame_indices(16, 8, 2),
            [[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]],
        )
        # N=40, T=8: stride 5, 5 starts spread as 0, 2, 4.
        self.assertAllEqual(pipeline.spread_frame_indices(40, 8, 3)[:, 0], [0, 2, 4])
        # More clips than starts wrap around; one clip starts at 0.
        self.assertAllEqual(pipeline.spread_frame_indices(16, 8, 3)[:, 0], [0, 1, 0])
        self.assertAllEqual(pipeline.spread_frame_indices(8, 4, 1), [[0, 2, 4, 6]])

    def test_several_eval_clips_per_video_with_their_labels(self):
        ds = pipeline.video_dataset(self.records[:1], _cfg(), False, clips_per_video=2)
        clips, actions, labels = pipeline.materialize(ds)
        # Video 0 has 8 frames, T=4 at stride 2: frames 0, 2, 4, 6 and 1, 3, 5, 7.
        self.assertAllEqual(_frame_ids(clips), [[0, 2, 4, 6], [1, 3, 5, 7]])
        self.assertAllEqual(_label_ids(labels), [[0, 2, 4, 6], [1, 3, 5, 7]])
        self.assertAllEqual(actions, [0, 0])
        with self.assertRaisesRegex(ValueError, "clips_per_video"):
            pipeline.video_dataset(self.records, _cfg(), False, clips_per_video=0)

    def test_label_rows_padded_or_truncated(self):
        short = VideoRecord(self.records[0].path, 0, 8, self.records[0].frame_labels[:3])
        long = VideoRecord(self.records[1].path, 1, 4, np.stack([_bits(k) for k in range(9)]))
        _, _, labels = pipeline.materialize(
            pipeline.video_dataset([short, long], _cfg(), training=False)
        )
        # Frames 1, 3, 5, 7 of an 8-frame video with rows 0..2 -> last row (2) repeated.
        self.assertAllEqual(_label_ids(labels), [[1, 2, 2, 2], [0, 1, 2, 3]])

    def test_bad_videos_skipped_and_counted(self):
        tracker = pipeline.BadVideoTracker(6, 0.5)
        ds = pipeline.video_dataset(
            self.records + self._bad_records(), _cfg(), training=False, tracker=tracker
        )
        _, actions, _ = pipeline.materialize(ds)
        self.assertAllEqual(actions, [0, 1, 2])
        self.assertEqual(tracker.seen, 6)
        reasons = dict((os.path.basename(p), r) for p, r in tracker.bad)
        self.assertEqual(sorted(reasons), ["corrupt.avi", "empty.avi", "missing.avi"])
        self.assertIn("zero-length", reasons["empty.avi"])
        self.assertIn("does not exist", reasons["missing.avi"])

    def test_bad_videos_warned_once_per_run_and_listed(self):
        pipeline._BAD_INPUTS.clear()  # a new run
        with self.assertLogs(level="WARNING") as logs:
            for _ in range(2):  # two phases: each builds its datasets and trackers anew
                tracker = pipeline.BadVideoTracker(6, 0.5)
                pipeline.materialize(
                    pipeline.video_dataset(
                        self.records + self._bad_records(), _cfg(), training=False, tracker=tracker
                    )
                )
        warned = [m for m in logs.output if "Skipping unreadable input" in m]
        for name in ("corrupt.avi", "empty.avi", "missing.avi"):
            self.assertEqual(sum(name in m for m in warned), 1, name)
        listed = {os.path.basename(b["path"]) for b in pipeline.bad_inputs()}
        self.assertLessEqual({"corrupt.avi", "empty.avi", "missing.avi"}, listed)

    def test_too_many_bad_videos_raise_naming_files(self):
        records = self.records + self._bad_records()  # 3 of 6 bad > 0.4
        cfg = _cfg(max_bad_fraction=0.4)
        with self.assertRaisesRegex(pipeline.TooManyBadInputsError, r"of 6 inputs.*\.avi"):
            pipeline.materialize(pipeline.video_dataset(records, cfg, training=True), 4)
        # Raw iteration surfaces a tf error carrying the message; clean_errors unwraps it.
        with self.assertRaisesRegex(tf.errors.OpError, "max_bad_fraction=0.4"):
            for _ in pipeline.video_dataset(records, cfg, training=False):
                pass
        with self.assertRaises(pipeline.TooManyBadInputsError) as ctx:
            with pipeline.clean_errors():
                for _ in pipeline.video_dataset(records, cfg, training=False):
                    pass
        self.assertIsInstance(ctx.exception, DataError)
        self.assertNotIn("Traceback", str(ctx.exception))
        self.assertRegex(str(ctx.exception), r"(corrupt|empty|missing)\.avi")

    def test_invalid_records(self):
        bad_labels = VideoRecord(self.records[0].path, 0, 8, np.zeros([8, 4], np.int8))
        with self.assertRaisesRegex(DataError, "v0.avi: frame_labels"):
            pipeline.video_dataset([bad_labels], _cfg(), training=False)
        mixed = [self.records[0], VideoRecord(self.records[1].path, 1)]
        with self.assertRaisesRegex(DataError, "v1.avi"):
            pipeline.video_dataset(mixed, _cfg(), training=False)
        with self.assertRaisesRegex(DataError, "no records"):
            pipeline.video_dataset([], _cfg(), training=False)

    def test_materialize_refuses_infinite(self):
        with self.assertRaisesRegex(ValueError, "max_batches"):
            pipeline.materialize(pipeline.video_dataset(self.records, _cfg(), training=True))

    # --- images -------------------------------------------------------------------------------

    def test_image_dataset(self):
        records = []
        for k in range(3):
            path = os.path.join(self.dir, f"img{k}.png")
            image = np.full([20, 12, 3], STEP * k, np.uint8)
            tf.io.write_file(path, tf.io.encode_png(image))
            records.append(ImageRecord(path, _bits(k)))
        corrupt = os.path.join(self.dir, "bad.jpg")
        with open(corrupt, "wb") as f:
            f.write(b"not an image")
        records.append(ImageRecord(corrupt, _bits(0)))
        cfg = _cfg(max_bad_fraction=0.3)
        tracker = pipeline.BadVideoTracker(4, 0.3)
        test = pipeline.image_dataset(records, cfg, training=False, tracker=tracker)
        self.assertEqual(
            test.element_spec,
            (
                tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32),
                tf.TensorSpec([None, 5], tf.float32),
            ),
        )
        images, labels = pipeline.materialize(test)
        self.assertAllEqual(_frame_ids(images[:, None]), [[0], [1], [2]])
        self.assertAllEqual(_label_ids(labels), [0, 1, 2])
        self.assertEqual([os.path.basename(p) for p, _ in tracker.bad], ["bad.jpg"])
        train = pipeline.image_dataset(records, cfg, training=True, seed=1)
        self.assertEqual(train.element_spec[0], tf.TensorSpec([2, SIZE, SIZE, 3], tf.float32))
        images, labels = pipeline.materialize(train, max_batches=3)
        self.assertAllEqual(_frame_ids(images[:, None])[:, 0], _label_ids(labels))


if __name__ == "__main__":
    tf.test.main()
