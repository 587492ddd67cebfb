"""Command-line start-up: TF's CPU-only chatter dropped, anything else passed on."""

import os
import re
import tempfile
import unittest

from absl import flags

from tests.subprocess_util import run_python
from tfprivacy import runtime


class RuntimeTest(unittest.TestCase):
    def test_known_notes_are_dropped_and_other_lines_kept(self):
        chatter = [
            "WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR",
            "I0000 00:00:1.2 31381 cudart_stub.cc:31] Could not find cuda drivers on your "
            "machine, GPU will not be used.",
            "E0000 00:00:1.2 31381 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
            "error: Failed call to cuInit: UNKNOWN ERROR (303)",
        ]
        for line in chatter:
            self.assertRegex(line, runtime._CHATTER)
        self.assertNotRegex("E0000 op_kernel.cc:1] OOM when allocating tensor", runtime._CHATTER)

    @unittest.skipIf(runtime.has_nvidia_device(), "a GPU machine reports its devices")
    def test_a_cpu_machine_starts_quietly(self):
        code = (
            "from tfprivacy import runtime; tf = runtime.import_tensorflow(); "
            "print(int(tf.constant(1) + 1))"
        )
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        proc = run_python("-c", code, env=env, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "2")
        self.assertNotIn("cuInit", proc.stderr)
        self.assertNotIn("cuda drivers", proc.stderr)

    @unittest.skipIf(runtime.has_nvidia_device(), "a GPU machine reports its devices")
    def test_a_command_line_prints_no_info_line_before_its_own_output(self):
        # A first run on a fresh machine: matplotlib, imported under TensorFlow, builds its font
        # cache and logs it at INFO, after absl has turned INFO on for the parsed flags.
        code = (
            "from absl import flags; from tfprivacy import runtime; "
            "runtime.run_cli(lambda argv: print('main ran'), flags.FlagValues())"
        )
        with tempfile.TemporaryDirectory() as fresh:
            env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
            proc = run_python("-c", code, env={**env, "MPLCONFIGDIR": fresh}, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "main ran")
        noisy = [line for line in proc.stderr.splitlines() if re.match(r"[IW]\d{4} ", line)]
        self.assertEqual(noisy, [])

    @unittest.skipIf(runtime.has_nvidia_device(), "a GPU machine keeps TF's own log level")
    def test_tf_warnings_are_off_unless_the_user_sets_the_level(self):
        code = (
            "import os; from tfprivacy import runtime; runtime.import_tensorflow(); "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
        )
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        self.assertEqual(run_python("-c", code, env=env, timeout=120).stdout.strip(), "2")
        mine = {**env, "TF_CPP_MIN_LOG_LEVEL": "0"}
        self.assertEqual(run_python("-c", code, env=mine, timeout=120).stdout.strip(), "0")

    def test_every_entry_point_switches_onednn_on_before_tensorflow_loads(self):
        # Each package a command line starts from (python -m trainers.*, serving.*,
        # benchmarks.*, tfprivacy.*) sets TF_ENABLE_ONEDNN_OPTS=1 when the user has not, early
        # enough that TensorFlow reads it; a user's own value wins.
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        for package in ("trainers", "serving", "benchmarks", "tfprivacy"):
            code = (
                f"import {package}; import tensorflow; from tfprivacy import runtime; "
                "print(runtime.onednn_status())"
            )
            proc = run_python("-c", code, env=env, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.strip(), "on (TF_ENABLE_ONEDNN_OPTS=1)", package)
        proc = run_python(
            "-c",
            "import trainers; import tensorflow; from tfprivacy import runtime; "
            "print(runtime.onednn_status())",
            env={**env, "TF_ENABLE_ONEDNN_OPTS": "0"},
            timeout=120,
        )
        self.assertEqual(proc.stdout.strip(), "off (TF_ENABLE_ONEDNN_OPTS=0)", proc.stderr)

    def test_cpu_description_names_the_vector_extensions(self):
        text = runtime.cpu_description()
        self.assertTrue(text)
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo") as f:
                has_avx2 = " avx2" in f.read()
            self.assertEqual("avx2" in text, has_avx2, text)

    def test_a_command_line_without_tensorflow_does_not_import_it(self):
        code = (
            "import sys; from absl import flags; from tfprivacy import runtime; "
            "fv = flags.FlagValues(); flags.DEFINE_integer('workers', 1, 'w', flag_values=fv); "
            "runtime.run_cli(lambda argv: print(fv.workers, 'tensorflow' in sys.modules), fv, "
            "tensorflow=False)"
        )
        proc = run_python("-c", code, "--workers=3", timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "3 False")


class CommandLineFlagsTest(unittest.TestCase):
    """run_cli's parsing, as tests reach it through parse_flags (one FlagValues per module)."""

    def setUp(self):
        self.fv = flags.FlagValues()
        flags.DEFINE_multi_string("run", None, "run dirs", flag_values=self.fv)
        flags.DEFINE_multi_integer("sizes", [112, 224], "frame sizes", flag_values=self.fv)
        flags.DEFINE_bool("probe", False, "probe", flag_values=self.fv)
        flags.DEFINE_string("out", "", "output", flag_values=self.fv)

    def test_list_flags_take_values_as_argparse_nargs_did(self):
        argv = ["p", "--run", "a", "b", "--probe", "--sizes", "56", "--out", "o", "--run=c"]
        self.assertEqual(runtime.parse_flags(self.fv, argv), ["p"])
        self.assertEqual(self.fv.run, ["a", "b", "c"])
        self.assertEqual(self.fv.sizes, [56])
        self.assertEqual((self.fv.probe, self.fv.out), (True, "o"))
        # Each parse starts from the defaults.
        runtime.parse_flags(self.fv, ["p", "--sizes=112"])
        self.assertEqual((self.fv.run, self.fv.sizes, self.fv.probe), (None, [112], False))
        # Only multi-valued flags gather values; nothing after "--" is touched.
        argv = ["p", "--out", "x", "--", "--run", "y"]
        self.assertEqual(runtime.expand_list_flags(argv, self.fv), argv)

    def test_bad_command_lines_are_flag_errors(self):
        for argv, message in (
            (["p", "--run", "--probe"], "flag --run: give at least one value"),
            (["p", "--out", "o", "stray"], "unexpected argument"),
            (["p", "--sizes", "x"], "--sizes"),
            (["p", "--nope"], "nope"),
        ):
            with self.assertRaisesRegex(flags.Error, message):
                runtime.parse_flags(self.fv, argv)


if __name__ == "__main__":
    unittest.main()
