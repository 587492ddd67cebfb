"""Tests for the VISPR loader and its 5-attribute mapping."""

import itertools
import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.data import synthetic, vispr
from tfprivacy.data.records import ATTRIBUTE_VALUES, PRIVACY_ATTRIBUTES, DataError


def write_vispr(root, split, images):
    """images: {id: labels}; writes images/<split>/<id>.jpg (placeholder bytes) + annotations."""
    os.makedirs(os.path.join(root, "images", split), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
    for image_id, labels in images.items():
        rel = f"images/{split}/{image_id}.jpg"
        with open(os.path.join(root, rel), "wb") as f:
            f.write(b"\xff\xd8\xff")
        record = {"id": image_id, "image_path": rel, "labels": labels}
        with open(os.path.join(root, "annotations", split, f"{image_id}.json"), "w") as f:
            json.dump(record, f)


class VISPRTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        # Order of the vector: skin_color, face, gender, nudity, relationship.
        ("safe_only", ["a0_safe"], [0, 0, 0, 0, 0]),
        ("nothing", [], [0, 0, 0, 0, 0]),
        ("gender", ["a4_gender", "a1_age_approx"], [0, 0, 1, 0, 0]),
        ("face_complete", ["a9_face_complete"], [0, 1, 0, 0, 0]),
        ("face_partial", ["a10_face_partial"], [0, 1, 0, 0, 0]),
        ("both_faces", ["a9_face_complete", "a10_face_partial"], [0, 1, 0, 0, 0]),
        ("nudity", ["a12_semi_nudity"], [0, 0, 0, 1, 0]),
        ("full_nudity_unmapped", ["a13_full_nudity"], [0, 0, 0, 0, 0]),
        ("skin", ["a17_color"], [1, 0, 0, 0, 0]),
        ("rel_personal", ["a64_rel_personal"], [0, 0, 0, 0, 1]),
        ("rel_social", ["a65_rel_social"], [0, 0, 0, 0, 1]),
        ("rel_professional_unmapped", ["a66_rel_professional"], [0, 0, 0, 0, 0]),
        (
            "all",
            ["a4_gender", "a9_face_complete", "a12_semi_nudity", "a17_color", "a65_rel_social"],
            [1, 1, 1, 1, 1],
        ),
    )
    def test_labels_to_multihot(self, labels, expected):
        out = vispr.labels_to_multihot(labels)
        self.assertEqual(out.dtype, np.int8)
        self.assertAllEqual(out, expected)

    def test_load_train_val_test(self):
        root = os.path.join(self.get_temp_dir(), "vispr")
        write_vispr(root, "train2017", {"2017_2": ["a17_color"], "2017_1": ["a0_safe"]})
        write_vispr(root, "val2017", {"2017_5": ["a4_gender"]})
        write_vispr(root, "test2017", {"2017_9": ["a64_rel_personal", "a10_face_partial"]})
        train, test = vispr.load_vispr(root, train_splits=("train2017", "val2017"))
        self.assertEqual(
            [os.path.basename(r.path) for r in train], ["2017_1.jpg", "2017_2.jpg", "2017_5.jpg"]
        )
        self.assertAllEqual(
            np.stack([r.labels for r in train]), [[0] * 5, [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
        )
        self.assertEqual(test[0].path, os.path.join(root, "images", "test2017", "2017_9.jpg"))
        self.assertAllEqual(test[0].labels, [0, 1, 0, 0, 1])

    def test_missing_image_names_it(self):
        root = os.path.join(self.get_temp_dir(), "vispr")
        write_vispr(root, "train2017", {"2017_1": ["a4_gender"]})
        os.remove(os.path.join(root, "images", "train2017", "2017_1.jpg"))
        with self.assertRaisesRegex(DataError, r"2017_1\.json: image .*2017_1\.jpg does not exist"):
            vispr.load_vispr_split(root, "train2017")

    @parameterized.named_parameters(
        ("malformed", "{", "malformed JSON"),
        ("no_image_path", '{"id": "x", "labels": []}', "'image_path' missing"),
        (
            "labels_not_list",
            '{"id": "x", "image_path": "a.jpg", "labels": "a4_gender"}',
            "'labels'",
        ),
    )
    def test_bad_annotation_names_file(self, text, message):
        root = os.path.join(self.get_temp_dir(), "vispr")
        os.makedirs(os.path.join(root, "annotations", "test2017"))
        with open(os.path.join(root, "annotations", "test2017", "x.json"), "w") as f:
            f.write(text)
        with self.assertRaisesRegex(DataError, rf"x\.json: .*{message}"):
            vispr.load_vispr_split(root, "test2017")

    def test_missing_split_directory(self):
        with self.assertRaisesRegex(DataError, r"annotations.val2017: VISPR annotation directory"):
            vispr.load_vispr_split(self.get_temp_dir(), "val2017")


class SyntheticStillsAgreeWithTheLoaderTest(tf.test.TestCase):
    """The built-in benchmark's VISPR-style stills (synthetic.vispr_labels) and the VISPR loader
    share one attribute map (vispr.VISPR_ATTRIBUTES): every PA-HMDB51 value of every attribute
    lands, through the loader, in the column the benchmark's own video labels put it in."""

    def test_each_attribute_value_lands_in_its_column(self):
        none = dict.fromkeys(PRIVACY_ATTRIBUTES, 0)
        for column, attribute in enumerate(PRIVACY_ATTRIBUTES):
            for value in ATTRIBUTE_VALUES[attribute]:
                values = {**none, attribute: value}
                expected = np.zeros(len(PRIVACY_ATTRIBUTES), np.int8)
                expected[column] = int(synthetic.is_present(value))
                got = vispr.labels_to_multihot(synthetic.vispr_labels(values))
                self.assertAllEqual(got, expected, msg=f"{attribute}={value}")

    def test_every_combination_through_the_files_matches_the_video_labels(self):
        root = os.path.join(self.get_temp_dir(), "stills")
        combos = list(itertools.product(*(ATTRIBUTE_VALUES[a] for a in PRIVACY_ATTRIBUTES)))
        images = {}
        for i, combo in enumerate(combos):
            values = dict(zip(PRIVACY_ATTRIBUTES, combo, strict=True))
            images[f"2017_{i:04d}"] = synthetic.vispr_labels(values)
        write_vispr(root, "train2017", images)
        records = vispr.load_vispr_split(root, "train2017")  # sorted by id: combos' order
        self.assertLen(records, len(combos))
        for record, combo in zip(records, combos, strict=True):
            # The benchmark's PA-HMDB51-format labels of a one-frame video with these values.
            annotation = {a: [(0, 0, v)] for a, v in zip(PRIVACY_ATTRIBUTES, combo, strict=True)}
            video = synthetic.frame_labels(annotation, num_frames=1)[0]
            self.assertAllEqual(record.labels, video, msg=str(combo))

    def test_face_ids_by_value_and_one_map(self):
        none = dict.fromkeys(PRIVACY_ATTRIBUTES, 0)
        self.assertEqual(synthetic.vispr_labels({**none, "face": 1}), ["a10_face_partial"])
        self.assertEqual(synthetic.vispr_labels({**none, "face": 2}), ["a9_face_complete"])
        self.assertIs(synthetic.VISPR_ATTRIBUTES, vispr.VISPR_ATTRIBUTES)
        self.assertEqual(list(vispr.VISPR_ATTRIBUTES), list(PRIVACY_ATTRIBUTES))


if __name__ == "__main__":
    tf.test.main()
