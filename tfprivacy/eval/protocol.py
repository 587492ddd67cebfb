"""The two-fold protocol: freeze a degrader, train fresh models on its output, score both sides.

1. Materialise every split once as uint8 numpy arrays (`materialize_splits`): test clips with
   evenly spaced frames; train clips drawn by the training pipeline (random temporal crops,
   `cfg.eval.train_clips_per_video` per video) for a fixed number of batches.
2. Degrade each split once (`degrade_splits`). Outputs are stored as uint8, which is what a
   camera sends anyway, and keeps the arrays 4x smaller than float32.
3. Per seed, train a fresh target model (`cfg.eval.target`, an architecture different from
   training's f_T) and a fresh privacy panel (`cfg.eval.privacy_panel`) with model.fit for
   `cfg.eval.epochs`, then report action top-1 and per-attribute AP / cMAP / macro-F1 of each
   attacker and of the worst case (the attacker with the highest cMAP).

`degrade_fn` maps float frames [N, H, W, 3] in [0, 1] to the same shape: a Keras f_d, a
hand-made baseline or a TFLite interpreter wrapped in a function all fit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy.data import pipeline
from tfprivacy.data.records import NUM_ATTRIBUTES, PRIVACY_ATTRIBUTES
from tfprivacy.eval import metrics

DegradeFn = Callable[[tf.Tensor], tf.Tensor]
# Global seed set while sampling the evaluation clips (see materialize_splits).
SAMPLING_SEED = 20190614


@dataclasses.dataclass
class EvalSplits:
    """Every array the fresh models see, uint8 [.., H, W, 3] frames plus labels.

    When `shared` (joint datasets: the same clips carry both labels), the privacy arrays are
    the action arrays, so degrading them once serves both sides.
    """

    action_train: tuple[np.ndarray, np.ndarray]  # clips [N,T,H,W,3] uint8, actions [N] int32
    action_test: tuple[np.ndarray, np.ndarray]
    privacy_train: tuple[np.ndarray, np.ndarray]  # clips or images uint8, labels [N, 5] float32
    privacy_test: tuple[np.ndarray, np.ndarray]
    num_actions: int
    privacy_on_images: bool = False
    shared: bool = False
    # Per-frame train labels [N, T, 5] (video privacy data), so frame attackers trained on a
    # subset of each clip's frames get exactly those frames' labels.
    privacy_train_frame_labels: np.ndarray | None = None

    @property
    def clip_shape(self) -> tuple[int, ...]:
        return tuple(self.action_train[0].shape[1:])

    def distinct_arrays(self) -> list[np.ndarray]:
        """The frame arrays a degrader must process: the privacy ones only when not shared."""
        arrays = [self.action_train[0], self.action_test[0]]
        if not self.shared:
            arrays += [self.privacy_train[0], self.privacy_test[0]]
        return arrays

    def chance(self) -> dict:
        """Action: 1 / classes. cMAP: the mean test prevalence (the AP of a random scorer)."""
        return {
            "action_top1": 1.0 / self.num_actions,
            "cmap": metrics.cmap_chance(self.privacy_test[1]),
            "prevalence": dict(
                zip(PRIVACY_ATTRIBUTES, self.privacy_test[1].mean(axis=0).tolist(), strict=True)
            ),
        }

    def sizes(self) -> dict:
        return {
            "action_train": len(self.action_train[1]),
            "action_test": len(self.action_test[1]),
            "privacy_train": len(self.privacy_train[1]),
            "privacy_test": len(self.privacy_test[1]),
        }


def to_uint8(x) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def _train_batches(num_videos: int, cfg: C.ExperimentConfig) -> int:
    return max(1, math.ceil(cfg.eval.train_clips_per_video * num_videos / cfg.data.batch_size))


def _materialize_videos(records, cfg, training, seed, with_privacy):
    ds = pipeline.video_dataset(records, cfg.data, training, seed=seed, with_privacy=with_privacy)
    arrays = pipeline.materialize(
        ds, max_batches=_train_batches(len(records), cfg) if training else None
    )
    clips, actions = to_uint8(arrays[0]), arrays[1].astype(np.int32)
    if not with_privacy:
        return clips, actions, None
    return clips, actions, np.asarray(arrays[2], np.float32)


def _clip_labels(frame_labels: np.ndarray) -> np.ndarray:
    return np.asarray(pipeline.clip_privacy_labels(frame_labels), np.float32)


def materialize_splits(sources, cfg: C.ExperimentConfig, seed: int = 0) -> EvalSplits:
    """Decodes and samples every split once; the result is reused by every degrader and seed.

    The sampled training clips depend on `seed` only, never on what the process ran before:
    tf.data's seeded ops combine their op seed with TF's global seed, which training (or any
    earlier keras.utils.set_random_seed) changes, so the global seed is fixed here first.
    (Measured before this: the same f_d scored 66.2 inside the main job and 73.1 from
    trainers.evaluate, on different training clips.)
    """
    tf.random.set_seed(SAMPLING_SEED + seed)
    action = sources.action
    if sources.joint:
        tr_x, tr_y, tr_p = _materialize_videos(action.train, cfg, True, seed, True)
        te_x, te_y, te_p = _materialize_videos(action.test, cfg, False, seed, True)
        return EvalSplits(
            (tr_x, tr_y),
            (te_x, te_y),
            (tr_x, _clip_labels(tr_p)),
            (te_x, _clip_labels(te_p)),
            sources.num_actions,
            shared=True,
            privacy_train_frame_labels=tr_p,
        )
    tr_x, tr_y, _ = _materialize_videos(action.train, cfg, True, seed, False)
    te_x, te_y, _ = _materialize_videos(action.test, cfg, False, seed, False)
    if sources.privacy_videos is not None:
        pv = sources.privacy_videos
        ptr_x, _, ptr_p = _materialize_videos(pv.train, cfg, True, seed, True)
        pte_x, _, pte_p = _materialize_videos(pv.test, cfg, False, seed, True)
        ptr_frames, ptr_p, pte_p = ptr_p, _clip_labels(ptr_p), _clip_labels(pte_p)
        on_images = False
    elif sources.privacy_images is not None:
        # Images are already single frames: one deterministic pass over each split.
        train_imgs, test_imgs = sources.privacy_images
        ptr_x, ptr_p = pipeline.materialize(pipeline.image_dataset(train_imgs, cfg.data, False))
        pte_x, pte_p = pipeline.materialize(pipeline.image_dataset(test_imgs, cfg.data, False))
        ptr_x, pte_x = to_uint8(ptr_x), to_uint8(pte_x)
        ptr_frames = None
        on_images = True
    else:
        raise ValueError("evaluation needs privacy labels: sources have no privacy data")
    return EvalSplits(
        (tr_x, tr_y),
        (te_x, te_y),
        (ptr_x, np.asarray(ptr_p, np.float32)),
        (pte_x, np.asarray(pte_p, np.float32)),
        sources.num_actions,
        privacy_on_images=on_images,
        privacy_train_frame_labels=ptr_frames,
    )


def degrade_array(
    degrade_fn: DegradeFn, x: np.ndarray, chunk_frames: int = 256, progress=None
) -> np.ndarray:
    """uint8 [..., H, W, 3] -> degraded uint8 of the same shape, chunk_frames frames at a time."""
    frames = x.reshape((-1, *x.shape[-3:]))
    out = np.empty_like(frames)
    for start in range(0, len(frames), chunk_frames):
        batch = tf.constant(frames[start : start + chunk_frames], tf.float32) / 255.0
        y = np.asarray(degrade_fn(batch), np.float32)
        if y.shape != batch.shape:
            raise ValueError(
                f"degrade_fn returned shape {y.shape} for frames {tuple(batch.shape)}; "
                "a degrader must keep the frame shape"
            )
        out[start : start + chunk_frames] = to_uint8(y)
        if progress is not None:
            progress.update(len(y))
    return out.reshape(x.shape)


def degrade_splits(
    degrade_fn: DegradeFn, splits: EvalSplits, progress: bool = False, desc: str = "degrade"
) -> EvalSplits:
    """Runs degrade_fn once over every distinct array of the splits."""
    arrays = splits.distinct_arrays()
    total = sum(int(np.prod(a.shape[:-3])) for a in arrays)
    bar = _tqdm(total=total, desc=desc, unit="frame", disable=not progress)
    out = [degrade_array(degrade_fn, a, progress=bar) for a in arrays]
    bar.close()
    if splits.shared:
        out += out
    return dataclasses.replace(
        splits,
        action_train=(out[0], splits.action_train[1]),
        action_test=(out[1], splits.action_test[1]),
        privacy_train=(out[2], splits.privacy_train[1]),
        privacy_test=(out[3], splits.privacy_test[1]),
    )


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    # mininterval: logs of non-interactive runs get a line per second, not per batch.
    return tqdm(leave=False, dynamic_ncols=True, mininterval=1.0, **kwargs)


def _dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if seed is not None:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(
        lambda a, b: (tf.cast(a, tf.float32) / 255.0, b), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


class _EpochBar(keras.callbacks.Callback):
    """One tqdm line per model (Keras' own verbose output floods logs with one line per epoch)."""

    def __init__(self, epochs: int, desc: str, enabled: bool):
        super().__init__()
        self._bar = _tqdm(total=epochs, desc=desc, unit="epoch", disable=not enabled)

    def on_epoch_end(self, epoch, logs=None):
        self._bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.3f}")
        self._bar.update(1)

    def on_train_end(self, logs=None):
        self._bar.close()


