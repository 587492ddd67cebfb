"""Config checks: every bad value fails where the config is made, naming field and rule."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from absl.testing import parameterized

from configs import experiments
from configs.experiments import get_config, list_experiments
from tfprivacy import config as C
from trainers import adversarial_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigCheckTest(parameterized.TestCase):
    def test_every_named_experiment_passes(self):
        for name in list_experiments():
            C.check(get_config(name))

    def test_the_paper_size_preset_plays_the_benchmarks_game_and_the_papers_is_kept(self):
        game, bench = get_config("hmdb51_pahmdb51"), get_config("benchmark")
        self.assertEqual((game.data.frame_size, game.data.clip_length), (112, 16))
        self.assertEqual(game.model, bench.model)  # the pyramid f_d, width-16 attackers
        self.assertEqual(game.adversary, bench.adversary)  # entropy, gamma 0.5, no restarts
        self.assertGreater(game.judge.every, 0)
        self.assertEqual(game.trainer.identity_steps, 0)  # the pyramid starts as the identity
        paper = get_config("hmdb51_pahmdb51_paper")
        self.assertEqual((paper.data.frame_size, paper.data.clip_length), (112, 16))
        self.assertEqual(paper.model.degrader, "full")
        self.assertEqual((paper.adversary.num_models, paper.adversary.restart_every), (4, 1000))
        self.assertEqual((paper.trainer.adversarial_steps, paper.judge.every), (20000, 0))

    @parameterized.parameters(
        # (override, what the message must say): one per kind of rule.
        ("trainer.adversarial_steps=-5", "trainer.adversarial_steps=-5: must be >= 0"),
        ("adversary.gamma=nan", "adversary.gamma=nan: must be a finite number"),
        ("adversary.gamma=inf", "must be a finite number"),
        ("trainer.checkpoint_every=0", "trainer.checkpoint_every=0: must be >= 1"),
        ("adversary.num_models=0", "adversary.num_models=0: must be >= 1"),
        ("data.batch_size=0", "data.batch_size=0: must be >= 1"),
        ("data.max_bad_fraction=2", "data.max_bad_fraction=2.0: must be <= 1.0"),
        ("trainer.degrader_lr=0", "trainer.degrader_lr=0.0: must be > 0.0"),
        ("eval.confidence=1", "eval.confidence=1.0: must be < 1.0"),
        ("data.synthetic.num_videos=1", "data.synthetic.num_videos=1: must be >= 2"),
        ("model.degrader=huge", "model.degrader='huge': unknown 'huge'; allowed: full, light"),
        ("eval.privacy_panel=plain,vgg", "unknown 'vgg'; allowed: plain, residual, depthwise"),
        ("eval.finetune_panel=video", "eval.finetune_panel=('video',): unknown 'video'"),
        ("trainer.distribution=tpu", "allowed: default, mirrored, multi_worker"),
        ("data.dataset=imagenet", "data.dataset='imagenet': unknown"),
        ("eval.lr_schedule=step", "allowed: constant, cosine"),
        ("data.split=4", "data.split=4: unknown 4; allowed: 1, 2, 3"),
        ("export.model_name=../escaped", "export.model_name='../escaped': a plain name"),
        ("export.model_name=a/b", "a plain name"),
    )
    def test_bad_value_names_field_and_rule(self, override, message):
        with self.assertRaises(C.ConfigError) as ctx:
            get_config("benchmark", [override])
        self.assertIn(message, str(ctx.exception))

    def test_cross_field_rules(self):
        with self.assertRaisesRegex(C.ConfigError, "restart_steps=0: must be >= 1 when restart"):
            get_config("benchmark", ["adversary.restart_every=5", "adversary.restart_steps=0"])
        get_config("benchmark", ["adversary.restart_every=0", "adversary.restart_steps=0"])
        with self.assertRaisesRegex(C.ConfigError, "model.privacy"):
            get_config("benchmark", ["model.privacy="])
        with self.assertRaisesRegex(C.ConfigError, "the panel needs an attacker"):
            get_config("benchmark", ["eval.privacy_panel=", "eval.finetune_panel="])
        # The judged game's cap (benchmark: judged every 100 steps up to 900).
        with self.assertRaisesRegex(
            C.ConfigError, r"adversarial_max_steps=900: must be 0 or >= trainer.adversarial_steps"
        ):
            get_config("benchmark", ["trainer.adversarial_steps=1000"])
        with self.assertRaisesRegex(C.ConfigError, "extend_until_fall=0.5: needs a cap"):
            get_config(
                "benchmark",
                [
                    "adversary.extend_until_fall=0.5",
                    "judge.every=0",
                    "trainer.adversarial_max_steps=0",
                ],
            )
        get_config(
            "benchmark", ["adversary.extend_until_fall=0", "trainer.adversarial_max_steps=0"]
        )
        get_config("benchmark", ["trainer.adversarial_steps=900"])  # cap reached: fixed length

    def test_shortcut_flags_are_checked_too(self):
        with self.assertRaisesRegex(C.ConfigError, "trainer.adversarial_steps=-5"):
            adversarial_lib.resolve_config("benchmark", [], steps=-5)
        with self.assertRaisesRegex(C.ConfigError, "trainer.attack_steps=-1"):
            adversarial_lib.resolve_config("benchmark", [], attack_steps=-1)
        cfg = adversarial_lib.resolve_config(
            "benchmark", [], identity_steps=0, attack_steps=7, gamma=0.5
        )
        self.assertEqual(
            (cfg.trainer.identity_steps, cfg.trainer.attack_steps, cfg.adversary.gamma),
            (0, 7, 0.5),
        )

    def test_loaded_file_is_checked_and_named(self):
        cfg = get_config("benchmark")
        data = C.to_dict(cfg)
        data["trainer"]["log_every"] = 0
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                json.dump(data, f)
            with self.assertRaisesRegex(C.ConfigError, f"{path}: trainer.log_every=0"):
                C.load(path)

    def test_duplicate_experiment_names_are_rejected(self):
        with self.assertRaisesRegex(C.ConfigError, "'benchmark' is registered twice"):
            experiments.register("benchmark")

    def test_model_builders_use_the_config_names(self):
        from tfprivacy.models import degrader, privacy, target

        self.assertIs(target.TARGET_ARCHS, C.TARGET_ARCHS)
        self.assertIs(privacy.PRIVACY_ARCHS, C.PRIVACY_ARCHS)
        self.assertIs(degrader.DEGRADER_VARIANTS, C.DEGRADERS)


class CommandLineTest(unittest.TestCase):
    def _run(self, *args):
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TFPRIVACY_DATA": tempfile.mkdtemp()},
        )

    def test_bad_values_fail_at_the_command_line(self):
        for args, message in (
            (("trainers.adversarial", "--steps", "-5"), "trainer.adversarial_steps=-5"),
            (("trainers.adversarial", "--gamma", "nan"), "adversary.gamma=nan"),
            (("trainers.adversarial", "--set", "model.degrader=x"), "model.degrader='x'"),
            (
                (
                    "trainers.evaluate",
                    "--run",
                    "/nonexistent",
                    "--config",
                    "benchmark",
                    "--set",
                    "eval.seeds=0",
                ),
                "eval.seeds=0: must be >= 1",
            ),
        ):
            proc = self._run(*args)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(message, proc.stderr, args)
            self.assertNotIn("Traceback", proc.stderr, args)


if __name__ == "__main__":
    unittest.main()
