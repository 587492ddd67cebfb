"""Input pipeline throughput (clips/s): first epoch (PyAV decode) vs later epochs (cache).

  python -m benchmarks.pipeline_bench                         # default benchmark's videos
  python -m benchmarks.pipeline_bench --experiment benchmark_tiny --batch_size 8
  python -m benchmarks.pipeline_bench --data_dir DIR          # any directory of videos

Rows: train (shuffle, random sampling, crop jitter; one epoch = len(train) // B batches) and
eval (evenly spaced frames, one pass over the test split), each timed for the first epoch,
which decodes every video, and then for later epochs, which read the in-memory cache.
The first row includes tf.data warm-up (tracing, the shuffle buffer filling).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time

from absl import flags

from configs.experiments import EXPERIMENTS, list_experiments
from tfprivacy import runtime

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm")


def _records(args, data_cfg):
    from tfprivacy.data.records import VideoRecord

    if args.data_dir:
        paths = sorted(
            p
            for p in glob.glob(os.path.join(args.data_dir, "**", "*"), recursive=True)
            if p.lower().endswith(VIDEO_EXTENSIONS)
        )
        if not paths:
            raise SystemExit(f"--data_dir {args.data_dir}: no videos ({VIDEO_EXTENSIONS})")
        records = [VideoRecord(p, 0) for p in paths]
        return records, records
    from tfprivacy.data.sources import build_sources

    split = build_sources(data_cfg).action
    return split.train, split.test


def _time(iterator, num_batches: int) -> tuple[int, float]:
    clips, start = 0, time.perf_counter()
    for _ in range(num_batches):
        batch = next(iterator, None)
        if batch is None:
            break
        clips += int(batch[0].shape[0])
    return clips, time.perf_counter() - start


def run(args) -> list[tuple[str, int, float]]:
    from configs.experiments import get_config
    from tfprivacy.data import pipeline

    data_cfg = get_config(args.experiment).data
    data_cfg = dataclasses.replace(
        data_cfg,
        batch_size=args.batch_size or data_cfg.batch_size,
        cache_decoded=not args.no_cache,
    )
    train, test = _records(args, data_cfg)
    if args.max_videos:
        train, test = train[: args.max_videos], test[: args.max_videos]
    batch = data_cfg.batch_size
    rows = []
    later = "(cached)" if data_cfg.cache_decoded else "(decode again)"
    with pipeline.clean_errors():
        ds = pipeline.video_dataset(train, data_cfg, training=True, with_privacy=True)
        it = iter(ds)
        per_epoch = max(1, len(train) // batch)
        rows.append(("train, epoch 1 (decode)", *_time(it, per_epoch)))
        rows.append(
            (f"train, epochs 2-{args.epochs} {later}", *_time(it, per_epoch * (args.epochs - 1)))
        )
        ds = pipeline.video_dataset(test, data_cfg, training=False, with_privacy=True)
        rows.append(("eval, pass 1 (decode)", *_time(iter(ds), 10**9)))
        clips, secs = 0, 0.0
        for _ in range(args.epochs - 1):
            c, s = _time(iter(ds), 10**9)
            clips, secs = clips + c, secs + s
        rows.append((f"eval, passes 2-{args.epochs} {later}", clips, secs))
    print(
        f"pipeline_bench: {args.data_dir or args.experiment}, {len(train)} train / {len(test)} "
        f"test videos, clip {data_cfg.clip_length}x{data_cfg.frame_size}x{data_cfg.frame_size}, "
        f"batch {batch}, cache {'on' if data_cfg.cache_decoded else 'off'}, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'stage':34s} {'clips':>7s} {'seconds':>8s} {'clips/s':>9s}")
    for name, clips, secs in rows:
        rate = clips / secs if secs > 0 else float("nan")
        print(f"{name:34s} {clips:7d} {secs:8.2f} {rate:9.1f}")
    return rows


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string("experiment", "benchmark", "named experiment (configs/)", flag_values=FLAGS)
flags.DEFINE_string("data_dir", "", "time a directory of videos instead", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 0, "0: the config's batch size", flag_values=FLAGS)
flags.DEFINE_integer("epochs", 3, "1 decoding epoch + cached ones", flag_values=FLAGS)
flags.DEFINE_integer("max_videos", 0, "cap per split (0: all)", flag_values=FLAGS)
flags.DEFINE_bool("no_cache", False, "decode every epoch", flag_values=FLAGS)
flags.register_validator(
    "epochs",
    lambda epochs: epochs >= 2,
    "--epochs must be >= 2 (one decoding epoch, then cached ones)",
    flag_values=FLAGS,
)


@flags.validator("experiment", flag_values=FLAGS)
def _check_experiment(name: str) -> bool:
    if name not in EXPERIMENTS:
        known = " ".join(list_experiments())
        raise flags.ValidationError(f"unknown experiment {name!r}; known: {known}")
    return True


def main(argv) -> None:
    """Prints the throughput table. argv: the program name alone (run_cli)."""
    del argv
    run(FLAGS)


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
