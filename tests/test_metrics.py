"""Metrics against sklearn and against values worked out by hand."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from sklearn import metrics as skm

from tfprivacy import metrics


class AveragePrecisionTest(tf.test.TestCase, parameterized.TestCase):
    def test_hand_worked_no_ties(self):
        # Ranked: 1 (0.9), 0 (0.8), 1 (0.7), 0 (0.1).
        # Thresholds: P=1/1 R=1/2; P=1/2 R=1/2; P=2/3 R=1; P=2/4 R=1.
        # AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 + 0 = 0.5 + 1/3.
        ap = metrics.binary_average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
        self.assertAllClose(ap, 0.5 + 1 / 3)

    def test_hand_worked_ties_enter_together(self):
        # Scores 0.5, 0.5 are one threshold: TP=1 of 2 predicted, P=1/2, R=1/2.
        # Then 0.2: TP=2 of 3, P=2/3, R=1. AP = 1/2 * 1/2 + 1/2 * 2/3 = 1/4 + 1/3.
        ap = metrics.binary_average_precision([1, 0, 1], [0.5, 0.5, 0.2])
        self.assertAllClose(ap, 0.25 + 1 / 3)

    def test_no_positive_is_zero_like_sklearn(self):
        self.assertEqual(metrics.binary_average_precision([0, 0, 0], [0.1, 0.5, 0.3]), 0.0)

    def test_perfect_ranking_is_one(self):
        self.assertAllClose(metrics.binary_average_precision([0, 1, 1], [0.1, 0.8, 0.9]), 1.0)

    @parameterized.parameters(0, 1, 2, 3)
    def test_matches_sklearn_random(self, seed):
        rng = np.random.default_rng(seed)
        y = (rng.random((40, 5)) < 0.4).astype(np.int64)
        y[0] = 1  # every attribute has a positive
        # Rounded scores create ties, the case where AP definitions differ.
        s = np.round(rng.random((40, 5)) + 0.5 * y, 1)
        self.assertAllClose(
            metrics.average_precision(y, s), skm.average_precision_score(y, s, average=None)
        )
        self.assertAllClose(metrics.cmap(y, s), skm.average_precision_score(y, s, average="macro"))

    def test_cmap_hand_worked(self):
        # Column 0 is the no-ties example (AP 5/6); column 1 is perfectly ranked (AP 1).
        y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
        s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9], [0.1, 0.8]])
        self.assertAllClose(metrics.average_precision(y, s), [5 / 6, 1.0])
        self.assertAllClose(metrics.cmap(y, s), (5 / 6 + 1) / 2)

    def test_bad_inputs_named(self):
        with self.assertRaisesRegex(metrics.MetricError, "shape"):
            metrics.average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
        with self.assertRaisesRegex(metrics.MetricError, "binary"):
            metrics.average_precision(np.full((3, 2), 2), np.zeros((3, 2)))
        with self.assertRaisesRegex(metrics.MetricError, "NaN"):
            metrics.cmap(np.ones((2, 1)), np.full((2, 1), np.nan))


class F1AndPanelTest(tf.test.TestCase, parameterized.TestCase):
    def test_macro_f1_hand_worked(self):
        y = np.array([[1, 0], [0, 1], [1, 1]])
        p = np.array([[0.9, 0.4], [0.6, 0.7], [0.2, 0.5]])
        # Predictions at >= 0.5: [[1,0],[1,1],[0,1]].
        # Col 0: TP 1, FP 1, FN 1 -> F1 = 2/(2+1+1) = 0.5. Col 1: TP 2, FP 0, FN 0 -> 1.
        self.assertAllClose(metrics.macro_f1(y, p), 0.75)
        self.assertAllClose(metrics.macro_f1(y, p), skm.f1_score(y, p >= 0.5, average="macro"))

    def test_macro_f1_empty_column_zero(self):
        # Column 1: no positives and no predictions -> 0 (sklearn's zero_division default).
        y = np.array([[1, 0], [0, 0]])
        p = np.array([[0.9, 0.1], [0.1, 0.1]])
        self.assertAllClose(metrics.macro_f1(y, p), 0.5)

    @parameterized.parameters(5, 6)
    def test_macro_f1_matches_sklearn(self, seed):
        rng = np.random.default_rng(seed)
        y = (rng.random((30, 5)) < 0.5).astype(int)
        p = rng.random((30, 5))
        self.assertAllClose(
            metrics.macro_f1(y, p), skm.f1_score(y, p >= 0.5, average="macro", zero_division=0)
        )

    def test_worst_case_picks_highest_cmap_first_on_tie(self):
        panel = {"a": {"cmap": 0.6}, "b": {"cmap": 0.8}, "c": {"cmap": 0.8}}
        name, m = metrics.worst_case(panel)
        self.assertEqual(name, "b")
        self.assertEqual(m["cmap"], 0.8)
        with self.assertRaisesRegex(metrics.MetricError, "empty"):
            metrics.worst_case({})

    def test_privacy_metrics_and_chance(self):
        y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
        s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9], [0.1, 0.8]])
        m = metrics.privacy_metrics(y, s, ("face", "gender"))
        self.assertAllClose(m["ap"]["face"], 5 / 6)
        self.assertAllClose(m["cmap"], 11 / 12)
        # Prevalence 2/4 in both columns.
        self.assertAllClose(metrics.cmap_chance(y), 0.5)

    def test_top1_and_mean_std(self):
        logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
        self.assertAllClose(metrics.top1_accuracy([0, 1, 1], logits), 2 / 3)
        stats = metrics.mean_std([0.5, 0.7])
        self.assertAllClose(stats["mean"], 0.6)
        self.assertAllClose(stats["std"], 0.1)


def _old_binary_ap(y_true, y_score):
    """binary_average_precision as it was before unknown labels (reference, bit for bit)."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=np.float64)
    num_pos = y_true.sum()
    if num_pos == 0:
        return 0.0
    order = np.argsort(-y_score, kind="mergesort")
    scores, labels = y_score[order], y_true[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tps = np.cumsum(labels)[last]
    precision = tps / (last + 1)
    recall = tps / num_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _old_macro_f1(y_true, y_prob, threshold=0.5):
    y_true = np.asarray(y_true).astype(np.int64)
    pred = (np.asarray(y_prob, np.float64) >= threshold).astype(np.int64)
    tp = np.sum(pred * y_true, axis=0)
    fp = np.sum(pred * (1 - y_true), axis=0)
    fn = np.sum((1 - pred) * y_true, axis=0)
    denom = 2 * tp + fp + fn
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def _random(seed, n=40, unknown=0.0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 5)) < 0.4).astype(np.float32)
    y[:2] = [1, 0, 1, 0, 1], [0, 1, 0, 1, 0]  # a positive and a negative per attribute
    s = np.round(rng.random((n, 5)) + 0.5 * y, 1)  # ties
    unknown_mask = rng.random((n, 5)) < unknown
    unknown_mask[:2] = False
    y[unknown_mask] = -1
    return y, s


