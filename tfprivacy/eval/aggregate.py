"""Figures over seeds: mean and std of every figure, with bootstrap intervals.

`aggregate` takes the per-seed results of one degrader (protocol.evaluate_seed) to mean and
std over seeds, the worst case over the privacy panel taken per seed first; with the test
labels, the headline figures also get bootstrap intervals over test items and seeds from
`replicates` (the intervals module draws them). Per-seed results cached before normalised AP
and AUC existed get them from their stored test probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tfprivacy import metrics
from tfprivacy.data.records import PRIVACY_ATTRIBUTES
from tfprivacy.eval import intervals

if TYPE_CHECKING:
    from tfprivacy.eval.splits import EvalSplits


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
