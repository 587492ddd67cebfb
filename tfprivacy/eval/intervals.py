"""Bootstrap intervals over test videos and seeds, and paired comparisons between degraders.

One replicate draws the test items with replacement (multinomial counts, so an item drawn
twice enters the metric twice) and the seeds with replacement, recomputes every figure on that
draw (AP exactly as sklearn computes it on the resampled data: duplicates share a score and so
a threshold) and averages it over the drawn seeds. The draws depend only on (number of items,
number of seeds, replicates), never on the degrader, so two degraders evaluated on the same
test clips with the same seeds get the same draws: their difference per replicate is a paired
difference, and its percentile interval decides comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

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


def _over_seeds(per_seed: np.ndarray, seed_picks: np.ndarray) -> np.ndarray:
    """per_seed [k, B] -> [B]: each replicate's mean over its drawn seeds."""
    rows = np.arange(per_seed.shape[1])[:, None]
    return per_seed[seed_picks, rows].mean(axis=1)


def accuracy_replicates(correct: np.ndarray, counts: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """correct [k, n] 0/1 per seed and test item -> top-1 per replicate [B]."""
    correct = np.asarray(correct, np.float64)
    per_seed = correct @ counts.T / counts.sum(axis=1)  # [k, B]
    return _over_seeds(per_seed, seeds)


def ap_replicates(labels, probs, counts) -> np.ndarray:
    """labels [n, A], probs [k, n, A] -> AP per seed, replicate and attribute [k, B, A].

    Items labelled -1 (unknown) for an attribute are left out of its AP, whatever their
    draw count (as metrics.average_precision leaves them out).
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.float64)
    out = np.empty((probs.shape[0], counts.shape[0], labels.shape[1]))
    for a in range(labels.shape[1]):
        known = labels[:, a] >= 0
        if known.all():
            y, p, w = labels[:, a], probs[:, :, a], counts
        else:
            y, p, w = labels[known, a], probs[:, known, a], counts[:, known]
        if not y.size:  # no known item: scored as no positive, 0.0
            out[:, :, a] = 0.0
            continue
        for s in range(probs.shape[0]):
            out[s, :, a] = weighted_ap(y, p[s], w)
    return out


def privacy_replicates(labels, panel_probs: Mapping[str, np.ndarray], counts, seeds) -> dict:
    """Replicates of the worst-case cMAP and of the best AP per attribute over the panel.

    panel_probs: attacker -> probabilities [k, n, A]. Worst case per seed and replicate is the
    attacker with the highest cMAP (as metrics.worst_case); best_ap takes, per attribute, the
    highest AP of any attacker (an envelope: no single attacker need reach all of it).
    Returns {"cmap": {arch: [B]}, "worst_cmap": [B], "best_ap": [B, A]}.
    """
    aps = {arch: ap_replicates(labels, p, counts) for arch, p in panel_probs.items()}
    cmaps = {arch: a.mean(axis=2) for arch, a in aps.items()}  # [k, B]
    stacked = np.stack(list(cmaps.values()))  # [M, k, B]
    best_ap = np.stack(list(aps.values())).max(axis=0)  # [k, B, A]
    return {
        "cmap": {arch: _over_seeds(c, seeds) for arch, c in cmaps.items()},
        "worst_cmap": _over_seeds(stacked.max(axis=0), seeds),
        "best_ap": np.stack(
            [_over_seeds(best_ap[:, :, a], seeds) for a in range(best_ap.shape[2])], axis=1
        ),
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
    """Does `other` dominate `learned` beyond the intervals (higher action AND lower cMAP)?

    Each argument holds replicate arrays "action" and "worst_cmap" over the same draws.
    Returns the paired differences other - learned and a one-word verdict: "dominates" (both
    intervals exclude 0 in other's favour), "dominated" (both in learned's favour), "trade-off"
    (each wins one) or "undecided".
    """
    d_action = paired(other["action"], learned["action"], confidence)
    d_cmap = paired(other["worst_cmap"], learned["worst_cmap"], confidence)
    better = (d_action["sign"] > 0, d_cmap["sign"] < 0)
    worse = (d_action["sign"] < 0, d_cmap["sign"] > 0)
    if all(better):
        verdict = "dominates"
    elif all(worse):
        verdict = "dominated"
    elif any(better) and any(worse):
        verdict = "trade-off"
    else:
        verdict = "undecided"
    return {"action_top1": d_action, "worst_cmap": d_cmap, "verdict": verdict}


def summary(point: Sequence[float] | float, replicates: np.ndarray, confidence: float) -> dict:
    """Point estimate (mean over seeds of the full-sample figure) with its interval."""
    values = np.atleast_1d(np.asarray(point, np.float64))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "values": [float(v) for v in values],
        "ci": interval(replicates, confidence),
    }