class UnknownLabelsTest(tf.test.TestCase, parameterized.TestCase):
    """-1 = unknown (no annotation covers the item for that attribute): ignored per attribute."""

    @parameterized.parameters(0, 1, 2)
    def test_ignore_unknown_equals_sklearn_on_the_known_items(self, seed):
        y, s = _random(seed, unknown=0.3)
        self.assertTrue((y < 0).any())
        p = np.clip(s, 0.0, 1.0)
        known = [y[:, a] >= 0 for a in range(5)]
        ap = [skm.average_precision_score(y[k, a], s[k, a]) for a, k in enumerate(known)]
        f1 = [
            skm.f1_score(y[k, a].astype(int), (p[k, a] >= 0.5).astype(int), zero_division=0)
            for a, k in enumerate(known)
        ]
        self.assertAllClose(metrics.average_precision(y, s), ap)
        self.assertAllClose(metrics.cmap(y, s), np.mean(ap))
        self.assertAllClose(metrics.macro_f1(y, p), np.mean(f1))
        m = metrics.privacy_metrics(y, p, ("a", "b", "c", "d", "e"))
        p_ap = [skm.average_precision_score(y[k, a], p[k, a]) for a, k in enumerate(known)]
        self.assertAllClose(m["cmap"], np.mean(p_ap))
        self.assertAllClose(m["macro_f1"], np.mean(f1))
        prevalence = [y[k, a].mean() for a, k in enumerate(known)]
        self.assertAllClose(metrics.prevalence(y), prevalence)
        self.assertAllClose(metrics.cmap_chance(y), np.mean(prevalence))

    def test_hand_worked_unknown(self):
        # Column 0: the item at 0.8 is unknown; left out, ranking 1 (0.9), 1 (0.7), 0 (0.1)
        # is perfect: AP 1 (it would be 5/6 if it counted as absent). Column 1 is unknown
        # everywhere: scored as an attribute with no positive, AP 0, F1 0, prevalence 0.
        y = np.array([[1, -1], [-1, -1], [1, -1], [0, -1]])
        s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9], [0.1, 0.8]])
        self.assertAllClose(metrics.average_precision(y, s), [1.0, 0.0])
        self.assertEqual(metrics.binary_average_precision(y[:, 0], s[:, 0]), 1.0)
        # Predictions >= 0.5 in column 0: the three known items right -> F1 1; column 1: 0.
        self.assertAllClose(metrics.macro_f1(y, s), 0.5)
        self.assertAllClose(metrics.prevalence(y), [2 / 3, 0.0])
        self.assertAllClose(metrics.cmap_chance(y), 1 / 3)

    @parameterized.parameters(3, 4, 5)
    def test_without_unknown_bit_identical_to_the_old_formulas(self, seed):
        y, s = _random(seed)
        p = np.clip(s, 0.0, 1.0)
        old_ap = [_old_binary_ap(y[:, a], s[:, a]) for a in range(5)]
        self.assertEqual(metrics.average_precision(y, s).tolist(), old_ap)
        self.assertEqual(metrics.cmap(y, s), float(np.mean(old_ap)))
        self.assertEqual(metrics.macro_f1(y, p), _old_macro_f1(y, p))
        self.assertEqual(metrics.cmap_chance(y), float(np.mean(y.astype(np.float64).mean(0))))
        self.assertEqual(metrics.prevalence(y).tolist(), y.mean(axis=0).tolist())
        self.assertEqual(metrics.prevalence(y).dtype, y.dtype)  # float32 stays float32

    def test_only_minus_one_zero_one_allowed(self):
        with self.assertRaisesRegex(metrics.MetricError, "binary.*-1 for unknown"):
            metrics.average_precision(np.full((3, 2), -2), np.zeros((3, 2)))
        metrics.average_precision(np.full((3, 2), -1), np.zeros((3, 2)))  # no error


