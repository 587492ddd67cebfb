"""Tests of the built-in benchmark's "body" family: PA-HMDB51 prevalences, determinism, coarse
private cues that survive 8x downsampling, coarse actions carried by limb motion that survive
8x, fine hand motion that is large at full resolution and erased by 4x area downsampling, the
shared formats, and the default ("props") family's cache key."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from unittest import mock

import numpy as np
from absl.testing import absltest, parameterized

from tfprivacy import config as C
from tfprivacy.data import check, pahmdb51, sources, synthetic
from tfprivacy.data import synthetic_body as B
from tfprivacy.data.records import ATTRIBUTE_VALUES, PRIVACY_ATTRIBUTES, DataError
from tfprivacy.eval import cache

BODY = C.SyntheticConfig(
    num_videos=16,
    frames_per_video=8,
    frame_size=32,
    num_images=8,
    seed=0,
    num_actions=8,
    extra_test_videos=0,
    family="body",
)
# 64 px frames: 8x area downsampling leaves 8x8 cells.
BODY64 = dataclasses.replace(BODY, frame_size=64, frames_per_video=2)


def _down(frames: np.ndarray, k: int) -> np.ndarray:
    """k x k area (average-pool) downsampling of uint8 frames [F, S, S, 3] -> float32."""
    n, s = frames.shape[0], frames.shape[1]
    return frames.astype(np.float32).reshape(n, s // k, k, s // k, k, 3).mean(axis=(2, 4))


def _forced(seed, cfg, action: int, **values) -> np.ndarray:
    """Frames of the scene drawn from `seed`, with appearance fields replaced by `values` after
    sampling (so every other random draw, noise included, stays the same)."""
    sample = B._sample_appearance

    def patched(*args, **kwargs):
        return dataclasses.replace(sample(*args, **kwargs), **values)

    with mock.patch.object(B, "_sample_appearance", patched):
        return B.render_video(np.random.default_rng(seed), cfg, action)[0]


def _skin_cells(cells: np.ndarray) -> np.ndarray:
    """Fraction of skin-coloured cells per frame: r >= g >= b, hue 12-45 deg, saturation
    0.2-0.7 (the skin tones' range; clothing and costumes avoid hues 330-70 deg)."""
    r, g, b = cells[..., 0], cells[..., 1], cells[..., 2]
    top, bottom = cells.max(-1), cells.min(-1)
    sat = (top - bottom) / np.maximum(top, 1.0)
    hue = np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)) % 360
    skin = (r >= g) & (g >= b) & (hue > 12) & (hue < 45) & (sat > 0.2) & (sat < 0.7) & (top > 40)
    return skin.mean(axis=(-1, -2))


