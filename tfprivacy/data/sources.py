"""DataConfig -> the records every player trains and is evaluated on.

One function, `build_sources`, hides which dataset is in use: the trainer and the evaluator only
see a `DatasetSources`. Datasets:
- benchmark: the built-in videos (PA-HMDB51 annotations + HMDB51-style split); both labels on
  the same videos (joint).
- benchmark_cross: built-in action-only videos (UCF101 layout) + privacy-only images (VISPR).
- hmdb51_pahmdb51: HMDB51 actions with the PA-HMDB51 videos held out; PA-HMDB51 videos (with
  frame-wise privacy labels) split by the same HMDB51 split file.
- ucf101_vispr: UCF101 actions + VISPR images.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os

from tfprivacy import config as C
from tfprivacy.config import DataConfig
from tfprivacy.data import hmdb51, pahmdb51, ucf101, vispr
from tfprivacy.data.records import DataError, ImageRecord, VideoRecord, VideoSplit

DATASETS = C.DATASETS
# The built-in benchmark writes only split 1 (HMDB51 format).
_BENCHMARK_SPLIT = 1


@dataclasses.dataclass
class DatasetSources:
    action: VideoSplit  # videos with action labels (for f_T); frame_labels set when joint
    privacy_videos: VideoSplit | None  # videos with frame-wise privacy labels
    privacy_images: tuple[list[ImageRecord], list[ImageRecord]] | None  # (train, test)
    joint: bool  # True when the same videos carry both labels
    num_actions: int
    # Training-side videos kept for the trainer's validation (never trained on); None: the
    # trainer carves its validation videos out of the training split.
    validation: list[VideoRecord] | None = None

    @classmethod
    def of(cls, action: VideoSplit, *, videos=None, images=None, validation=None) -> DatasetSources:
        """Sources whose privacy labels are on `videos` (the action split itself: joint) or on
        still `images` (train, test); the action classes are the action split's."""
        return cls(
            action=action,
            privacy_videos=videos,
            privacy_images=images,
            joint=videos is action,
            num_actions=len(action.class_names),
            validation=validation or None,
        )


def build_sources(data_cfg: DataConfig) -> DatasetSources:
    """Loads the records of `data_cfg.dataset`; the built-in benchmark is generated if missing."""
    builders = {
        "benchmark": _benchmark,
        "benchmark_cross": _benchmark_cross,
        "hmdb51_pahmdb51": _hmdb51_pahmdb51,
        "ucf101_vispr": _ucf101_vispr,
    }
    if data_cfg.dataset not in builders:
        raise DataError(f"data.dataset={data_cfg.dataset!r} is unknown; choose from {DATASETS}")
    return builders[data_cfg.dataset](data_cfg)


def _synthetic():
    # Imported lazily: generating the benchmark pulls in drawing code the real datasets never
    # need. A function so tests can substitute a stub.
    return importlib.import_module("tfprivacy.data.synthetic")


def _require_dir(data_cfg: DataConfig, field: str) -> str:
    path = getattr(data_cfg, field)
    if not path:
        raise DataError(f"data.dataset={data_cfg.dataset!r} needs data.{field}; set it")
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise DataError(f"data.{field}={path!r} does not exist or is not a directory")
    return path


def _benchmark_root(data_cfg: DataConfig, cross: bool) -> str:
    synthetic = _synthetic()
    if data_cfg.data_dir:
        root = os.path.expanduser(data_cfg.data_dir)
    else:
        # Both variants are keyed by the same synthetic config; `cross` keeps them apart.
        root = synthetic.benchmark_root(data_cfg.synthetic, cross=cross)
    return synthetic.ensure_benchmark(data_cfg.synthetic, root, cross=cross) or root


def _attach_frame_labels(records: list[VideoRecord], class_names, annotations, where: str):
    for record in records:
        action, video = class_names[record.action], os.path.basename(record.path)
        labels = annotations.get(action, {}).get(video)
        if labels is None:
            raise DataError(f"{where}: video {action}/{video} has no privacy annotation")
        record.frame_labels = labels
        record.num_frames = int(labels.shape[0])


