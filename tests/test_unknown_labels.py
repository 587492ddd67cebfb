"""Unknown (-1) privacy labels in the game's training step figures (tfprivacy.train.steps).

The loaders, pipeline, losses, metrics, protocol and checker have their own tests of -1 in
their modules' test files; this file covers the privacy accuracy the game's steps report
(kbeam compares it with adversary.privacy_train_threshold).
"""

import numpy as np
import tensorflow as tf

from tfprivacy.train import steps


def _old_accuracy(labels, logits):
    pred = tf.cast(logits > 0.0, labels.dtype)
    return tf.reduce_mean(tf.cast(tf.equal(pred, labels), tf.float32), axis=-1)


class MultilabelAccuracyTest(tf.test.TestCase):
    def test_unknown_entries_left_out(self):
        # Row 0: known entries 0 (right: logit < 0) and 2 (wrong: logit > 0 for label 0) ->
        # 1/2; the unknown entry 1 is neither right nor wrong. Row 1: nothing known -> 0.
        labels = tf.constant([[0.0, -1.0, 0.0], [-1.0, -1.0, -1.0], [1.0, 0.0, 1.0]])
        logits = tf.constant([[-1.0, 3.0, 2.0], [1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
        expected = [0.5, 0.0, 2 / 3]
        self.assertAllClose(steps._multilabel_accuracy(labels, logits), expected)
        self.assertAllClose(tf.function(steps._multilabel_accuracy)(labels, logits), expected)

    def test_without_unknown_bit_identical_to_the_old_formula(self):
        rng = np.random.default_rng(0)
        labels = tf.constant((rng.random((32, 5)) < 0.5).astype(np.float32))
        logits = tf.constant(rng.standard_normal((32, 5)).astype(np.float32))
        old = _old_accuracy(labels, logits)
        self.assertAllEqual(steps._multilabel_accuracy(labels, logits), old)
        self.assertAllEqual(tf.function(steps._multilabel_accuracy)(labels, logits), old)


if __name__ == "__main__":
    tf.test.main()
