"""The two-fold protocol: freeze a degrader, train fresh models on its output, score both sides.

1. Materialise every split once as uint8 numpy arrays (`materialize_splits`): test clips with
   evenly spaced frames; `cfg.eval.train_clips_per_video` train clips per train video at
   evenly spread temporal starts (deterministic; with the benchmark's defaults every frame).
2. Degrade each split once (`degrade_splits`). Outputs are stored as uint8, which is what a
   camera sends anyway, and keeps the arrays 4x smaller than float32.
3. Per seed, train a fresh target model (`cfg.eval.target`, an architecture different from
   training's f_T) and a fresh privacy panel (`cfg.eval.privacy_panel`, frame attackers trained
   on single frames with their own labels, plus `cfg.eval.finetune_panel` attackers started
   from raw-trained weights), then report action top-1, a linear probe of the attributes on
   the target's penultimate features, and per-attribute AP / cMAP / macro-F1 of each attacker
   and of the worst case (the attacker with the highest cMAP).
4. Aggregate over seeds with bootstrap intervals over test items and seeds (`intervals`).

`degrade_fn` maps float frames [N, H, W, 3] in [0, 1] to the same shape: a Keras f_d, a
hand-made baseline or a TFLite interpreter wrapped in a function all fit.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy import losses, metrics
from tfprivacy.data import pipeline
from tfprivacy.data.records import NUM_ATTRIBUTES, PRIVACY_ATTRIBUTES
from tfprivacy.eval import intervals
from tfprivacy.frames import to_uint8_np as to_uint8  # protocol.to_uint8: the public name
from tfprivacy.frames import to_unit_float, to_unit_float_np

DegradeFn = Callable[[tf.Tensor], tf.Tensor]
FIDELITY_CLIPS = 64  # test clips on which each degrader's PSNR and output variance are measured
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
        """Action: 1 / classes. cMAP: the mean test prevalence (the AP of a random scorer);
        prevalence over the known (not -1) test labels of each attribute."""
        return {
            "action_top1": 1.0 / self.num_actions,
            "cmap": metrics.cmap_chance(self.privacy_test[1]),
            "prevalence": dict(
                zip(
                    PRIVACY_ATTRIBUTES,
                    metrics.prevalence(self.privacy_test[1]).tolist(),
                    strict=True,
                )
            ),
        }

    def sizes(self) -> dict:
        return {
            "action_train": len(self.action_train[1]),
            "action_test": len(self.action_test[1]),
            "privacy_train": len(self.privacy_train[1]),
            "privacy_test": len(self.privacy_test[1]),
        }


def _materialize_videos(records, cfg, training, seed, with_privacy):
    """Train: clips_per_video clips at spread starts; test: one evenly spaced clip per video."""
    ds = pipeline.video_dataset(
        records,
        cfg.data,
        False,
        seed=seed,
        with_privacy=with_privacy,
        clips_per_video=cfg.eval.train_clips_per_video if training else 1,
    )
    arrays = pipeline.materialize(ds)
    clips, actions = to_uint8(arrays[0]), arrays[1].astype(np.int32)
    if not with_privacy:
        return clips, actions, None
    return clips, actions, np.asarray(arrays[2], np.float32)


def _clip_labels(frame_labels: np.ndarray) -> np.ndarray:
    """[N, T, 5] frame labels -> [N, 5]: per attribute over the covered frames, -1 if none."""
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
        batch = to_unit_float(frames[start : start + chunk_frames])
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
        lambda a, b: (to_unit_float(a), b), num_parallel_calls=tf.data.AUTOTUNE
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
    flat = to_unit_float_np(flat[:: max(1, flat.shape[0] // max_values)], np.float64)
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


def _optimizer(ev: C.EvalConfig, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    if ev.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"eval.lr_schedule: unknown {ev.lr_schedule!r}; use {LR_SCHEDULES}")
    if ev.lr_schedule == "constant":
        return keras.optimizers.Adam(ev.learning_rate)
    steps = max(1, epochs * steps_per_epoch)
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(ev.learning_rate, steps))


def _fit(model, train, loss, ev, seed, epochs, batch_size, desc, progress):
    """model.fit on (x uint8, y) for `epochs`, seeded shuffle, the eval's optimizer."""
    steps = math.ceil(len(train[1]) / batch_size)
    model.compile(optimizer=_optimizer(ev, epochs, steps), loss=loss, jit_compile=False)
    model.fit(
        _dataset(*train, batch_size, seed),
        epochs=epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
        callbacks=[_EpochBar(epochs, desc, progress)],
    )


