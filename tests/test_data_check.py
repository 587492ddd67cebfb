"""Tests for the dataset checker: real-format fixtures (tiny decodable videos) and the CLI."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from absl.testing import absltest

from configs import experiments
from tests.subprocess_util import ROOT
from tests.test_sources import _entry, _write_split
from tfprivacy.data import check, sources, video_io
from tfprivacy.data.records import DataError

ALL_PA_MESSAGE = (
    "the action split is empty because all 3 listed videos are PA-HMDB51 videos, which the "
    "protocol holds out; HMDB51's other videos must be under data.hmdb51_dir"
)

# action -> [(video, HMDB51 label)]: c*/w* plain HMDB51 videos, pa_* annotated in PA-HMDB51.
_SPLIT = {
    "clap": [("c1.avi", 1), ("c2.avi", 2), ("pa_c.avi", 0)],
    "wave": [("w1.avi", 1), ("w2.avi", 2), ("pa_w1.avi", 1), ("pa_w2.avi", 2)],
}
_ALL_PA_SPLIT = {"clap": [("pa_c.avi", 1)], "wave": [("pa_w1.avi", 1), ("pa_w2.avi", 2)]}


def write_hmdb_pa(base, splits=None, frames=3, size=16):
    """HMDB51 + PA-HMDB51 in the released layout, every video a real (tiny) .avi."""
    hmdb, split_dir, pa = (os.path.join(base, d) for d in ("hmdb51", "splits", "pa"))
    for index, (action, videos) in enumerate(_SPLIT.items()):
        for video, _ in videos:
            pixels = np.full((frames, size, size, 3), 60 * (index + 1), np.uint8)
            video_io.write_video(os.path.join(hmdb, action, video), pixels)
    for action, videos in (splits or _SPLIT).items():
        _write_split(split_dir, action, videos)
    os.makedirs(pa)
    with open(os.path.join(pa, "clap.json"), "w") as f:
        json.dump({"pa_c.avi": _entry(frames, 1)}, f)
    with open(os.path.join(pa, "wave.json"), "w") as f:
        json.dump({"pa_w1.avi": _entry(frames, 0), "pa_w2.avi": _entry(frames, 2)}, f)
    return dict(hmdb51_dir=hmdb, hmdb51_splits_dir=split_dir, pahmdb51_dir=pa)


def _data_cfg(name, **fields):
    return dataclasses.replace(experiments.get_config(name).data, **fields)


def _split(report, name):
    (split,) = [s for s in report.splits if s.name == name]
    return split


class _TempDirTest(absltest.TestCase):
    def tempdir(self) -> str:
        # tempfile rather than absltest's create_tempdir, which needs parsed absl flags.
        path = tempfile.mkdtemp(prefix="data-check-")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path


class CheckDatasetTest(_TempDirTest):
    def test_tiny_benchmark_is_ok(self):
        cfg = _data_cfg("benchmark_tiny")  # generated under $TFPRIVACY_DATA (conftest)
        report = check.check_dataset(cfg, max_workers=2)
        self.assertTrue(report.ok, report.format())
        self.assertEqual([p for p in report.problems if p.severity == check.ERROR], [])
        names = [s.name for s in report.splits]
        self.assertEqual(names, ["action+privacy train", "action+privacy test"])
        total = sum(s.listed for s in report.splits)
        self.assertEqual(total, cfg.synthetic.num_videos)
        for split in report.splits:
            self.assertEqual(
                (split.found, split.missing, split.undecodable), (split.listed, [], [])
            )
            self.assertLen(split.class_counts, cfg.synthetic.num_actions)
            self.assertEqual(split.labelled, split.listed * cfg.synthetic.frames_per_video)
            # The generated annotations cover every frame: nothing unknown.
            self.assertEqual(set(split.unknown_counts.values()), {0})
        text = report.format()
        self.assertRegex(text, r"\n  unknown\s+0\s+0\s+0\s+0\s+0\n")
        self.assertNotIn("note:", text)
        self.assertTrue(text.splitlines()[-1].startswith("OK: "), text)
        self.assertIn("per class min/max", text)
        check.require_usable(cfg)  # does not raise

    def test_tiny_benchmark_cross_checks_images(self):
        cfg = _data_cfg("benchmark_tiny", dataset="benchmark_cross")
        report = check.check_dataset(cfg, max_workers=2)
        self.assertTrue(report.ok, report.format())
        images = [s for s in report.splits if s.kind == "images"]
        self.assertEqual([s.name for s in images], ["images train", "images test"])
        self.assertEqual(sum(s.listed for s in images), cfg.synthetic.num_images)
        self.assertTrue(all(s.found == s.listed and not s.undecodable for s in images))
        self.assertIn(f"and {cfg.synthetic.num_images} images checked", report.verdict())

    def test_missing_and_corrupt_videos(self):
        cfg = _data_cfg("benchmark_tiny", data_dir=os.path.join(self.tempdir(), "tiny"))
        train = sources.build_sources(cfg).action.train  # generates the copy
        gone, corrupt = train[0].path, train[1].path
        os.remove(gone)
        with open(corrupt, "wb") as f:
            f.write(b"\x00garbage\xff" * 3)
        report = check.check_dataset(cfg, max_workers=2)
        split = _split(report, "action+privacy train")
        self.assertEqual(split.missing, [gone])
        self.assertEqual([p for p, _ in split.undecodable], [corrupt])
        self.assertEqual(split.found, split.listed - 1)
        self.assertFalse(report.ok)  # 2 of 32 bad > data.max_bad_fraction=0.05
        messages = " | ".join(p.message for p in report.errors)
        self.assertIn(f"1 of {split.listed} videos listed for action+privacy train", messages)
        self.assertIn(
            f"1 of {split.listed} videos in action+privacy train are undecodable", messages
        )
        self.assertIn(os.path.basename(gone), messages)
        self.assertIn(os.path.basename(corrupt), messages)
        self.assertIn("data.max_bad_fraction=0.05", messages)
        self.assertEqual(report.verdict(), f"NOT USABLE: {len(report.errors)} problems")
        text = report.format()
        self.assertRegex(text, r"action\+privacy train\s+32\s+31\s+1\s+1\s")
        with self.assertRaisesRegex(DataError, os.path.basename(corrupt)):
            check.require_usable(cfg)
        # Within the allowed fraction the same files are warnings: usable, still listed.
        lenient = check.check_dataset(dataclasses.replace(cfg, max_bad_fraction=0.5))
        self.assertTrue(lenient.ok, lenient.format())
        warned = " | ".join(p.message for p in lenient.warnings)
        self.assertIn(os.path.basename(gone), warned)
        self.assertIn(os.path.basename(corrupt), warned)

    def test_undecodable_listed_all(self):
        cfg = _data_cfg("benchmark_tiny", data_dir=os.path.join(self.tempdir(), "tiny"))
        test = sources.build_sources(cfg).action.test
        for record in test[:7]:
            with open(record.path, "wb") as f:
                f.write(b"not a video")
        report = check.check_dataset(cfg)
        split = _split(report, "action+privacy test")
        self.assertLen(split.undecodable, 7)
        (problem,) = [p for p in report.errors if "undecodable" in p.message]
        for record in test[:7]:
            self.assertIn(record.path, problem.message)

    def test_hmdb51_pahmdb51_holds_out_pa_videos(self):
        fields = write_hmdb_pa(self.tempdir())
        report = check.check_dataset(_data_cfg("hmdb51_pahmdb51", **fields))
        self.assertTrue(report.ok, report.format())
        action_train, action_test = _split(report, "action train"), _split(report, "action test")
        self.assertEqual((action_train.listed, action_train.held_out), (2, 1))
        self.assertEqual((action_test.listed, action_test.held_out), (2, 1))
        self.assertEqual(_split(report, "privacy train").listed, 2)  # pa_c (unused), pa_w1
        self.assertEqual(_split(report, "privacy test").listed, 1)
        self.assertEqual(_split(report, "privacy train").attribute_counts["face"], 3)  # pa_c

    def test_unknown_frames_counted_per_attribute_and_split(self):
        fields = write_hmdb_pa(self.tempdir())
        # pa_c.avi (privacy train): face annotated from frame 1 only, nudity from frame 2:
        # frames 0 (face) and 0-1 (nudity) are unknown, not absent.
        entry = _entry(3, 1)
        entry["face"] = [[1, 2, 2]]
        entry["nudity"] = [[2, 2, 0]]
        with open(os.path.join(fields["pahmdb51_dir"], "clap.json"), "w") as f:
            json.dump({"pa_c.avi": entry}, f)
        report = check.check_dataset(_data_cfg("hmdb51_pahmdb51", **fields))
        self.assertTrue(report.ok, report.format())
        train = _split(report, "privacy train")
        self.assertEqual(
            train.unknown_counts,
            {"skin_color": 0, "face": 1, "gender": 0, "nudity": 2, "relationship": 0},
        )
        # Unknown frames are not counted present: pa_c's face in frames 1-2 only.
        self.assertEqual(train.attribute_counts["face"], 2)
        self.assertEqual(train.labelled, 6)
        self.assertEqual(set(_split(report, "privacy test").unknown_counts.values()), {0})
        self.assertIsNone(_split(report, "action train").unknown_counts)  # no labels there
        text = report.format()
        self.assertRegex(
            text,
            r"privacy train\s+6\s+6\s+2\s+0\s+0\s+0\n  unknown\s+0\s+1\s+0\s+2\s+0\n",
        )
        self.assertNotIn("note:", text)

    def test_all_listed_videos_are_pahmdb51(self):
        fields = write_hmdb_pa(self.tempdir(), splits=_ALL_PA_SPLIT)
        report = check.check_dataset(_data_cfg("hmdb51_pahmdb51", **fields))
        self.assertFalse(report.ok)
        self.assertLen(report.errors, 1, report.format())
        self.assertStartsWith(report.errors[0].message, ALL_PA_MESSAGE)
        self.assertEqual(_split(report, "action train").listed, 0)
        self.assertEqual(_split(report, "action train").held_out, 2)
        with self.assertRaisesRegex(DataError, "all 3 listed videos are PA-HMDB51 videos"):
            check.require_usable(_data_cfg("hmdb51_pahmdb51", **fields))

    def test_class_without_training_video(self):
        fields = write_hmdb_pa(self.tempdir())
        os.remove(os.path.join(fields["hmdb51_dir"], "wave", "w1.avi"))
        report = check.check_dataset(_data_cfg("hmdb51_pahmdb51", **fields))
        self.assertEqual(_split(report, "action train").usable_counts, {"clap": 1, "wave": 0})
        messages = [p.message for p in report.errors]
        self.assertTrue(
            any(m.startswith("class 'wave' has no usable video in action train") for m in messages),
            messages,
        )
        self.assertTrue(any("w1.avi" in m for m in messages), messages)

    def test_directories_name_the_field(self):
        base = self.tempdir()
        empty = os.path.join(base, "empty")
        os.makedirs(empty)
        cases = [
            ({}, "data.dataset='hmdb51_pahmdb51' needs data.hmdb51_dir"),
            ({"hmdb51_dir": os.path.join(base, "nope")}, "data.hmdb51_dir='"),
            ({"hmdb51_dir": empty}, f"data.hmdb51_dir={empty!r} is empty"),
        ]
        for fields, message in cases:
            report = check.check_dataset(_data_cfg("hmdb51_pahmdb51", **fields))
            self.assertFalse(report.ok)
            self.assertStartsWith(report.errors[0].message, message)
            # Every missing directory is reported at once, not only the first.
            self.assertLen(report.errors, 3)
            self.assertIn("data.pahmdb51_dir", report.errors[2].message)
        report = check.check_dataset(
            _data_cfg("ucf101_vispr", ucf101_dir=empty, ucf101_splits_dir=empty, vispr_dir=empty)
        )
        self.assertEqual(
            [p.message.split(" ")[0] for p in report.errors],
            [f"data.{f}={empty!r}" for f in ("ucf101_dir", "ucf101_splits_dir", "vispr_dir")],
        )


class CommandLineTest(_TempDirTest):
    def _run(self, *flags):
        # TFPRIVACY_DATA (set by conftest) is inherited: the tiny benchmark is generated once.
        return subprocess.run(
            [sys.executable, "-m", "tfprivacy.data.check", *flags],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_good_directory_exits_0(self):
        result = self._run("--config=benchmark_tiny", "--workers=2")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertStartsWith(result.stdout.splitlines()[-1], "OK: ")

    def test_bad_directory_exits_1(self):
        empty = self.tempdir()
        result = self._run("--config=hmdb51_pahmdb51", f"--set=data.hmdb51_dir={empty}")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(result.stdout.splitlines()[-1], "NOT USABLE: 3 problems")
        self.assertIn(f"data.hmdb51_dir={empty!r} is empty", result.stdout)
        self.assertNotIn("Traceback", result.stderr)

    def test_bad_config_is_a_message(self):
        result = self._run("--config=benchmark_tiny", "--set=data.split=9")
        self.assertEqual(result.returncode, 1)
        self.assertIn("data.split=9", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    absltest.main()
