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


if __name__ == "__main__":
    tf.test.main()
