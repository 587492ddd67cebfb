"""Command-line start-up: TF's CPU-only chatter dropped, anything else passed on."""

import os
import subprocess
import sys
import unittest

from tfprivacy import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "2")
        self.assertNotIn("cuInit", proc.stderr)
        self.assertNotIn("cuda drivers", proc.stderr)


if __name__ == "__main__":
    unittest.main()
