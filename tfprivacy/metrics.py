"""Privacy and utility metrics of the two-fold evaluation, in plain numpy.

average_precision follows sklearn.metrics.average_precision_score exactly (the step-wise sum
over distinct score thresholds, no interpolation), so figures compare with the paper's, which
used scikit-learn. Tests check both against sklearn and against values worked out by hand.

Unknown labels: y_true may hold -1 (`records.UNKNOWN`: no annotation covers that item for that
attribute) besides 0 and 1. Every privacy metric ignores such items per attribute: AP, F1 and
prevalence of an attribute are those of its known items only (an attribute with no known item
scores like one with no positive: AP 0, F1 0, prevalence 0). Without -1 every figure is
computed exactly as before.

Measures with range on skewed labels: AP's chance level is the attribute's prevalence p, so on
attributes present in nearly every item (PA-HMDB51: skin colour 0.972, gender 0.980) AP is near
1 whatever the scorer, and cMAP barely separates a leaking scorer from chance. Beside cMAP (kept
for comparison with the paper) every privacy model therefore gets per attribute the normalised
AP, (AP - p) / (1 - p) (chance 0, perfect 1, below chance negative), and the ROC-AUC (chance 0.5,
perfect 1, insensitive to prevalence), with their mean and worst case over attributes. Both
follow AP's convention for an attribute with one class only among its known items (AP is then
0 or 1, its prevalence: a scorer shows nothing): they score chance, normalised AP 0.0 and AUC
0.5, never NaN, so means and bootstrap intervals stay defined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class MetricError(ValueError):
    """Inputs of the wrong shape or range; the message names the argument."""


def _check_pair(y_true, y_score, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != ndim or y_score.ndim != ndim:
        raise MetricError(
            f"y_true and y_score must be {ndim}-D, got shapes {y_true.shape} and {y_score.shape}"
        )
    if y_true.shape != y_score.shape:
        raise MetricError(f"y_true shape {y_true.shape} != y_score shape {y_score.shape}")
    if y_true.shape[0] == 0:
        raise MetricError("y_true is empty: no samples to score")
    if not np.isin(y_true, (-1, 0, 1)).all():
        raise MetricError("y_true must be binary (0/1) multi-hot labels, or -1 for unknown")
    if not np.isfinite(y_score).all():
        raise MetricError("y_score contains NaN or inf")
    return y_true.astype(np.int64), y_score


def binary_average_precision(y_true, y_score) -> float:
    """AP of one binary problem: sum_k (R_k - R_{k-1}) * P_k over distinct thresholds.

    Samples with equal scores enter together (one threshold), as in sklearn. With no positive
    sample the recall is undefined; sklearn then returns 0.0, and so do we. Samples labelled
    -1 (unknown) are left out.
    """
    y_true, y_score = _check_pair(y_true, y_score, ndim=1)
    known = y_true >= 0
    if not known.all():
        y_true, y_score = y_true[known], y_score[known]
    num_pos = y_true.sum()
    if num_pos == 0:
        return 0.0
    order = np.argsort(-y_score, kind="mergesort")
    scores, labels = y_score[order], y_true[order]
    # The last index of each run of equal scores is where a threshold takes effect.
    last = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tps = np.cumsum(labels)[last]
    predicted = last + 1
    precision = tps / predicted
    recall = tps / num_pos
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def average_precision(y_true, y_score) -> np.ndarray:
    """Per-attribute AP of multi-label scores: [N, A] labels and scores -> [A] (each
    attribute over its items not labelled -1)."""
    y_true, y_score = _check_pair(y_true, y_score, ndim=2)
    return np.array(
        [binary_average_precision(y_true[:, a], y_score[:, a]) for a in range(y_true.shape[1])]
    )


def cmap(y_true, y_score) -> float:
    """Class-mean AP: the unweighted mean of per-attribute AP (sklearn's average='macro')."""
    return float(np.mean(average_precision(y_true, y_score)))


def macro_f1(y_true, y_prob, threshold: float = 0.5) -> float:
    """Macro F1 over attributes of the predictions y_prob >= threshold.

    y_prob are probabilities (sigmoid of the logits). Per attribute F1 = 2TP / (2TP + FP + FN),
    0 when that denominator is 0, matching sklearn's f1_score(average='macro') default.
    Items labelled -1 (unknown) for an attribute count in none of its TP, FP, FN (integer
    counts, so without -1 exactly as before).
    """
    y_true, y_prob = _check_pair(y_true, y_prob, ndim=2)
    known = (y_true >= 0).astype(np.int64)
    y_true = y_true * known
    pred = (y_prob >= threshold).astype(np.int64) * known
    tp = np.sum(pred * y_true, axis=0)
    fp = np.sum(pred * (1 - y_true), axis=0)
    fn = np.sum((1 - pred) * y_true, axis=0)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(np.mean(f1))


def top1_accuracy(labels, logits) -> float:
    """Share of samples whose arg-max class equals the int label; labels [N], logits [N, K]."""
    labels = np.asarray(labels)
    logits = np.asarray(logits)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise MetricError(f"labels {labels.shape} and logits {logits.shape} do not match")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def prevalence(y_true) -> np.ndarray:
    """Share of positives per attribute of [N, A] labels -> [A], over the items not labelled
    -1 (0 for an attribute with none). Without -1: y_true.mean(axis=0) in y_true's dtype."""
    y_true = np.asarray(y_true)
    if y_true.ndim != 2 or y_true.shape[0] == 0:
        raise MetricError(f"y_true must be a non-empty [N, A] array, got shape {y_true.shape}")
    known = y_true >= 0
    if known.all():
        return y_true.mean(axis=0)
    positives = np.where(known, y_true, 0).sum(axis=0, dtype=np.float64)
    return positives / np.maximum(known.sum(axis=0), 1)


def cmap_chance(y_true) -> float:
    """cMAP of a random scorer: the expected AP of an attribute is its prevalence."""
    return float(np.mean(prevalence(np.asarray(y_true, dtype=np.float64))))


NAP_CHANCE = 0.0  # normalised AP of a scorer that knows nothing, whatever the prevalence
AUC_CHANCE = 0.5  # ROC-AUC of a scorer that knows nothing


def normalize_ap(ap, prevalences) -> np.ndarray:
    """(AP - p) / (1 - p) elementwise (arrays broadcast): 0 at chance (AP = p), 1 for a perfect
    ranking, negative below chance. 0.0 where p is 1 (every known item positive: AP is 1 for
    any scorer), as where p is 0 (AP 0 by convention)."""
    ap = np.asarray(ap, np.float64)
    p = np.asarray(prevalences, np.float64)
    room = 1.0 - p
    return np.where(room > 0, (ap - p) / np.where(room > 0, room, 1.0), NAP_CHANCE)


def normalized_average_precision(y_true, y_score) -> np.ndarray:
    """Per-attribute normalised AP of [N, A] labels and scores -> [A]: normalize_ap of
    average_precision and prevalence, both over the items not labelled -1."""
    ap = average_precision(y_true, y_score)
    return normalize_ap(ap, prevalence(np.asarray(y_true, np.float64)))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of values, equal values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1]
    ends = np.r_[starts[1:], ordered.size]
    ranks = np.empty(values.size, np.float64)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def binary_roc_auc(y_true, y_score) -> float:
    """ROC-AUC of one binary problem: the chance that a positive outscores a negative, ties
    counting half (the Mann-Whitney U over average ranks), as sklearn's roc_auc_score.

    Samples labelled -1 (unknown) are left out. With one class only (sklearn raises) the AUC
    is undefined; it scores chance, 0.5, as AP scores 0.0 with no positive.
    """
    y_true, y_score = _check_pair(y_true, y_score, ndim=1)
    known = y_true >= 0
    if not known.all():
        y_true, y_score = y_true[known], y_score[known]
    num_pos = int(y_true.sum())
    num_neg = y_true.size - num_pos
    if num_pos == 0 or num_neg == 0:
        return AUC_CHANCE
    ranks = _average_ranks(y_score)
    u = ranks[y_true == 1].sum() - num_pos * (num_pos + 1) / 2.0
    return float(u / (num_pos * num_neg))