# PA-HMDB51's attribute prevalences (skin colour, face, gender, nudity, relationship): chance
# cMAP, their mean, is ~69 while the published raw cMAP is ~70.
PA_HMDB51_PREVALENCE = np.array([0.972, 0.750, 0.980, 0.597, 0.157])


class SkewedMeasuresTest(tf.test.TestCase, parameterized.TestCase):
    """Normalised AP, (AP - p) / (1 - p), and ROC-AUC: measures that keep their range when an
    attribute is nearly always (or never) present."""

    def test_normalized_ap_hand_worked(self):
        # The no-ties example: AP 5/6 at prevalence 1/2 -> (5/6 - 1/2) / (1/2) = 2/3.
        y = np.array([[1], [0], [1], [0]])
        self.assertAllClose(
            metrics.normalized_average_precision(y, [[0.9], [0.8], [0.7], [0.1]]), [2 / 3]
        )
        # Perfect ranking: 1. All scores tied: AP = prevalence, 0 (chance).
        self.assertAllClose(metrics.normalized_average_precision(y, [[1], [0], [1], [0]]), [1.0])
        self.assertAllClose(metrics.normalized_average_precision(y, np.full((4, 1), 0.5)), [0.0])
        # Below chance is negative: ranked 0 (0.9), 1 (0.2), 1 (0.1): AP 1/2 * 1/2 + 1/2 * 2/3
        # = 7/12 at prevalence 2/3 -> (7/12 - 8/12) / (4/12) = -1/4.
        self.assertAllClose(
            metrics.normalized_average_precision([[0], [1], [1]], [[0.9], [0.2], [0.1]]), [-0.25]
        )
        self.assertAllClose(metrics.normalize_ap([5 / 6, 0.5], [0.5, 0.5]), [2 / 3, 0.0])

    def test_roc_auc_hand_worked(self):
        # Positives 0.9, 0.7 against negatives 0.8, 0.1: 3 of the 4 pairs ordered right.
        self.assertAllClose(metrics.binary_roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]), 0.75)
        # Ties count half: positives 0.5, 0.2 against the negative 0.5: (0.5 + 0) / 2.
        self.assertAllClose(metrics.binary_roc_auc([1, 0, 1], [0.5, 0.5, 0.2]), 0.25)
        self.assertAllClose(metrics.binary_roc_auc([0, 1, 1], [0.1, 0.8, 0.9]), 1.0)
        self.assertAllClose(metrics.binary_roc_auc([1, 0, 1, 0], [0.3] * 4), 0.5)

    def test_one_class_scores_chance_like_ap(self):
        # AP's convention: no positive -> 0.0 (its chance, prevalence 0); every item positive
        # -> AP 1 whatever the scores. Normalised AP 0 and AUC 0.5 (chance), never NaN.
        s = np.array([[0.9, 0.1, 0.4], [0.2, 0.8, 0.6]])
        y = np.array([[1, 0, -1], [1, 0, -1]])  # all positive, all negative, all unknown
        self.assertAllEqual(metrics.average_precision(y, s), [1.0, 0.0, 0.0])
        self.assertAllEqual(metrics.normalized_average_precision(y, s), [0.0, 0.0, 0.0])
        self.assertAllEqual(metrics.roc_auc(y, s), [0.5, 0.5, 0.5])
        m = metrics.privacy_metrics(y, s, ("a", "b", "c"))
        self.assertEqual(m["nap_mean"], 0.0)
        self.assertEqual(m["auc_mean"], 0.5)

    @parameterized.parameters(0, 1, 2)
    def test_match_sklearn_and_ignore_unknown(self, seed):
        y, s = _random(seed, unknown=0.3)
        self.assertTrue((y < 0).any())
        known = [y[:, a] >= 0 for a in range(5)]
        auc = [skm.roc_auc_score(y[k, a], s[k, a]) for a, k in enumerate(known)]
        ap = [skm.average_precision_score(y[k, a], s[k, a]) for a, k in enumerate(known)]
        p = [y[k, a].mean() for a, k in enumerate(known)]
        nap = [(ap[a] - p[a]) / (1 - p[a]) for a in range(5)]
        self.assertAllClose(metrics.roc_auc(y, s), auc)
        self.assertAllClose(metrics.normalized_average_precision(y, s), nap)
        m = metrics.privacy_metrics(y, np.clip(s, 0.0, 1.0), ("a", "b", "c", "d", "e"))
        clipped = np.clip(s, 0.0, 1.0)
        auc = [skm.roc_auc_score(y[k, a], clipped[k, a]) for a, k in enumerate(known)]
        self.assertAllClose(list(m["auc"].values()), auc)
        self.assertAllClose(m["auc_mean"], np.mean(auc))
        self.assertAllClose(m["auc_max"], np.max(auc))
        self.assertAllClose(m["nap_mean"], np.mean(list(m["nap"].values())))
        self.assertAllClose(m["nap_max"], np.max(list(m["nap"].values())))

    def test_unknown_hand_worked(self):
        # Column 0 as in UnknownLabelsTest: the unknown item at 0.8 left out, the rest ranked
        # perfectly: AP 1 at prevalence 2/3 -> normalised AP 1, AUC 1 (counted as a negative
        # it would be 2/3 and 3/4).
        y = np.array([[1, 1], [-1, 0], [1, 1], [0, 0]])
        s = np.array([[0.9, 0.9], [0.8, 0.8], [0.7, 0.7], [0.1, 0.1]])
        self.assertAllClose(metrics.normalized_average_precision(y, s), [1.0, 2 / 3])
        self.assertAllClose(metrics.roc_auc(y, s), [1.0, 0.75])

    def test_attribute_mean_and_worst(self):
        self.assertAllClose(metrics.attribute_mean({"a": 0.2, "b": 0.6}), 0.4)
        self.assertAllClose(metrics.attribute_worst({"a": 0.2, "b": 0.6}), 0.6)
        self.assertAllClose(metrics.attribute_worst(np.array([-0.1, -0.3])), -0.1)
        with self.assertRaisesRegex(metrics.MetricError, "per attribute"):
            metrics.attribute_mean([])

    def test_privacy_metrics_keeps_its_keys_and_adds_the_new_ones(self):
        y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
        s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9], [0.1, 0.8]])
        m = metrics.privacy_metrics(y, s, ("face", "gender"))
        self.assertEqual(
            set(m),
            {"ap", "cmap", "macro_f1", "nap", "nap_mean", "nap_max", "auc", "auc_mean", "auc_max"},
        )
        self.assertAllClose(m["cmap"], 11 / 12)
        # face: AP 5/6 at 1/2 -> 2/3, AUC 3/4; gender: perfect -> 1, 1.
        self.assertAllClose(m["nap"], {"face": 2 / 3, "gender": 1.0})
        self.assertAllClose(m["auc"], {"face": 0.75, "gender": 1.0})
        self.assertAllClose([m["nap_mean"], m["nap_max"]], [5 / 6, 1.0])
        self.assertAllClose([m["auc_mean"], m["auc_max"]], [0.875, 1.0])

    def test_worst_case_per_measure(self):
        panel = {
            "a": {"cmap": 0.8, "nap_mean": 0.1, "auc_mean": 0.6},
            "b": {"cmap": 0.7, "nap_mean": 0.3, "auc_mean": 0.55},
        }
        self.assertEqual(metrics.worst_case(panel)[0], "a")  # cMAP, as before
        self.assertEqual(metrics.worst_case(panel, "nap_mean")[0], "b")
        self.assertEqual(
            metrics.worst_case_measures(panel),
            {
                "cmap": 0.8,
                "model": "a",
                "nap_mean": 0.3,
                "nap_model": "b",
                "auc_mean": 0.6,
                "auc_model": "a",
            },
        )
        # Figures made before normalised AP and AUC existed: cMAP's worst case only.
        self.assertEqual(
            metrics.worst_case_measures({"a": {"cmap": 0.5}}), {"cmap": 0.5, "model": "a"}
        )

    def test_pa_hmdb51_prevalences_cmap_barely_moves_the_others_do(self):
        # Labels drawn with PA-HMDB51's prevalences; a scorer at chance (uniform noise) against
        # a weakly informative one (logit +-0.2 plus unit noise). cMAP moves by a few points
        # (like raw ~70 against chance ~69): most of its range sits below the prevalences.
        # Normalised AP and AUC, ranged from chance to perfect, move several times as much.
        rng = np.random.default_rng(7)
        n = 2000
        y = (rng.random((n, 5)) < PA_HMDB51_PREVALENCE).astype(np.int64)
        chance = rng.random((n, 5))
        informative = 1.0 / (1.0 + np.exp(-(0.2 * (2 * y - 1) + rng.normal(size=(n, 5)))))
        names = ("skin_color", "face", "gender", "nudity", "relationship")
        at_chance = metrics.privacy_metrics(y, chance, names)
        leaking = metrics.privacy_metrics(y, informative, names)
        self.assertAllClose(metrics.cmap_chance(y), PA_HMDB51_PREVALENCE.mean(), atol=0.01)
        self.assertAllClose(at_chance["cmap"], metrics.cmap_chance(y), atol=0.01)
        self.assertAllClose(at_chance["nap_mean"], 0.0, atol=0.1)
        self.assertAllClose(at_chance["auc_mean"], 0.5, atol=0.03)
        gap_cmap = leaking["cmap"] - at_chance["cmap"]
        gap_nap = leaking["nap_mean"] - at_chance["nap_mean"]
        gap_auc = leaking["auc_mean"] - at_chance["auc_mean"]
        self.assertBetween(gap_cmap, 0.0, 0.06)
        self.assertGreater(gap_nap, 0.15)
        self.assertGreater(gap_auc, 0.07)
        self.assertGreater(gap_nap, 3 * gap_cmap)
        self.assertGreater(gap_auc, 1.5 * gap_cmap)
        # On the two near-universal attributes AP hardly moves at all, normalised AP does.
        for a in ("skin_color", "gender"):
            self.assertLess(leaking["ap"][a] - at_chance["ap"][a], 0.02)
        self.assertGreater(
            np.mean([leaking["nap"][a] - at_chance["nap"][a] for a in ("skin_color", "gender")]),
            0.1,
        )
        # With -1 (unknown) labels mixed in, the figures are those of the known items alone.
        masked = y.copy()
        unknown = rng.random((n, 5)) < 0.2
        masked[unknown] = -1
        m = metrics.privacy_metrics(masked, informative, names)
        for j, a in enumerate(names):
            keep = ~unknown[:, j]
            want = metrics.privacy_metrics(y[keep, j : j + 1], informative[keep, j : j + 1], [a])
            self.assertAllClose(m["nap"][a], want["nap"][a])
            self.assertAllClose(m["auc"][a], want["auc"][a])


if __name__ == "__main__":
    tf.test.main()
