"""The fresh models of the evaluation: trained on degraded data, scored on degraded test data.

`train_target` fits a fresh target model (`cfg.eval.target`, an architecture different from
training's f_T) and scores action top-1, plus `feature_probe`, a linear probe of the
attributes on its penultimate features. `train_privacy` fits one attacker of the privacy panel
(`panel_archs`): frame attackers trained on single frames with their own labels, and
"<arch>_ft" attackers started from raw-trained weights (kept in cache.PretrainedWeights), scored
by per-attribute AP / cMAP / macro-F1. Also their shared fitting loop (`_fit`: the eval's
optimizer from tfprivacy/optim.py, a seeded shuffle, one progress line per model) and the
attackers' training loss (`privacy_fit_loss`).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from tfprivacy import config as C
from tfprivacy import losses, metrics, optim
from tfprivacy.data.records import NUM_ATTRIBUTES, PRIVACY_ATTRIBUTES
from tfprivacy.eval import cache
from tfprivacy.eval.splits import EvalSplits, channel_stats, dataset, standardized
from tfprivacy.progress import progress_bar


class _EpochBar(keras.callbacks.Callback):
    """One tqdm line per model (Keras' own verbose output floods logs with one line per epoch)."""

    def __init__(self, epochs: int, desc: str, enabled: bool):
        super().__init__()
        self._bar = progress_bar(epochs, desc, enabled=enabled, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        self._bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.3f}")
        self._bar.update(1)

    def on_train_end(self, logs=None):
        self._bar.close()


def _optimizer(ev: C.EvalConfig, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    return optim.adam(ev.learning_rate, ev.lr_schedule, epochs * steps_per_epoch)


def _fit(model, train, loss, ev, seed, epochs, batch_size, desc, progress):
    """model.fit on (x uint8, y) for `epochs`, seeded shuffle, the eval's optimizer."""
    steps = math.ceil(len(train[1]) / batch_size)
    model.compile(optimizer=_optimizer(ev, epochs, steps), loss=loss, jit_compile=False)
    model.fit(
        dataset(*train, batch_size, seed),
        epochs=epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
        callbacks=[_EpochBar(epochs, desc, progress)],
    )


def _predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    labels = np.zeros(len(x), np.int32)
    return model.predict(dataset(x, labels, batch_size, None), verbose=0)


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
    pretrained: cache.PretrainedWeights | None = None,
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
        pretrained = pretrained or cache.PretrainedWeights()
        key = cache.pretrained_key(cfg, seed, base)

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
