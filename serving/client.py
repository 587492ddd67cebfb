"""Degrades a video through a TF Serving endpoint, using only the official gRPC API.

    python -m serving.client --server HOST:PORT --video IN --out OUT [--batch 16]

Frames go out in chunks of --batch as PredictRequests on PredictionServiceStub; nothing
project-specific is on the wire, so the same client works against real tensorflow_model_server
and against serving.server. A chunk is made smaller when its frames would exceed
--max_request_pixels (serving.server's per-request cap, same default), so large frames are
not refused. --ssl_root_cert PATH connects over TLS, trusting the CA (or self-signed
certificate) in that PEM file; without it the channel is plaintext.

A request the server could not take (UNAVAILABLE: down, restarting, the connection lost
mid-request; DEADLINE_EXCEEDED while still connecting) is sent again up to --retries times,
after --retry_seconds and twice as long before each next resend (at most 8 s). Predict is a
pure function of its input, so resending a request cut off mid-way is safe. A deadline that
passes on a connected server is not retried: the request itself is slow, and a resend would
only double the load.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import signatures as S
from serving.backoff import Backoff
from tfprivacy.data import video_io

log = logging.getLogger("serving.client")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# gRPC's own reconnect backoff grows to 120 s, and while it waits the channel fails every call
# at once: a server back after a restart would not be seen before the retries ran out.
# Redialling at most every 4 s costs nothing.
MAX_RECONNECT_BACKOFF_MS = 4000
# Failures after which the same request is sent again: the server did not run it to the end.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


@dataclasses.dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How a request the server could not take is sent again (see the module doc).

    retries: resends after the first attempt; 0 sends each request once.
    base_seconds: the wait before the first resend, doubling per resend up to max_seconds.
    """


class ConnectionWatch:
    """A channel's latest connectivity state, as gRPC reports it from its own thread.

    It tells a deadline that passed while connecting (a server not accepting yet, a host that
    drops packets) from one that passed while a connected server worked on the request.
    """

    def __init__(self, channel: grpc.Channel):
        self._channel = channel
        self.state: grpc.ChannelConnectivity | None = None
        channel.subscribe(self._update, try_to_connect=False)

    def _update(self, state: grpc.ChannelConnectivity) -> None:
        self.state = state

    @property
    def connected(self) -> bool:
        return self.state is grpc.ChannelConnectivity.READY

    def close(self) -> None:
        self._channel.unsubscribe(self._update)


OnRetry = Callable[[int, grpc.RpcError, float], None]


def call_with_retries(
    call: Callable[[], object],
    retry: RetryPolicy | None,
    connection: ConnectionWatch | None = None,
    on_retry: OnRetry | None = None,
):
    """call()'s result, calling again after a retryable failure as `retry` allows.

    UNAVAILABLE is retryable; DEADLINE_EXCEEDED only when `connection` shows the channel not
    connected as it came. on_retry(retry, error, delay) is called before each wait. Once the
    retries are spent the last error is raised; any other error at once.
    """
    retries = 0
    while True:
        try:
            return call()
        except grpc.RpcError as e:
            code = e.code()
            connecting = connection is not None and not connection.connected
            retryable = code in RETRYABLE or (
                code is grpc.StatusCode.DEADLINE_EXCEEDED and connecting
            )
            if retry is None or not retryable or retries >= retry.retries:
                raise
            retries += 1
            delay = retry.delay(retries)
            log.warning(
                "%s: %s; sending again in %.1f s (retry %d of %d)",
                code.name,
                e.details(),
                delay,
                retries,
                retry.retries,
            )
            if on_retry is not None:
                on_retry(retries, e, delay)
            time.sleep(delay)


