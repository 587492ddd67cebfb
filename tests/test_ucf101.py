"""Tests for the UCF101 loader (released layout; empty placeholder videos, never decoded)."""

import os

import tensorflow as tf
from absl.testing import parameterized

from tfprivacy.data import ucf101
from tfprivacy.data.records import DataError

_CLASS_IND = "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n"
# The release's case quirk: classInd says HandstandPushups, the directory and file names say
# HandStandPushups.
_VIDEOS = {
    "ApplyEyeMakeup": ["v_ApplyEyeMakeup_g01_c01.avi", "v_ApplyEyeMakeup_g08_c01.avi"],
    "HandStandPushups": ["v_HandStandPushups_g01_c01.avi", "v_HandStandPushups_g08_c02.avi"],
    "YoYo": ["v_YoYo_g08_c01.avi"],
}
_TRAIN = (
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
    "HandstandPushups/v_HandStandPushups_g08_c02.avi 2\r\n"
    "YoYo/v_YoYo_g08_c01.avi 3\r\n"
)
_TEST = (
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
    "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
)


def write_ucf101(base, class_ind=_CLASS_IND, train=_TRAIN, test=_TEST, split=1):
    """Writes <base>/UCF-101/<Class>/*.avi and <base>/ucfTrainTestlist/*.txt."""
    videos, lists = os.path.join(base, "UCF-101"), os.path.join(base, "ucfTrainTestlist")
    for cls, names in _VIDEOS.items():
        os.makedirs(os.path.join(videos, cls), exist_ok=True)
        for name in names:
            open(os.path.join(videos, cls, name), "wb").close()
    os.makedirs(lists, exist_ok=True)
    for name, text in [
        ("classInd.txt", class_ind),
        (f"trainlist{split:02d}.txt", train),
        (f"testlist{split:02d}.txt", test),
    ]:
        with open(os.path.join(lists, name), "w", newline="") as f:
            f.write(text)
    return videos, lists


class UCF101Test(tf.test.TestCase, parameterized.TestCase):
    def test_split_labels_and_case_insensitive_classes(self):
        videos, lists = write_ucf101(self.get_temp_dir())
        split = ucf101.load_ucf101(videos, lists, split=1)
        self.assertEqual(split.class_names, ["ApplyEyeMakeup", "HandstandPushups", "YoYo"])
        self.assertEqual([r.action for r in split.train], [0, 1, 2])
        self.assertEqual([r.action for r in split.test], [0, 1])
        # Paths use the directory's real spelling, so they exist.
        hand = os.path.join(videos, "HandStandPushups", "v_HandStandPushups_g01_c01.avi")
        self.assertEqual(split.test[1].path, hand)
        self.assertTrue(all(os.path.exists(r.path) for r in split.train + split.test))

    def test_split_number_picks_the_list_files(self):
        videos, lists = write_ucf101(self.get_temp_dir(), split=2)
        self.assertLen(ucf101.load_ucf101(videos, lists, split=2).train, 3)
        with self.assertRaisesRegex(DataError, r"trainlist01\.txt: cannot read"):
            ucf101.load_ucf101(videos, lists, split=1)

    @parameterized.named_parameters(
        (
            "label_disagrees",
            {"train": "YoYo/v_YoYo_g08_c01.avi 1\n"},
            r"trainlist01\.txt:1: label 1",
        ),
        ("label_range", {"train": "YoYo/v_YoYo_g08_c01.avi 4\n"}, r"trainlist01\.txt:1: label 4"),
        ("no_label", {"train": "YoYo/v_YoYo_g08_c01.avi\n"}, r"trainlist01\.txt:1: expected"),
        ("unknown_class", {"test": "Juggle/v_Juggle_g01_c01.avi\n"}, r"testlist01\.txt:1: 'Juggle"),
        ("no_class_dir", {"test": "v_YoYo_g01_c01.avi\n"}, r"testlist01\.txt:1: 'v_YoYo"),
        ("class_gap", {"class_ind": "1 A\n3 B\n"}, r"classInd\.txt: class indices must be 1\.\.2"),
        ("class_line", {"class_ind": "ApplyEyeMakeup\n"}, r"classInd\.txt:1: expected"),
    )
    def test_bad_lists_name_file_and_line(self, change, message):
        videos, lists = write_ucf101(self.get_temp_dir(), **change)
        with self.assertRaisesRegex(DataError, message):
            ucf101.load_ucf101(videos, lists)

    def test_missing_video_dir(self):
        _, lists = write_ucf101(self.get_temp_dir())
        with self.assertRaisesRegex(DataError, "nowhere: UCF101 video directory"):
            ucf101.load_ucf101(os.path.join(self.get_temp_dir(), "nowhere"), lists)


if __name__ == "__main__":
    tf.test.main()
