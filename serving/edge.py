"""Edge runner: degrade a video with a TFLite f_d on the LiteRT interpreter, print frames/s.

  python -m serving.edge --model degrader_int8.tflite --video in.avi --out out.avi [--threads 1]

Frames that fit in the model's fixed size H x W (height <= H and width <= W: a 1280x720
video and a model converted with serving.tflite --frame_size 720x1280, or any smaller video)
run at their own size: the runner pads each to H x W by edge replication and crops the output
back (serving.tflite.TFLiteDegrader), and the video is written at its own size. Larger frames
are resized to H x W with the project's one preprocessing (bilinear, no antialias:
tfprivacy.data.pipeline.process_clip) and written at the model's size: on a camera the
degraded frame is what leaves the device, so scaling it back would only add interpolation.
Frames go in as uint8 unless resized (exact for the int8 model).

The video streams through: decoded on one thread, degraded on this one (the interpreter on
--threads), encoded on a third, never held in memory whole. Camera rate: the run also says
how many frames a live camera at --camera_fps (30) would have lost to this runner
(dropped_at_rate): frames arrive every 1/fps seconds, each costs the time this runner spent
on it (waiting for its decoding, the interpreter, handing it to the encoder), and a runner
that falls behind takes the newest frame that has arrived and drops the ones before it.
"""

from __future__ import annotations

import itertools
import queue
import statistics
import threading
import time

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import numpy as np
import tensorflow as tf

from serving.tflite import TFLiteDegrader
from tfprivacy.frames import round_to_uint8_np, to_unit_float


def _video_fps(path: str, default: int = 12) -> int:
    import av

    try:
        with av.open(path) as container:
            rate = container.streams.video[0].average_rate
            return int(round(float(rate))) if rate else default
    except (av.error.FFmpegError, IndexError):
        return default


def dropped_at_rate(costs_s, fps: float) -> int:
    """Frames a runner with these per-frame costs (seconds, in arrival order) drops when the
    frames arrive every 1/fps s: whenever it is free it takes the newest frame that has
    arrived, and the older waiting ones are lost (a one-frame buffer, as camera pipelines
    keep). 0 when every cost is within 1/fps."""
    if not fps > 0:
        raise ValueError(f"camera_fps: {fps}, must be > 0")
    costs = list(costs_s)
    n, free_at, i, dropped = len(costs), 0.0, 0, 0
    while i < n:
        start = max(free_at, i / fps)
        newest = min(n - 1, max(i, int(start * fps + 1e-9)))
        dropped += newest - i
        free_at = start + costs[newest]
        i = newest + 1
    return dropped


class _Background:
    """Runs `work(item)` on a thread over the items `put` into a short queue (or, with
    source=, drains that iterator into the queue for `__iter__`): decoding and encoding
    overlap the interpreter, whose invoke releases the GIL. The thread's error is raised in
    the caller."""

    _END = object()

    def __init__(self, source=None, work=None, depth: int = 4):
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._source, self._work = source, work
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            if self._source is not None:
                for item in self._source:
                    self._queue.put(item)
            else:
                while (item := self._queue.get()) is not self._END:
                    self._work(item)
        except BaseException as err:  # raised again in the caller
            self._error = err
            if self._work is not None:  # keep taking items so that put never blocks
                while self._queue.get() is not self._END:
                    pass
        finally:
            if self._source is not None:
                self._queue.put(self._END)

    def __iter__(self):
        while (item := self._queue.get()) is not self._END:
            yield item
        self._thread.join()
        if self._error is not None:
            raise self._error

    def put(self, item) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error


