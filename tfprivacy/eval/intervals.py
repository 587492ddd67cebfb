"""Bootstrap intervals over test videos and seeds, and paired comparisons between degraders.

One replicate draws the test items with replacement (multinomial counts, so an item drawn
twice enters the metric twice) and the seeds with replacement, recomputes every figure on that
draw (AP exactly as sklearn computes it on the resampled data: duplicates share a score and so
a threshold) and averages it over the drawn seeds. The draws depend only on (number of items,
number of seeds, replicates), never on the degrader, so two degraders evaluated on the same
test clips with the same seeds get the same draws: their difference per replicate is a paired
difference, and its percentile interval decides comparisons.

Besides AP and cMAP, each replicate recomputes the measures with range on skewed labels
(metrics.py): normalised AP, (AP - p) / (1 - p) with p the attribute's prevalence in that draw,
and ROC-AUC, exactly as metrics computes them on the resampled data. Comparisons are decided on
the worst-case mean normalised AP, cMAP shown beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfprivacy import metrics

_DRAW_SEED = 20260614


def draws(num_items: int, num_seeds: int, replicates: int) -> tuple[np.ndarray, np.ndarray]:
    """(item counts [B, n] int, seed picks [B, k] int), the same for the same arguments."""
    if num_items < 1 or num_seeds < 1 or replicates < 1:
        raise ValueError(
            f"draws: need items, seeds and replicates >= 1, got {num_items}, {num_seeds}, "
            f"{replicates}"
        )
    rng = np.random.default_rng([_DRAW_SEED, num_items, num_seeds, replicates])
    counts = rng.multinomial(num_items, np.full(num_items, 1.0 / num_items), size=replicates)
    seeds = rng.integers(0, num_seeds, size=(replicates, num_seeds))
    return counts.astype(np.float64), seeds


def weighted_ap(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AP of one binary problem for each row of weights [B, n] (item multiplicities) -> [B].

    Equals sklearn's average_precision_score on the data with item i repeated weights[b, i]
    times; 0.0 when a draw holds no positive (as sklearn and metrics.average_precision).
    """
    labels = np.asarray(labels, np.float64)
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    w = weights[:, order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(w * y, axis=1)[:, last]
    seen = np.cumsum(w, axis=1)[:, last]
    pos = tp[:, -1:]
    precision = tp / np.maximum(seen, 1e-12)
    recall = tp / np.maximum(pos, 1e-12)
    steps = np.diff(np.concatenate([np.zeros_like(pos), recall], axis=1), axis=1)
    return np.where(pos[:, 0] > 0, np.sum(steps * precision, axis=1), 0.0)


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of one binary problem for each row of weights [B, n] (item multiplicities) -> [B].

    Equals metrics.binary_roc_auc (and sklearn's roc_auc_score) on the data with item i
    repeated weights[b, i] times: per distinct score, its positives beat the negatives scored
    lower and tie (half) with those scored the same. 0.5 when a draw holds one class only.
    """
    labels = np.asarray(labels, np.float64)
    scores = np.asarray(scores, np.float64)
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    w = weights[:, order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    pos_seen = np.cumsum(w * y, axis=1)[:, last]  # positives scored at or below each score
    neg_seen = np.cumsum(w * (1.0 - y), axis=1)[:, last]
    zero = np.zeros((w.shape[0], 1))
    pos_at = np.diff(np.concatenate([zero, pos_seen], axis=1), axis=1)
    neg_at = np.diff(np.concatenate([zero, neg_seen], axis=1), axis=1)
    wins = np.sum(pos_at * (neg_seen - 0.5 * neg_at), axis=1)
    pairs = pos_seen[:, -1] * neg_seen[:, -1]
    return np.where(pairs > 0, wins / np.maximum(pairs, 1e-12), metrics.AUC_CHANCE)


def _over_seeds(per_seed: np.ndarray, seed_picks: np.ndarray) -> np.ndarray:
    """per_seed [k, B] -> [B]: each replicate's mean over its drawn seeds."""
    rows = np.arange(per_seed.shape[1])[:, None]
    return per_seed[seed_picks, rows].mean(axis=1)


def accuracy_replicates(correct: np.ndarray, counts: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """correct [k, n] 0/1 per seed and test item -> top-1 per replicate [B]."""
    correct = np.asarray(correct, np.float64)
    per_seed = correct @ counts.T / counts.sum(axis=1)  # [k, B]
    return _over_seeds(per_seed, seeds)


def _per_attribute(labels, probs, counts, weighted, empty: float) -> np.ndarray:
    """labels [n, A], probs [k, n, A] -> weighted(y, p, w) per seed, replicate and attribute
    [k, B, A], each attribute over its items not labelled -1; `empty` where none is known."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.float64)
    out = np.empty((probs.shape[0], counts.shape[0], labels.shape[1]))
    for a in range(labels.shape[1]):
        known = labels[:, a] >= 0
        if known.all():
            y, p, w = labels[:, a], probs[:, :, a], counts
        else:
            y, p, w = labels[known, a], probs[:, known, a], counts[:, known]
        if not y.size:
            out[:, :, a] = empty
            continue
        for s in range(probs.shape[0]):
            out[s, :, a] = weighted(y, p[s], w)
    return out


def ap_replicates(labels, probs, counts) -> np.ndarray:
    """labels [n, A], probs [k, n, A] -> AP per seed, replicate and attribute [k, B, A].

    Items labelled -1 (unknown) for an attribute are left out of its AP, whatever their
    draw count (as metrics.average_precision leaves them out); with no known item: scored as
    no positive, 0.0.
    """
    return _per_attribute(labels, probs, counts, weighted_ap, 0.0)


def prevalence_replicates(labels, counts) -> np.ndarray:
    """labels [n, A] -> each attribute's prevalence in each draw [B, A]: drawn positives over
    drawn known (not -1) items, 0.0 where none is drawn (as metrics.prevalence)."""
    labels = np.asarray(labels, np.float64)
    known = (labels >= 0).astype(np.float64)
    positives = counts @ (labels * known)  # labels -1 count as 0 positives
    drawn = counts @ known
    return positives / np.maximum(drawn, 1e-12) * (drawn > 0)


def nap_replicates(labels, probs, counts, aps: np.ndarray | None = None) -> np.ndarray:
    """labels [n, A], probs [k, n, A] -> normalised AP per seed, replicate and attribute
    [k, B, A]: metrics.normalize_ap of the draw's AP and the draw's prevalence. aps: the
    ap_replicates of the same arguments, when already computed."""
    if aps is None:
        aps = ap_replicates(labels, probs, counts)
    return metrics.normalize_ap(aps, prevalence_replicates(labels, counts)[None])


def auc_replicates(labels, probs, counts) -> np.ndarray:
    """labels [n, A], probs [k, n, A] -> ROC-AUC per seed, replicate and attribute [k, B, A];
    items labelled -1 are left out of their attribute, one known class (or none) scores 0.5
    (as metrics.roc_auc)."""
    return _per_attribute(labels, probs, counts, weighted_auc, metrics.AUC_CHANCE)


def _panel_means(per_attribute: Mapping[str, np.ndarray], seeds) -> tuple[dict, np.ndarray]:
    """attacker -> [k, B, A] figures: ({attacker: mean over attributes [B]}, the worst case
    [B]), the worst case taken per seed and replicate over the panel, then over the seeds."""
    means = {arch: a.mean(axis=2) for arch, a in per_attribute.items()}  # [k, B]
    stacked = np.stack(list(means.values()))  # [M, k, B]
    per_arch = {arch: _over_seeds(m, seeds) for arch, m in means.items()}
    return per_arch, _over_seeds(stacked.max(axis=0), seeds)


def privacy_replicates(labels, panel_probs: Mapping[str, np.ndarray], counts, seeds) -> dict:
    """Replicates of the worst-case cMAP, mean normalised AP and mean AUC, and of the best AP
    per attribute over the panel.

    panel_probs: attacker -> probabilities [k, n, A]. Worst case per seed and replicate is the
    attacker with the highest figure, each measure on its own (as metrics.worst_case_measures);
    best_ap takes, per attribute, the highest AP of any attacker (an envelope: no single
    attacker need reach all of it).
    Returns {"cmap": {arch: [B]}, "worst_cmap": [B], "best_ap": [B, A], "nap": {arch: [B]},
    "worst_nap": [B], "auc": {arch: [B]}, "worst_auc": [B]} (nap, auc: means over attributes).
    """
    aps = {arch: ap_replicates(labels, p, counts) for arch, p in panel_probs.items()}
    naps = {arch: nap_replicates(labels, None, counts, aps[arch]) for arch in aps}
    aucs = {arch: auc_replicates(labels, p, counts) for arch, p in panel_probs.items()}
    cmap, worst_cmap = _panel_means(aps, seeds)
    nap, worst_nap = _panel_means(naps, seeds)
    auc, worst_auc = _panel_means(aucs, seeds)
    best_ap = np.stack(list(aps.values())).max(axis=0)  # [k, B, A]
    return {
        "cmap": cmap,
        "worst_cmap": worst_cmap,
        "best_ap": np.stack(
            [_over_seeds(best_ap[:, :, a], seeds) for a in range(best_ap.shape[2])], axis=1
        ),
        "nap": nap,
        "worst_nap": worst_nap,
        "auc": auc,
        "worst_auc": worst_auc,
    }


def interval(replicates: np.ndarray, confidence: float) -> list[float]:
    """The central percentile interval of the replicates."""
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(np.asarray(replicates, np.float64), [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def paired(a: np.ndarray, b: np.ndarray, confidence: float) -> dict:
    """a - b per replicate (same draws): mean, interval, and whether the interval excludes 0."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    lo, hi = interval(diff, confidence)
    sign = 1 if lo > 0 else -1 if hi < 0 else 0
    return {"mean": float(diff.mean()), "ci": [lo, hi], "sign": sign}


def dominance(learned: Mapping, other: Mapping, confidence: float) -> dict:
    """Does `other` dominate `learned` beyond the intervals (higher action AND lower privacy
    leakage)?

    Each argument holds replicate arrays "action", "worst_cmap" and "worst_nap" over the same
    draws. Leakage is judged on the worst-case mean normalised AP ("worst_nap", a measure with
    range on skewed labels); replicates without it (made before it existed) are judged on
    "worst_cmap" as before. Returns the paired differences other - learned ("action_top1",
    "worst_cmap", and "worst_nap" when both have it), "measure" (the key the verdict used) and
    a one-word verdict: "dominates" (both intervals exclude 0 in other's favour), "dominated"
    (both in learned's favour), "trade-off" (each wins one) or "undecided".
    """
    d_action = paired(other["action"], learned["action"], confidence)
    d_cmap = paired(other["worst_cmap"], learned["worst_cmap"], confidence)
    out = {"action_top1": d_action, "worst_cmap": d_cmap}
    measure = "worst_cmap"
    if "worst_nap" in learned and "worst_nap" in other:
        measure = "worst_nap"
        out["worst_nap"] = paired(other["worst_nap"], learned["worst_nap"], confidence)
    d_privacy = out[measure]
    better = (d_action["sign"] > 0, d_privacy["sign"] < 0)
    worse = (d_action["sign"] < 0, d_privacy["sign"] > 0)
    if all(better):
        verdict = "dominates"
    elif all(worse):
        verdict = "dominated"
    elif any(better) and any(worse):
        verdict = "trade-off"
    else:
        verdict = "undecided"
    return {**out, "measure": measure, "verdict": verdict}


def summary(point: Sequence[float] | float, replicates: np.ndarray, confidence: float) -> dict:
    """Point estimate (mean over seeds of the full-sample figure) with its interval."""
    values = np.atleast_1d(np.asarray(point, np.float64))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "values": [float(v) for v in values],
        "ci": interval(replicates, confidence),
    }
