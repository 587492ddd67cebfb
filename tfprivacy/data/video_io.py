"""Video decoding and encoding with PyAV (FFmpeg bindings).

Decoding errors of every kind (missing file, not a video, corrupt stream, no frames) surface as
one `VideoReadError` naming the file, so pipelines can skip, count and report them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import av
import numpy as np


class VideoReadError(IOError):
    """A video that cannot be decoded; str() names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def iter_video(path: str, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decodes frames one by one as uint8 RGB [H, W, 3] (the first `max_frames`, or all): a
    long video never sits in memory whole. Every failure, before or during decoding, is a
    VideoReadError naming the file, as is a video without frames or whose frame size
    changes."""
    if not os.path.exists(path):
        raise VideoReadError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "zero-length file")
    count, shape = 0, None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                if shape is not None and image.shape != shape:
                    raise VideoReadError(
                        path, f"frame shapes change within the video: {shape} then {image.shape}"
                    )
                shape = image.shape
                yield image
                count += 1
                if max_frames is not None and count >= max_frames:
                    break
    except VideoReadError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as err:
        raise VideoReadError(path, f"cannot decode ({type(err).__name__}: {err})") from err
    if not count:
        raise VideoReadError(path, "no decodable frames")


def read_video(path: str, max_frames: int | None = None) -> np.ndarray:
    """Decodes all frames (or the first `max_frames`) as uint8 RGB [N, H, W, 3]."""
    return np.stack(list(iter_video(path, max_frames)))


def count_frames(path: str) -> int:
    """Number of decodable frames (decodes the stream; container metadata is unreliable)."""
    return int(read_video(path).shape[0])


class VideoWriter:
    """Encodes uint8 RGB frames [H, W, 3] one by one (`write`), to `path` (container chosen
    by extension) at the first frame's size. Written to a temporary name and renamed on a
    clean close, so an interrupted writer never leaves a truncated video behind (the partial
    file is removed). A context manager."""

    def __init__(self, path: str, fps: int = 12, codec: str = "mpeg4"):
        self.path, self.fps, self.codec = path, fps, codec
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        root, ext = os.path.splitext(path)
        self._tmp = f"{root}.partial{ext}"
        self._container = av.open(self._tmp, mode="w")
        self._stream = None
        self.frames = 0

    def _open_stream(self, height: int, width: int):
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p" if self.codec != "ffv1" else "yuv444p"
        if self.codec == "mpeg4":
            # Near-lossless: fine texture (the private cues) must survive encoding.
            stream.options = {"qscale": "1"}
            stream.codec_context.qmin = 1
            stream.codec_context.qmax = 2
        return stream

    def write(self, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(
                f"{self.path}: frames must be uint8 [H, W, 3], got {image.dtype} {image.shape}"
            )
        if self._stream is None:
            self._stream = self._open_stream(*image.shape[:2])
        elif image.shape[:2] != (self._stream.height, self._stream.width):
            raise ValueError(
                f"{self.path}: frame {self.frames} is {image.shape[0]}x{image.shape[1]}, the "
                f"video {self._stream.height}x{self._stream.width}"
            )
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Flushes and renames into place (keep, and at least one frame written); otherwise
        removes the partial file."""
        if self._container is None:
            return
        try:
            if keep and self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        if keep and self.frames:
            os.replace(self._tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):  # no stream: nothing was written
                os.remove(self._tmp)
            if keep:
                raise ValueError(f"{self.path}: no frames written")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.close(keep=exc_type is None)


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
    with VideoWriter(path, fps, codec) as writer:
        for image in frames:
            writer.write(image)
