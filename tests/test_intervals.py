"""Bootstrap intervals and paired comparisons, against sklearn and hand-worked values."""

import numpy as np
import tensorflow as tf
from sklearn.metrics import average_precision_score, roc_auc_score

from tfprivacy import metrics
from tfprivacy.eval import intervals


class IntervalsTest(tf.test.TestCase):
    def test_weighted_ap_equals_sklearn_on_the_resampled_data(self):
        rng = np.random.default_rng(0)
        n = 40
        labels = rng.integers(0, 2, n)
        scores = np.round(rng.random(n), 1)  # many ties
        counts, _ = intervals.draws(n, 2, 25)
        got = intervals.weighted_ap(labels, scores, counts)
        for b in range(25):
            reps = counts[b].astype(int)
            y, s = np.repeat(labels, reps), np.repeat(scores, reps)
            want = average_precision_score(y, s) if y.any() else 0.0
            self.assertAllClose(got[b], want, atol=1e-12)

    def test_weighted_ap_of_unit_weights_by_hand(self):
        # Scores 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 0.5 * 1 + 0.5 * 2/3.
        ap = intervals.weighted_ap([1, 0, 1], [0.9, 0.8, 0.7], np.ones((1, 3)))
        self.assertAllClose(ap, [0.5 + 1 / 3])

    def test_draws_are_fixed_by_their_arguments(self):
        a = intervals.draws(30, 3, 10)
        b = intervals.draws(30, 3, 10)
        self.assertAllEqual(a[0], b[0])
        self.assertAllEqual(a[1], b[1])
        self.assertAllEqual(a[0].sum(axis=1), np.full(10, 30))
        with self.assertRaisesRegex(ValueError, "draws"):
            intervals.draws(0, 3, 10)

    def test_accuracy_replicates(self):
        counts = np.array([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
        seeds = np.array([[0, 1], [1, 1]])
        correct = np.array([[1, 0, 1, 0], [1, 1, 1, 0]])
        # Replicate 0: seeds 0 and 1 on all items: (0.5 + 0.75) / 2. Replicate 1: item 0 of seed 1.
        self.assertAllClose(intervals.accuracy_replicates(correct, counts, seeds), [0.625, 1.0])

    def test_privacy_replicates_worst_case_and_envelope(self):
        labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float64)
        good = labels[None] * 0.8 + 0.1  # perfect ranking on both attributes
        half = np.stack([labels[:, 0] * 0.8 + 0.1, np.full(4, 0.5)], axis=1)[None]
        counts = np.ones((1, 4))
        seeds = np.zeros((1, 1), int)
        out = intervals.privacy_replicates(labels, {"a": half, "b": good}, counts, seeds)
        self.assertAllClose(out["cmap"]["b"], [1.0])
        self.assertAllClose(out["cmap"]["a"], [0.75])  # AP 1 and AP 0.5 (all tied)
        self.assertAllClose(out["worst_cmap"], [1.0])
        self.assertAllClose(out["best_ap"], [[1.0, 1.0]])

    def test_ap_replicates_leave_unknown_items_out(self):
        # -1 (no annotation covers the item for that attribute): the item leaves that
        # attribute's AP in every replicate, as if it had not been drawn; no -1 -> unchanged.
        rng = np.random.default_rng(3)
        n, k = 30, 2
        labels = (rng.random((n, 3)) < 0.5).astype(np.float64)
        probs = np.round(rng.random((k, n, 3)), 1)
        counts, _ = intervals.draws(n, k, 20)
        plain = intervals.ap_replicates(labels, probs, counts)
        for s in range(k):
            for a in range(3):
                want = intervals.weighted_ap(labels[:, a], probs[s, :, a], counts)
                self.assertAllEqual(plain[s, :, a], want)  # bit for bit
        masked = labels.copy()
        masked[::4, 0] = -1
        masked[:, 2] = -1  # nothing known: scored as no positive
        got = intervals.ap_replicates(masked, probs, counts)
        keep = masked[:, 0] >= 0
        for s in range(k):
            want = intervals.weighted_ap(labels[keep, 0], probs[s, keep, 0], counts[:, keep])
            self.assertAllEqual(got[s, :, 0], want)
        self.assertAllEqual(got[:, :, 1], plain[:, :, 1])
        self.assertAllEqual(got[:, :, 2], np.zeros((k, 20)))

    def test_dominance_verdicts(self):
        base = {"action": np.linspace(0.5, 0.6, 101), "worst_cmap": np.linspace(0.7, 0.8, 101)}
        better = {"action": base["action"] + 0.1, "worst_cmap": base["worst_cmap"] - 0.1}
        same = {k: v.copy() for k, v in base.items()}
        traded = {"action": base["action"] - 0.1, "worst_cmap": base["worst_cmap"] - 0.1}
        self.assertEqual(intervals.dominance(base, better, 0.95)["verdict"], "dominates")
        self.assertEqual(intervals.dominance(better, base, 0.95)["verdict"], "dominated")
        self.assertEqual(intervals.dominance(base, same, 0.95)["verdict"], "undecided")
        d = intervals.dominance(base, traded, 0.95)
        self.assertEqual(d["verdict"], "trade-off")
        self.assertAllClose(d["action_top1"]["mean"], -0.1)

    def test_weighted_auc_equals_sklearn_on_the_resampled_data(self):
        rng = np.random.default_rng(1)
        n = 40
        labels = rng.integers(0, 2, n)
        scores = np.round(rng.random(n) + 0.3 * labels, 1)  # many ties
        counts, _ = intervals.draws(n, 2, 25)
        got = intervals.weighted_auc(labels, scores, counts)
        for b in range(25):
            reps = counts[b].astype(int)
            y, s = np.repeat(labels, reps), np.repeat(scores, reps)
            want = roc_auc_score(y, s) if 0 < y.sum() < y.size else 0.5
            self.assertAllClose(got[b], want, atol=1e-12)
        # One class in the draw: 0.5, as metrics.binary_roc_auc.
        self.assertAllClose(intervals.weighted_auc([1, 1], [0.2, 0.9], np.ones((1, 2))), [0.5])

    def test_nap_and_auc_replicates_equal_metrics_on_the_resampled_data(self):
        rng = np.random.default_rng(4)
        n, k = 30, 2
        labels = (rng.random((n, 3)) < [0.9, 0.5, 0.2]).astype(np.float64)
        labels[::5, 1] = -1  # unknown: left out, as metrics leaves it out
        probs = np.round(rng.random((k, n, 3)), 1)
        counts, _ = intervals.draws(n, k, 12)
        nap = intervals.nap_replicates(labels, probs, counts)
        auc = intervals.auc_replicates(labels, probs, counts)
        self.assertEqual(nap.shape, (k, 12, 3))
        for b in range(12):
            reps = counts[b].astype(int)
            y = np.repeat(labels, reps, axis=0)
            for s in range(k):
                p = np.repeat(probs[s], reps, axis=0)
                self.assertAllClose(nap[s, b], metrics.normalized_average_precision(y, p))
                self.assertAllClose(auc[s, b], metrics.roc_auc(y, p))
            self.assertAllClose(
                intervals.prevalence_replicates(labels, counts)[b], metrics.prevalence(y)
            )

    def test_privacy_replicates_normalised_ap_and_auc(self):
        # As in the worst-case test above: "b" ranks both attributes perfectly (normalised AP
        # 1, AUC 1); "a" ranks attribute 0 perfectly and ties all of attribute 1 (normalised
        # AP 0, AUC 0.5): means 0.5 and 0.75.
        labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float64)
        good = labels[None] * 0.8 + 0.1
        half = np.stack([labels[:, 0] * 0.8 + 0.1, np.full(4, 0.5)], axis=1)[None]
        counts = np.ones((1, 4))
        seeds = np.zeros((1, 1), int)
        out = intervals.privacy_replicates(labels, {"a": half, "b": good}, counts, seeds)
        self.assertAllClose(out["nap"]["a"], [0.5])
        self.assertAllClose(out["nap"]["b"], [1.0])
        self.assertAllClose(out["auc"]["a"], [0.75])
        self.assertAllClose(out["worst_nap"], [1.0])
        self.assertAllClose(out["worst_auc"], [1.0])

    def test_replicate_intervals_contain_the_point_values(self):
        # Three seeds of a two-attacker panel on 300 test items with skewed attributes: the
        # point figure (mean over seeds of the worst case over the panel, as protocol.aggregate
        # computes it) lies in the 95% interval of its replicates, for cMAP, normalised AP and
        # AUC, worst case and per attacker.
        rng = np.random.default_rng(11)
        n, k = 300, 3
        labels = (rng.random((n, 5)) < [0.9, 0.75, 0.8, 0.6, 0.16]).astype(np.float64)
        labels[rng.random((n, 5)) < 0.1] = -1
        signal = np.where(labels > 0, 1.0, -1.0)
        panel = {
            arch: 1.0 / (1.0 + np.exp(-(strength * signal + rng.normal(size=(k, n, 5)))))
            for arch, strength in (("weak", 0.4), ("strong", 0.8))
        }
        counts, seeds = intervals.draws(n, k, 400)
        reps = intervals.privacy_replicates(labels, panel, counts, seeds)
        names = [str(a) for a in range(5)]
        figures = {
            arch: [metrics.privacy_metrics(labels, p[s], names) for s in range(k)]
            for arch, p in panel.items()
        }
        for key, rep in (("cmap", "cmap"), ("nap_mean", "nap"), ("auc_mean", "auc")):
            worst = np.mean([max(figures[a][s][key] for a in panel) for s in range(k)])
            lo, hi = intervals.interval(reps[f"worst_{rep}"], 0.95)
            self.assertBetween(worst, lo, hi, msg=key)
            self.assertLess(hi - lo, 0.2, msg=key)
            for arch in panel:
                point = np.mean([f[key] for f in figures[arch]])
                lo, hi = intervals.interval(reps[rep][arch], 0.95)
                self.assertBetween(point, lo, hi, msg=f"{arch} {key}")
        self.assertGreater(np.mean(reps["worst_nap"]), 0.1)  # well above chance (0)
        self.assertGreater(np.mean(reps["worst_auc"]), 0.6)  # (0.5)

    def test_dominance_is_judged_on_normalised_ap(self):
        # cMAP the same for both; normalised AP lower for `better`: decided on normalised AP,
        # with cMAP's difference shown beside it.
        base = {
            "action": np.linspace(0.5, 0.6, 101),
            "worst_cmap": np.linspace(0.7, 0.8, 101),
            "worst_nap": np.linspace(0.3, 0.4, 101),
        }
        better = {**base, "action": base["action"] + 0.1, "worst_nap": base["worst_nap"] - 0.1}
        d = intervals.dominance(base, better, 0.95)
        self.assertEqual(d["verdict"], "dominates")
        self.assertEqual(d["measure"], "worst_nap")
        self.assertAllClose(d["worst_nap"]["mean"], -0.1)
        self.assertEqual(d["worst_cmap"]["sign"], 0)
        # cMAP lower but normalised AP the same: no longer a win.
        cmap_only = {**base, "action": base["action"] + 0.1, "worst_cmap": base["worst_cmap"] - 0.1}
        self.assertEqual(intervals.dominance(base, cmap_only, 0.95)["verdict"], "undecided")
        # Replicates without normalised AP (made before it existed): cMAP, as before.
        old = {k: v for k, v in base.items() if k != "worst_nap"}
        self.assertEqual(intervals.dominance(old, cmap_only, 0.95)["measure"], "worst_cmap")
        self.assertEqual(intervals.dominance(old, cmap_only, 0.95)["verdict"], "dominates")

    def test_summary_and_interval(self):
        s = intervals.summary([0.6, 0.8], np.linspace(0.5, 0.9, 1001), 0.9)
        self.assertAllClose(s["mean"], 0.7)
        self.assertAllClose(s["ci"], [0.52, 0.88])


if __name__ == "__main__":
    tf.test.main()
