"""Tests for the PA-HMDB51 annotation loader (fixtures in the released JSON format)."""

import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.data import pahmdb51
from tfprivacy.data.records import DataError


def _entry(**overrides):
    """A 6-frame video: every attribute one interval, value 0 (absent) unless overridden."""
    entry = {
        "skin_color": [[0, 5, 0]],
        "face": [[0, 5, 0]],
        "gender": [[0, 5, 0]],
        "nudity": [[0, 5, 0]],
        "relationship": [[0, 5, 0]],
        "review": True,
        "note": "",
    }
    entry.update(overrides)
    return entry


class PAHMDB51Test(tf.test.TestCase, parameterized.TestCase):
    def _write(self, data, name="brush_hair.json", directory=None):
        directory = directory or os.path.join(self.get_temp_dir(), "ann")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def test_intervals_to_multihot(self):
        # skin_color 1 (white) everywhere; face complete on 0-1, invisible on 2-3, partial on
        # 4-5; gender mixed [1, 2] on 0-2 then 0; nudity level 0 (absent); relationship 1 on 5.
        entry = _entry(
            skin_color=[[0, 5, 1]],
            face=[[0, 1, 2], [2, 3, 0], [4, 5, 1]],
            gender=[[0, 2, [1, 2]], [3, 5, 0]],
            relationship=[[0, 4, 0], [5, 5, 1]],
        )
        labels, gaps, clipped = pahmdb51.parse_video_annotation(entry, source="f", video="v")
        expected = np.array(
            # skin face gender nudity rel
            [
                [1, 1, 1, 0, 0],
                [1, 1, 1, 0, 0],
                [1, 0, 1, 0, 0],
                [1, 0, 0, 0, 0],
                [1, 1, 0, 0, 0],
                [1, 1, 0, 0, 1],
            ],
            np.int8,
        )
        self.assertEqual(labels.dtype, np.int8)
        self.assertAllEqual(labels, expected)
        self.assertFalse(gaps)
        self.assertFalse(clipped)

    def test_mixed_value_with_zero_is_present(self):
        entry = _entry(gender=[[0, 5, [0, 2]]])
        labels, _, _ = pahmdb51.parse_video_annotation(entry, source="f", video="v")
        self.assertAllEqual(labels[:, 2], [1] * 6)

    def test_num_frames_is_max_end_plus_one(self):
        entry = _entry(face=[[0, 8, 2]])  # face runs 3 frames past the other attributes
        labels, gaps, _ = pahmdb51.parse_video_annotation(entry, source="f", video="v")
        self.assertEqual(labels.shape, (9, 5))
        self.assertTrue(gaps)  # frames 6-8 of the other attributes are uncovered ...
        self.assertAllEqual(labels[6:, 0], [-1, -1, -1])  # ... so unknown, not absent
        self.assertAllEqual(labels[6:, 1], [1, 1, 1])

    def test_given_frame_count_pads_and_clips(self):
        entry = _entry(skin_color=[[0, 5, 3]])
        longer, gaps, clipped = pahmdb51.parse_video_annotation(
            entry, source="f", video="v", num_frames=8
        )
        self.assertEqual(longer.shape, (8, 5))
        self.assertAllEqual(longer[:, 0], [1, 1, 1, 1, 1, 1, -1, -1])
        self.assertTrue(gaps)
        self.assertFalse(clipped)
        shorter, _, clipped = pahmdb51.parse_video_annotation(
            entry, source="f", video="v", num_frames=4
        )
        self.assertAllEqual(shorter[:, 0], [1, 1, 1, 1])
        self.assertTrue(clipped)

    def test_overlapping_intervals_are_ored(self):
        entry = _entry(face=[[0, 3, 2], [2, 5, 0]])
        labels, _, _ = pahmdb51.parse_video_annotation(entry, source="f", video="v")
        self.assertAllEqual(labels[:, 1], [1, 1, 1, 1, 0, 0])

    def test_overlapping_intervals_union_with_uncovered_frames(self):
        # face: present 2-3 and absent 1-3 -> present where any interval says so (2, 3),
        # absent where only absent intervals cover (1), unknown where none does (0, 4, 5),
        # whatever the order of the intervals. gender: two absent intervals overlap -> absent.
        for face in ([[2, 3, 1], [1, 3, 0]], [[1, 3, 0], [2, 3, 1]]):
            entry = _entry(face=face, gender=[[0, 2, 0], [1, 3, 0]])
            labels, gaps, _ = pahmdb51.parse_video_annotation(entry, source="f", video="v")
            self.assertAllEqual(labels[:, 1], [-1, 0, 1, 1, -1, -1])
            self.assertAllEqual(labels[:, 2], [0, 0, 0, 0, -1, -1])
            self.assertTrue(gaps)

    def test_uncovered_frames_are_unknown(self):
        # The released annotations' three kinds of gap: an annotation that starts a few frames
        # in (skin_color from frame 2), an internal gap (face misses frames 2-3), an attribute
        # starting a frame late (gender from frame 1). Covered frames keep 0 / 1.
        entry = _entry(
            skin_color=[[2, 5, 1]],
            face=[[0, 1, 2], [4, 5, 0]],
            gender=[[1, 5, [1, 2]]],
        )
        labels, gaps, clipped = pahmdb51.parse_video_annotation(entry, source="f", video="v")
        self.assertEqual(labels.dtype, np.int8)
        self.assertAllEqual(labels[:, 0], [-1, -1, 1, 1, 1, 1])
        self.assertAllEqual(labels[:, 1], [1, 1, -1, -1, 0, 0])
        self.assertAllEqual(labels[:, 2], [-1, 1, 1, 1, 1, 1])
        self.assertAllEqual(labels[:, 3:], np.zeros((6, 2)))  # covered, absent
        self.assertTrue(gaps)
        self.assertFalse(clipped)
        self.assertEqual(pahmdb51.UNKNOWN, -1)
        self.assertEqual(
            pahmdb51.unknown_frames({"v": labels}),
            {"skin_color": 2, "face": 2, "gender": 1, "nudity": 0, "relationship": 0},
        )

    def test_load_annotations_logs_one_summary_line_with_unknown_counts(self):
        directory = os.path.join(self.get_temp_dir(), "gaps")
        self._write(
            {"a.avi": _entry(skin_color=[[2, 5, 1]]), "b.avi": _entry(face=[[0, 4, 1]])},
            "brush_hair.json",
            directory,
        )
        self._write({"c.avi": _entry(skin_color=[[1, 5, 0]])}, "pullup.json", directory)
        with self.assertLogs(logger="absl", level="INFO") as logs:
            annotations = pahmdb51.load_annotations(directory)
        self.assertAllEqual(annotations["brush_hair"]["a.avi"][:, 0], [-1, -1, 1, 1, 1, 1])
        # One line for the whole load (no warning per file), with the unknown frames per
        # attribute: skin_color 2 (a) + 1 (c), face 1 (b).
        (record,) = logs.records
        self.assertEqual(record.levelname, "INFO")
        message = record.getMessage()
        self.assertIn(directory, message)
        self.assertIn("3 videos, 18 frames", message)
        self.assertIn("skin_color 3, face 1, gender 0, nudity 0, relationship 0", message)

    def test_load_annotations_action_from_file_stem(self):
        directory = os.path.join(self.get_temp_dir(), "two")
        self._write({"a.avi": _entry(nudity=[[0, 5, 2]])}, "brush_hair.json", directory)
        self._write({"b.avi": _entry(), "c.avi": _entry()}, "pullup.json", directory)
        annotations = pahmdb51.load_annotations(directory)
        self.assertEqual(list(annotations), ["brush_hair", "pullup"])
        self.assertEqual(list(annotations["pullup"]), ["b.avi", "c.avi"])
        self.assertAllEqual(annotations["brush_hair"]["a.avi"][:, 3], [1] * 6)

    def test_load_annotation_file_with_frame_counts(self):
        path = self._write({"a.avi": _entry(), "b.avi": _entry()})
        out = pahmdb51.load_annotation_file(path, num_frames={"b.avi": 10})
        self.assertEqual(out["a.avi"].shape, (6, 5))
        self.assertEqual(out["b.avi"].shape, (10, 5))

    def test_duplicate_video_across_files(self):
        directory = os.path.join(self.get_temp_dir(), "dup")
        self._write({"a.avi": _entry()}, "x.json", directory)
        self._write({"a.avi": _entry()}, "y.json", directory)
        with self.assertRaisesRegex(DataError, r"y\.json.*'a\.avi'.*x\.json"):
            pahmdb51.load_annotations(directory)

    @parameterized.named_parameters(
        ("missing_attribute", {"face": None}, "'face' is missing"),
        ("empty_intervals", {"gender": []}, "'gender' must be a non-empty list"),
        ("start_after_end", {"nudity": [[4, 2, 1]]}, "'nudity' has bad interval"),
        ("negative_start", {"nudity": [[-1, 5, 1]]}, "'nudity' has bad interval"),
        ("float_frame", {"skin_color": [[0, 5.0, 1]]}, "'skin_color' has bad interval"),
        ("bool_frame", {"skin_color": [[True, 5, 1]]}, "'skin_color' has bad interval"),
        ("short_interval", {"face": [[0, 5]]}, r"'face' has interval \[0, 5\]"),
        ("value_out_of_range", {"face": [[0, 5, 3]]}, "'face' has value 3"),
        ("relationship_2", {"relationship": [[0, 5, 2]]}, "'relationship' has value 2"),
        ("bad_mixed_value", {"gender": [[0, 5, [1, 7]]]}, r"'gender' has value \[1, 7\]"),
        ("string_value", {"gender": [[0, 5, "1"]]}, "'gender' has value '1'"),
    )
    def test_bad_annotation_names_file_video_attribute(self, change, message):
        entry = _entry(**change)
        if change.get("face", ()) is None:
            del entry["face"]
        path = self._write({"clip_7.avi": entry})
        with self.assertRaisesRegex(
            DataError, rf"brush_hair\.json: video 'clip_7\.avi'.*{message}"
        ):
            pahmdb51.load_annotation_file(path)

    def test_malformed_json(self):
        path = self._write('{"a.avi": {"face": [[0, 1, 2]')
        with self.assertRaisesRegex(DataError, r"brush_hair\.json: malformed JSON"):
            pahmdb51.load_annotation_file(path)

    def test_missing_or_empty_directory(self):
        missing = os.path.join(self.get_temp_dir(), "nope")
        with self.assertRaisesRegex(DataError, "nope: PA-HMDB51 annotation directory"):
            pahmdb51.load_annotations(missing)
        empty = os.path.join(self.get_temp_dir(), "empty")
        os.makedirs(empty)
        with self.assertRaisesRegex(DataError, "no PA-HMDB51"):
            pahmdb51.load_annotations(empty)


if __name__ == "__main__":
    tf.test.main()
