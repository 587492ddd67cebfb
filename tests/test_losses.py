"""Golden-value tests for tfprivacy.losses; every expected number is worked out in a comment."""

import math

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfprivacy import losses

LN2, LN3, LN4 = math.log(2.0), math.log(3.0), math.log(4.0)


class TargetAndPrivacyLossTest(tf.test.TestCase):
    def test_target_loss(self):
        # Row 0: 4 equal logits -> p = 1/4 each -> CE = log 4.
        # Row 1: logits (ln 3, 0) -> softmax (3/4, 1/4); label 0 -> -log(3/4) = log(4/3).
        logits = tf.constant([[0.0, 0.0, 0.0, 0.0], [LN3, 0.0, -50.0, -50.0]])
        out = losses.target_loss(tf.constant([2, 0]), logits)
        self.assertEqual(out.shape, (2,))
        self.assertAllClose(out, [LN4, math.log(4.0 / 3.0)], atol=1e-6)

    def test_privacy_loss(self):
        # Row 0: logits 0 -> p = 0.5 -> BCE log 2 for every attribute, whatever the labels.
        # Row 1: sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; labels (1, 0) -> each attribute
        # costs -log(3/4); mean = log(4/3).  Row 2: labels (0, 1) -> each -log(1/4) = log 4.
        logits = tf.constant([[0.0, 0.0], [LN3, -LN3], [LN3, -LN3]])
        labels = tf.constant([[1, 0], [1, 0], [0, 1]])
        self.assertAllClose(
            losses.privacy_loss(labels, logits), [LN2, math.log(4.0 / 3.0), LN4], atol=1e-6
        )
        self.assertAllClose(
            losses.negative_privacy_loss(labels, logits),
            [-LN2, -math.log(4.0 / 3.0), -LN4],
            atol=1e-6,
        )

    def test_privacy_softmax_loss_index_and_one_hot_agree(self):
        # logits (ln 3, 0): p = (3/4, 1/4); class 1 -> -log(1/4) = log 4.
        logits = tf.constant([[LN3, 0.0]])
        self.assertAllClose(losses.privacy_softmax_loss(tf.constant([1]), logits), [LN4])
        self.assertAllClose(losses.privacy_softmax_loss(tf.constant([[0.0, 1.0]]), logits), [LN4])

    def test_float16_logits_give_float32_losses(self):
        out = losses.privacy_loss(tf.zeros([2, 5]), tf.zeros([2, 5], tf.float16))
        self.assertEqual(out.dtype, tf.float32)
        self.assertAllClose(out, [LN2, LN2])


