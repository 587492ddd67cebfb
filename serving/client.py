"""Degrades a video through a TF Serving endpoint, using only the official gRPC API.

    python -m serving.client --server HOST:PORT --video IN --out OUT [--batch 16]

Frames go out in chunks of --batch as PredictRequests on PredictionServiceStub; nothing
project-specific is on the wire, so the same client works against real tensorflow_model_server
and against serving.server. A chunk is made smaller when its frames would exceed
--max_request_pixels (serving.server's per-request cap, same default), so large frames are
not refused. --ssl_root_cert PATH connects over TLS, trusting the CA (or self-signed
certificate) in that PEM file; without it the channel is plaintext.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import signatures as S
from tfprivacy.data import video_io

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 degraded frames, `batch` frames per request.

    Fewer when `batch` frames would exceed max_request_pixels (frames x height x width; 0: no
    cap): the server refuses such a request, so it is never sent. One frame always goes.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    if batch < 1:
        raise ValueError(f"batch: must be >= 1, got {batch}")
    if max_request_pixels < 0:
        raise ValueError(f"max_request_pixels: must be >= 0, got {max_request_pixels}")
    frame_pixels = frames.shape[1] * frames.shape[2]
    if max_request_pixels and frame_pixels:
        batch = max(1, min(batch, max_request_pixels // frame_pixels))
    out = []
    for start in range(0, len(frames), batch):
        request = predict_request(frames[start : start + batch], model_name, signature_name)
        response = stub.Predict(request, timeout=timeout)
        out.append(tf.make_ndarray(response.outputs[S.OUTPUT_KEY]))
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
) -> dict:
    """Reads video_in, degrades every frame on the server, writes video_out; returns figures."""
    frames = video_io.read_video(video_in)
    channel, stub = make_stub(server, max_message_bytes, ssl_root_cert)
    try:
        start = time.perf_counter()
        degraded = degrade_frames(
            stub, frames, batch, model_name, signature_name, timeout, max_request_pixels
        )
        seconds = time.perf_counter() - start
    finally:
        channel.close()
    video_io.write_video(video_out, degraded, fps=_video_fps(video_in))
    return {
        "frames": len(frames),
        "seconds": seconds,
        "frames_per_second": len(frames) / seconds if seconds > 0 else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="HOST:PORT of TF Serving's gRPC port")
    parser.add_argument("--video", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=16, help="frames per request")
    parser.add_argument("--model_name", default=S.MODEL_NAME)
    parser.add_argument("--signature_name", default=S.SIGNATURE_KEY)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--max_message_mb", type=float, default=64.0)
    parser.add_argument(
        "--max_request_pixels",
        type=int,
        default=S.MAX_REQUEST_PIXELS,
        help="send fewer than --batch frames when they would exceed this many pixels "
        "(frames x height x width; the server's cap); 0: no cap",
    )
    parser.add_argument(
        "--ssl_root_cert",
        default="",
        help="PEM file of the CA (or self-signed certificate) to trust: connect over TLS",
    )
    args = parser.parse_args(argv)
    try:
        stats = degrade_video(
            args.server,
            args.video,
            args.out,
            batch=args.batch,
            model_name=args.model_name,
            signature_name=args.signature_name,
            timeout=args.timeout,
            max_message_bytes=int(args.max_message_mb * 1024 * 1024),
            ssl_root_cert=args.ssl_root_cert,
            max_request_pixels=args.max_request_pixels,
        )
    except grpc.RpcError as e:
        print(f"server error {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except (video_io.VideoReadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{stats['frames']} frames in {stats['seconds']:.2f} s "
        f"({stats['frames_per_second']:.1f} frames/s) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
