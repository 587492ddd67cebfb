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
"""

from __future__ import annotations

import statistics
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


def degrade_video(
    model_path: str,
    video_in: str,
    video_out: str,
    num_threads: int = 1,
    max_frames: int | None = None,
) -> dict:
    """Degrades every frame of video_in into video_out; returns timing figures.

    Returns dict: frames, frame_shape ((height, width) of the written frames), resized
    (whether the frames were resized to the model's size), model_fps (frames / seconds spent in
    the interpreter), median_ms (per-frame interpreter latency), total_fps (decode + resize +
    degrade + encode).
    """
    from tfprivacy.data.pipeline import process_clip
    from tfprivacy.data.video_io import read_video, write_video

    start = time.perf_counter()
    runner = TFLiteDegrader(model_path, num_threads=num_threads)
    frames = read_video(video_in, max_frames=max_frames)
    resized = not runner.fits(*frames.shape[1:3])
    if resized:
        height, width, _ = runner.frame_shape
        if height == width:
            frames = process_clip(frames, height).numpy().astype(np.float32)
        else:  # process_clip's resize, to a non-square size
            frames = tf.image.resize(tf.cast(frames, tf.float32), (height, width), "bilinear")
            frames = to_unit_float(frames).numpy().astype(np.float32)
    times, out = [], np.empty(frames.shape, np.uint8)
    for i, frame in enumerate(frames):
        t = time.perf_counter()
        degraded = runner(frame[None])[0]
        times.append(time.perf_counter() - t)
        if degraded.dtype != np.uint8:
            # float32 already clipped to [0, 1] by TFLiteDegrader: no clip needed.
            degraded = round_to_uint8_np(degraded)
        out[i] = degraded
    write_video(video_out, out, fps=_video_fps(video_in))
    total = time.perf_counter() - start
    return {
        "frames": len(out),
        "frame_shape": tuple(out.shape[1:3]),
        "resized": resized,
        "model_fps": len(out) / max(sum(times), 1e-9),
        "median_ms": 1000.0 * statistics.median(times) if times else float("nan"),
        "total_fps": len(out) / max(total, 1e-9),
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


def main(argv) -> None:
    """Degrades --video into --out and prints frames/s. argv: the program name alone."""
    del argv
    stats = degrade_video(FLAGS.model, FLAGS.video, FLAGS.out, FLAGS.threads, FLAGS.max_frames)
    print(
        f"{stats['frames']} frames at {'x'.join(map(str, stats['frame_shape']))}"
        f"{' (resized to the model)' if stats['resized'] else ''}: "
        f"{stats['model_fps']:.1f} frames/s in the interpreter "
        f"(median {stats['median_ms']:.2f} ms/frame, {FLAGS.threads} thread(s)); "
        f"{stats['total_fps']:.1f} frames/s end to end -> {FLAGS.out}"
    )


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