def _old_privacy_loss(labels, logits):
    """privacy_loss as it was before unknown labels: the reference for bit-identity."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, logits.dtype)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(bce, axis=-1)


def _random_batch(seed, batch=16, attributes=5, unknown=0.0):
    rng = np.random.default_rng(seed)
    logits = (3.0 * rng.standard_normal((batch, attributes))).astype(np.float32)
    labels = (rng.random((batch, attributes)) < 0.4).astype(np.float32)
    labels[rng.random((batch, attributes)) < unknown] = -1.0
    return tf.constant(labels), tf.constant(logits)


class UnknownLabelsTest(tf.test.TestCase, parameterized.TestCase):
    """Entries labelled -1 (no annotation covers them) are left out of the privacy losses."""

    def test_privacy_loss_ignores_unknown_entries(self):
        # Row 0: attributes (1, -1, 0) with logits (ln 3, 5, 0): mean of -log(3/4) and log 2
        # over the 2 known entries; the unknown one (whatever its logit) is left out.
        # Row 1: every entry unknown -> 0 (adds nothing). Row 2: all known -> the plain mean,
        # log 4 (labels 0, 0, 0 at logits ln 3: -log(1/4) each).
        logits = tf.constant([[LN3, 5.0, 0.0], [1.0, -2.0, 3.0], [LN3, LN3, LN3]])
        labels = tf.constant([[1.0, -1.0, 0.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]])
        expected = [(math.log(4.0 / 3.0) + LN2) / 2, 0.0, LN4]
        self.assertAllClose(losses.privacy_loss(labels, logits), expected, atol=1e-6)
        self.assertAllClose(losses.negative_privacy_loss(labels, logits), -np.array(expected))
        self.assertAllClose(tf.function(losses.privacy_loss)(labels, logits), expected)

    def test_unknown_entries_get_no_gradient(self):
        labels, logits = _random_batch(1, unknown=0.3)
        z = tf.Variable(logits)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses.privacy_loss(labels, z))
        grad = tape.gradient(loss, z).numpy()
        unknown = labels.numpy() < 0
        self.assertTrue(unknown.any())
        self.assertAllEqual(grad[unknown], np.zeros(unknown.sum()))
        self.assertTrue(np.all(grad[~unknown] != 0.0))
        self.assertTrue(np.isfinite(grad).all())

    @parameterized.parameters(0, 1, 2)
    def test_without_unknown_bit_identical_to_the_old_formula(self, seed):
        labels, logits = _random_batch(seed)
        old = _old_privacy_loss(labels, logits)
        self.assertAllEqual(losses.privacy_loss(labels, logits), old)
        self.assertAllEqual(losses.negative_privacy_loss(labels, logits), -old)
        self.assertAllEqual(tf.function(losses.privacy_loss)(labels, logits), old)
        # float16 logits (mixed precision) and int labels take the same path.
        half = tf.cast(logits, tf.float16)
        self.assertAllEqual(
            losses.privacy_loss(tf.cast(labels, tf.int32), half), _old_privacy_loss(labels, half)
        )

        # Gradients too, eager and traced (the steps run in a tf.function).
        def grads(fn):
            z = tf.Variable(logits)
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(fn(labels, z), global_batch_size=32)
            return tape.gradient(loss, z)

        self.assertAllEqual(grads(losses.privacy_loss), grads(_old_privacy_loss))
        z = tf.Variable(logits)

        @tf.function
        def traced(fn):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(fn(labels, z), global_batch_size=32)
            return loss, tape.gradient(loss, z)

        new_loss, new_grad = traced(losses.privacy_loss)
        old_loss, old_grad = traced(_old_privacy_loss)
        self.assertAllEqual(new_loss, old_loss)
        self.assertAllEqual(new_grad, old_grad)

    @parameterized.parameters(0, 1)
    def test_kbeam_without_unknown_bit_identical_to_the_old_formula(self, seed):
        labels, a = _random_batch(seed)
        _, b = _random_batch(seed + 10)
        per_model = tf.stack([_old_privacy_loss(labels, z) for z in (a, b)], axis=0)
        best = tf.argmin(tf.reduce_mean(per_model, axis=1), output_type=tf.int32)
        loss, idx = losses.kbeam_degrader_loss(labels, [a, b])
        self.assertEqual(int(idx), int(best))
        self.assertAllEqual(loss, -tf.gather(per_model, best))
        worst = losses.worst_case_over_models(
            [losses.negative_privacy_loss(labels, z) for z in (a, b)]
        )
        self.assertAllEqual(worst, tf.reduce_max(-per_model, axis=0))

    def test_kbeam_choice_ignores_unknown_entries(self):
        # Known entries: label 1 on attribute 0 only. Model A is right there (logit 4) but
        # badly wrong on the unknown attribute 1 (logit 9 against a -1 that must not count);
        # model B is unsure (logit 0) on both. Ignoring the unknown entry, A has the lower
        # loss (log(1 + e^-4) < log 2), so kbeam picks A; counting it as absent would pick B.
        labels = tf.constant([[1.0, -1.0], [1.0, -1.0]])
        a = tf.constant([[4.0, 9.0], [4.0, 9.0]])
        b = tf.constant([[0.0, 0.0], [0.0, 0.0]])
        loss, idx = losses.kbeam_degrader_loss(labels, [a, b])
        self.assertEqual(int(idx), 0)
        self.assertAllClose(loss, [-math.log1p(math.exp(-4.0))] * 2, atol=1e-6)
        _, idx_if_absent = losses.kbeam_degrader_loss(tf.maximum(labels, 0.0), [a, b])
        self.assertEqual(int(idx_if_absent), 1)


class UncertaintyTest(tf.test.TestCase, parameterized.TestCase):
    def test_negative_entropy_multilabel(self):
        # logits 0: p = 0.5 -> 0.5 log 0.5 + 0.5 log 0.5 = -log 2 (the minimum).
        # logits ln 3: p = 3/4 -> 3/4 log(3/4) + 1/4 log(1/4) = 3/4 log 3 - log 4.
        # Row 1 averages attribute values (-log 2) and (3/4 log 3 - log 4).
        logits = tf.constant([[0.0, 0.0], [0.0, LN3]])
        worked = 0.75 * LN3 - LN4
        self.assertAllClose(
            losses.negative_entropy(logits), [-LN2, 0.5 * (-LN2 + worked)], atol=1e-6
        )

    def test_negative_entropy_single_label(self):
        # K = 4 equal logits: sum 1/4 log 1/4 = -log 4.  (ln 3, 0): 3/4 log 3 - log 4 as above.
        logits = tf.constant([[0.0, 0.0, 0.0, 0.0], [LN3, 0.0, -80.0, -80.0]])
        self.assertAllClose(
            losses.negative_entropy(logits, multilabel=False), [-LN4, 0.75 * LN3 - LN4], atol=1e-5
        )

    def test_negative_entropy_is_finite_for_saturated_logits(self):
        out = losses.negative_entropy(tf.constant([[200.0, -200.0]]))
        self.assertAllClose(out, [0.0], atol=1e-6)  # certain prediction: p log p -> 0

    def test_uniform_cross_entropy_multilabel(self):
        # Target 0.5: logits 0 -> -(0.5 log 0.5 + 0.5 log 0.5) = log 2 (the minimum).
        # logits ln 3 -> -(0.5 log 3/4 + 0.5 log 1/4) = log 4 - 0.5 log 3; the same for -ln 3
        # (a 0.5 target is symmetric; the official all-ones target was not).
        logits = tf.constant([[0.0, 0.0], [LN3, LN3], [-LN3, -LN3]])
        expected = LN4 - 0.5 * LN3
        self.assertAllClose(
            losses.uniform_cross_entropy(logits), [LN2, expected, expected], atol=1e-6
        )

    def test_uniform_cross_entropy_single_label(self):
        # 1/K target, K = 4, logits 0 -> log 4.  K = 2, (ln 3, 0) -> log 4 - 0.5 log 3.
        self.assertAllClose(
            losses.uniform_cross_entropy(tf.zeros([1, 4]), multilabel=False), [LN4], atol=1e-6
        )
        self.assertAllClose(
            losses.uniform_cross_entropy(tf.constant([[LN3, 0.0]]), multilabel=False),
            [LN4 - 0.5 * LN3],
            atol=1e-6,
        )

    @parameterized.parameters(True, False)
    def test_uniform_cross_entropy_minimum_at_zero_logits(self, multilabel):
        z = tf.Variable(tf.zeros([1, 3]))
        with tf.GradientTape() as tape:
            loss = losses.uniform_cross_entropy(z, multilabel)
        self.assertAllClose(tape.gradient(loss, z), tf.zeros([1, 3]))

    def test_entropy_degrader_loss_takes_per_sample_max(self):
        # Model A: sample 0 logits 0 (CE log 2), sample 1 logits ln 3 (CE log 4 - 0.5 log 3).
        # Model B: the other way round.  The per-sample max is log 4 - 0.5 log 3 for both,
        # taken from B for sample 0 and from A for sample 1.
        a = tf.constant([[0.0], [LN3]])
        b = tf.constant([[LN3], [0.0]])
        high = LN4 - 0.5 * LN3
        self.assertAllClose(losses.entropy_degrader_loss([a, b]), [high, high], atol=1e-6)
        # With -H(p): max(-log 2, 3/4 log 3 - log 4) = 3/4 log 3 - log 4 (about -0.562).
        low = 0.75 * LN3 - LN4
        self.assertAllClose(
            losses.entropy_degrader_loss([a, b], measure="negative_entropy"), [low, low], atol=1e-6
        )

    def test_entropy_degrader_loss_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, "at least one"):
            losses.entropy_degrader_loss([])
        with self.assertRaisesRegex(ValueError, "measure"):
            losses.entropy_degrader_loss([tf.zeros([1, 1])], measure="kl")


class EnsembleTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.a = tf.constant([1.0, 5.0, 2.0])
        self.b = tf.constant([3.0, 0.0, 2.0])
        self.c = tf.constant([0.0, 4.0, 7.0])

    def test_worst_case_picks_maxima_from_different_models(self):
        # Per sample: max(1, 3, 0) = 3 (b), max(5, 0, 4) = 5 (a), max(2, 2, 7) = 7 (c).
        self.assertAllClose(losses.worst_case_over_models([self.a, self.b, self.c]), [3, 5, 7])
        stacked = tf.stack([self.a, self.b, self.c])
        self.assertAllClose(losses.worst_case_over_models(stacked), [3, 5, 7])

    def test_mean_divides_by_real_number_of_models(self):
        # M = 3: (1+3+0)/3, (5+0+4)/3, (2+2+7)/3.  M = 2: (1+3)/2, (5+0)/2, (2+2)/2.
        self.assertAllClose(losses.mean_over_models([self.a, self.b, self.c]), [4 / 3, 3.0, 11 / 3])
        self.assertAllClose(losses.mean_over_models([self.a, self.b]), [2.0, 2.5, 2.0])

    def test_empty_ensemble_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "worst_case_over_models"):
            losses.worst_case_over_models([])

    def test_kbeam_uses_model_with_lowest_batch_loss(self):
        # labels (1), (0).  Model A logits ln 3: sample 0 -log(3/4) = 0.288, sample 1
        # -log(1/4) = 1.386, batch mean 0.837.  Model B logits 0: log 2 = 0.693 each, mean
        # 0.693 < 0.837 -> B (index 1) is chosen; its -CE is -log 2 per sample.
        labels = tf.constant([[1.0], [0.0]])
        a = tf.constant([[LN3], [LN3]])
        b = tf.constant([[0.0], [0.0]])
        loss, idx = losses.kbeam_degrader_loss(labels, [a, b])
        self.assertEqual(int(idx), 1)
        self.assertAllClose(loss, [-LN2, -LN2], atol=1e-6)
        loss, idx = losses.kbeam_degrader_loss(labels, [b, a])
        self.assertEqual(int(idx), 0)

    def test_degrader_l1_loss_per_example(self):
        # Clips [2, 1, 2, 2, 1]: sample 0 all off by 0.5 -> 0.5; sample 1 one pixel of 4 off by
        # 1 -> 1/4.
        x = np.zeros([2, 1, 2, 2, 1], np.float32)
        y = x.copy()
        y[0] = 0.5
        y[1, 0, 0, 0, 0] = 1.0
        self.assertAllClose(losses.degrader_l1_loss(x, y), [0.5, 0.25])

    def test_per_example_losses_reduce_with_global_batch(self):
        # compute_average_loss sums and divides by the GLOBAL batch: (log 2 * 2) / 4.
        per_example = losses.privacy_loss(tf.zeros([2, 5]), tf.zeros([2, 5]))
        avg = tf.nn.compute_average_loss(per_example, global_batch_size=4)
        self.assertAllClose(avg, LN2 / 2)


if __name__ == "__main__":
    tf.test.main()
