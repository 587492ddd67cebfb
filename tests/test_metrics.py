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


if __name__ == "__main__":
    tf.test.main()
