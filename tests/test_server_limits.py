"""Bounded work per Predict: the pixel cap before decoding, chunked runs, model errors."""

from __future__ import annotations

import shutil
import tempfile
from unittest import mock

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from test_server import _frames, _request, tiny_degrader

from serving import client as C
from serving import export as E
from serving import server as SV
from serving import servicer as SC
from serving import signatures as S

CHUNK_FRAMES = 3


def _status_kb(field: str) -> int | None:
    """A Vm* line of /proc/self/status in kB, or None where there is no such file."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


class RequestLimitsTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp(prefix="serving_limits_test_")
        cls.version_dir = E.export_degrader(tiny_degrader(seed=3), cls.base)
        # The default request cap and message limit (the 63 MB request must reach the
        # server), chunks of at most CHUNK_FRAMES frames.
        cls.server = SV.ModelServer(
            SV.resolve_models(cls.base),
            port=0,
            poll_seconds=60,
            limits=SV.RequestLimits(max_batch_frames=CHUNK_FRAMES),
        ).start()
        cls.channel, cls.stub = C.make_stub(cls.server.address)
        cls.serve = tf.saved_model.load(cls.version_dir).signatures[S.SIGNATURE_KEY]

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()
        shutil.rmtree(cls.base, ignore_errors=True)
        super().tearDownClass()

    def _direct(self, frames):
        return self.serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY].numpy()

    def _assert_still_serving(self):
        frames = _frames((1, 4, 8, 3))
        response = self.stub.Predict(_request(frames), timeout=30)
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self._direct(frames))

    def test_63_mb_request_is_refused_before_decoding_and_the_server_keeps_serving(self):
        frames = np.zeros((20, 1024, 1024, 3), np.uint8)  # 62.9 MB: under the 64 MiB limit
        request = _request(frames)
        del frames
        self.assertLess(request.ByteSize(), C.DEFAULT_MAX_MESSAGE_BYTES)
        measured = _reset_peak_rss()
        rss_before = _status_kb("VmRSS")
        with mock.patch.object(SC, "_materialise", wraps=SC._materialise) as materialise:
            with self.assertRaises(grpc.RpcError) as caught:
                self.stub.Predict(request, timeout=60)
        peak = _status_kb("VmHWM")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        details = caught.exception.details()
        self.assertIn("--max_request_pixels", details)
        self.assertIn(f"cap of {S.MAX_REQUEST_PIXELS} pixels", details)
        self.assertIn("request of 20971520 pixels ('frames' 20 x 1024 x 1024 x 3)", details)
        materialise.assert_not_called()  # no array was built from the request
        if measured:
            # Client and server share this process: the request's own copies (proto, wire
            # buffers, parsed message) are a few times 63 MB; decoding it and running f_d on
            # it would add float32 activations of 250+ MB each.
            self.assertLess((peak - rss_before) * 1024, 768 * 1024 * 1024)
        del request
        self._assert_still_serving()

    def test_a_tiny_message_declaring_a_huge_tensor_is_refused(self):
        # tf.make_ndarray would repeat the one value to fill 50 GB: the shape alone decides.
        proto = tensor_pb2.TensorProto(
            dtype=tf.uint8.as_datatype_enum,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in (1000, 4096, 4096, 3)]
            ),
            int_val=[0],
        )
        request = _request()
        request.inputs[S.INPUT_KEY].CopyFrom(proto)
        self.assertLess(request.ByteSize(), 100)
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(request, timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("--max_request_pixels", caught.exception.details())

        request.inputs[S.INPUT_KEY].tensor_shape.dim[1].size = -1
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(request, timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("negative dimension", caught.exception.details())
        self._assert_still_serving()

    def test_a_batch_above_the_chunk_size_equals_the_unchunked_result(self):
        version = self.server.models[S.MODEL_NAME].current
        serve = version.signatures[S.SIGNATURE_KEY]
        calls = []

        def counting(**feeds):
            calls.append(int(feeds[S.INPUT_KEY].shape[0]))
            return serve(**feeds)

        frames = _frames((2 * CHUNK_FRAMES + 1, 8, 12, 3), seed=7)
        with mock.patch.dict(version.signatures, {S.SIGNATURE_KEY: counting}):
            response = self.stub.Predict(_request(frames), timeout=30)
        self.assertEqual(calls, [CHUNK_FRAMES, CHUNK_FRAMES, 1])
        served = tf.make_ndarray(response.outputs[S.OUTPUT_KEY])
        self.assertEqual(served.dtype, np.uint8)
        self.assertAllEqual(served, self._direct(frames))  # one call on all 7 frames
        self.assertFalse(np.array_equal(served, frames))  # a seeded f_d, not the identity

    def test_a_model_error_is_internal_and_the_server_keeps_serving(self):
        version = self.server.models[S.MODEL_NAME].current

        def broken(**feeds):
            raise RuntimeError("kernel exploded")

        with mock.patch.dict(version.signatures, {S.SIGNATURE_KEY: broken}):
            with self.assertRaises(grpc.RpcError) as caught:
                self.stub.Predict(_request(np.zeros((2, 4, 4, 3), np.uint8)), timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INTERNAL)
        self.assertIn(
            "model 'degrader' version 1 signature 'serving_default' failed on "
            "'frames' (2, 4, 4, 3): RuntimeError: kernel exploded",
            caught.exception.details(),
        )
        self._assert_still_serving()

    def test_a_failed_graph_assert_keeps_its_status_in_a_chunk(self):
        # 4 empty frames: every chunk fails the graph's own check, as unchunked. (4 frames of
        # height 6 failed it before issue 25; now they are padded to 8 and cropped back.)
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Predict(_request(np.zeros((4, 0, 4, 3), np.uint8)), timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("frames: height and width must be > 0", caught.exception.details())
        frames = _frames((4, 6, 4, 3), seed=8)
        response = self.stub.Predict(_request(frames), timeout=30)  # chunks of 3 and 1
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self._direct(frames))

    def test_a_1279x719_frame_comes_back_1279x719(self):
        frames = _frames((2, 719, 1279, 3), seed=9)
        response = self.stub.Predict(_request(frames), timeout=60)
        served = tf.make_ndarray(response.outputs[S.OUTPUT_KEY])
        self.assertEqual(served.shape, (2, 719, 1279, 3))
        self.assertAllEqual(served, self._direct(frames))
        self.assertFalse(np.array_equal(served, frames))  # a seeded f_d, not the identity

    def test_the_cap_counts_padded_pixels(self):
        # 2^24 frames of 1 x 1 declare 2^24 pixels, the cap; f_d would run them at 4 x 4, 16
        # times as much: refused before anything is built, naming the padding.
        cap = S.MAX_REQUEST_PIXELS
        proto = tensor_pb2.TensorProto(
            dtype=tf.uint8.as_datatype_enum,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in (cap, 1, 1, 3)]
            ),
            int_val=[0],
        )
        request = _request()
        request.inputs[S.INPUT_KEY].CopyFrom(proto)
        with mock.patch.object(SC, "_materialise", wraps=SC._materialise) as materialise:
            with self.assertRaises(grpc.RpcError) as caught:
                self.stub.Predict(request, timeout=30)
        materialise.assert_not_called()
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        details = caught.exception.details()
        self.assertIn(f"request of {16 * cap} pixels ('frames' {cap} x 1 x 1 x 3 (padded ", details)
        self.assertIn("to 4 x 4)) exceeds the cap", details)
        self.assertIn("rounded up to multiples of 4", details)
        self._assert_still_serving()

    def test_chunks_count_padded_pixels(self):
        # 13 x 7 frames run at 16 x 8 = 128 pixels: 300 pixels per graph call is 2 frames
        # (counted unpadded, 91 pixels, it would be 3).
        models = SV.resolve_models(self.base)
        models[S.MODEL_NAME].refresh()
        version = models[S.MODEL_NAME].current
        serve = version.signatures[S.SIGNATURE_KEY]
        calls = []

        def counting(**feeds):
            calls.append(tuple(feeds[S.INPUT_KEY].shape))
            return serve(**feeds)

        servicer = SV._Servicer(models, SV.RequestLimits(max_batch_pixels=300))
        frames = _frames((5, 13, 7, 3), seed=10)
        with mock.patch.dict(version.signatures, {S.SIGNATURE_KEY: counting}):
            response = servicer._predict(_request(frames))
        self.assertEqual([c[0] for c in calls], [2, 2, 1])
        self.assertEqual(calls[0][1:], (13, 7, 3))  # sent as they are: the graph pads
        self.assertAllEqual(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]), self._direct(frames))


class ChunkSizeTest(tf.test.TestCase):
    def test_chunk_frames(self):
        limits = SV.RequestLimits(max_batch_pixels=100, max_batch_frames=0)
        self.assertEqual(limits.chunk_frames(10, 30), 3)  # 3 x 30 <= 100
        self.assertEqual(limits.chunk_frames(2, 30), 2)
        self.assertEqual(limits.chunk_frames(10, 500), 1)  # a frame above the budget: alone
        self.assertEqual(limits.chunk_frames(0, 0), 1)
        both = SV.RequestLimits(max_batch_pixels=100, max_batch_frames=2)
        self.assertEqual(both.chunk_frames(10, 30), 2)
        off = SV.RequestLimits(max_request_pixels=0, max_batch_pixels=0, max_batch_frames=0)
        self.assertEqual(off.chunk_frames(1000, 10**6), 1000)

    def test_defaults_refuse_20_frames_of_1024_squared(self):
        self.assertGreater(20 * 1024 * 1024, SV.RequestLimits().max_request_pixels)
        self.assertLessEqual(16 * 1024 * 1024, SV.RequestLimits().max_request_pixels)

    def test_pixels_are_counted_padded(self):
        self.assertEqual(SV._pixels((2, 13, 7, 3), 4), 2 * 16 * 8)
        self.assertEqual(SV._pixels((2, 13, 7, 3), 8), 2 * 16 * 8)
        self.assertEqual(SV._pixels((1, 1, 1, 3), 8), 64)
        self.assertEqual(SV._pixels((2, 16, 8, 3), 4), 2 * 16 * 8)  # multiples: as declared
        self.assertEqual(SV._pixels((2, 13, 7, 3)), 2 * 13 * 7)  # a model that does not pad
        self.assertEqual(SV._pixels((2, 13, 7), 4), 2 * 13 * 7)  # not frames: every element

    def test_spatial_multiple_of_a_saved_model_without_one_is_1(self):
        self.assertEqual(SV._spatial_multiple(tf.Module(), "path"), 1)
        module = tf.Module()
        module.spatial_multiple = lambda: tf.constant(8)
        self.assertEqual(SV._spatial_multiple(module, "path"), 8)

    def test_negative_limits_are_named(self):
        with self.assertRaisesRegex(ValueError, r"max_batch_frames \(--max_batch_frames\) must"):
            SV.RequestLimits(max_batch_frames=-1)


if __name__ == "__main__":
    tf.test.main()
