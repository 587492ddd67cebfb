"""Tests for build_sources: config -> records, on hand-written fixtures of every layout."""

import dataclasses
import json
import os
from unittest import mock

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from configs import experiments
from tfprivacy.data import sources, video_io
from tfprivacy.data.records import DataError


def _entry(num_frames, face_value):
    full = [[0, num_frames - 1, 0]]
    return {
        "skin_color": [[0, num_frames - 1, 1]],
        "face": [[0, num_frames - 1, face_value]],
        "gender": full,
        "nudity": full,
        "relationship": full,
        "review": False,
        "note": "",
    }


def _write_split(split_dir, action, entries, split=1):
    os.makedirs(split_dir, exist_ok=True)
    with open(os.path.join(split_dir, f"{action}_test_split{split}.txt"), "w") as f:
        f.writelines(f"{video} {label} \n" for video, label in entries)


def write_benchmark(root, frames=4, size=16):
    """The built-in layout by hand: 2 actions (label order NOT alphabetical) x 2 tiny videos."""
    actions = ["walk_right", "clap"]
    for index, action in enumerate(actions):
        videos = [(f"{action}_{k}.avi", 1 + k) for k in range(2)]  # _0 train, _1 test
        for video, _ in videos:
            pixels = np.full((frames, size, size, 3), 40 * (index + 1), np.uint8)
            video_io.write_video(os.path.join(root, "videos", action, video), pixels)
        _write_split(os.path.join(root, "splits"), action, videos)
        os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
        with open(os.path.join(root, "annotations", f"{action}.json"), "w") as f:
            json.dump({video: _entry(frames, 2 * k) for k, (video, _) in enumerate(videos)}, f)
    with open(os.path.join(root, "meta.json"), "w") as f:
        json.dump({"config": {}, "actions": actions, "version": 1}, f)


def write_ucf(videos, lists):
    classes = ["Walk", "Clap"]
    for cls in classes:
        for name in (f"v_{cls}_g01_c01.avi", f"v_{cls}_g08_c01.avi"):
            os.makedirs(os.path.join(videos, cls), exist_ok=True)
            open(os.path.join(videos, cls, name), "wb").close()
    os.makedirs(lists, exist_ok=True)
    with open(os.path.join(lists, "classInd.txt"), "w") as f:
        f.writelines(f"{i + 1} {c}\n" for i, c in enumerate(classes))
    with open(os.path.join(lists, "trainlist01.txt"), "w") as f:
        f.writelines(f"{c}/v_{c}_g08_c01.avi {i + 1}\n" for i, c in enumerate(classes))
    with open(os.path.join(lists, "testlist01.txt"), "w") as f:
        f.writelines(f"{c}/v_{c}_g01_c01.avi\n" for c in classes)


def write_vispr(root, split, images):
    for image_id, labels in images.items():
        rel = f"images/{split}/{image_id}.jpg"
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        open(os.path.join(root, rel), "wb").close()
        ann = os.path.join(root, "annotations", split, f"{image_id}.json")
        os.makedirs(os.path.dirname(ann), exist_ok=True)
        with open(ann, "w") as f:
            json.dump({"id": image_id, "image_path": rel, "labels": labels}, f)


class _StubSynthetic:
    """Stands in for tfprivacy.data.synthetic: records calls, generates nothing."""

    def __init__(self, base):
        self.base, self.calls = base, []

    def benchmark_root(self, cfg, base_dir=None, cross=False):
        return os.path.join(self.base, "benchmark_cross-abc" if cross else "benchmark-abc")

    def ensure_benchmark(self, cfg, root, cross=False):
        self.calls.append((root, cross))
        return root


