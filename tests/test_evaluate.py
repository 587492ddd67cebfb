"""End to end on the tiny benchmark: an untrained f_d in a run dir, evaluated with baselines."""

import json
import os

import keras
import tensorflow as tf

from configs.experiments import get_config
from tfprivacy import artifacts
from tfprivacy import config as C
from tfprivacy.eval import evaluate_lib
from tfprivacy.models import build_degrader


class EvaluateTest(tf.test.TestCase):
    def _cfg(self, tmp):
        return get_config(
            "benchmark_tiny",
            [
                f"data.data_dir={os.path.join(tmp, 'data')}",
                f"eval.cache_dir={os.path.join(tmp, 'cache')}",
                "eval.privacy_panel=plain,video",
                "eval.finetune_panel=plain",
                "eval.target_width=4",
                "eval.privacy_width=4",
                "eval.batch_size=8",
                "eval.train_clips_per_video=1",
                "eval.bootstrap=50",
            ],
        )

    def test_run_dir_end_to_end_with_cache(self):
        tmp = self.get_temp_dir()
        cfg = self._cfg(tmp)
        run = os.path.join(tmp, "run")
        keras.utils.set_random_seed(0)
        artifacts.save_degrader(run, build_degrader(cfg.model), cfg)

        out = evaluate_lib.run_evaluation(run, baselines="raw,down4", seeds=1, progress=False)
        self.assertEqual(list(out["results"]), ["learned", "raw", "down4"])
        for name in ("report.json", "report.md", "tradeoff.png", "frames.png"):
            self.assertTrue(os.path.exists(os.path.join(run, name)), name)
        with open(os.path.join(run, "report.json")) as f:
            saved = json.load(f)
        self.assertEqual(saved["config"]["name"], "benchmark_tiny")
        self.assertEqual(saved["seeds"], [0])
        learned = saved["results"]["learned"]
        self.assertEqual(learned["kind"], "learned")
        self.assertEqual(set(learned["panel"]), {"plain", "video", "plain_ft"})
        self.assertIn("ci", learned["action_top1"])
        self.assertIn("feature_probe", learned)
        self.assertNotIn("replicates", learned)
        self.assertEqual({c["other"] for c in saved["comparisons"]}, {"raw", "down4"})
        self.assertAllClose(saved["chance"]["action_top1"], 1 / cfg.data.synthetic.num_actions)
        self.assertEqual(out["results"]["raw"]["cached_seeds"], [])

        # Second run: baselines come from the cache (same data, eval config and seed).
        again = evaluate_lib.run_evaluation(run, baselines="raw,down4", seeds=1, progress=False)
        self.assertEqual(again["results"]["down4"]["cached_seeds"], [0])
        self.assertEqual(
            again["results"]["down4"]["worst_case"]["cmap"],
            out["results"]["down4"]["worst_case"]["cmap"],
        )
        self.assertEqual(again["results"]["learned"]["cached_seeds"], [])

    def test_entry_config_resolution(self):
        tmp = self.get_temp_dir()
        cfg = self._cfg(tmp)
        run = os.path.join(tmp, "with_cfg")
        artifacts.save_degrader(run, build_degrader(cfg.model), cfg)
        resolved = evaluate_lib.resolve_config(run, None, ["eval.target_epochs=3"])
        self.assertEqual(resolved.eval.target_epochs, 3)
        self.assertEqual(resolved.eval.privacy_panel, ("plain", "video"))
        empty = os.path.join(tmp, "empty")
        with self.assertRaisesRegex(C.ConfigError, "--config NAME"):
            evaluate_lib.resolve_config(empty, None, [])
        self.assertEqual(
            evaluate_lib.resolve_config(empty, "benchmark_tiny", []).name, "benchmark_tiny"
        )

    def test_baselines_only_without_degrader(self):
        tmp = self.get_temp_dir()
        cfg = self._cfg(tmp)
        run = os.path.join(tmp, "baselines_only")
        out = evaluate_lib.run_evaluation(run, baselines="raw", seeds=1, progress=False, cfg=cfg)
        self.assertEqual(list(out["results"]), ["raw"])
        self.assertTrue(os.path.exists(os.path.join(run, "report.md")))


if __name__ == "__main__":
    tf.test.main()