def _benchmark(data_cfg: DataConfig) -> DatasetSources:
    root = _benchmark_root(data_cfg, cross=False)
    meta_path = os.path.join(root, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            class_names = list(json.load(f)["actions"])
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise DataError(f"{meta_path}: cannot read the benchmark's 'actions' ({err})") from err
    ann_dir = os.path.join(root, "annotations")
    split = hmdb51.load_hmdb51(
        os.path.join(root, "videos"),
        os.path.join(root, "splits"),
        split=_BENCHMARK_SPLIT,
        class_names=class_names,  # label order of the generator, not alphabetical
        keep_unused=True,  # synthetic.extra_val_videos: the trainer's validation videos
    )
    annotations = pahmdb51.load_annotations(ann_dir)
    _attach_frame_labels(split.train + split.test + split.unused, class_names, annotations, ann_dir)
    return DatasetSources.of(split, videos=split, validation=split.unused)


def final_test_config(data_cfg: DataConfig) -> DataConfig:
    """The data config whose test split is the built-in benchmark's final test set: the same
    generator drawn with synthetic.final_test_seed (no validation videos), in its own cache
    folder. Nothing in training reads it; `trainers.evaluate` with eval.test_set=final does."""
    if data_cfg.dataset != "benchmark":
        raise DataError(
            f"data.dataset={data_cfg.dataset!r}: a final test set exists for the built-in "
            "benchmark only"
        )
    synth = data_cfg.synthetic
    # As many test videos as the benchmark's test split (its share of num_videos plus the
    # extra ones); one training video per action, never read, keeps the generator's layout.
    num_test = int(round(synth.num_videos * synth.test_fraction)) + synth.extra_test_videos
    final = dataclasses.replace(
        synth,
        seed=synth.final_test_seed,
        num_videos=synth.num_actions,
        extra_test_videos=num_test,
        extra_val_videos=0,
    )
    # data_dir names the training benchmark's folder; the final set lives beside it.
    data_dir = os.path.join(data_cfg.data_dir, "final_test") if data_cfg.data_dir else ""
    return dataclasses.replace(data_cfg, synthetic=final, data_dir=data_dir)


def final_test_records(data_cfg: DataConfig) -> list[VideoRecord]:
    """The final test set's videos (generated on first use), with their frame labels."""
    return _benchmark(final_test_config(data_cfg)).action.test


def _benchmark_cross(data_cfg: DataConfig) -> DatasetSources:
    root = _benchmark_root(data_cfg, cross=True)
    action = ucf101.load_ucf101(
        os.path.join(root, "ucf", "videos"),
        os.path.join(root, "ucf", "ucfTrainTestlist"),
        split=_BENCHMARK_SPLIT,
    )
    images = vispr.load_vispr(os.path.join(root, "vispr"))
    return DatasetSources.of(action, images=images)


def _hmdb51_pahmdb51(data_cfg: DataConfig) -> DatasetSources:
    videos_dir = _require_dir(data_cfg, "hmdb51_dir")
    splits_dir = _require_dir(data_cfg, "hmdb51_splits_dir")
    ann_dir = _require_dir(data_cfg, "pahmdb51_dir")
    annotations = pahmdb51.load_annotations(ann_dir)
    held_out = {video for videos in annotations.values() for video in videos}
    action = hmdb51.load_hmdb51(videos_dir, splits_dir, data_cfg.split, exclude=held_out)
    assignments = hmdb51.read_split_assignments(splits_dir, data_cfg.split)
    train, test = [], []
    for name, videos in annotations.items():
        if name not in action.class_names:
            raise DataError(f"{ann_dir}/{name}.json: action {name!r} is not an HMDB51 class")
        for video, labels in videos.items():
            if video not in assignments[name]:
                raise DataError(
                    f"{ann_dir}/{name}.json: video {video!r} is not listed in "
                    f"{name}_test_split{data_cfg.split}.txt"
                )
            record = VideoRecord(
                path=os.path.join(videos_dir, name, video),
                action=action.class_names.index(name),
                num_frames=int(labels.shape[0]),
                frame_labels=labels,
            )
            # PA-HMDB51 protocol: HMDB51 test videos test, all others (train and unused) train.
            (test if assignments[name][video] == hmdb51.TEST else train).append(record)
    return DatasetSources.of(
        action, videos=VideoSplit(train=train, test=test, class_names=action.class_names)
    )


def _ucf101_vispr(data_cfg: DataConfig) -> DatasetSources:
    videos_dir = _require_dir(data_cfg, "ucf101_dir")
    splits_dir = _require_dir(data_cfg, "ucf101_splits_dir")
    vispr_dir = _require_dir(data_cfg, "vispr_dir")
    action = ucf101.load_ucf101(videos_dir, splits_dir, data_cfg.split)
    # val2017 joins the training images when present; nothing here selects models on it.
    train_splits = ("train2017", "val2017")
    if not os.path.isdir(os.path.join(vispr_dir, "annotations", "val2017")):
        train_splits = ("train2017",)
    images = vispr.load_vispr(vispr_dir, train_splits=train_splits, test_splits=("test2017",))
    return DatasetSources.of(action, images=images)
