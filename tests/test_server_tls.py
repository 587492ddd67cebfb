"""Optional TLS between serving.client and serving.server, with a self-signed certificate."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import unittest
from unittest import mock

import grpc
import numpy as np
import tensorflow as tf
from test_server import _frames, _request, tiny_degrader

from serving import client as C
from serving import export as E
from serving import server as SV
from serving import signatures as S
from tests.cli_util import call_main, logged
from tfprivacy.data import video_io

OPENSSL = shutil.which("openssl")


def _self_signed(directory: str, name: str) -> tuple[str, str]:
    """(cert, key) PEM paths of a P-256 certificate for localhost and 127.0.0.1, via openssl.

    The `cryptography` package is not a dependency of the project, so the openssl command
    line makes it; the tests are skipped where neither is available.
    """
    cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class TlsTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if OPENSSL is None:
            raise unittest.SkipTest(
                "no openssl command line to make a self-signed certificate (and the "
                "cryptography package is not a project dependency)"
            )
        cls.tmp = tempfile.mkdtemp(prefix="serving_tls_test_")
        cls.cert, cls.key = _self_signed(cls.tmp, "server")
        cls.other_cert, cls.other_key = _self_signed(cls.tmp, "other")
        cls.base = os.path.join(cls.tmp, "models")
        cls.version_dir = E.export_degrader(tiny_degrader(seed=3), cls.base)
        cls.server = SV.ModelServer(
            SV.resolve_models(cls.base), port=0, poll_seconds=60, ssl_cert=cls.cert, ssl_key=cls.key
        ).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def _stub(self, address=None, **kwargs):
        channel, stub = C.make_stub(address or self.server.address, **kwargs)
        self.addCleanup(channel.close)
        return stub

    def test_round_trip_over_tls(self):
        self.assertTrue(self.server.tls)
        frames = _frames((5, 8, 12, 3))
        served = C.degrade_frames(self._stub(ssl_root_cert=self.cert), frames, batch=2)
        direct = tf.saved_model.load(self.version_dir).signatures[S.SIGNATURE_KEY](
            **{S.INPUT_KEY: tf.constant(frames)}
        )[S.OUTPUT_KEY]
        self.assertAllEqual(served, direct)
        # The certificate names localhost too.
        localhost = f"localhost:{self.server.port}"
        stub = self._stub(localhost, ssl_root_cert=self.cert)
        self.assertAllEqual(C.degrade_frames(stub, frames), direct)

    def test_plaintext_clients_and_untrusted_certificates_are_refused(self):
        request = _request(np.zeros((1, 4, 4, 3), np.uint8))
        for stub in (self._stub(), self._stub(ssl_root_cert=self.other_cert)):
            with self.assertRaises(grpc.RpcError) as caught:
                stub.Predict(request, timeout=10)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_client_cli_over_tls(self):
        tmp = self.get_temp_dir()
        video = os.path.join(tmp, "in.avi")
        ramp = np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3)
        video_io.write_video(video, np.stack([ramp] * 3).astype(np.uint8), fps=10)

        def run(*flags):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), logged("serving.client") as errors:
                rc = call_main(C, "--server", self.server.address, "--video", video, *flags)
            return rc, out.getvalue(), "\n".join(errors)

        out_path = os.path.join(tmp, "out.avi")
        rc, out, err = run("--out", out_path, "--ssl_root_cert", self.cert)
        self.assertEqual(rc, 0, err)
        self.assertStartsWith(out, "3 frames in ")
        self.assertEqual(video_io.read_video(out_path).shape, (3, 16, 16, 3))
        rc, _, err = run("--out", out_path, "--ssl_root_cert", os.path.join(tmp, "nope.pem"))
        self.assertEqual(rc, 2)
        self.assertIn("ssl_root_cert: cannot read", err)
        self.assertIn("nope.pem", err)

    def test_certificate_flags_are_checked(self):
        models = SV.resolve_models(self.base)
        with self.assertRaisesRegex(ValueError, "--ssl_key is missing"):
            SV.ModelServer(models, ssl_cert=self.cert)
        with self.assertRaisesRegex(ValueError, "--ssl_cert is missing"):
            SV.ModelServer(models, ssl_key=self.key)
        with self.assertRaisesRegex(ValueError, "--ssl_cert: cannot read .*nope.pem"):
            SV.ModelServer(models, ssl_cert=os.path.join(self.tmp, "nope.pem"), ssl_key=self.key)
        # gRPC itself only says "Failed to bind" for these.
        with self.assertRaisesRegex(ValueError, "--ssl_key: .* holds no PEM block of a PRIVATE"):
            SV.ModelServer(models, ssl_cert=self.cert, ssl_key=self.cert)
        with self.assertRaisesRegex(OSError, "--ssl_key is not the key of --ssl_cert"):
            SV.ModelServer(models, ssl_cert=self.cert, ssl_key=self.other_key)

    def test_plaintext_on_a_non_loopback_host_warns(self):
        models = SV.resolve_models(self.base)
        with self.assertLogs("serving.server", "WARNING") as logs:
            SV.ModelServer(models, host="0.0.0.0", port=0).stop()
        self.assertIn("not a loopback address", "\n".join(logs.output))
        self.assertIn("--ssl_cert and --ssl_key", "\n".join(logs.output))
        for host, tls in (("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)):
            kwargs = dict(ssl_cert=self.cert, ssl_key=self.key) if tls else {}
            with self.assertNoLogs("serving.server", "WARNING"):
                SV.ModelServer(models, host=host, port=0, **kwargs).stop()


class ServerFlagsTest(tf.test.TestCase):
    def test_cli_flags_reach_the_server(self):
        base = self.get_temp_dir()
        captured = {}

        class Stop(Exception):
            pass

        def fake_server(models, **kwargs):
            captured.update(kwargs, models=models)
            raise Stop

        argv = [
            "--model_base_path",
            base,
            "--port",
            "0",
            "--max_request_pixels",
            "1000",
            "--max_batch_pixels",
            "100",
            "--max_batch_frames",
            "4",
            "--max_load_retries",
            "2",
            "--load_retry_seconds",
            "0.5",
            "--ssl_cert",
            "c.pem",
            "--ssl_key",
            "k.pem",
        ]
        with mock.patch.object(SV, "ModelServer", side_effect=fake_server):
            with self.assertRaises(Stop):
                call_main(SV, *argv)
        self.assertEqual(
            captured["limits"],
            SV.RequestLimits(max_request_pixels=1000, max_batch_pixels=100, max_batch_frames=4),
        )
        self.assertEqual((captured["ssl_cert"], captured["ssl_key"]), ("c.pem", "k.pem"))
        retry = captured["models"][S.MODEL_NAME].retry
        self.assertEqual((retry.retries, retry.base_seconds), (2, 0.5))

    def test_bad_flags_are_reported_without_a_traceback(self):
        with self.assertLogs("serving.server", "ERROR") as logs:
            rc = call_main(SV, "--model_base_path", self.get_temp_dir(), "--ssl_cert", "c.pem")
        self.assertEqual(rc, 2)
        self.assertIn("TLS needs both --ssl_cert and --ssl_key", "\n".join(logs.output))


if __name__ == "__main__":
    tf.test.main()
