"""Video decoding and encoding with PyAV (FFmpeg bindings).

Decoding errors of every kind (missing file, not a video, corrupt stream, no frames) surface as
one `VideoReadError` naming the file, so pipelines can skip, count and report them.
"""

from __future__ import annotations

import os

import av
import numpy as np


class VideoReadError(IOError):
    """A video that cannot be decoded; str() names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_video(path: str, max_frames: int | None = None) -> np.ndarray:
    """Decodes all frames (or the first `max_frames`) as uint8 RGB [N, H, W, 3]."""
    if not os.path.exists(path):
        raise VideoReadError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "zero-length file")
    frames = []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as err:
        raise VideoReadError(path, f"cannot decode ({type(err).__name__}: {err})") from err
    if not frames:
        raise VideoReadError(path, "no decodable frames")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoReadError(path, f"frame shapes change within the video: {sorted(shapes)}")
    return np.stack(frames)


def count_frames(path: str) -> int:
    """Number of decodable frames (decodes the stream; container metadata is unreliable)."""
    return int(read_video(path).shape[0])


def write_video(path: str, frames: np.ndarray, fps: int = 12, codec: str = "mpeg4") -> None:
    """Encodes uint8 RGB frames [N, H, W, 3] to `path` (container chosen by extension).

    Written to a temporary name and renamed, so an interrupted writer never leaves a
    truncated video behind.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"{path}: frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.partial{ext}"
    height, width = frames.shape[1:3]
    with av.open(tmp, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "yuv444p"
        if codec == "mpeg4":
            # Near-lossless: fine texture (the private cues) must survive encoding.
            stream.options = {"qscale": "1"}
            stream.codec_context.qmin = 1
            stream.codec_context.qmax = 2
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
