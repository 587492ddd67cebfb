"""The fresh models' optimizer (tfprivacy/optim.py): one table of schedules."""

import keras
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy import optim


class AdamTest(tf.test.TestCase):
    def _lr_after(self, opt, steps):
        if not opt.built:
            self.v = keras.Variable(1.0)
            opt.build([self.v])
        for _ in range(steps):
            opt.apply([tf.constant(1.0)], [self.v])
        return float(keras.ops.convert_to_numpy(opt.learning_rate))

    def test_cosine_decays_to_zero_over_the_steps_and_restarts_with_the_iterations(self):
        opt = optim.adam(0.01, "cosine", 4)
        self.assertAllClose(self._lr_after(opt, 0), 0.01)
        self.assertAllClose(self._lr_after(opt, 2), 0.005)
        self.assertAllClose(self._lr_after(opt, 2), 0.0, atol=1e-9)
        opt.iterations.assign(0)  # the judges' reset
        self.assertAllClose(float(keras.ops.convert_to_numpy(opt.learning_rate)), 0.01)

    def test_constant_and_unknown(self):
        self.assertAllClose(self._lr_after(optim.adam(0.02, "constant", 4), 3), 0.02)
        with self.assertRaisesRegex(ValueError, "eval.lr_schedule: unknown 'step'"):
            optim.adam(0.01, "step", 4)
        self.assertEqual(set(C.LR_SCHEDULES), {"constant", "cosine"})


if __name__ == "__main__":
    tf.test.main()