def degrade_video(
    model_path: str,
    video_in: str,
    video_out: str,
    num_threads: int = 1,
    max_frames: int | None = None,
    camera_fps: float = 30.0,
) -> dict:
    """Degrades every frame of video_in into video_out, streaming: frames are decoded on one
    thread, degraded on this one, encoded on another, and never all held in memory.

    Returns dict: frames, frame_shape ((height, width) of the written frames), resized
    (whether the frames were resized to the model's size), model_fps (frames / seconds spent in
    the interpreter), median_ms (per-frame interpreter latency), total_fps (decode + resize +
    degrade + encode, overlapped), camera_fps and dropped (frames lost at that rate,
    dropped_at_rate, each frame costing the time from the previous frame's hand-off to its
    own: its wait for decoding, resize and interpreter).
    """
    from tfprivacy.data.pipeline import process_clip
    from tfprivacy.data.video_io import VideoWriter, iter_video

    start = time.perf_counter()
    runner = TFLiteDegrader(model_path, num_threads=num_threads)
    frames = iter(_Background(source=iter_video(video_in, max_frames)))
    first = next(frames)
    resized = not runner.fits(*first.shape[:2])
    height, width, _ = runner.frame_shape

    def prepare(frame):
        if not resized:
            return frame
        if height == width:
            return process_clip(frame[None], height).numpy().astype(np.float32)[0]
        # process_clip's resize, to a non-square size
        frame = tf.image.resize(tf.cast(frame, tf.float32), (height, width), "bilinear")
        return to_unit_float(frame).numpy().astype(np.float32)

    times, costs, shape = [], [], None
    with VideoWriter(video_out, fps=_video_fps(video_in)) as writer:
        encoder = _Background(work=writer.write)
        try:
            mark = time.perf_counter()
            for frame in itertools.chain([first], frames):
                frame = prepare(frame)
                t = time.perf_counter()
                degraded = runner(frame[None])[0]
                times.append(time.perf_counter() - t)
                if degraded.dtype != np.uint8:
                    # float32 already clipped to [0, 1] by TFLiteDegrader: no clip needed.
                    degraded = round_to_uint8_np(degraded)
                shape = degraded.shape[:2]
                encoder.put(degraded)
                now = time.perf_counter()
                costs.append(now - mark)
                mark = now
        finally:
            encoder.close()
    total = time.perf_counter() - start
    return {
        "camera_fps": camera_fps,
        "dropped": dropped_at_rate(costs, camera_fps),
        "frames": len(times),
        "frame_shape": tuple(shape),
        "resized": resized,
        "model_fps": len(times) / max(sum(times), 1e-9),
        "median_ms": 1000.0 * statistics.median(times),
        "total_fps": len(times) / max(total, 1e-9),
    }


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "model", None, "TFLite degrader (serving.tflite.convert)", required=True, flag_values=FLAGS
)
flags.DEFINE_string(
    "video", None, "input video (any PyAV-readable file)", required=True, flag_values=FLAGS
)
flags.DEFINE_string("out", None, "output video (.avi, mpeg4)", required=True, flag_values=FLAGS)
flags.DEFINE_integer("threads", 1, "LiteRT interpreter threads", flag_values=FLAGS)
flags.DEFINE_integer("max_frames", None, "frames to degrade (default: all)", flag_values=FLAGS)
flags.DEFINE_float(
    "camera_fps",
    30.0,
    "the camera rate the dropped frames are counted at",
    lower_bound=0.1,
    flag_values=FLAGS,
)


def main(argv) -> None:
    """Degrades --video into --out and prints frames/s. argv: the program name alone."""
    del argv
    stats = degrade_video(
        FLAGS.model, FLAGS.video, FLAGS.out, FLAGS.threads, FLAGS.max_frames, FLAGS.camera_fps
    )
    print(
        f"{stats['frames']} frames at {'x'.join(map(str, stats['frame_shape']))}"
        f"{' (resized to the model)' if stats['resized'] else ''}: "
        f"{stats['model_fps']:.1f} frames/s in the interpreter "
        f"(median {stats['median_ms']:.2f} ms/frame, {FLAGS.threads} thread(s)); "
        f"{stats['total_fps']:.1f} frames/s end to end -> {FLAGS.out}; "
        f"at {stats['camera_fps']:g} frames/s a camera would have lost {stats['dropped']} of "
        f"{stats['frames']} frames"
    )


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
