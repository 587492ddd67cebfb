"""The in-project TF Serving stand-in: round trip, concurrency, status codes, version pick-up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
)

from configs.experiments import get_config
from serving import client as C
from serving import export as E
from serving import server as SV
from serving import signatures as S
from tfprivacy.models import build_degrader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_MESSAGE = 256 * 1024  # small, so that "oversized" needs only a 512x512 frame


def tiny_degrader(seed: int | None = None):
    """benchmark_tiny's f_d: the identity as built; with a seed, every weight redrawn."""
    model = build_degrader(get_config("benchmark_tiny").model, frame_size=None)
    if seed is not None:
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
    return model


def _frames(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _request(
    frames=None, name=S.MODEL_NAME, signature=S.SIGNATURE_KEY, key=S.INPUT_KEY, version=None
):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if frames is not None:
        request.inputs[key].CopyFrom(tf.make_tensor_proto(frames))
    return request


def _wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class ServerTest(tf.test.TestCase, parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp(prefix="serving_test_")
        cls.version_dir = E.export_degrader(tiny_degrader(seed=3), cls.base)
        cls.server = SV.ModelServer(
            SV.resolve_models(cls.base), port=0, max_message_bytes=MAX_MESSAGE, poll_seconds=60
        ).start()
        cls.channel, cls.stub = C.make_stub(cls.server.address)
        cls.model_stub = model_service_pb2_grpc.ModelServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()
        shutil.rmtree(cls.base, ignore_errors=True)
        super().tearDownClass()

    def test_binds_loopback_on_a_free_port(self):
        host, port = self.server.address.rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        self.assertGreater(int(port), 0)

    def test_client_round_trip_equals_saved_model(self):
        frames = _frames((7, 8, 12, 3))
        served = C.degrade_frames(self.stub, frames, batch=3)  # chunks of 3, 3, 1
        direct = tf.saved_model.load(self.version_dir).signatures[S.SIGNATURE_KEY](
            **{S.INPUT_KEY: tf.constant(frames)}
        )[S.OUTPUT_KEY]
        self.assertEqual(served.dtype, np.uint8)
        self.assertAllEqual(served, direct)
        self.assertFalse(np.array_equal(served, frames))  # a seeded f_d, not the identity

    def test_response_model_spec(self):
        response = self.stub.Predict(_request(_frames((1, 4, 4, 3))), timeout=30)
        self.assertEqual(response.model_spec.name, S.MODEL_NAME)
        self.assertEqual(response.model_spec.version.value, 1)
        self.assertEqual(response.model_spec.signature_name, S.SIGNATURE_KEY)
        self.assertEqual(list(response.outputs), [S.OUTPUT_KEY])

    def test_200_requests_from_8_threads(self):
        inputs = [_frames((2, 4, 8, 3), seed=i) for i in range(200)]
        serve = tf.saved_model.load(self.version_dir).signatures[S.SIGNATURE_KEY]
        expected = [serve(**{S.INPUT_KEY: tf.constant(x)})[S.OUTPUT_KEY].numpy() for x in inputs]

        def call(i):
            response = self.stub.Predict(_request(inputs[i]), timeout=60)
            return tf.make_ndarray(response.outputs[S.OUTPUT_KEY])

        with futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(call, range(200)))
        self.assertLen(results, 200)
        for got, want in zip(results, expected, strict=True):
            self.assertAllEqual(got, want)

    @parameterized.named_parameters(
        ("unknown_model", dict(name="nope"), grpc.StatusCode.NOT_FOUND, "Latest(nope)"),
        ("unknown_version", dict(version=9), grpc.StatusCode.NOT_FOUND, "Specific(degrader, 9)"),
        # TF Serving's predict_util.cc answers an unknown signature key FAILED_PRECONDITION.
        (
            "unknown_signature",
            dict(signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'signature key "nope" not found',
        ),
        (
            "wrong_input_key",
            dict(key="images"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Sent extra: ['images']",
        ),
        (
            "no_input",
            dict(frames=None),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Missing but required: ['frames']",
        ),
        (
            "float_frames",
            dict(frames=np.zeros((1, 4, 4, 3), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "expects uint8 but float32 is provided",
        ),
        (
            "rank_3",
            dict(frames=np.zeros((4, 4, 3), np.uint8)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not compatible",
        ),
        (
            "two_channels",
            dict(frames=np.zeros((1, 4, 4, 2), np.uint8)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not compatible",
        ),
        # Passes the signature, fails the graph's own assert, as it would in TF Serving. (A
        # height of 6 failed it too before issue 25: test_any_size_round_trips.)
        (
            "empty",
            dict(frames=np.zeros((1, 0, 4, 3), np.uint8)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "frames: height and width must be > 0",
        ),
        (
            "oversized",
            dict(frames=np.zeros((1, 512, 512, 3), np.uint8)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "",
        ),
    )
    def test_bad_predict_requests(self, overrides, code, detail):
        kwargs = dict(frames=np.zeros((1, 4, 4, 3), np.uint8))
        kwargs.update(overrides)
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(_request(**kwargs), timeout=30)
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        self.assertIn(detail, caught.exception.details())
        # And the server is still fine afterwards.
        self.stub.Predict(_request(np.zeros((1, 4, 4, 3), np.uint8)), timeout=30)

    def test_any_size_round_trips(self):
        # Not multiples of 4 (a height of 6 was INVALID_ARGUMENT before issue 25): the graph
        # pads them for f_d and crops back, so the response has the request's shape.
        serve = tf.saved_model.load(self.version_dir).signatures[S.SIGNATURE_KEY]
        for shape in ((2, 13, 7, 3), (1, 1, 1, 3), (1, 6, 4, 3), (3, 5, 9, 3)):
            frames = _frames(shape, seed=sum(shape))
            response = self.stub.Predict(_request(frames), timeout=30)
            served = tf.make_ndarray(response.outputs[S.OUTPUT_KEY])
            self.assertEqual(served.shape, shape)
            self.assertEqual(served.dtype, np.uint8)
            direct = serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY]
            self.assertAllEqual(served, direct)
        self.assertEqual(self.server.models[S.MODEL_NAME].current.spatial_multiple, 4)
        # The client, in chunks, at an odd size.
        frames = _frames((5, 11, 13, 3))
        served = C.degrade_frames(self.stub, frames, batch=2)
        direct = serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY]
        self.assertAllEqual(served, direct)

    def test_missing_model_spec_and_malformed_tensor(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(predict_pb2.PredictRequest(), timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        request = _request(np.zeros((1, 4, 4, 3), np.uint8))
        request.inputs[S.INPUT_KEY].tensor_content = b"\x00" * 5  # 5 bytes for 48 elements
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(request, timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_model_metadata(self):
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = S.MODEL_NAME
        request.metadata_field.append(S.METADATA_FIELD)
        response = self.stub.GetModelMetadata(request, timeout=30)
        self.assertEqual(response.model_spec.version.value, 1)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        self.assertTrue(response.metadata[S.METADATA_FIELD].Unpack(sig_map))
        self.assertEqual(list(sig_map.signature_def), [S.SIGNATURE_KEY])
        sig = sig_map.signature_def[S.SIGNATURE_KEY]
        self.assertEqual(sig.method_name, S.METHOD_NAME)
        self.assertEqual(sig.inputs[S.INPUT_KEY].dtype, tf.uint8.as_datatype_enum)
        self.assertEqual(
            [d.size for d in sig.inputs[S.INPUT_KEY].tensor_shape.dim], [-1, -1, -1, 3]
        )
        self.assertEqual(sig.outputs[S.OUTPUT_KEY].dtype, tf.uint8.as_datatype_enum)

        request.metadata_field[0] = "graph"
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetModelMetadata(request, timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        request.metadata_field[0] = S.METADATA_FIELD
        request.model_spec.name = "nope"
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetModelMetadata(request, timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_model_status(self):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = S.MODEL_NAME
        (status,) = self.model_stub.GetModelStatus(request, timeout=30).model_version_status
        self.assertEqual(status.version, 1)
        self.assertEqual(status.state, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        self.assertEqual(status.status.error_code, 0)
        for name, version in (("nope", None), (S.MODEL_NAME, 4)):
            request.model_spec.name = name
            if version is not None:
                request.model_spec.version.value = version
            with self.assertRaises(grpc.RpcError) as caught:
                self.model_stub.GetModelStatus(request, timeout=30)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)


class VersionPollTest(tf.test.TestCase):
    def test_newer_version_is_picked_up_and_bad_ones_ignored(self):
        base = self.get_temp_dir()
        E.export_degrader(tiny_degrader(), base)  # v1: the identity
        server = SV.ModelServer(SV.resolve_models(base), port=0, poll_seconds=0.2).start()
        channel, stub = C.make_stub(server.address)
        try:
            frames = _frames((1, 8, 8, 3))
            self.assertAllEqual(C.degrade_frames(stub, frames), frames)
            model_dir = os.path.join(base, S.MODEL_NAME)
            # An export in progress and a broken version must not be served or crash it.
            os.makedirs(os.path.join(model_dir, ".tmp-3-999"))
            os.makedirs(os.path.join(model_dir, "3"))
            with open(os.path.join(model_dir, "3", "saved_model.pb"), "wb") as f:
                f.write(b"not a SavedModel")
            time.sleep(0.6)
            self.assertEqual(server.models[S.MODEL_NAME].current.version, 1)
            self.assertAllEqual(C.degrade_frames(stub, frames), frames)

            E.export_degrader(tiny_degrader(seed=4), base, version=4)
            self.assertTrue(_wait_for(lambda: server.models[S.MODEL_NAME].current.version == 4))
            response = stub.Predict(_request(frames), timeout=30)
            self.assertEqual(response.model_spec.version.value, 4)
            self.assertNotAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), frames)
        finally:
            channel.close()
            server.stop()

    def test_model_config_file_and_model_dir_resolution(self):
        base = self.get_temp_dir()
        E.export_degrader(tiny_degrader(), base)
        config = E.write_models_config(base)
        by_config = SV.resolve_models(model_config_file=config)
        self.assertEqual(by_config[S.MODEL_NAME].model_dir, os.path.join(base, S.MODEL_NAME))
        # TF Serving's own convention: --model_base_path is the folder holding the versions.
        direct = SV.resolve_models(os.path.join(base, S.MODEL_NAME))
        self.assertEqual(direct[S.MODEL_NAME].model_dir, os.path.join(base, S.MODEL_NAME))


class ServerCliTest(tf.test.TestCase):
    def test_port_0_prints_the_port_and_sigterm_stops_cleanly(self):
        base = self.get_temp_dir()
        E.export_degrader(tiny_degrader(), base)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.server", "--model_base_path", base, "--port", "0"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = ""
            timer = threading.Timer(120, proc.kill)  # never hang the suite on a bad start
            timer.start()
            while not line.startswith("serving on "):
                line = proc.stdout.readline()
                if not line:
                    break
            timer.cancel()
            self.assertStartsWith(line, "serving on 127.0.0.1:")
            address = line.split()[-1]
            channel = grpc.insecure_channel(address)
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = S.MODEL_NAME
            status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                request, timeout=30
            )
            self.assertEqual(status.model_version_status[0].version, 1)
            channel.close()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
            self.assertIn("server stopped", proc.stdout.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    tf.test.main()