class SourcesTest(tf.test.TestCase, parameterized.TestCase):
    def _data_cfg(self, name, **fields):
        return dataclasses.replace(experiments.get_config(name).data, **fields)

    def test_benchmark_joint_with_generator_label_order(self):
        root = os.path.join(self.get_temp_dir(), "bench")
        write_benchmark(root)
        stub = _StubSynthetic(self.get_temp_dir())
        with mock.patch.object(sources, "_synthetic", return_value=stub):
            src = sources.build_sources(self._data_cfg("benchmark", data_dir=root))
        self.assertEqual(stub.calls, [(root, False)])
        self.assertTrue(src.joint)
        self.assertEqual(src.num_actions, 2)
        self.assertEqual(src.action.class_names, ["walk_right", "clap"])  # from meta.json
        self.assertIs(src.privacy_videos, src.action)
        self.assertIsNone(src.privacy_images)
        train = {os.path.basename(r.path): r for r in src.action.train}
        test = {os.path.basename(r.path): r for r in src.action.test}
        self.assertEqual(sorted(train), ["clap_0.avi", "walk_right_0.avi"])
        self.assertEqual(sorted(test), ["clap_1.avi", "walk_right_1.avi"])
        self.assertEqual(train["walk_right_0.avi"].action, 0)
        self.assertEqual(test["clap_1.avi"].action, 1)
        # _0 videos: skin only; _1 videos: skin + face (value 2), 4 frames each.
        self.assertAllEqual(train["clap_0.avi"].frame_labels, [[1, 0, 0, 0, 0]] * 4)
        self.assertAllEqual(test["clap_1.avi"].frame_labels, [[1, 1, 0, 0, 0]] * 4)
        self.assertEqual(test["clap_1.avi"].num_frames, 4)
        self.assertTrue(all(os.path.exists(r.path) for r in src.action.train + src.action.test))

    def test_benchmark_default_root_and_cross_root_differ(self):
        stub = _StubSynthetic(self.get_temp_dir())
        write_benchmark(os.path.join(self.get_temp_dir(), "benchmark-abc"))
        with mock.patch.object(sources, "_synthetic", return_value=stub):
            sources.build_sources(self._data_cfg("benchmark"))
            with self.assertRaises(DataError):  # nothing written at the cross root
                sources.build_sources(self._data_cfg("benchmark_cross"))
        base = self.get_temp_dir()
        self.assertEqual(
            stub.calls,
            [
                (os.path.join(base, "benchmark-abc"), False),
                (os.path.join(base, "benchmark_cross-abc"), True),
            ],
        )

    def test_benchmark_video_without_annotation(self):
        root = os.path.join(self.get_temp_dir(), "bench")
        write_benchmark(root)
        _write_split(os.path.join(root, "splits"), "clap", [("clap_0.avi", 1), ("extra.avi", 2)])
        with mock.patch.object(sources, "_synthetic", return_value=_StubSynthetic(root)):
            with self.assertRaisesRegex(
                DataError, "video clap/extra.avi has no privacy annotation"
            ):
                sources.build_sources(self._data_cfg("benchmark", data_dir=root))

    def test_benchmark_cross(self):
        root = os.path.join(self.get_temp_dir(), "cross")
        write_ucf(
            os.path.join(root, "ucf", "videos"), os.path.join(root, "ucf", "ucfTrainTestlist")
        )
        write_vispr(os.path.join(root, "vispr"), "train2017", {"1": ["a4_gender"], "2": []})
        write_vispr(os.path.join(root, "vispr"), "test2017", {"3": ["a17_color"]})
        stub = _StubSynthetic(root)
        with mock.patch.object(sources, "_synthetic", return_value=stub):
            src = sources.build_sources(self._data_cfg("benchmark_cross", data_dir=root))
        self.assertEqual(stub.calls, [(root, True)])
        self.assertFalse(src.joint)
        self.assertIsNone(src.privacy_videos)
        self.assertEqual(src.action.class_names, ["Walk", "Clap"])
        self.assertEqual(src.num_actions, 2)
        self.assertEqual([r.action for r in src.action.test], [0, 1])
        train, test = src.privacy_images
        self.assertAllEqual(np.stack([r.labels for r in train]), [[0, 0, 1, 0, 0], [0] * 5])
        self.assertAllEqual(test[0].labels, [1, 0, 0, 0, 0])

    def _write_hmdb_pa(self, base):
        hmdb, splits, pa = (os.path.join(base, d) for d in ("hmdb51", "splits", "pa"))
        entries = {
            "clap": [("c1.avi", 1), ("c2.avi", 2), ("pa_c.avi", 0)],
            "wave": [("w1.avi", 2), ("pa_w1.avi", 1), ("pa_w2.avi", 2)],
        }
        for action, videos in entries.items():
            _write_split(splits, action, videos, split=2)
            for video, _ in videos:
                os.makedirs(os.path.join(hmdb, action), exist_ok=True)
                open(os.path.join(hmdb, action, video), "wb").close()
        os.makedirs(pa)
        with open(os.path.join(pa, "clap.json"), "w") as f:
            json.dump({"pa_c.avi": _entry(3, 1)}, f)
        with open(os.path.join(pa, "wave.json"), "w") as f:
            json.dump({"pa_w1.avi": _entry(5, 0), "pa_w2.avi": _entry(2, 2)}, f)
        return dict(hmdb51_dir=hmdb, hmdb51_splits_dir=splits, pahmdb51_dir=pa, split=2)

    def test_hmdb51_pahmdb51(self):
        fields = self._write_hmdb_pa(self.get_temp_dir())
        src = sources.build_sources(self._data_cfg("hmdb51_pahmdb51", **fields))
        self.assertFalse(src.joint)
        self.assertEqual(src.num_actions, 2)
        self.assertEqual(src.action.class_names, ["clap", "wave"])
        names = lambda records: [os.path.basename(r.path) for r in records]  # noqa: E731
        # PA-HMDB51 videos are held out of the action split entirely.
        self.assertEqual(names(src.action.train), ["c1.avi"])
        self.assertEqual(names(src.action.test), ["c2.avi", "w1.avi"])
        # HMDB51 label 2 -> privacy test; 0 (unused) and 1 -> privacy train.
        pv = src.privacy_videos
        self.assertEqual(names(pv.train), ["pa_c.avi", "pa_w1.avi"])
        self.assertEqual(names(pv.test), ["pa_w2.avi"])
        self.assertEqual([r.action for r in pv.train], [0, 1])
        self.assertEqual(pv.train[0].path, os.path.join(fields["hmdb51_dir"], "clap", "pa_c.avi"))
        self.assertAllEqual(pv.train[0].frame_labels, [[1, 1, 0, 0, 0]] * 3)
        self.assertEqual(pv.train[1].num_frames, 5)
        self.assertAllEqual(pv.test[0].frame_labels, [[1, 1, 0, 0, 0]] * 2)
        self.assertIsNone(src.privacy_images)

    def test_pahmdb51_video_not_in_split_file(self):
        fields = self._write_hmdb_pa(self.get_temp_dir())
        with open(os.path.join(fields["pahmdb51_dir"], "clap.json"), "w") as f:
            json.dump({"pa_c.avi": _entry(3, 1), "stray.avi": _entry(3, 1)}, f)
        with self.assertRaisesRegex(DataError, r"clap\.json: video 'stray\.avi' is not listed"):
            sources.build_sources(self._data_cfg("hmdb51_pahmdb51", **fields))

    def test_pahmdb51_unknown_action(self):
        fields = self._write_hmdb_pa(self.get_temp_dir())
        with open(os.path.join(fields["pahmdb51_dir"], "juggle.json"), "w") as f:
            json.dump({"j.avi": _entry(3, 1)}, f)
        with self.assertRaisesRegex(DataError, "action 'juggle' is not an HMDB51 class"):
            sources.build_sources(self._data_cfg("hmdb51_pahmdb51", **fields))

    @parameterized.parameters(True, False)
    def test_ucf101_vispr(self, with_val):
        base = self.get_temp_dir()
        write_ucf(os.path.join(base, "UCF-101"), os.path.join(base, "lists"))
        vroot = os.path.join(base, "vispr")
        write_vispr(vroot, "train2017", {"1": ["a9_face_complete"]})
        write_vispr(vroot, "test2017", {"3": ["a65_rel_social"], "4": ["a0_safe"]})
        if with_val:
            write_vispr(vroot, "val2017", {"2": ["a12_semi_nudity"]})
        cfg = self._data_cfg(
            "ucf101_vispr",
            ucf101_dir=os.path.join(base, "UCF-101"),
            ucf101_splits_dir=os.path.join(base, "lists"),
            vispr_dir=vroot,
        )
        src = sources.build_sources(cfg)
        self.assertEqual(src.num_actions, 2)
        self.assertLen(src.action.train, 2)
        train, test = src.privacy_images
        expected_train = [[0, 1, 0, 0, 0]] + ([[0, 0, 0, 1, 0]] if with_val else [])
        self.assertAllEqual(np.stack([r.labels for r in train]), expected_train)
        self.assertAllEqual(np.stack([r.labels for r in test]), [[0, 0, 0, 0, 1], [0] * 5])

    @parameterized.named_parameters(
        ("hmdb_unset", "hmdb51_pahmdb51", {}, r"needs data\.hmdb51_dir"),
        ("pa_unset", "hmdb51_pahmdb51", {"hmdb51_dir": ".", "hmdb51_splits_dir": "."},
         r"needs data\.pahmdb51_dir"),
        ("hmdb_missing", "hmdb51_pahmdb51", {"hmdb51_dir": "/no/such/dir"},
         r"data\.hmdb51_dir='/no/such/dir' does not exist"),
        ("ucf_unset", "ucf101_vispr", {}, r"needs data\.ucf101_dir"),
        ("vispr_unset", "ucf101_vispr", {"ucf101_dir": ".", "ucf101_splits_dir": "."},
         r"needs data\.vispr_dir"),
        ("unknown", "benchmark", {"dataset": "kinetics"}, "data.dataset='kinetics' is unknown"),
    )  # fmt: skip
    def test_config_errors_name_the_field(self, name, fields, message):
        with self.assertRaisesRegex(DataError, message):
            sources.build_sources(self._data_cfg(name, **fields))

    def _synthetic_or_skip(self):
        try:
            from tfprivacy.data import synthetic
        except ImportError:
            self.skipTest("tfprivacy.data.synthetic not available")
        return synthetic

    def test_benchmark_tiny_end_to_end(self):
        synthetic = self._synthetic_or_skip()
        cfg = experiments.get_config("benchmark_tiny").data
        cfg = dataclasses.replace(cfg, data_dir=os.path.join(self.get_temp_dir(), "tiny"))
        src = sources.build_sources(cfg)
        records = src.action.train + src.action.test
        self.assertTrue(src.joint)
        self.assertEqual(src.num_actions, cfg.synthetic.num_actions)
        self.assertLen(records, cfg.synthetic.num_videos)
        self.assertNotEmpty(src.action.test)
        for record in records:
            self.assertTrue(os.path.exists(record.path), record.path)
            self.assertEqual(record.frame_labels.shape, (cfg.synthetic.frames_per_video, 5))
        # The generator's own reader agrees with the real-format loaders, label for label.
        own = synthetic.load_split(cfg.data_dir)
        self.assertEqual(own.class_names, src.action.class_names)
        for ours, theirs in [(src.action.train, own.train), (src.action.test, own.test)]:
            theirs = {r.path: r for r in theirs}
            self.assertCountEqual([r.path for r in ours], list(theirs))
            for record in ours:
                self.assertEqual(record.action, theirs[record.path].action)
                self.assertAllEqual(record.frame_labels, theirs[record.path].frame_labels)
        # Reuses what it generated: same records, no regeneration.
        again = sources.build_sources(cfg)
        self.assertEqual([r.path for r in again.action.train], [r.path for r in src.action.train])

    def test_benchmark_cross_tiny_end_to_end(self):
        self._synthetic_or_skip()
        cfg = experiments.get_config("benchmark_tiny").data
        cfg = dataclasses.replace(
            cfg, dataset="benchmark_cross", data_dir=os.path.join(self.get_temp_dir(), "cross")
        )
        src = sources.build_sources(cfg)
        self.assertFalse(src.joint)
        self.assertIsNone(src.privacy_videos)
        self.assertEqual(src.num_actions, cfg.synthetic.num_actions)
        self.assertNotEmpty(src.action.train)
        self.assertNotEmpty(src.action.test)
        for record in src.action.train + src.action.test:
            self.assertTrue(os.path.exists(record.path), record.path)
            self.assertIsNone(record.frame_labels)
        train, test = src.privacy_images
        self.assertNotEmpty(train)
        self.assertNotEmpty(test)
        self.assertEqual(len(train) + len(test), cfg.synthetic.num_images)
        labels = np.stack([r.labels for r in train + test])
        self.assertEqual(labels.shape[1], 5)
        self.assertTrue(set(np.unique(labels)) <= {0, 1})


if __name__ == "__main__":
    tf.test.main()
