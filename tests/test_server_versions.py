"""Version loading as TF Serving does it: failed loads are retried, the old version serves."""

from __future__ import annotations

import os
import shutil
import time
from unittest import mock

import tensorflow as tf
from test_server import _frames, _request, _wait_for, tiny_degrader

from serving import client as C
from serving import export as E
from serving import server as SV
from serving import signatures as S
from serving import versions as VS

POLL = 0.1


def _copy_except(src: str, dst: str, skip: str) -> None:
    """Copies the version folder src to dst without the file `skip` (as a slow cp -r would)."""
    shutil.copytree(src, dst, ignore=lambda d, names: [skip] if d == src else [])


class VersionRetryTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.base = os.path.join(self.get_temp_dir(), "models")
        self.model_dir = os.path.join(self.base, S.MODEL_NAME)
        E.export_degrader(tiny_degrader(), self.base)  # v1: the identity
        # A second, seeded export made elsewhere, to be copied in by hand.
        staging = os.path.join(self.get_temp_dir(), "staging")
        self.staged = E.export_degrader(tiny_degrader(seed=4), staging)
        self.frames = _frames((1, 8, 8, 3))
        serve = tf.saved_model.load(self.staged).signatures[S.SIGNATURE_KEY]
        self.staged_output = serve(**{S.INPUT_KEY: tf.constant(self.frames)})[S.OUTPUT_KEY]

    def _serve(self, retry: SV.RetryPolicy):
        server = SV.ModelServer(
            SV.resolve_models(self.base, retry=retry), port=0, poll_seconds=POLL
        ).start()
        channel, stub = C.make_stub(server.address)
        self.addCleanup(server.stop)
        self.addCleanup(channel.close)
        return server, server.models[S.MODEL_NAME], stub

    def _assert_serves_v1(self, model, stub):
        self.assertEqual(model.current.version, 1)
        response = stub.Predict(_request(self.frames), timeout=30)
        self.assertEqual(response.model_spec.version.value, 1)
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self.frames)

    def test_a_non_atomic_copy_is_served_once_complete(self):
        # Backoff far beyond the test: only the change of the folder's files can retry it.
        _, model, stub = self._serve(SV.RetryPolicy(retries=5, base_seconds=600))
        target = os.path.join(self.model_dir, "2")
        pb = os.path.join(target, "saved_model.pb")
        # variables/ (and the rest) first, saved_model.pb "seconds" later.
        _copy_except(self.staged, target, "saved_model.pb")
        self.assertTrue(_wait_for(lambda: 2 in model.failures))
        time.sleep(3 * POLL)  # several polls with the version incomplete
        self.assertEqual(model.failures[2].failures, 1)
        self._assert_serves_v1(model, stub)
        # Then a truncated saved_model.pb (the copy half way): fails again, v1 still serves.
        with open(os.path.join(self.staged, "saved_model.pb"), "rb") as f:
            content = f.read()
        with open(pb, "wb") as f:
            f.write(content[: len(content) // 2])
        self.assertTrue(
            _wait_for(
                lambda: (
                    model.failures.get(2) is not None
                    and model.failures[2].failures == 1
                    and "saved_model.pb" in {entry[0] for entry in model.failures[2].fingerprint}
                )
            )
        )
        self._assert_serves_v1(model, stub)
        # The copy completes: version 2 is loaded and served.
        with open(pb, "wb") as f:
            f.write(content)
        self.assertTrue(_wait_for(lambda: model.current.version == 2))
        self.assertEqual(model.failures, {})
        response = stub.Predict(_request(self.frames), timeout=30)
        self.assertEqual(response.model_spec.version.value, 2)
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self.staged_output)

    def test_retries_are_bounded_then_resumed_when_the_files_change(self):
        target = os.path.join(self.model_dir, "3")
        os.makedirs(target)
        with open(os.path.join(target, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        attempts = []

        def load(path, version):
            attempts.append(version)
            return real_load(path, version)

        real_load = VS._load_version
        with mock.patch.object(VS, "_load_version", side_effect=load):
            _, model, stub = self._serve(SV.RetryPolicy(retries=2, base_seconds=POLL))
            # Tried at start, then after POLL and 2 * POLL; then given up.
            self.assertTrue(_wait_for(lambda: attempts.count(3) >= 3))
            time.sleep(10 * POLL)
            self.assertEqual(attempts.count(3), 3)
            self.assertEqual(model.failures[3].failures, 3)
            self.assertIn("Cannot parse file", model.failures[3].error)
            self._assert_serves_v1(model, stub)
            # Fixed in place: retried although the attempts were used up.
            shutil.rmtree(target)
            shutil.copytree(self.staged, target)
            self.assertTrue(_wait_for(lambda: model.current.version == 3))
        response = stub.Predict(_request(self.frames), timeout=30)
        self.assertEqual(response.model_spec.version.value, 3)
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self.staged_output)

    def test_an_older_complete_version_serves_while_the_newest_is_broken(self):
        os.makedirs(os.path.join(self.model_dir, "5"))  # empty: a copy not yet started
        shutil.copytree(self.staged, os.path.join(self.model_dir, "4"))
        _, model, _ = self._serve(SV.RetryPolicy(retries=5, base_seconds=600))
        self.assertEqual(model.current.version, 4)
        self.assertEqual(list(model.failures), [5])


class RetryPolicyTest(tf.test.TestCase):
    def test_backoff_doubles_up_to_the_cap(self):
        policy = SV.RetryPolicy(retries=5, base_seconds=2.0, max_seconds=10.0)
        self.assertEqual([policy.delay(n) for n in range(1, 6)], [2.0, 4.0, 8.0, 10.0, 10.0])

    def test_bad_values_are_named(self):
        with self.assertRaisesRegex(ValueError, r"retries \(--max_load_retries\) must be >= 0"):
            SV.RetryPolicy(retries=-1)


if __name__ == "__main__":
    tf.test.main()
