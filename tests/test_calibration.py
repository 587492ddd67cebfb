"""Calibration with known answers on a small benchmark: does the ruler see known effects?

Greyscale removes hue, so skin colour must fall to its prevalence; x8 area downsampling of
32 px frames leaves 4x4 blocks, so the 1-3 px marks of face, gender and relationship must fall
near their prevalence; raw clips must let the panel read skin colour and the relationship
link far above their prevalence. A ruler that cannot see these effects cannot judge a learned
degrader. The benchmark is the tiny one (32 px frames) with more videos (384 + 480 test-only:
with 160, grey's skin-colour AP came out 6.2 points above prevalence on one seed, where the
default benchmark's 960 test videos and 3 seeds gave +1.1: noise of the size of the bar) and
one seed, about 2 minutes on 2 cores; the issue's bars on the default benchmark are checked by
`python -m benchmarks.ruler_calibration` (docs/ruler.md, "The ruler, measured").
"""

import tensorflow as tf

from configs.experiments import get_config
from tfprivacy.data.sources import build_sources
from tfprivacy.eval import baselines, protocol

OVERRIDES = [
    "data.synthetic.num_videos=384",
    "data.synthetic.extra_test_videos=480",
    "eval.privacy_panel=plain",
    "eval.finetune_panel=plain",
    "eval.target_width=4",
    "eval.privacy_width=8",
    "eval.target_epochs=1",
    "eval.privacy_epochs=12",
    "eval.pretrain_epochs=12",
    "eval.finetune_epochs=3",
    "eval.privacy_batch_size=32",
    "eval.feature_probe=false",
    "eval.bootstrap=200",
]


class CalibrationTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cfg = get_config("benchmark_tiny", OVERRIDES)
        splits = protocol.materialize_splits(build_sources(cfg.data), cfg)
        store = protocol.PretrainedWeights()
        cls.results = {
            name: protocol.evaluate_degrader(
                baselines.get_baseline(name), splits, cfg, 1, name=name, pretrained=store
            )
            for name in ("raw", "grey", "down8")
        }
        cls.prevalence = splits.chance()["prevalence"]

    def _gap(self, name, attr):
        best = self.results[name]["worst_case"]["best_ap"][attr]["mean"]
        return best - self.prevalence[attr]

    def test_raw_sees_skin_colour_and_grey_removes_it(self):
        # At 32 px the codec's 4:2:0 chroma (16 x 16) leaves hue mostly on the head, and
        # generator v3 paints unidentifiable skin at skin's own luminance, so raw reads skin
        # colour less well here than on the default 64 px benchmark (97.2 AP there, +22 over
        # prevalence here): the bar asks for a clear effect for grey to remove.
        raw, grey = self._gap("raw", "skin_color"), self._gap("grey", "skin_color")
        self.assertGreater(raw, 0.15, f"raw {raw:.3f}, grey {grey:.3f}")
        self.assertLessEqual(grey, 0.05, f"raw {raw:.3f}, grey {grey:.3f}")

    def test_x8_removes_the_fine_attributes(self):
        # The 1 px relationship link is what raw 32 px frames show best of the fine cues.
        self.assertGreater(self._gap("raw", "relationship"), 0.1)
        for attr in ("face", "gender", "relationship"):
            self.assertLessEqual(self._gap("down8", attr), 0.08, attr)


if __name__ == "__main__":
    tf.test.main()