def _frame_gap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Largest change of any cell (channel) of k x k-downsampled frames, averaged over frames."""
    return float(np.abs(_down(a, k) - _down(b, k)).max(axis=(1, 2, 3)).mean())


def _auc(pos, neg) -> float:
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


class BodyRenderTest(parameterized.TestCase):
    def test_prevalences_match_pahmdb51(self):
        # 300 videos x 8 frames (fixed seed): the fraction of frames where each attribute is
        # present within 5 points of PA-HMDB51's, rare relationship included.
        present, frames, face_changes = np.zeros(len(PRIVACY_ATTRIBUTES)), 0, 0
        for i in range(300):
            _, labels = synthetic.render_video(np.random.default_rng([0, i]), BODY, i % 8)
            present += synthetic.frame_labels(labels, 8).sum(0)
            frames += 8
            face_changes += len(labels["face"]) > 1
        for attr, rate in zip(PRIVACY_ATTRIBUTES, present / frames, strict=True):
            self.assertAlmostEqual(rate, B.PREVALENCE[attr], delta=0.05, msg=attr)
        self.assertGreater(face_changes, 10)  # the face turns away and back inside clips

    def test_same_seed_same_frames_and_labels(self):
        a = synthetic.render_video(np.random.default_rng([3, 1]), BODY, 6)
        b = synthetic.render_video(np.random.default_rng([3, 1]), BODY, 6)
        np.testing.assert_array_equal(a[0], b[0])
        self.assertEqual(a[1], b[1])
        c = synthetic.render_video(np.random.default_rng([4, 1]), BODY, 6)
        self.assertFalse(np.array_equal(a[0], c[0]))
        # The dispatch: the props family draws another picture from the same rng.
        props = dataclasses.replace(BODY, family="props")
        d = synthetic.render_video(np.random.default_rng([3, 1]), props, 6)
        self.assertFalse(np.array_equal(a[0], d[0]))

    @parameterized.parameters(range(len(B.ACTIONS)))
    def test_shapes_and_interval_schema(self, action):
        frames, labels = synthetic.render_video(np.random.default_rng(action), BODY, action)
        self.assertEqual(frames.shape, (8, 32, 32, 3))
        self.assertEqual(frames.dtype, np.uint8)
        self.assertEqual(set(labels), set(PRIVACY_ATTRIBUTES))
        for attr, intervals in labels.items():
            self.assertEqual((intervals[0][0], intervals[-1][1]), (0, 7))
            for (_, e0, _), (s1, _, _) in zip(intervals, intervals[1:], strict=False):
                self.assertEqual(s1, e0 + 1)
            for _, _, value in intervals:
                for v in value if isinstance(value, list) else [value]:
                    self.assertIn(v, ATTRIBUTE_VALUES[attr], attr)

    def test_bad_action_names_range(self):
        with self.assertRaisesRegex(DataError, "action index 8"):
            synthetic.render_video(np.random.default_rng(0), BODY, 8)

    def test_coarse_cues_survive_8x_and_fine_ones_do_not(self):
        # The same scene with one attribute changed, 8x area-downsampled: gender's build and
        # hair, nudity's bare skin and skin colour's hue move some 8x8-cell's colour by tens
        # of levels in every scene; the face marks (mean = the skin) hardly move any.
        costume = synthetic._sample_skin(np.random.default_rng(0), False)[1]
        pairs = {
            "gender male/female": ({"gender": 1}, {"gender": 2}),
            "gender none/male": ({"gender": 0}, {"gender": 1}),
            "nudity 0/2": ({"nudity": 0}, {"nudity": 2}),
            "skin costume/tone": ({"skin_value": 0, "skin": costume}, {}),
            "face 0/2": ({"face": [0, 0]}, {"face": [2, 2]}),
        }
        diffs = {name: [] for name in pairs}
        for i in range(12):
            for name, (a, b) in pairs.items():
                if name.startswith("skin"):  # each of the three tones in turn
                    b = {"skin_value": i % 3 + 1, "skin": synthetic._SKIN_TONES[i % 3]}
                fa, fb = (_forced([11, i], BODY64, i % 8, **v) for v in (a, b))
                diffs[name].append(np.abs(_down(fa, 8) - _down(fb, 8)).max())
        for name in pairs:
            if name.startswith("face"):
                self.assertLess(np.mean(diffs[name]), 8.0, name)
            else:
                self.assertGreater(np.min(diffs[name]), 15.0, name)
                self.assertGreater(np.mean(diffs[name]), 30.0, name)

    def test_nudity_separates_scenes_on_8x_frames(self):
        # Across scenes (plain background: the statistic reads the actor, not the clutter),
        # the fraction of skin-coloured 8x8 cells tells a bare torso from a clothed one.
        def plain(rng, size):
            return np.full((size, size, 3), 128.0, np.float32)

        by_nudity = {0: [], 2: []}
        with mock.patch.object(synthetic, "_background", plain):
            for i in range(160):
                frames, labels = B.render_video(np.random.default_rng([9, i]), BODY64, i % 8)
                nudity, skin = labels["nudity"][0][2], labels["skin_color"][0][2]
                if nudity in by_nudity and skin != 0:
                    by_nudity[nudity].append(_skin_cells(_down(frames, 8)).mean())
        self.assertGreater(min(map(len, by_nudity.values())), 30)
        self.assertGreater(_auc(by_nudity[2], by_nudity[0]), 0.9)

    @parameterized.parameters(("wave", "raise_hand"), ("clap", "rub_hands"))
    def test_fine_pairs_differ_only_in_fine_motion(self, moving, other):
        # Same rng -> same actor, scene and first frame; later frames differ by the hands'
        # check: tens of levels at full size, nothing (rounding) after 4x or 8x downsampling.
        cfg = dataclasses.replace(BODY64, frames_per_video=16)
        full, cells4, cells8 = [], [], []
        for i in range(8):
            a, _ = B.render_video(np.random.default_rng([3, i]), cfg, B.ACTIONS.index(moving))
            b, _ = B.render_video(np.random.default_rng([3, i]), cfg, B.ACTIONS.index(other))
            np.testing.assert_array_equal(a[0], b[0])
            full.append(_frame_gap(a, b, 1))
            cells4.append(_frame_gap(a, b, 4))
            cells8.append(_frame_gap(a, b, 8))
        self.assertGreater(np.mean(full), 60.0)
        self.assertLess(np.max(cells4), 2.0)
        self.assertLess(np.max(cells8), 2.0)

    @parameterized.parameters(("wave", "raise_hand"), ("clap", "rub_hands"))
    def test_fine_motion_moves_pixels_at_every_sampled_step(self, moving, other):
        # At the evaluation's stride 2 (frames f and f + 2), from either start: the moving
        # member's change minus the other's (the scene, noise included, cancels) flips some
        # hand pixels by twice the check's offset at every step, at full resolution; after 4x
        # area downsampling the two members' changes are the same.
        cfg = dataclasses.replace(BODY64, frames_per_video=16)
        full, cells = [], []
        for i in range(8):
            a, _ = B.render_video(np.random.default_rng([5, i]), cfg, B.ACTIONS.index(moving))
            b, _ = B.render_video(np.random.default_rng([5, i]), cfg, B.ACTIONS.index(other))
            gap = a.astype(np.float32) - b.astype(np.float32)
            step = np.abs(gap[2:] - gap[:-2])  # [14, S, S, 3]
            full.append(step.max(axis=(1, 2, 3)))
            cells.append(np.abs(_down(a, 4) - _down(b, 4)).max())
        self.assertGreater(np.min(full), 60.0)  # every step of every video
        self.assertLess(np.max(cells), 2.0)

    def test_hand_check_moves_along_its_axis_and_keeps_cell_means(self):
        # _draw_hand on a flat canvas: the 4 px cells keep the skin's mean whatever the shift;
        # a 1 px shift along x changes half the hand's pixels in vertical lines (the frame's x
        # differences dominate), along y in horizontal lines.
        skin = synthetic._SKIN_TONES[1]
        offset = synthetic._face_mark_offset(skin)

        def hand(shift):
            cv = synthetic._Canvas(np.full((64, 64, 3), 100.0, np.float32), -1.0, 0.0)
            x0, y0, n = B._hand_cells(cv, [(30.3, 20.6), (10.0, 50.0)])[0]
            self.assertEqual((x0 % 4, y0 % 4, n), (0, 0, 4))
            B._draw_hand(cv, x0, y0, n, skin, offset, shift)
            return cv.image[y0 : y0 + n, x0 : x0 + n], _down(cv.image[None], 4)

        still, still4 = hand((0, 0))
        np.testing.assert_allclose(still.mean(axis=(0, 1)), skin, atol=1e-3)
        for shift in ((1, 0), (2, 0), (0, 1), (-1, 1)):
            moved, moved4 = hand(shift)
            np.testing.assert_allclose(moved4, still4, atol=1e-3)
        for axis, shift in ((1, (1, 0)), (0, (0, 1))):  # image axis 1 is x
            diff = (hand(shift)[0] - still) @ synthetic._LUMA
            self.assertAlmostEqual(float((np.abs(diff) > 1.0).mean()), 0.5)
            along = np.abs(np.diff(diff, axis=axis)).sum()
            across = np.abs(np.diff(diff, axis=1 - axis)).sum()
            self.assertGreater(along, 1.5 * across, shift)

    def test_fine_shift_steps_every_second_frame(self):
        # 0 in frame 0 (a pair's first frames are equal), then one 1 px step every second
        # frame, within 2 px: every sampled frame at stride 2 moves, from either start.
        for start in range(4):
            shifts = [B._finger_shift(f, start) for f in range(16)]
            self.assertEqual(shifts[0], 0)
            for s0 in (0, 1):
                steps = np.abs(np.diff(shifts[s0::2]))
                np.testing.assert_array_equal(steps, 1)
            self.assertLessEqual(max(shifts) - min(shifts), 2)

    @parameterized.parameters("walk", "jump", "squat", "kick")
    def test_coarse_actions_differ_after_8x(self, action):
        # Against a still raised hand from the same rng: the body's or a leg's motion moves
        # 8x8 cells by tens of levels.
        cfg = dataclasses.replace(BODY64, frames_per_video=8)
        cells = []
        for i in range(6):
            a, _ = B.render_video(np.random.default_rng([3, i]), cfg, B.ACTIONS.index(action))
            b, _ = B.render_video(np.random.default_rng([3, i]), cfg, B.ACTIONS.index("raise_hand"))
            cells.append(_frame_gap(a, b, 8))
        self.assertGreater(np.min(cells), 15.0)
        self.assertGreater(np.mean(cells), 30.0)


class BodyGenerateTest(absltest.TestCase):
    def test_written_benchmark_loads(self):
        cfg = dataclasses.replace(BODY, num_videos=24)  # 3 per action: one of each is test
        with tempfile.TemporaryDirectory() as base:
            root = synthetic.benchmark_root(cfg, base_dir=base)
            self.assertEqual(
                os.path.basename(root),
                f"benchmark-v{synthetic.VERSION}-body{B.VERSION}-{C.fingerprint(cfg)}",
            )
            synthetic.ensure_benchmark(cfg, root)
            with open(os.path.join(root, "meta.json")) as f:
                meta = json.load(f)
            self.assertEqual(meta["actions"], list(B.ACTIONS))
            self.assertEqual(meta["config"], dataclasses.asdict(cfg))
            self.assertEqual(meta["body_version"], B.VERSION)
            split = synthetic.load_split(root)
            self.assertEqual((len(split.train), len(split.test)), (16, 8))
            self.assertEqual(split.class_names, list(B.ACTIONS))
            for record in split.train + split.test:
                self.assertEqual(record.frame_labels.shape, (8, 5))
            # The real-format readers (PA-HMDB51 annotations, HMDB51 splits) and the data check.
            annotations = pahmdb51.load_annotations(os.path.join(root, "annotations"))
            self.assertEqual(sorted(annotations), sorted(B.ACTIONS))
            data_cfg = C.DataConfig(dataset="benchmark", data_dir=root, synthetic=cfg)
            built = sources.build_sources(data_cfg)
            self.assertEqual(built.action.class_names, list(B.ACTIONS))
            self.assertEqual((len(built.action.train), len(built.action.test)), (16, 8))
            report = check.check_dataset(data_cfg, max_workers=1)
            self.assertTrue(report.ok, report.format())
            # Reused as is; a props config does not match it.
            synthetic.ensure_benchmark(cfg, root)
            with self.assertRaisesRegex(DataError, "holds a different benchmark"):
                synthetic.ensure_benchmark(dataclasses.replace(cfg, family="props"), root)


class DefaultFamilyKeyTest(absltest.TestCase):
    def test_props_fingerprint_and_cache_keys_unchanged(self):
        # These values were computed before SyntheticConfig.family existed: they guard the
        # cache key (folder name) of existing benchmarks and of existing evaluation caches.
        self.assertEqual(C.fingerprint(C.SyntheticConfig()), "39fa5fe6f136")
        tiny = C.SyntheticConfig(num_videos=48, frames_per_video=8, frame_size=32)
        self.assertEqual(C.fingerprint(tiny), "692830dfa790")
        self.assertEqual(C.fingerprint(C.ExperimentConfig()), "970151b745ec")
        self.assertEqual(cache.cache_key(C.DataConfig(), C.EvalConfig(), 0, "raw"), "52169da329ab")
        self.assertNotEqual(C.fingerprint(C.SyntheticConfig(family="body")), "39fa5fe6f136")

    def test_props_benchmark_written_before_the_family_field_is_reused(self):
        props = dataclasses.replace(BODY, family="props", num_videos=8, frames_per_video=2)
        with tempfile.TemporaryDirectory() as base:
            root = synthetic.ensure_benchmark(props, os.path.join(base, "b"))
            meta_path = os.path.join(root, "meta.json")
            with open(meta_path) as f:
                meta = json.load(f)
            del meta["config"]["family"]  # as the generator wrote it before the field existed
            with open(meta_path, "w") as f:
                json.dump(meta, f)
            synthetic.ensure_benchmark(props, root)  # no DataError: reused
            with self.assertRaisesRegex(DataError, "holds a different benchmark"):
                synthetic.ensure_benchmark(dataclasses.replace(props, family="body"), root)

    def test_family_is_a_checked_config_field(self):
        cfg = C.apply_overrides(C.ExperimentConfig(), ["data.synthetic.family=body"])
        self.assertEqual(cfg.data.synthetic.family, "body")
        with self.assertRaisesRegex(C.ConfigError, "allowed: props, body"):
            C.apply_overrides(C.ExperimentConfig(), ["data.synthetic.family=cartoon"])


if __name__ == "__main__":
    absltest.main()