def make_stub(
    server: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, ssl_root_cert: str = ""
) -> tuple[grpc.Channel, prediction_service_pb2_grpc.PredictionServiceStub]:
    """A channel to HOST:PORT and its stub; TLS when ssl_root_cert names a PEM file.

    The server's certificate must then chain to that file and name the host dialled (a
    subjectAltName DNS or IP entry), as gRPC checks both.
    """
    # Responses are as large as requests; gRPC's 4 MiB default receive limit is too small.
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]
    if ssl_root_cert:
        try:
            with open(ssl_root_cert, "rb") as f:
                root = f.read()
        except OSError as e:
            raise ValueError(f"ssl_root_cert: cannot read {ssl_root_cert!r}: {e.strerror}") from e
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
        channel = grpc.secure_channel(server, credentials, options=options)
    else:
        channel = grpc.insecure_channel(server, options=options)
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(
    frames: np.ndarray,
    model_name: str = S.MODEL_NAME,
    signature_name: str = S.SIGNATURE_KEY,
    version: int | None = None,
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[S.INPUT_KEY].CopyFrom(tf.make_tensor_proto(frames))
    return request


def degrade_frames(
    stub,
    frames: np.ndarray,
    batch: int = 16,
    model_name: str = S.MODEL_NAME,
    signature_name: str = S.SIGNATURE_KEY,
    timeout: float = 60.0,
    max_request_pixels: int = S.MAX_REQUEST_PIXELS,
    retry: RetryPolicy | None = None,
    channel: grpc.Channel | None = None,
    on_retry: OnRetry | None = None,
) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 degraded frames, `batch` frames per request.

    Fewer when `batch` frames would exceed max_request_pixels (frames x height x width, height
    and width rounded up to S.MAX_SPATIAL_MULTIPLE as serving.server counts them; 0: no cap):
    the server refuses such a request, so it is never sent. One frame always goes.
    retry: resend what the server could not take (None: never); with `channel` (the stub's), a
    deadline passed while connecting is retried too. on_retry: see call_with_retries.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    if batch < 1:
        raise ValueError(f"batch: must be >= 1, got {batch}")
    if max_request_pixels < 0:
        raise ValueError(f"max_request_pixels: must be >= 0, got {max_request_pixels}")
    # Counted as serving.server does, padded to the multiple f_d needs (the largest any
    # variant needs, so that a request fits whichever model answers it).
    m = S.MAX_SPATIAL_MULTIPLE
    frame_pixels = -(-frames.shape[1] // m) * m * (-(-frames.shape[2] // m) * m)
    if max_request_pixels and frame_pixels:
        batch = max(1, min(batch, max_request_pixels // frame_pixels))
    out = []
    connection = ConnectionWatch(channel) if channel is not None and retry is not None else None
    try:
        for start in range(0, len(frames), batch):
            request = predict_request(frames[start : start + batch], model_name, signature_name)
            response = call_with_retries(
                lambda request=request: stub.Predict(request, timeout=timeout),
                retry,
                connection,
                on_retry,
            )
            out.append(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]))
    finally:
        if connection is not None:
            connection.close()
    if not out:
        return np.zeros_like(frames)
    return np.concatenate(out, axis=0)


def _video_fps(path: str, default: int = 12) -> int:
    import av

    try:
        with av.open(path) as container:
            rate = container.streams.video[0].average_rate
        return max(1, round(float(rate))) if rate else default
    except Exception:  # fps is cosmetic; read_video reports real decoding errors
        return default


def degrade_video(
    server: str,
    video_in: str,
    video_out: str,
    batch: int = 16,
    model_name: str = S.MODEL_NAME,
    signature_name: str = S.SIGNATURE_KEY,
    timeout: float = 60.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ssl_root_cert: str = "",
    max_request_pixels: int = S.MAX_REQUEST_PIXELS,
    retry: RetryPolicy | None = None,
) -> dict:
    """Reads video_in, degrades every frame on the server, writes video_out; returns figures.

    retry: None takes RetryPolicy()'s defaults; RetryPolicy(retries=0) sends each request once.
    """
    frames = video_io.read_video(video_in)
    retry = RetryPolicy() if retry is None else retry
    channel, stub = make_stub(server, max_message_bytes, ssl_root_cert)
    retried = []
    try:
        start = time.perf_counter()
        degraded = degrade_frames(
            stub,
            frames,
            batch,
            model_name,
            signature_name,
            timeout,
            max_request_pixels,
            retry=retry,
            channel=channel,
            on_retry=lambda n, error, delay: retried.append(error.code().name),
        )
        seconds = time.perf_counter() - start
    finally:
        channel.close()
    video_io.write_video(video_out, degraded, fps=_video_fps(video_in))
    return {
        "frames": len(frames),
        "seconds": seconds,
        "frames_per_second": len(frames) / seconds if seconds > 0 else float("inf"),
        "retries": len(retried),
    }


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "server", None, "HOST:PORT of TF Serving's gRPC port", required=True, flag_values=FLAGS
)
flags.DEFINE_string("video", None, "input video", required=True, flag_values=FLAGS)
flags.DEFINE_string("out", None, "output video (degraded)", required=True, flag_values=FLAGS)
flags.DEFINE_integer("batch", 16, "frames per request", flag_values=FLAGS)
flags.DEFINE_string("model_name", S.MODEL_NAME, "model to call", flag_values=FLAGS)
flags.DEFINE_string("signature_name", S.SIGNATURE_KEY, "signature to call", flag_values=FLAGS)
flags.DEFINE_float("timeout", 60.0, "seconds per request", flag_values=FLAGS)
flags.DEFINE_float(
    "max_message_mb", 64.0, "gRPC send/receive message limit, in MiB", flag_values=FLAGS
)
flags.DEFINE_integer(
    "max_request_pixels",
    S.MAX_REQUEST_PIXELS,
    "send fewer than --batch frames when they would exceed this many pixels "
    "(frames x height x width; the server's cap); 0: no cap",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "ssl_root_cert",
    "",
    "PEM file of the CA (or self-signed certificate) to trust: connect over TLS",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "retries",
    RetryPolicy.retries,
    "resends of a request the server could not take (UNAVAILABLE, or a deadline "
    "passed while connecting); 0: send once",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "retry_seconds",
    RetryPolicy.base_seconds,
    "wait before the first resend, doubling per resend (at most 8 s)",
    flag_values=FLAGS,
)


def main(argv) -> int:
    """Degrades --video into --out through --server; 0, 1 on a server error, 2 on a bad
    input or flag value (logged, no traceback). argv: the program name alone (run_cli)."""
    del argv
    try:
        retry = RetryPolicy(retries=FLAGS.retries, base_seconds=FLAGS.retry_seconds)
        stats = degrade_video(
            FLAGS.server,
            FLAGS.video,
            FLAGS.out,
            batch=FLAGS.batch,
            model_name=FLAGS.model_name,
            signature_name=FLAGS.signature_name,
            timeout=FLAGS.timeout,
            max_message_bytes=int(FLAGS.max_message_mb * 1024 * 1024),
            ssl_root_cert=FLAGS.ssl_root_cert,
            max_request_pixels=FLAGS.max_request_pixels,
            retry=retry,
        )
    except grpc.RpcError as e:
        spent = f" (still so after {FLAGS.retries} retries)" if e.code() in RETRYABLE else ""
        log.error("server error %s: %s%s", e.code().name, e.details(), spent)
        return 1
    except (video_io.VideoReadError, ValueError) as e:
        log.error("%s", e)
        return 2
    retried = f", {stats['retries']} retries" if stats["retries"] else ""
    print(
        f"{stats['frames']} frames in {stats['seconds']:.2f} s "
        f"({stats['frames_per_second']:.1f} frames/s{retried}) -> {FLAGS.out}"
    )
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