def _predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    labels = np.zeros(len(x), np.int32)
    return model.predict(_dataset(x, labels, batch_size, None), verbose=0)


def train_target(
    splits: EvalSplits, cfg: C.ExperimentConfig, seed: int, progress=False, transfer=None
) -> dict:
    """Fresh target model on degraded train clips; action top-1 on degraded test clips.

    result["correct"] holds 0/1 per test clip (for the bootstrap); result["feature_probe"] the
    linear probe of the privacy attributes on the trained target's penultimate features.
    transfer: optional name -> EvalSplits (other degraders' outputs of the same clips); the
    same trained model also scores their test clips, under result["transfer"][name].
    """
    transfer = transfer or {}
    from tfprivacy.models import build_target

    ev = cfg.eval
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    name = "eval_target"
    inner = build_target(ev.target, splits.num_actions, splits.clip_shape, ev.target_width, name)
    stats = channel_stats(splits.action_train[0])
    model = standardized(inner, *stats)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    _fit(
        model,
        splits.action_train,
        loss,
        ev,
        seed,
        ev.target_epochs,
        ev.batch_size,
        f"target {ev.target}",
        progress,
    )
    logits = _predict(model, splits.action_test[0], ev.batch_size)
    labels = splits.action_test[1]
    result = {
        "arch": ev.target,
        "top1": metrics.top1_accuracy(labels, logits),
        "correct": (np.argmax(logits, axis=1) == labels).astype(int).tolist(),
    }
    if transfer:
        result["transfer"] = {
            n: metrics.top1_accuracy(
                t.action_test[1], _predict(model, t.action_test[0], ev.batch_size)
            )
            for n, t in transfer.items()
        }
    if ev.feature_probe and not splits.privacy_on_images:
        features = standardized(
            keras.Model(inner.inputs, inner.get_layer(f"{name}_gap").output), *stats
        )
        result["feature_probe"] = feature_probe(features, splits, ev.batch_size)
    result["seconds"] = time.perf_counter() - start
    return result


def feature_probe(features: keras.Model, splits: EvalSplits, batch_size: int) -> dict:
    """Logistic regression per attribute on penultimate features of the privacy clips.

    What a holder of the action model's embeddings learns about the attributes: features of
    the degraded privacy train clips -> their clip labels, AP on the degraded test clips.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x = _predict(features, splits.privacy_train[0], batch_size)
    test_x = _predict(features, splits.privacy_test[0], batch_size)
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    train_y = splits.privacy_train[1]
    probs = np.empty((len(test_x), train_y.shape[1]))
    for a in range(train_y.shape[1]):
        y, x = train_y[:, a], train_x
        known = y >= 0  # clips whose label is unknown (-1) for this attribute: left out
        if not known.all():
            y, x = y[known], x[known]
        if not y.size:  # no known label: nothing to learn, answer "absent"
            probs[:, a] = 0.0
            continue
        if y.min() == y.max():  # one class in train: the probe can only answer its prior
            probs[:, a] = y[0]
            continue
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
        probs[:, a] = clf.predict_proba(test_x)[:, 1]
    result = metrics.privacy_metrics(splits.privacy_test[1], probs, PRIVACY_ATTRIBUTES)
    result["probs"] = _rounded(probs)
    return result


def _rounded(probs: np.ndarray) -> list:
    return np.round(np.asarray(probs, np.float64), 6).tolist()


FINETUNED = "_ft"  # suffix of the attackers pretrained on raw frames, then fine-tuned


def panel_archs(cfg: C.ExperimentConfig, on_images: bool) -> list[str]:
    """The privacy panel: cfg.eval.privacy_panel, then "<arch>_ft" for each finetune_panel arch.

    The clip-level "video" attacker has nothing to see on still images.
    """
    archs = list(cfg.eval.privacy_panel) + [f"{a}{FINETUNED}" for a in cfg.eval.finetune_panel]
    return [a for a in archs if a != "video"] if on_images else archs


def _frame_training_set(splits: EvalSplits, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Single frames with their own labels: k evenly spaced frames per train clip (0 = all).

    A frame's label is -1 (unknown) where no annotation covers it; privacy_fit_loss then
    leaves those entries out of the training loss."""
    x, labels = splits.privacy_train
    if splits.privacy_on_images:
        return x, labels
    t = x.shape[1]
    idx = np.arange(t) if k <= 0 or k >= t else np.linspace(0, t - 1, k).round().astype(int)
    frame_labels = splits.privacy_train_frame_labels
    if frame_labels is None:  # no per-frame labels: every frame gets its clip's labels
        frame_labels = np.repeat(labels[:, None], t, axis=1)
    frames = x[:, idx].reshape((-1, *x.shape[-3:]))
    return frames, frame_labels[:, idx].reshape((-1, labels.shape[-1]))