def roc_auc(y_true, y_score) -> np.ndarray:
    """Per-attribute ROC-AUC of multi-label scores: [N, A] labels and scores -> [A] (each
    attribute over its items not labelled -1)."""
    y_true, y_score = _check_pair(y_true, y_score, ndim=2)
    return np.array([binary_roc_auc(y_true[:, a], y_score[:, a]) for a in range(y_true.shape[1])])


def _values(per_attribute) -> np.ndarray:
    if isinstance(per_attribute, Mapping):
        per_attribute = list(per_attribute.values())
    values = np.asarray(per_attribute, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise MetricError(f"expected one figure per attribute, got shape {values.shape}")
    return values


def attribute_mean(per_attribute) -> float:
    """The unweighted mean over attributes of per-attribute figures (array or name -> value)."""
    return float(np.mean(_values(per_attribute)))


def attribute_worst(per_attribute) -> float:
    """The worst case over attributes for privacy: the highest figure, the attribute that
    leaks most (array or name -> value)."""
    return float(np.max(_values(per_attribute)))


def privacy_metrics(y_true, y_prob, attributes: Sequence[str]) -> dict:
    """The figures of one privacy model (labels -1 are ignored per attribute).

    "ap": AP per named attribute, "cmap" (their mean) and "macro_f1" at 0.5, as before; and
    the measures with range on skewed labels: "nap" (normalised AP per attribute), "nap_mean",
    "nap_max" (mean and worst case over attributes), "auc" (ROC-AUC per attribute), "auc_mean",
    "auc_max".
    """
    ap = average_precision(y_true, y_prob)
    if len(attributes) != ap.size:
        raise MetricError(f"{len(attributes)} attribute names for {ap.size} label columns")
    nap = normalize_ap(ap, prevalence(np.asarray(y_true, np.float64)))
    auc = roc_auc(y_true, y_prob)

    def named(values):
        return {name: float(v) for name, v in zip(attributes, values, strict=True)}

    return {
        "ap": named(ap),
        "cmap": float(np.mean(ap)),
        "macro_f1": macro_f1(y_true, y_prob),
        "nap": named(nap),
        "nap_mean": attribute_mean(nap),
        "nap_max": attribute_worst(nap),
        "auc": named(auc),
        "auc_mean": attribute_mean(auc),
        "auc_max": attribute_worst(auc),
    }


def worst_case(panel: Mapping[str, Mapping], key: str = "cmap") -> tuple[str, Mapping]:
    """The attacker that leaks most: the panel member with the highest `key` (cMAP unless
    told: "nap_mean", "auc_mean").

    panel maps a model name to its privacy_metrics dict. Ties go to the first in panel order.
    """
    if not panel:
        raise MetricError("worst_case: the privacy panel is empty")
    name = max(panel, key=lambda k: panel[k][key])
    return name, panel[name]


# The worst case over the panel of each headline measure: (figure, key of the attacker's name).
WORST_CASE_MEASURES = (("cmap", "model"), ("nap_mean", "nap_model"), ("auc_mean", "auc_model"))


def worst_case_measures(panel: Mapping[str, Mapping]) -> dict:
    """Each headline measure's worst case over the panel, each taken on its own (the attacker
    that leaks most by cMAP need not by AUC): {"cmap", "model", "nap_mean", "nap_model",
    "auc_mean", "auc_model"}; normalised AP and AUC only where every attacker has them (figures
    computed before they existed have not)."""
    out = {}
    for key, model_key in WORST_CASE_MEASURES:
        if all(key in m for m in panel.values()):
            name, figures = worst_case(panel, key)
            out[key], out[model_key] = figures[key], name
    return out


def mean_std(values: Sequence[float]) -> dict:
    """Mean, population std and the values themselves (std 0 for a single seed)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": [float(v) for v in arr]}


# ---- run health: figures that prove nothing -------------------------------------------------
# A run whose models never learnt, or whose f_d destroyed its input, proves nothing: success
# criteria and comparisons are not met when one of these holds (health_problems says which).
MIN_ABOVE_CHANCE = 0.10  # raw action top-1 / privacy cMAP must beat chance by this much
MIN_OUTPUT_STD_FRACTION = 0.05  # f_d's within-frame std, as a fraction of its input's
MIN_PSNR_DB = 10.0  # f_d's output against its input


def fidelity(inputs, outputs) -> dict:
    """f_d's output against its input, both frames in [0, 1] (any leading shape, [..., H, W,
    C]): PSNR in dB and the mean within-frame standard deviation of output and input (0 for
    frames of one flat colour)."""
    x = np.asarray(inputs, np.float64)
    y = np.asarray(outputs, np.float64)
    if x.shape != y.shape or x.ndim < 3:
        raise MetricError(f"fidelity: inputs {x.shape} and outputs {y.shape} must be equal frames")
    mse = float(np.mean((y - x) ** 2))
    return {
        "psnr_db": float(10.0 * np.log10(1.0 / max(mse, 1e-12))),
        "output_std": float(np.mean(y.std(axis=(-3, -2)))),
        "input_std": float(np.mean(x.std(axis=(-3, -2)))),
    }


def health_problems(raw: dict | None, chance: dict | None, fid: dict | None) -> list[str]:
    """Why figures cannot be trusted: [] when none applies.

    raw / chance: {"action_top1", "privacy_cmap_worst"} of the models on raw data and at
    chance; fid: fidelity() of the degrader. Any of them may be None (not measured).
    """
    problems = []
    if raw and chance:
        if raw["action_top1"] < chance["action_top1"] + MIN_ABOVE_CHANCE:
            problems.append(
                f"the target is at chance on raw clips (top-1 {raw['action_top1']:.3f} vs "
                f"chance {chance['action_top1']:.3f}): no action drop can be measured; "
                "train it longer"
            )
        if raw["privacy_cmap_worst"] < chance["privacy_cmap_worst"] + MIN_ABOVE_CHANCE:
            problems.append(
                f"the privacy models are at chance on raw data (cMAP "
                f"{raw['privacy_cmap_worst']:.3f} vs chance {chance['privacy_cmap_worst']:.3f}):"
                " no privacy fall can be measured; train them longer"
            )
    if fid:
        if fid["output_std"] < MIN_OUTPUT_STD_FRACTION * max(fid["input_std"], 1e-6):
            problems.append(
                f"f_d's output is (nearly) constant within each frame (std {fid['output_std']:.4f}"
                f" vs the input's {fid['input_std']:.4f}): it has collapsed"
            )
        if fid["psnr_db"] < MIN_PSNR_DB:
            problems.append(
                f"f_d's output is far from its input (PSNR {fid['psnr_db']:.1f} dB < "
                f"{MIN_PSNR_DB:.0f} dB): it destroys the frames instead of degrading them"
            )
    return problems
