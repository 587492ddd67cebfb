"""Tests of the built-in benchmark generator: determinism, formats, prevalence, reuse."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy import config as C
from tfprivacy.data import synthetic, video_io
from tfprivacy.data.records import ATTRIBUTE_VALUES, PRIVACY_ATTRIBUTES, DataError

TINY = C.SyntheticConfig(
    num_videos=16,
    frames_per_video=8,
    frame_size=32,
    num_images=8,
    seed=0,
    num_actions=8,
    extra_test_videos=0,
)


def _annotation_bytes(root: str) -> dict[str, bytes]:
    out = {}
    for sub in ("annotations", "splits"):
        for name in sorted(os.listdir(os.path.join(root, sub))):
            with open(os.path.join(root, sub, name), "rb") as f:
                out[f"{sub}/{name}"] = f.read()
    return out


class RenderTest(tf.test.TestCase, parameterized.TestCase):
    def test_same_seed_same_frames_and_labels(self):
        a = synthetic.render_video(np.random.default_rng([3, 1]), TINY, 6)
        b = synthetic.render_video(np.random.default_rng([3, 1]), TINY, 6)
        self.assertAllEqual(a[0], b[0])
        self.assertEqual(a[1], b[1])
        c = synthetic.render_video(np.random.default_rng([4, 1]), TINY, 6)
        self.assertNotAllEqual(a[0], c[0])

    @parameterized.parameters(range(len(synthetic.ACTIONS)))
    def test_shapes_and_interval_schema(self, action):
        frames, labels = synthetic.render_video(np.random.default_rng(action), TINY, action)
        self.assertEqual(frames.shape, (8, 32, 32, 3))
        self.assertEqual(frames.dtype, np.uint8)
        self.assertEqual(set(labels), set(PRIVACY_ATTRIBUTES))
        for attr, intervals in labels.items():
            # Inclusive, sorted, contiguous intervals covering frames 0..7 exactly.
            self.assertEqual(intervals[0][0], 0)
            self.assertEqual(intervals[-1][1], 7)
            for (_, e0, _), (s1, _, _) in zip(intervals, intervals[1:], strict=False):
                self.assertEqual(s1, e0 + 1)
            for start, end, value in intervals:
                self.assertLessEqual(start, end)
                for v in value if isinstance(value, list) else [value]:
                    self.assertIn(v, ATTRIBUTE_VALUES[attr], attr)

    def test_scales_with_frame_size(self):
        big = dataclasses.replace(TINY, frame_size=48, frames_per_video=3)
        frames, _ = synthetic.render_video(np.random.default_rng(0), big, 0)
        self.assertEqual(frames.shape, (3, 48, 48, 3))

    def test_bad_action_names_range(self):
        with self.assertRaisesRegex(DataError, "action index 8"):
            synthetic.render_video(np.random.default_rng(0), TINY, 8)

    @parameterized.parameters(("wave", "beckon"), ("clap", "rub_hands"))
    def test_fine_motion_pairs_differ_only_below_x4(self, still, moving):
        # Same rng -> same scene, appearance and coarse motion; only the prop's stripes differ
        # (static vs sliding). At 64 px they have period 4 on a 4 px grid: every 4x4 block
        # mean is the same in both classes (up to uint8 rounding of colour -/+ contrast and
        # noise, < 1 level), while 2x2 block means still differ by tens of levels.
        cfg = dataclasses.replace(TINY, frame_size=64, frames_per_video=4)
        a, _ = synthetic.render_video(np.random.default_rng(5), cfg, synthetic.ACTIONS.index(still))
        b, _ = synthetic.render_video(
            np.random.default_rng(5), cfg, synthetic.ACTIONS.index(moving)
        )

        def blocks(x, k):
            return x.astype(np.float32).reshape(4, 64 // k, k, 64 // k, k, 3).mean(axis=(2, 4))

        self.assertAllEqual(a[0], b[0])  # first frame: same phase
        self.assertNotAllEqual(a, b)
        self.assertLess(np.abs(blocks(a, 4) - blocks(b, 4)).max(), 1.0)
        self.assertGreater(np.abs(blocks(a, 2) - blocks(b, 2)).max(), 20.0)

    def test_prop_stripes_slide_only_when_fingers_move(self):
        # Phases per frame: fixed for wave, one pixel per frame (mod the period 4) for beckon.
        for action, moving in (("wave", False), ("beckon", True)):
            prop = synthetic._sample_prop(np.random.default_rng(0), 64, action, 5)
            phases = prop["phases"]
            steps = {(q - p) % 4 for p, q in zip(phases, phases[1:], strict=False)}
            self.assertIn(steps, ({1}, {3}) if moving else ({0},))  # direction -1 is +3 mod 4
            self.assertEqual(prop["geometry"], (4, 4, 8))
        self.assertEqual(synthetic._prop_geometry(32), (2, 4, 4))

    def test_intervals_run_length(self):
        # Values per frame [2, 2, 0, 0, 0, 2] -> three inclusive runs.
        self.assertEqual(
            synthetic._intervals([2, 2, 0, 0, 0, 2]), [[0, 1, 2], [2, 4, 0], [5, 5, 2]]
        )

    def test_frame_labels_presence_rule(self):
        ann = {a: [[0, 2, 0]] for a in PRIVACY_ATTRIBUTES}
        ann["skin_color"] = [[0, 2, [1, 2]]]  # mixed value: present
        ann["face"] = [[0, 0, 2], [1, 2, 0]]
        labels = synthetic.frame_labels(ann, 3)
        self.assertAllEqual(labels, [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]])

    def test_prevalence_not_degenerate_and_face_turns(self):
        # 96 clips at default rates (fixed seed): every attribute present in 25-75% of frames,
        # and the face value changes inside at least one clip.
        cfg = dataclasses.replace(TINY, frames_per_video=6)
        present = np.zeros(len(PRIVACY_ATTRIBUTES))
        frames_total, face_changes = 0, 0
        for i in range(96):
            rng = np.random.default_rng([0, i])
            _, labels = synthetic.render_video(rng, cfg, i % 8)
            present += synthetic.frame_labels(labels, 6).sum(0)
            frames_total += 6
            face_changes += len(labels["face"]) > 1
        rate = present / frames_total
        for attr, r in zip(PRIVACY_ATTRIBUTES, rate, strict=True):
            self.assertBetween(r, 0.25, 0.75, attr)
        self.assertGreater(face_changes, 0)

    def test_vispr_labels(self):
        values = {"skin_color": 0, "face": 0, "gender": 0, "nudity": 0, "relationship": 0}
        self.assertEqual(synthetic.vispr_labels(values), ["a0_safe"])
        values = {"skin_color": [1, 3], "face": 1, "gender": 2, "nudity": 2, "relationship": 1}
        self.assertEqual(
            synthetic.vispr_labels(values),
            ["a4_gender", "a10_face_partial", "a12_semi_nudity", "a17_color", "a64_rel_personal"],
        )


class GenerateTest(tf.test.TestCase):
    def test_layout_formats_and_determinism(self):
        root_a = os.path.join(self.get_temp_dir(), "a")
        root_b = os.path.join(self.get_temp_dir(), "b")
        synthetic.generate(TINY, root_a, progress=False)
        synthetic.generate(TINY, root_b, progress=False)
        self.assertEqual(_annotation_bytes(root_a), _annotation_bytes(root_b))

        with open(os.path.join(root_a, "meta.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["actions"], list(synthetic.ACTIONS))
        self.assertEqual(meta["config"], dataclasses.asdict(TINY))
        self.assertEqual(meta["version"], synthetic.VERSION)
        num_test = 0
        for action in synthetic.ACTIONS:
            with open(os.path.join(root_a, "annotations", f"{action}.json")) as f:
                ann = json.load(f)
            with open(os.path.join(root_a, "splits", f"{action}_test_split1.txt")) as f:
                lines = [line.split() for line in f.read().splitlines()]
            # 16 videos over 8 actions -> 2 per action; 25% test -> round(0.5) = 0 or 1 each.
            self.assertLen(ann, 2)
            self.assertEqual(sorted(name for name, _ in lines), sorted(ann))
            self.assertTrue(all(flag in ("1", "2") for _, flag in lines))
            num_test += sum(flag == "2" for _, flag in lines)
            for name, entry in ann.items():
                self.assertEqual(set(entry), set(PRIVACY_ATTRIBUTES) | {"review", "note"})
                path = os.path.join(root_a, "videos", action, name)
                frames_a = video_io.read_video(path)
                frames_b = video_io.read_video(os.path.join(root_b, "videos", action, name))
                self.assertEqual(frames_a.shape, (8, 32, 32, 3))
                self.assertAllEqual(frames_a, frames_b)
        self.assertLessEqual(num_test, 8)
        split = synthetic.load_split(root_a)
        self.assertLen(split.train + split.test, 16)
        self.assertEqual(split.train[0].frame_labels.shape, (8, 5))

    def test_stratified_split(self):
        cfg = dataclasses.replace(TINY, num_videos=64)
        jobs = synthetic._assignments(cfg, stream=0)
        for action in range(8):
            # 8 videos per action, 25% -> exactly 2 test videos in every class.
            self.assertEqual(sum(t for _, a, t in jobs if a == action), 2)

    def test_encoded_video_is_near_lossless(self):
        root = self.get_temp_dir()
        frames, _ = synthetic.render_video(np.random.default_rng(0), TINY, 0)
        path = os.path.join(root, "x.avi")
        video_io.write_video(path, frames)
        decoded = video_io.read_video(path)
        # Luma is kept to within a few levels, so 1-2 px texture survives encoding.
        luma = lambda x: x.astype(np.float32) @ np.array([0.299, 0.587, 0.114])  # noqa: E731
        self.assertLess(np.abs(luma(decoded) - luma(frames)).mean(), 4.0)

    def test_ensure_benchmark_reuses_and_regenerates(self):
        cfg = dataclasses.replace(TINY, num_videos=8)
        root = synthetic.benchmark_root(cfg, base_dir=self.get_temp_dir())
        self.assertEqual(
            os.path.basename(root), f"benchmark-v{synthetic.VERSION}-{C.fingerprint(cfg)}"
        )
        cross_root = synthetic.benchmark_root(cfg, base_dir=self.get_temp_dir(), cross=True)
        self.assertEqual(
            os.path.basename(cross_root),
            f"benchmark_cross-v{synthetic.VERSION}-{C.fingerprint(cfg)}",
        )
        synthetic.ensure_benchmark(cfg, root)
        meta = os.path.join(root, "meta.json")
        stamp = os.path.getmtime(meta)
        marker = os.path.join(root, "videos", "jump", "marker.txt")
        with open(marker, "w") as f:
            f.write("x")
        synthetic.ensure_benchmark(cfg, root)  # complete: reused untouched
        self.assertEqual(os.path.getmtime(meta), stamp)
        self.assertTrue(os.path.exists(marker))
        # Simulate a killed run: no meta.json, a stray partial file. Regenerated cleanly.
        os.remove(meta)
        keep = os.path.join(root, "user_notes.txt")
        with open(keep, "w") as f:
            f.write("keep")
        synthetic.ensure_benchmark(cfg, root)
        self.assertTrue(os.path.exists(meta))
        self.assertFalse(os.path.exists(marker))
        self.assertTrue(os.path.exists(keep))
        self.assertLen(synthetic.load_split(root).train + synthetic.load_split(root).test, 8)
        with self.assertRaisesRegex(DataError, "meta.json: holds a different benchmark"):
            synthetic.ensure_benchmark(dataclasses.replace(cfg, seed=1), root)
        # A benchmark written by another generator version is never silently reused.
        with open(meta) as f:
            old = json.load(f)
        with open(meta, "w") as f:
            json.dump({**old, "version": 1}, f)
        with self.assertRaisesRegex(DataError, "version 1"):
            synthetic.ensure_benchmark(cfg, root)

    def test_cross_layout(self):
        cfg = dataclasses.replace(TINY, num_videos=16, num_images=8, frames_per_video=4)
        root = synthetic.ensure_benchmark(cfg, self.get_temp_dir(), cross=True)
        lists = os.path.join(root, "ucf", "ucfTrainTestlist")
        with open(os.path.join(lists, "classInd.txt")) as f:
            class_ind = f.read().splitlines()
        self.assertEqual(class_ind[0], "1 WalkRight")
        self.assertEqual(class_ind[7], "8 RubHands")
        with open(os.path.join(lists, "trainlist01.txt")) as f:
            train = [line.split() for line in f.read().splitlines()]
        with open(os.path.join(lists, "testlist01.txt")) as f:
            test = f.read().splitlines()
        self.assertLen(train + test, 16)
        self.assertNotEmpty(test)
        for name, label in train:
            cls = name.split("/")[0]
            self.assertEqual(class_ind[int(label) - 1].split()[1], cls)
            self.assertRegex(name, rf"^{cls}/v_{cls}_g\d\d_c\d\d\.avi$")
            self.assertTrue(os.path.exists(os.path.join(root, "ucf", "videos", name)))
        # Groups never straddle the split.
        groups = lambda names: {n.rsplit("_", 1)[0] for n in names}  # noqa: E731
        self.assertEmpty(groups([n for n, _ in train]) & groups(test))

        known = {"a0_safe", "a4_gender", "a9_face_complete", "a10_face_partial"}
        known |= {"a12_semi_nudity", "a17_color", "a64_rel_personal"}
        count = 0
        for part in ("train2017", "test2017"):
            ann_dir = os.path.join(root, "vispr", "annotations", part)
            for fname in os.listdir(ann_dir):
                with open(os.path.join(ann_dir, fname)) as f:
                    ann = json.load(f)
                self.assertEqual(fname, ann["id"] + ".json")
                self.assertEqual(ann["image_path"], f"images/{part}/{ann['id']}.jpg")
                self.assertTrue(os.path.exists(os.path.join(root, "vispr", ann["image_path"])))
                self.assertContainsSubset(ann["labels"], known)
                count += 1
        self.assertEqual(count, 8)
        with open(os.path.join(root, "meta.json")) as f:
            self.assertEqual(json.load(f)["variant"], "cross")


class ConcurrentGenerationTest(tf.test.TestCase):
    def test_processes_sharing_a_cache_take_turns(self):
        # Two processes (e.g. two multi-worker workers) ask for the same missing benchmark at
        # once: one generates, the other waits and reuses it; neither sees a half-written dir.
        import subprocess
        import sys

        root = os.path.join(self.get_temp_dir(), "shared")
        code = (
            "import dataclasses, sys; from tfprivacy import config as C; "
            "from tfprivacy.data import synthetic; "
            f"cfg = C.SyntheticConfig(**{dataclasses.asdict(TINY)!r}); "
            "synthetic.ensure_benchmark(cfg, sys.argv[1]); "
            "print(len(synthetic.load_split(sys.argv[1]).train))"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", code, root], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
        self.assertEqual([p.returncode for p in procs], [0, 0])
        self.assertEqual(outputs[0], outputs[1])
        self.assertGreater(int(outputs[0]), 0)


if __name__ == "__main__":
    tf.test.main()
