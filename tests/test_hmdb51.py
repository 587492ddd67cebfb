"""Tests for the HMDB51 loader (released layout; empty placeholder videos, never decoded)."""

import os

import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.data import hmdb51
from tfprivacy.data.records import DataError

# action -> [(video, 0|1|2)]; note "wave" sorts after "clap".
_SPLIT1 = {
    "wave": [("w1.avi", 1), ("w2.avi", 2), ("w3.avi", 0), ("pa_w4.avi", 1)],
    "clap": [("c1.avi", 2), ("c2.avi", 1), ("pa_c3.avi", 2)],
}


def write_hmdb51(base, splits=None, split=1, missing=()):
    """Writes <base>/videos/<action>/<video> and <base>/splits/<action>_test_split<N>.txt."""
    splits = splits or _SPLIT1
    videos, split_dir = os.path.join(base, "videos"), os.path.join(base, "splits")
    os.makedirs(split_dir, exist_ok=True)
    for action, entries in splits.items():
        os.makedirs(os.path.join(videos, action), exist_ok=True)
        for video, _ in entries:
            if video not in missing:
                open(os.path.join(videos, action, video), "wb").close()
        # Released files end every line with a space.
        with open(os.path.join(split_dir, f"{action}_test_split{split}.txt"), "w") as f:
            f.writelines(f"{video} {label} \n" for video, label in entries)
    return videos, split_dir


class HMDB51Test(tf.test.TestCase, parameterized.TestCase):
    def test_split_and_sorted_class_index(self):
        videos, splits = write_hmdb51(self.get_temp_dir())
        split = hmdb51.load_hmdb51(videos, splits, split=1)
        self.assertEqual(split.class_names, ["clap", "wave"])
        train = [(os.path.basename(r.path), r.action) for r in split.train]
        test = [(os.path.basename(r.path), r.action) for r in split.test]
        self.assertEqual(train, [("c2.avi", 0), ("w1.avi", 1), ("pa_w4.avi", 1)])
        self.assertEqual(test, [("c1.avi", 0), ("pa_c3.avi", 0), ("w2.avi", 1)])
        self.assertEqual(split.train[0].path, os.path.join(videos, "clap", "c2.avi"))
        self.assertIsNone(split.train[0].frame_labels)
        self.assertEqual(split.train[0].num_frames, 0)  # unknown: not decoded

    def test_exclude_removes_from_train_and_test(self):
        videos, splits = write_hmdb51(self.get_temp_dir())
        split = hmdb51.load_hmdb51(videos, splits, exclude={"pa_w4.avi", "pa_c3.avi"})
        names = {os.path.basename(r.path) for r in split.train + split.test}
        self.assertEqual(names, {"c1.avi", "c2.avi", "w1.avi", "w2.avi"})

    def test_given_class_order(self):
        videos, splits = write_hmdb51(self.get_temp_dir())
        split = hmdb51.load_hmdb51(videos, splits, class_names=["wave", "clap"])
        self.assertEqual(split.class_names, ["wave", "clap"])
        self.assertEqual([r.action for r in split.train], [0, 0, 1])  # w1, pa_w4, c2
        with self.assertRaisesRegex(DataError, "split files name actions"):
            hmdb51.load_hmdb51(videos, splits, class_names=["wave", "jump"])

    def test_other_split_number(self):
        videos, splits = write_hmdb51(self.get_temp_dir(), split=3)
        self.assertLen(hmdb51.load_hmdb51(videos, splits, split=3).train, 3)
        with self.assertRaisesRegex(DataError, r"no '<action>_test_split1\.txt' files"):
            hmdb51.load_hmdb51(videos, splits, split=1)

    def test_missing_video_is_kept_for_the_pipeline(self):
        videos, splits = write_hmdb51(self.get_temp_dir(), missing=("w1.avi",))
        split = hmdb51.load_hmdb51(videos, splits)
        self.assertIn(os.path.join(videos, "wave", "w1.avi"), [r.path for r in split.train])

    def test_missing_action_directory(self):
        videos, splits = write_hmdb51(self.get_temp_dir())
        os.rename(os.path.join(videos, "wave"), os.path.join(videos, "gone"))
        with self.assertRaisesRegex(DataError, r"wave: no video directory for action 'wave'"):
            hmdb51.load_hmdb51(videos, splits)

    @parameterized.named_parameters(
        ("bad_label", "a.avi 3\n", r"clap_test_split1\.txt:1: expected"),
        ("missing_label", "a.avi 1\nb.avi\n", r"clap_test_split1\.txt:2: expected"),
        (
            "duplicate",
            "a.avi 1\na.avi 2\n",
            r"clap_test_split1\.txt:2: video 'a\.avi' listed twice",
        ),
    )
    def test_bad_split_line(self, text, message):
        splits = os.path.join(self.get_temp_dir(), "bad_splits")
        os.makedirs(splits)
        with open(os.path.join(splits, "clap_test_split1.txt"), "w") as f:
            f.write(text)
        with self.assertRaisesRegex(DataError, message):
            hmdb51.read_split_assignments(splits, 1)

    def test_read_split_file_skips_blank_lines(self):
        path = os.path.join(self.get_temp_dir(), "x_test_split1.txt")
        with open(path, "w") as f:
            f.write("a.avi 1 \r\n\r\nb.avi 0 \r\n")
        self.assertEqual(hmdb51.read_split_file(path), {"a.avi": 1, "b.avi": 0})


if __name__ == "__main__":
    tf.test.main()
