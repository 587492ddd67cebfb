"""Fault injection (benchmarks/fault_injection.py): each fault injected for real and survived.

The scenarios are the script's own functions; each returns a Result whose line says what was
injected, what happened and why it failed. About 75 s in all on 2 cores.
"""

from unittest import mock

import tensorflow as tf
from absl import flags

from benchmarks import fault_injection as F
from tfprivacy import runtime


class FaultInjectionTest(tf.test.TestCase):
    def _check(self, result: F.Result) -> None:
        print(result.line())
        self.assertTrue(result.passed, result.line())

    def test_server_killed_mid_request_and_restarted(self):
        self._check(F.server_restart(self.get_temp_dir()))

    def test_truncated_latest_checkpoint_falls_back_to_the_previous(self):
        self._check(F.truncated_checkpoint(self.get_temp_dir()))

    def test_disk_full_during_export_publishes_nothing(self):
        self._check(F.export_disk_full(self.get_temp_dir()))

    def test_sigterm_during_evaluation_exits_cleanly_and_resumes(self):
        self._check(F.eval_sigterm(self.get_temp_dir()))

    def test_a_scenario_that_raises_is_a_fail(self):
        with mock.patch.dict(F.FAULTS, {"boom": _boom}):
            result = F.run_fault("boom", self.get_temp_dir())
        self.assertFalse(result.passed)
        self.assertIn("FAIL (RuntimeError: disk on fire)", result.line())

    def test_an_unknown_fault_is_a_usage_error(self):
        runtime.parse_flags(F.FLAGS, ["fault_injection", "--faults=eval_sigterm"])
        self.assertEqual(F.FLAGS.faults, ["eval_sigterm"])
        with self.assertRaisesRegex(flags.Error, r"unknown \['bogus'\]; known: server_restart"):
            runtime.parse_flags(F.FLAGS, ["fault_injection", "--faults=eval_sigterm,bogus"])


def _boom(work_dir):
    raise RuntimeError("disk on fire\nsecond line")


if __name__ == "__main__":
    tf.test.main()
