"""The two-fold protocol: freeze a degrader, train fresh models on its output, score both sides.

1. Materialise every split once as uint8 numpy arrays (splits.materialize_splits): test clips
   with evenly spaced frames; `cfg.eval.train_clips_per_video` train clips per train video at
   evenly spread temporal starts (deterministic; with the benchmark's defaults every frame).
2. Degrade each split once (splits.degrade_splits), stored as uint8.
3. Per seed, train a fresh target model and a fresh privacy panel on the degraded data
   (fit.train_target, fit.train_privacy), then report action top-1, a linear probe of the
   attributes on the target's penultimate features, and per-attribute AP / cMAP / macro-F1 of
   each attacker and of the worst case (the attacker with the highest cMAP): evaluate_seed.
4. Aggregate over seeds with bootstrap intervals over test items and seeds
   (aggregate.aggregate).

This module holds the steps' driver for one degrader (`evaluate_degrader`, with its seed
cache and timing), one seed (`evaluate_seed`), and `resolve_seeds`, `enable_determinism`. It
also re-exports the names the protocol had before it was split, so `protocol.X` still works
for each of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import tensorflow as tf

from tfprivacy import config as C
from tfprivacy import metrics
from tfprivacy.eval.aggregate import aggregate, replicates
from tfprivacy.eval.cache import PretrainedWeights
from tfprivacy.eval.cache import pretrained_key as _pretrained_key
from tfprivacy.eval.fit import (
    FINETUNED,
    MaskedBinaryCrossentropy,
    _frame_training_set,
    _predict,
    feature_probe,
    panel_archs,
    privacy_fit_loss,
    train_privacy,
    train_target,
)
from tfprivacy.eval.splits import (
    SAMPLING_SEED,
    DegradeFn,
    EvalSplits,
    _clip_labels,
    channel_stats,
    degrade_array,
    degrade_splits,
    materialize_splits,
    standardized,
    to_uint8,
)
from tfprivacy.frames import to_unit_float_np

# What callers and tests reach as protocol.X: this module's own names and, re-exported, those
# that lived here before the protocol was split into splits, fit, aggregate and cache.
__all__ = [
    "FIDELITY_CLIPS",
    "enable_determinism",
    "evaluate_degrader",
    "evaluate_seed",
    "resolve_seeds",
    # splits
    "SAMPLING_SEED",
    "DegradeFn",
    "EvalSplits",
    "_clip_labels",
    "channel_stats",
    "degrade_array",
    "degrade_splits",
    "materialize_splits",
    "standardized",
    "to_uint8",
    # fit
    "FINETUNED",
    "MaskedBinaryCrossentropy",
    "_frame_training_set",
    "_predict",
    "feature_probe",
    "panel_archs",
    "privacy_fit_loss",
    "train_privacy",
    "train_target",
    # aggregate
    "aggregate",
    "replicates",
    # cache
    "PretrainedWeights",
    "_pretrained_key",
]

FIDELITY_CLIPS = 64  # test clips on which each degrader's PSNR and output variance are measured


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
