"""The `python -m` command lines of the project, started as a user starts them
(tfprivacy.runtime.run_cli): --helpfull works, and a bad choice is a usage error before any work;
imported together in one process, none clashes with another (each keeps its flags in its own
FlagValues, never absl's global one).

One subprocess per check (each serving module imports TF: about 5 s each).
"""

import importlib
import importlib.util
import os
import tempfile
import unittest

from absl import flags
from absl.testing import parameterized

from tests.subprocess_util import run_python
from tfprivacy import runtime

# module -> (one of its own flags, (a command line with a bad choice, what its usage error must
# name) or None where the command line has no choice-valued flag). {out}: a path it must not
# create.
CLIS = {
    "serving.client": ("--retry_seconds", None),
    "serving.edge": ("--max_frames", None),
    "serving.export": ("--config_base_path", None),
    "serving.server": ("--max_batch_pixels", None),
    "serving.quantized_savedmodel": ("--name", None),
    "serving.qat": ("--learning_rate", None),
    "serving.tflite": (
        "--representative",
        (
            ["--run=RUN", "--out={out}", "--quant", "int8", "int4"],
            "<float32|float16|dynamic|int8|all>",
        ),
    ),
    "benchmarks.benchmark_properties": ("--clip_epochs", None),
    "benchmarks.latency_bench": (
        "--ablation_variant",
        (["--run", "RUN", "--variants=huge"], "<full|light|pyramid>"),
    ),
    "benchmarks.pipeline_bench": (
        "--max_videos",
        (["--experiment=bogus"], "known: benchmark benchmark_cross benchmark_tiny"),
    ),
    "benchmarks.quantized_eval": (
        "--qat_steps",
        (
            ["--run=RUN", "--out={out}", "--quants=float32,int4"],
            "<float32|float16|dynamic|int8>",
        ),
    ),
    "benchmarks.fault_injection": (
        "--retry_seconds",
        (
            ["--faults=server_restart,bogus", "--work_dir={out}"],
            "known: server_restart, truncated_checkpoint, export_disk_full, eval_sigterm",
        ),
    ),
    "benchmarks.ruler_calibration": ("--report", None),
    "benchmarks.eval_cost": ("--baselines", None),
    "benchmarks.game_diagnosis": ("--probe_every", None),
    "benchmarks.step_flops": ("--steps", None),
    "benchmarks.ablation": (
        "--table_only",
        (["--out={out}", "--rows=grl_m1,bogus"], "the rows are entropy_m1, entropy_m1_restart"),
    ),
    "benchmarks.game_trajectory": ("--eval_seeds", None),
    "trainers.adversarial": (
        "--pretrain_privacy_steps",
        (["--strategy=bogus", "--run_dir={out}"], "<grl|kbeam|entropy>"),
    ),
    "trainers.evaluate": ("--baselines", None),
    "tfprivacy.data.check": ("--workers", None),
    "tfprivacy.data.synthetic": ("--num_videos", None),
    "tfprivacy.pretrained": ("--name", None),
}


def _module(name):
    """The module `python -m name` runs (a package's __main__)."""
    if importlib.util.find_spec(name).submodule_search_locations is not None:
        name += ".__main__"
    return importlib.import_module(name)


def _run(module, *args):
    # Without TF_CPP_MIN_LOG_LEVEL (conftest sets it): the start-up is quiet by itself.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return run_python("-m", module, *args, env=env)


class CommandLineTest(parameterized.TestCase):
    @parameterized.parameters(*CLIS)
    def test_helpfull_and_bad_choices(self, module):
        own_flag, bad = CLIS[module]
        help_ = _run(module, "--helpfull")
        self.assertEqual(help_.returncode, 0, help_.stderr)
        self.assertIn(own_flag, help_.stdout)
        self.assertIn("--verbosity", help_.stdout)  # absl's flags too
        self.assertNotIn("Traceback", help_.stderr)
        if not runtime.has_nvidia_device():
            self.assertNotIn("cuInit", help_.stderr)
        if bad is None:
            return
        args, allowed = bad
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "never")
            result = _run(module, *(a.format(out=target) for a in args))
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("FATAL Flags parsing error", result.stderr)
            self.assertIn(allowed, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertFalse(os.path.exists(target))  # refused before any work

    def test_all_import_together_with_flags_of_their_own(self):
        modules = [_module(name) for name in CLIS]  # no DuplicateFlagError
        on_global = flags.FLAGS.flags_by_module_dict()
        for module in modules:
            self.assertIsInstance(module.FLAGS, flags.FlagValues, module.__name__)
            self.assertIsNot(module.FLAGS, flags.FLAGS, module.__name__)
            self.assertNotIn(module.__name__, on_global)


if __name__ == "__main__":
    unittest.main()