def channel_stats(x: np.ndarray, max_values: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in [0, 1] units of uint8 frames (a strided sample if huge)."""
    flat = x.reshape(-1, x.shape[-1])
    flat = flat[:: max(1, flat.shape[0] // max_values)].astype(np.float64) / 255.0
    return flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-3)


def standardized(model: keras.Model, mean, std) -> keras.Model:
    """Prepends (x - mean) / std with the degraded training data's statistics.

    The fresh models have no normalisation layers; on [0, 1] inputs dominated by background
    colour they sat at the class prior for 10+ epochs (measured: raw action top-1 12.5% =
    chance after 12 epochs; 52% after 10 epochs with standardised inputs). Statistics come
    from the degraded train split, as a practitioner would compute them.
    """
    inputs = keras.Input(model.input_shape[1:], name="frames_01")
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="standardize")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_std")


LR_SCHEDULES = ("constant", "cosine")


def _optimizer(ev: C.EvalConfig, num_train: int) -> keras.optimizers.Optimizer:
    if ev.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"eval.lr_schedule: unknown {ev.lr_schedule!r}; use {LR_SCHEDULES}")
    if ev.lr_schedule == "constant":
        return keras.optimizers.Adam(ev.learning_rate)
    steps = ev.epochs * math.ceil(num_train / ev.batch_size)
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(ev.learning_rate, steps))


def _fit_predict(
    model, train, test, loss, cfg, seed, desc, progress, test_model=None, extra_tests=()
):
    """Trains `model` on train, predicts test with `test_model` (sharing its weights) or itself.

    Returns a list: test's predictions, then those of each extra_tests array (other test
    arrays of the same shape), all from the same trained weights.
    """
    ev = cfg.eval
    stats = channel_stats(train[0])
    model = standardized(model, *stats)
    test_model = model if test_model is None else standardized(test_model, *stats)
    model.compile(optimizer=_optimizer(ev, len(train[1])), loss=loss, jit_compile=False)
    model.fit(
        _dataset(*train, ev.batch_size, seed),
        epochs=ev.epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
        callbacks=[_EpochBar(ev.epochs, desc, progress)],
    )
    preds = [
        test_model.predict(_dataset(*t, ev.batch_size, None), verbose=0)
        for t in (test, *extra_tests)
    ]
    return preds


def train_target(
    splits: EvalSplits, cfg: C.ExperimentConfig, seed: int, progress=False, transfer=None
) -> dict:
    """Fresh target model on degraded train clips; action top-1 on degraded test clips.

    transfer: optional name -> EvalSplits (other degraders' outputs of the same clips); the
    same trained model also scores their test clips, under result["transfer"][name].
    """
    transfer = transfer or {}
    from tfprivacy.models import build_target

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = build_target(
        cfg.eval.target,
        splits.num_actions,
        splits.clip_shape,
        cfg.eval.target_width,
        name="eval_target",
    )
    logits, *extra = _fit_predict(
        model,
        splits.action_train,
        splits.action_test,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        cfg,
        seed,
        f"target {cfg.eval.target}",
        progress,
        extra_tests=[t.action_test for t in transfer.values()],
    )
    result = {
        "arch": cfg.eval.target,
        "top1": metrics.top1_accuracy(splits.action_test[1], logits),
        "seconds": time.perf_counter() - start,
    }
    if transfer:
        result["transfer"] = {
            name: metrics.top1_accuracy(t.action_test[1], x)
            for (name, t), x in zip(transfer.items(), extra, strict=True)
        }
    return result


def panel_archs(cfg: C.ExperimentConfig, on_images: bool) -> list[str]:
    """The privacy panel; the clip-level "video" attacker has nothing to see on still images."""
    archs = list(cfg.eval.privacy_panel)
    return [a for a in archs if a != "video"] if on_images else archs


def train_privacy(
    arch: str,
    splits: EvalSplits,
    cfg: C.ExperimentConfig,
    seed: int,
    progress=False,
    transfer=None,
) -> dict:
    """One fresh attacker on degraded train data; AP / cMAP / macro-F1 on degraded test data.

    transfer: as in train_target; result["transfer"][name] holds the attacker's privacy
    metrics on that degrader's test data.
    """
    transfer = transfer or {}
    from tfprivacy.models import (
        FRAME_ARCHS,
        build_privacy,
        build_privacy_frame_model,
        wrap_frame_model,
    )

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    shape = splits.privacy_train[0].shape[1:]
    width, name = cfg.eval.privacy_width, f"eval_{arch}"
    train, test_model = splits.privacy_train, None
    if splits.privacy_on_images:
        model = build_privacy_frame_model(arch, NUM_ATTRIBUTES, shape, width, name=name)
    elif arch in FRAME_ARCHS and 0 < cfg.eval.privacy_train_frames < shape[0]:
        # Attributes are readable from single frames: training a frame attacker on a few
        # frames per clip costs T/k times less, and it still scores whole test clips.
        idx = np.linspace(0, shape[0] - 1, cfg.eval.privacy_train_frames).round().astype(int)
        frame_labels = splits.privacy_train_frame_labels
        labels = train[1] if frame_labels is None else frame_labels[:, idx].max(axis=1)
        train = (train[0][:, idx], labels)
        frame_model = build_privacy_frame_model(arch, NUM_ATTRIBUTES, shape, width, name=name)
        model = wrap_frame_model(frame_model, (len(idx), *shape[1:]), name=f"{name}_train")
        test_model = wrap_frame_model(frame_model, shape, name=name)
    else:
        model = build_privacy(arch, NUM_ATTRIBUTES, shape, width, name=name)
    logits, *extra = _fit_predict(
        model,
        train,
        splits.privacy_test,
        keras.losses.BinaryCrossentropy(from_logits=True),
        cfg,
        seed,
        f"privacy {arch}",
        progress,
        test_model=test_model,
        extra_tests=[t.privacy_test for t in transfer.values()],
    )
    result = _privacy_result(splits.privacy_test[1], logits)
    result["seconds"] = time.perf_counter() - start
    if transfer:
        result["transfer"] = {
            name: _privacy_result(t.privacy_test[1], x)
            for (name, t), x in zip(transfer.items(), extra, strict=True)
        }
    return result


def _privacy_result(labels, logits) -> dict:
    probs = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    return metrics.privacy_metrics(labels, probs, PRIVACY_ATTRIBUTES)


def evaluate_seed(
    degraded: EvalSplits,
    cfg: C.ExperimentConfig,
    seed: int,
    progress: bool = False,
    transfer: dict | None = None,
) -> dict:
    """Fresh target + fresh panel for one seed on already degraded splits.

    transfer: optional name -> EvalSplits of other degraders' outputs of the same clips. The
    models trained here also score those test splits (no retraining), under
    result["transfer"][name] = {"action_top1", "worst_case": {"model", "cmap"}}: how the
    figures move when only the test-time degrader changes, free of training noise.
    """
    target = train_target(degraded, cfg, seed, progress, transfer)
    panel = {
        arch: train_privacy(arch, degraded, cfg, seed, progress, transfer)
        for arch in panel_archs(cfg, degraded.privacy_on_images)
    }
    worst_name, worst = metrics.worst_case(panel)
    result = {
        "seed": seed,
        "action_top1": target["top1"],
        "target": target,
        "panel": panel,
        "worst_case": {"model": worst_name, **{k: worst[k] for k in ("ap", "cmap", "macro_f1")}},
    }
    if transfer:
        result["transfer"] = {}
        for name in transfer:
            moved = {arch: panel[arch]["transfer"][name] for arch in panel}
            model, figures = metrics.worst_case(moved)
            result["transfer"][name] = {
                "action_top1": target["transfer"][name],
                "worst_case": {"model": model, "cmap": figures["cmap"]},
            }
    return result


def aggregate(per_seed: Sequence[dict]) -> dict:
    """Mean and std over seeds of every figure; the worst case is taken per seed first."""
    archs = list(per_seed[0]["panel"])

    def privacy_stats(rows):
        return {
            "cmap": metrics.mean_std([r["cmap"] for r in rows]),
            "macro_f1": metrics.mean_std([r["macro_f1"] for r in rows]),
            "ap": {a: metrics.mean_std([r["ap"][a] for r in rows]) for a in PRIVACY_ATTRIBUTES},
        }

    worst = privacy_stats([s["worst_case"] for s in per_seed])
    worst["models"] = [s["worst_case"]["model"] for s in per_seed]
    return {
        "seeds": [s["seed"] for s in per_seed],
        "action_top1": metrics.mean_std([s["action_top1"] for s in per_seed]),
        "target_arch": per_seed[0]["target"]["arch"],
        "panel": {a: privacy_stats([s["panel"][a] for s in per_seed]) for a in archs},
        "worst_case": worst,
        "per_seed": list(per_seed),
    }


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    return [int(s) for s in seeds]


def evaluate_degrader(
    degrade_fn: DegradeFn,
    sources,
    cfg: C.ExperimentConfig,
    seeds: int | Sequence[int] = 1,
    *,
    name: str = "degrader",
    progress: bool = False,
    seed_cache=None,
) -> dict:
    """The two-fold protocol for one degrader; returns aggregate() plus chance and timing.

    `sources` is a DatasetSources (materialised here) or an EvalSplits already materialised,
    which is how one evaluation run shares the decoded splits between all its degraders.
    `seed_cache`, when given, has get(seed) -> dict | None and put(seed, dict): cached seeds
    are not retrained, and with every seed cached the splits are not even degraded.
    """
    start = time.perf_counter()
    seed_list = resolve_seeds(seeds)
    splits = sources if isinstance(sources, EvalSplits) else materialize_splits(sources, cfg)
    per_seed = {s: seed_cache.get(s) for s in seed_list} if seed_cache else {}
    todo = [s for s in seed_list if per_seed.get(s) is None]
    degrade_s = 0.0
    if todo:
        t0 = time.perf_counter()
        degraded = degrade_splits(degrade_fn, splits, progress, desc=f"degrade {name}")
        degrade_s = time.perf_counter() - t0
        for s in todo:
            per_seed[s] = evaluate_seed(degraded, cfg, s, progress)
            if seed_cache:
                seed_cache.put(s, per_seed[s])
    result = aggregate([per_seed[s] for s in seed_list])
    result["name"] = name
    result["chance"] = splits.chance()
    result["sizes"] = splits.sizes()
    result["cached_seeds"] = [s for s in seed_list if s not in todo]
    result["timing"] = {"degrade_s": degrade_s, "total_s": time.perf_counter() - start}
    return result
