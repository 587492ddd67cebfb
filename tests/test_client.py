"""The gRPC client: a video degraded through the server, and errors reported with their code."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from unittest import mock

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from configs.experiments import get_config
from serving import client as C
from serving import export as E
from serving import server as SV
from serving import signatures as S
from tests.cli_util import call_main, logged
from tfprivacy.data import video_io
from tfprivacy.models import build_degrader


class ClientTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tmp = self.get_temp_dir()
        model = build_degrader(get_config("benchmark_tiny").model, frame_size=None)
        rng = np.random.default_rng(5)
        model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
        self.version_dir = E.export_degrader(model, os.path.join(tmp, "models"))
        self.server = SV.ModelServer(SV.resolve_models(os.path.join(tmp, "models")), port=0)
        self.server.start()
        self.addCleanup(self.server.stop)
        self.video = os.path.join(tmp, "in.avi")
        ramp = np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3)
        frames = np.stack([np.roll(ramp, 8 * i, axis=1) for i in range(6)]).astype(np.uint8)
        video_io.write_video(self.video, frames, fps=10)

    def _main(self, *args):
        """(exit status, stdout, the client's log at ERROR)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), logged("serving.client", logging.ERROR) as errors:
            rc = call_main(C, "--server", self.server.address, "--video", self.video, *args)
        return rc, out.getvalue(), "\n".join(errors)

    def test_degrades_a_video_in_chunks(self):
        out_path = os.path.join(self.get_temp_dir(), "out.avi")
        with mock.patch.object(C.video_io, "write_video", wraps=video_io.write_video) as write:
            rc, out, _ = self._main("--out", out_path, "--batch", "4")  # requests of 4 and 2
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^6 frames in [0-9.]+ s \([0-9.]+ frames/s\) -> ")
        # What the client hands to the encoder is exactly the SavedModel's output on the
        # decoded frames (the file itself then goes through a lossy codec).
        decoded_in = video_io.read_video(self.video)
        expected = tf.saved_model.load(self.version_dir).signatures[S.SIGNATURE_KEY](
            **{S.INPUT_KEY: tf.constant(decoded_in)}
        )[S.OUTPUT_KEY]
        (path, frames), kwargs = write.call_args
        self.assertEqual(path, out_path)
        self.assertEqual(kwargs, {"fps": 10})
        self.assertAllEqual(frames, expected)
        self.assertEqual(video_io.read_video(out_path).shape, (6, 16, 16, 3))

    def test_server_errors_are_printed_with_their_code(self):
        out_path = os.path.join(self.get_temp_dir(), "never.avi")
        rc, _, err = self._main("--out", out_path, "--model_name", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("server error NOT_FOUND: Servable not found for request: Latest(nope)", err)
        self.assertFalse(os.path.exists(out_path))

    def test_unreadable_video_is_named(self):
        self.video = os.path.join(self.get_temp_dir(), "missing.avi")
        rc, _, err = self._main("--out", os.path.join(self.get_temp_dir(), "x.avi"))
        self.assertEqual(rc, 2)
        self.assertIn("missing.avi", err)

    def test_degrade_frames_validates_its_input(self):
        channel, stub = C.make_stub(self.server.address)
        self.addCleanup(channel.close)
        with self.assertRaisesRegex(ValueError, "frames: expected uint8"):
            C.degrade_frames(stub, np.zeros((2, 8, 8, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "batch: must be >= 1"):
            C.degrade_frames(stub, np.zeros((2, 8, 8, 3), np.uint8), batch=0)


class _EchoStub:
    """A PredictionServiceStub stand-in that returns the frames and records each batch."""

    def __init__(self):
        self.batches = []

    def Predict(self, request, timeout=None):
        frames = tf.make_ndarray(request.inputs[S.INPUT_KEY])
        self.batches.append(len(frames))
        response = predict_pb2.PredictResponse()
        response.outputs[S.OUTPUT_KEY].CopyFrom(tf.make_tensor_proto(frames))
        return response


class RequestSizeTest(tf.test.TestCase):
    def test_batches_shrink_to_the_pixel_cap(self):
        frames = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3)).astype(np.uint8)
        for cap, batches in (
            (3 * 64, [3, 3, 3, 1]),
            (0, [4, 4, 2]),
            (10**6, [4, 4, 2]),
            (1, [1] * 10),
        ):
            stub = _EchoStub()
            out = C.degrade_frames(stub, frames, batch=4, max_request_pixels=cap)
            self.assertEqual(stub.batches, batches, f"cap {cap}")
            self.assertAllEqual(out, frames)

    def test_batches_count_padded_pixels(self):
        # 7 x 9 frames run at 8 x 16 (S.MAX_SPATIAL_MULTIPLE, the largest any f_d pads to) in
        # serving.server's count: 256 pixels per request is 2 of them (4 counted unpadded).
        frames = np.random.default_rng(0).integers(0, 256, (10, 7, 9, 3)).astype(np.uint8)
        stub = _EchoStub()
        out = C.degrade_frames(stub, frames, batch=8, max_request_pixels=256)
        self.assertEqual(stub.batches, [2] * 5)
        self.assertAllEqual(out, frames)

    def test_default_cap_is_the_servers(self):
        stub = _EchoStub()
        C.degrade_frames(stub, np.zeros((20, 1024, 1024, 3), np.uint8), batch=20)
        self.assertEqual(stub.batches, [16, 4])  # 16 x 1024 x 1024 = S.MAX_REQUEST_PIXELS
        with self.assertRaisesRegex(ValueError, "max_request_pixels: must be >= 0"):
            C.degrade_frames(stub, np.zeros((1, 4, 4, 3), np.uint8), max_request_pixels=-1)


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode):
        super().__init__()
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return f"injected {self._code.name}"


class _FlakyStub(_EchoStub):
    """Fails with the given codes, one per call, then echoes."""

    def __init__(self, *codes: grpc.StatusCode):
        super().__init__()
        self.codes = list(codes)
        self.calls = 0

    def Predict(self, request, timeout=None):
        self.calls += 1
        if self.codes:
            raise _RpcError(self.codes.pop(0))
        return super().Predict(request, timeout)


class _Connection:
    def __init__(self, connected: bool):
        self.connected = connected


class RetryTest(tf.test.TestCase):
    FRAMES = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    NO_WAIT = C.RetryPolicy(retries=3, base_seconds=0.0)

    def test_unavailable_is_resent_until_it_succeeds(self):
        stub = _FlakyStub(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
        seen = []
        out = C.degrade_frames(
            stub,
            self.FRAMES,
            retry=self.NO_WAIT,
            on_retry=lambda n, error, delay: seen.append((n, error.code(), delay)),
        )
        self.assertAllEqual(out, self.FRAMES)
        self.assertEqual(stub.calls, 3)
        unavailable = grpc.StatusCode.UNAVAILABLE
        self.assertEqual([(n, code) for n, code, _ in seen], [(1, unavailable), (2, unavailable)])

    def test_retries_are_bounded_and_the_last_error_raised(self):
        stub = _FlakyStub(*[grpc.StatusCode.UNAVAILABLE] * 5)
        with self.assertRaises(grpc.RpcError) as caught:
            C.degrade_frames(stub, self.FRAMES, retry=self.NO_WAIT)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(stub.calls, 4)  # the first attempt and 3 retries
        stub = _FlakyStub(grpc.StatusCode.UNAVAILABLE)
        with self.assertRaises(grpc.RpcError):  # no policy: sent once
            C.degrade_frames(stub, self.FRAMES)
        self.assertEqual(stub.calls, 1)

    def test_only_failures_before_the_request_ran_are_retried(self):
        for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            stub = _FlakyStub(code)
            with self.assertRaises(grpc.RpcError):
                C.degrade_frames(stub, self.FRAMES, retry=self.NO_WAIT)
            self.assertEqual(stub.calls, 1, code)
        # A deadline passed while connecting is retried; on a connected server it is not.
        deadline = grpc.StatusCode.DEADLINE_EXCEEDED
        request = C.predict_request(self.FRAMES)
        stub = _FlakyStub(deadline)
        C.call_with_retries(lambda: stub.Predict(request), self.NO_WAIT, _Connection(False))
        self.assertEqual(stub.calls, 2)
        slow = _FlakyStub(deadline)
        with self.assertRaises(grpc.RpcError) as caught:
            C.call_with_retries(lambda: slow.Predict(request), self.NO_WAIT, _Connection(True))
        self.assertEqual(caught.exception.code(), deadline)
        self.assertEqual(slow.calls, 1)

    def test_backoff_doubles_up_to_its_cap(self):
        policy = C.RetryPolicy()
        self.assertEqual(
            [policy.delay(n) for n in range(1, 8)], [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        )
        with self.assertRaisesRegex(ValueError, r"retries \(--retries\) must be >= 0"):
            C.RetryPolicy(retries=-1)
        with self.assertLogs("serving.client", "ERROR") as logs:
            rc = call_main(C, "--server=x:1", "--video=v", "--out=o", "--retry_seconds", "-1")
        self.assertEqual(rc, 2)
        self.assertIn("--retry_seconds", "\n".join(logs.output))


if __name__ == "__main__":
    tf.test.main()