class PretrainedWeights:
    """Raw-trained attacker weights per (data, eval config, seed, arch): memory, then disk.

    Trained once on raw frames and reused for every degrader of every evaluation with that
    key; on disk under <cache_dir>/pretrained when a cache dir is given.
    """

    _memory: dict[str, list] = {}

    def __init__(self, cache_dir: str | None = None):
        self.cache_dir = cache_dir

    def _path(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        return os.path.join(self.cache_dir, "pretrained", f"{key}.weights.h5")

    def get(self, key: str, model: keras.Model) -> bool:
        if key in self._memory:
            model.set_weights(self._memory[key])
            return True
        path = self._path(key)
        if path and os.path.exists(path):
            try:
                model.load_weights(path)
            except (OSError, ValueError):
                return False  # unreadable or stale: retrain
            self._memory[key] = model.get_weights()
            return True
        return False

    def put(self, key: str, model: keras.Model) -> None:
        self._memory[key] = model.get_weights()
        path = self._path(key)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
            model.save_weights(tmp)
            os.replace(tmp, path)


def _pretrained_key(cfg: C.ExperimentConfig, seed: int, arch: str) -> str:
    from tfprivacy.eval import cache

    return f"{arch}-" + cache.cache_key(cfg.data, cfg.eval, seed, f"pretrained-{arch}")


def _is_pretraining(arch: str, train, raw: EvalSplits | None, ev: C.EvalConfig) -> bool:
    """Whether training `arch` from scratch on `train` is exactly its "_ft" raw pretraining."""
    if raw is None or arch not in ev.finetune_panel or ev.pretrain_epochs != ev.privacy_epochs:
        return False
    raw_x, raw_y = _frame_training_set(raw, ev.privacy_train_frames)
    return np.array_equal(raw_y, train[1]) and np.array_equal(raw_x, train[0])


def train_privacy(
    arch: str,
    splits: EvalSplits,
    cfg: C.ExperimentConfig,
    seed: int,
    progress=False,
    transfer=None,
    raw: EvalSplits | None = None,
    pretrained: PretrainedWeights | None = None,
) -> dict:
    """One fresh attacker on degraded train data; AP / cMAP / macro-F1 on degraded test data.

    Frame architectures train on single frames with their own labels and score a test clip by
    the mean of its frames' logits. "<arch>_ft" first trains <arch> on raw frames (`raw`, the
    undegraded splits; weights cached in `pretrained`) for eval.pretrain_epochs, then
    fine-tunes on the degraded frames for eval.finetune_epochs. result["probs"] holds the
    test probabilities (for the bootstrap). transfer: as in train_target.
    """
    transfer = transfer or {}
    pretrain_s = 0.0
    from tfprivacy.models import (
        FRAME_ARCHS,
        build_privacy,
        build_privacy_frame_model,
        wrap_frame_model,
    )

    ev = cfg.eval
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    base = arch[: -len(FINETUNED)] if arch.endswith(FINETUNED) else arch
    shape = splits.privacy_train[0].shape[1:]
    width, name = ev.privacy_width, f"eval_{base}"
    if base in FRAME_ARCHS:
        frame_model = build_privacy_frame_model(base, NUM_ATTRIBUTES, shape, width, name=name)
        train = _frame_training_set(splits, ev.privacy_train_frames)
        pretrained = pretrained or PretrainedWeights()
        key = _pretrained_key(cfg, seed, base)

        def fit(model, data, epochs, desc):
            loss = privacy_fit_loss(data[1])
            _fit(model, data, loss, ev, seed, epochs, ev.privacy_batch_size, desc, progress)

        if base != arch:
            if raw is None:
                raise ValueError(f"attacker {arch!r} needs the raw splits to pretrain on")
            raw_train = _frame_training_set(raw, ev.privacy_train_frames)
            model = standardized(frame_model, *channel_stats(raw_train[0]))
            if not pretrained.get(key, model):
                t0 = time.perf_counter()
                fit(model, raw_train, ev.pretrain_epochs, f"privacy {base} on raw")
                pretrained.put(key, model)
                pretrain_s = time.perf_counter() - t0
            fit(model, train, ev.finetune_epochs, f"privacy {arch}")
        else:
            model = standardized(frame_model, *channel_stats(train[0]))
            # On raw frames this attacker IS the "_ft" attackers' raw pretraining (same data,
            # seed, model and schedule when pretrain_epochs == privacy_epochs): train it once.
            shared = _is_pretraining(arch, train, raw, ev)
            if not (shared and pretrained.get(key, model)):
                fit(model, train, ev.privacy_epochs, f"privacy {arch}")
                if shared:
                    pretrained.put(key, model)
        test_model = model
        if not splits.privacy_on_images:
            test_model = wrap_frame_model(model, shape, name=name)
    elif base != arch:
        raise ValueError(f"attacker {arch!r}: only frame attackers {FRAME_ARCHS} fine-tune")
    else:
        model = standardized(
            build_privacy(base, NUM_ATTRIBUTES, shape, width, name=name),
            *channel_stats(splits.privacy_train[0]),
        )
        _fit(
            model,
            splits.privacy_train,
            privacy_fit_loss(splits.privacy_train[1]),
            ev,
            seed,
            ev.privacy_epochs,
            ev.batch_size,
            f"privacy {arch}",
            progress,
        )
        test_model = model
    logits = _predict(test_model, splits.privacy_test[0], ev.batch_size)
    result = _privacy_result(splits.privacy_test[1], logits)
    result["probs"] = _rounded(_sigmoid(logits))
    if transfer:
        result["transfer"] = {
            n: _privacy_result(
                t.privacy_test[1], _predict(test_model, t.privacy_test[0], ev.batch_size)
            )
            for n, t in transfer.items()
        }
    result["seconds"] = time.perf_counter() - start
    if base != arch:
        result["pretrain_seconds"] = pretrain_s  # part of "seconds"; 0 when cached
    return result


class MaskedBinaryCrossentropy(keras.losses.Loss):
    """keras BinaryCrossentropy(from_logits=True) leaving entries labelled -1 (unknown) out:
    per example the mean BCE over its known attributes (0 for an example with none), then
    Keras' mean over the batch. Used only for training sets that hold a -1 (privacy_fit_loss);
    on data without -1 its value equals Keras' BCE up to float rounding, but it is not used
    there."""

    def __init__(
        self, name: str = "masked_binary_crossentropy", reduction="sum_over_batch_size", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return losses.privacy_loss(y_true, y_pred)


def privacy_fit_loss(labels) -> keras.losses.Loss:
    """The privacy attackers' training loss for a training set's labels [N, 5].

    Decided once per training set: with no label -1, Keras' own
    BinaryCrossentropy(from_logits=True), exactly what ran before unknown labels existed (so
    figures on fully annotated data, e.g. the built-in benchmark, are unchanged bit for bit);
    with any -1, MaskedBinaryCrossentropy.
    """
    if np.any(np.asarray(labels) < 0):
        return MaskedBinaryCrossentropy()
    return keras.losses.BinaryCrossentropy(from_logits=True)


def _sigmoid(logits) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def _privacy_result(labels, logits) -> dict:
    return metrics.privacy_metrics(labels, _sigmoid(logits), PRIVACY_ATTRIBUTES)


def evaluate_seed(
    degraded: EvalSplits,
    cfg: C.ExperimentConfig,
    seed: int,
    progress: bool = False,
    transfer: dict | None = None,
    raw: EvalSplits | None = None,
    pretrained: PretrainedWeights | None = None,
) -> dict:
    """Fresh target + fresh panel for one seed on already degraded splits.

    raw: the undegraded splits, which the "_ft" attackers pretrain on. transfer: optional
    name -> EvalSplits of other degraders' outputs of the same clips. The models trained here
    also score those test splits (no retraining), under result["transfer"][name] =
    {"action_top1", "worst_case": {"model", "cmap"}}: how the figures move when only the
    test-time degrader changes, free of training noise.
    """
    target = train_target(degraded, cfg, seed, progress, transfer)
    panel = {
        arch: train_privacy(arch, degraded, cfg, seed, progress, transfer, raw, pretrained)
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
    if "feature_probe" in target:
        result["feature_probe"] = target["feature_probe"]
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


def replicates(per_seed: Sequence[dict], splits: EvalSplits, num_replicates: int) -> dict:
    """Bootstrap replicates (test items x seeds) of the headline figures of one degrader.

    {"action": [B], "worst_cmap": [B], "best_ap": [B, A], "cmap": {arch: [B]},
    "worst_nap": [B], "nap": {arch: [B]}, "worst_auc": [B], "auc": {arch: [B]} (nap, auc: the
    means over attributes of normalised AP and ROC-AUC), "probe_cmap", "probe_nap",
    "probe_auc": [B] (when the feature probe ran)}; the draws depend only on the test size,
    the number of seeds and num_replicates, so they pair across degraders.
    """
    n_action, n_privacy = len(splits.action_test[1]), len(splits.privacy_test[1])
    k = len(per_seed)
    counts, seeds = intervals.draws(n_action, k, num_replicates)
    out = {
        "action": intervals.accuracy_replicates(
            [s["target"]["correct"] for s in per_seed], counts, seeds
        )
    }
    if n_privacy != n_action:
        counts, seeds = intervals.draws(n_privacy, k, num_replicates)
    labels = splits.privacy_test[1]
    archs = list(per_seed[0]["panel"])
    probs = {a: np.array([s["panel"][a]["probs"] for s in per_seed]) for a in archs}
    priv = intervals.privacy_replicates(labels, probs, counts, seeds)
    out.update(worst_cmap=priv["worst_cmap"], best_ap=priv["best_ap"], cmap=priv["cmap"])
    out.update(worst_nap=priv["worst_nap"], nap=priv["nap"])
    out.update(worst_auc=priv["worst_auc"], auc=priv["auc"])
    if all("feature_probe" in s for s in per_seed):
        probe = {"probe": np.array([s["feature_probe"]["probs"] for s in per_seed])}
        probe_reps = intervals.privacy_replicates(labels, probe, counts, seeds)
        out["probe_cmap"] = probe_reps["worst_cmap"]
        out["probe_nap"] = probe_reps["worst_nap"]
        out["probe_auc"] = probe_reps["worst_auc"]
    return out


# The measures with range on skewed labels that metrics.privacy_metrics adds beside AP/cMAP.
_SKEW_FIGURES = ("nap_mean", "nap_max", "auc_mean", "auc_max")
_SKEW_PER_ATTRIBUTE = ("nap", "auc")


def _with_skew_measures(result: dict, labels) -> dict:
    """A per-seed result whose panel (and feature probe) figures all carry normalised AP and
    AUC: a seed cached before they existed gets them from its stored test probabilities (when
    `labels` are given); a shallow copy, the cached dict is left as it was."""
    if labels is None:
        return result

    def filled(figures):
        if "nap_mean" in figures or "probs" not in figures:
            return figures
        new = metrics.privacy_metrics(labels, np.asarray(figures["probs"]), PRIVACY_ATTRIBUTES)
        return {**figures, **{k: new[k] for k in _SKEW_FIGURES + _SKEW_PER_ATTRIBUTE}}

    out = {**result, "panel": {a: filled(p) for a, p in result["panel"].items()}}
    if "feature_probe" in result:
        out["feature_probe"] = filled(result["feature_probe"])
    return out


def aggregate(per_seed: Sequence[dict], splits: EvalSplits | None = None, ev=None) -> dict:
    """Mean and std over seeds of every figure; the worst case is taken per seed first.

    With `splits` (the test labels) and `ev` (bootstrap settings), the headline figures also
    get bootstrap intervals ("ci") over test items and seeds, and result["replicates"] holds
    the replicate arrays (numpy, for paired comparisons; not written to JSON).
    """
    archs = list(per_seed[0]["panel"])
    per_seed = [
        _with_skew_measures(s, splits.privacy_test[1] if splits is not None else None)
        for s in per_seed
    ]

    def privacy_stats(rows):
        stats = {
            "cmap": metrics.mean_std([r["cmap"] for r in rows]),
            "macro_f1": metrics.mean_std([r["macro_f1"] for r in rows]),
            "ap": {a: metrics.mean_std([r["ap"][a] for r in rows]) for a in PRIVACY_ATTRIBUTES},
        }
        if all("nap_mean" in r for r in rows):  # figures made before they existed have not
            for key in _SKEW_FIGURES:
                stats[key] = metrics.mean_std([r[key] for r in rows])
            for key in _SKEW_PER_ATTRIBUTE:
                stats[key] = {
                    a: metrics.mean_std([r[key][a] for r in rows]) for a in PRIVACY_ATTRIBUTES
                }
        return stats

    worst = privacy_stats([s["worst_case"] for s in per_seed])
    worst["models"] = [s["worst_case"]["model"] for s in per_seed]
    # Worst case over the panel of mean normalised AP and mean AUC, per seed, each measure on
    # its own (cMAP's worst case, above, as before).
    worst_measures = [metrics.worst_case_measures(s["panel"]) for s in per_seed]
    for key, model_key in metrics.WORST_CASE_MEASURES[1:]:
        if all(key in m for m in worst_measures):
            worst[key] = metrics.mean_std([m[key] for m in worst_measures])
            worst[f"{model_key}s"] = [m[model_key] for m in worst_measures]
    best_ap = [
        {a: max(s["panel"][m]["ap"][a] for m in archs) for a in PRIVACY_ATTRIBUTES}
        for s in per_seed
    ]
    worst["best_ap"] = {a: metrics.mean_std([b[a] for b in best_ap]) for a in PRIVACY_ATTRIBUTES}
    out = {
        "seeds": [s["seed"] for s in per_seed],
        "action_top1": metrics.mean_std([s["action_top1"] for s in per_seed]),
        "target_arch": per_seed[0]["target"]["arch"],
        "panel": {a: privacy_stats([s["panel"][a] for s in per_seed]) for a in archs},
        "worst_case": worst,
        "per_seed": [_without_predictions(s) for s in per_seed],
    }
    if all("feature_probe" in s for s in per_seed):
        out["feature_probe"] = privacy_stats([s["feature_probe"] for s in per_seed])
    if splits is not None and ev is not None and ev.bootstrap > 0:
        reps = replicates(per_seed, splits, ev.bootstrap)
        conf = ev.confidence
        out["action_top1"]["ci"] = intervals.interval(reps["action"], conf)
        worst["cmap"]["ci"] = intervals.interval(reps["worst_cmap"], conf)
        for j, a in enumerate(PRIVACY_ATTRIBUTES):
            worst["best_ap"][a]["ci"] = intervals.interval(reps["best_ap"][:, j], conf)
        for a in archs:
            out["panel"][a]["cmap"]["ci"] = intervals.interval(reps["cmap"][a], conf)
        if "probe_cmap" in reps:
            out["feature_probe"]["cmap"]["ci"] = intervals.interval(reps["probe_cmap"], conf)
        for key, rep in (("nap_mean", "nap"), ("auc_mean", "auc")):
            if key in worst:
                worst[key]["ci"] = intervals.interval(reps[f"worst_{rep}"], conf)
            for a in archs:
                if key in out["panel"][a]:
                    out["panel"][a][key]["ci"] = intervals.interval(reps[rep][a], conf)
            if f"probe_{rep}" in reps and key in out["feature_probe"]:
                out["feature_probe"][key]["ci"] = intervals.interval(reps[f"probe_{rep}"], conf)
        out["confidence"] = conf
        out["replicates"] = reps
    return out


_PREDICTIONS = ("correct", "probs")


def _without_predictions(result):
    """A per-seed result minus the per-item predictions (kept in the cache, not the report)."""
    if isinstance(result, dict):
        return {k: _without_predictions(v) for k, v in result.items() if k not in _PREDICTIONS}
    return result


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    return [int(s) for s in seeds]


def enable_determinism() -> None:
    """Deterministic kernels, so a seed gives the same figures whatever the machine's load.

    Process-wide and one-way (TF has no public switch back), and it makes unseeded random ops
    raise: entry points call it (trainers.evaluate, the main job before its evaluation), the
    library does not.
    """
    tf.config.experimental.enable_op_determinism()


def evaluate_degrader(
    degrade_fn: DegradeFn,
    sources,
    cfg: C.ExperimentConfig,
    seeds: int | Sequence[int] = 1,
    *,
    name: str = "degrader",
    progress: bool = False,
    seed_cache=None,
    pretrained: PretrainedWeights | None = None,
) -> dict:
    """The two-fold protocol for one degrader; returns aggregate() plus chance and timing.

    `sources` is a DatasetSources (materialised here) or an EvalSplits already materialised,
    which is how one evaluation run shares the decoded splits between all its degraders.
    `seed_cache`, when given, has get(seed) -> dict | None and put(seed, dict): cached seeds
    are not retrained, and with every seed cached the splits are not even degraded.
    `pretrained`: where the "_ft" attackers' raw-trained weights are kept (memory by default).
    """
    start = time.perf_counter()
    seed_list = resolve_seeds(seeds)
    splits = sources if isinstance(sources, EvalSplits) else materialize_splits(sources, cfg)
    per_seed = {s: seed_cache.get(s) for s in seed_list} if seed_cache else {}
    per_seed = {s: r for s, r in per_seed.items() if r is not None and _has_predictions(r)}
    todo = [s for s in seed_list if s not in per_seed]
    degrade_s, seed_s = 0.0, {}
    if todo:
        t0 = time.perf_counter()
        degraded = degrade_splits(degrade_fn, splits, progress, desc=f"degrade {name}")
        degrade_s = time.perf_counter() - t0
        # How far the degrader moves its input (PSNR, output variance), on a few test clips;
        # kept with each seed's result, so cached seeds carry it too.
        n = FIDELITY_CLIPS
        fid = metrics.fidelity(
            to_unit_float_np(splits.action_test[0][:n]),
            to_unit_float_np(degraded.action_test[0][:n]),
        )
        for s in todo:
            t0 = time.perf_counter()
            per_seed[s] = evaluate_seed(
                degraded, cfg, s, progress, raw=splits, pretrained=pretrained
            )
            per_seed[s]["fidelity"] = fid
            seed_s[s] = time.perf_counter() - t0
            if seed_cache:
                seed_cache.put(s, per_seed[s])
    result = aggregate([per_seed[s] for s in seed_list], splits, cfg.eval)
    result["name"] = name
    fidelities = [per_seed[s]["fidelity"] for s in seed_list if "fidelity" in per_seed[s]]
    if fidelities:
        result["fidelity"] = fidelities[0]
    result["chance"] = splits.chance()
    result["sizes"] = splits.sizes()
    result["cached_seeds"] = [s for s in seed_list if s not in todo]
    fit_s = {}
    for s in todo:
        r = per_seed[s]
        fit_s[f"target_s_seed{s}"] = r["target"]["seconds"]
        fit_s.update({f"{a}_s_seed{s}": p["seconds"] for a, p in r["panel"].items()})
    result["timing"] = {
        "degrade_s": degrade_s,
        **{f"seed{s}_s": v for s, v in seed_s.items()},
        **fit_s,
        "total_s": time.perf_counter() - start,
    }
    return result


def _has_predictions(result: dict) -> bool:
    """Cached results from before protocol v4 lack per-item predictions: recompute them."""
    return "correct" in result.get("target", {})
