"""benchmarks.step_flops: FLOPs counted from a traced graph, exact on known convolutions."""

import contextlib
import io

import tensorflow as tf

from benchmarks import step_flops
from tests.cli_util import call_main


class GraphFlopsTest(tf.test.TestCase):
    def test_forward_and_gradient_convolutions_are_counted_exactly(self):
        x = tf.random.uniform((2, 8, 8, 3))
        k = tf.Variable(tf.random.normal((3, 3, 3, 4)))

        @tf.function
        def forward(x):
            return tf.nn.conv2d(x, k, 1, "SAME")

        forward_flops = 2 * (2 * 8 * 8 * 4) * (3 * 3 * 3)  # 2 x outputs x multiply-adds each
        total, per_type = step_flops.graph_flops(forward.get_concrete_function(x).graph)
        self.assertEqual(per_type, {"Conv2D": forward_flops})
        self.assertEqual(total, forward_flops)

        @tf.function
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME") ** 2)
            k.assign_sub(0.1 * tape.gradient(loss, k))
            return loss

        _, per_type = step_flops.graph_flops(train_step.get_concrete_function(x).graph)
        # The filter gradient costs what the forward does; the input gradient is not asked for
        # (x is no variable), so the op the tape emits for it is dead and not counted.
        self.assertEqual(per_type, {"Conv2D": forward_flops, "Conv2DBackpropFilter": forward_flops})

    def test_matmul(self):
        a, b = tf.ones((4, 5)), tf.ones((5, 6))
        fn = tf.function(lambda a, b: tf.matmul(a, b))
        total, _ = step_flops.graph_flops(fn.get_concrete_function(a, b).graph)
        self.assertEqual(total, 2 * 4 * 6 * 5)


class CommandLineTest(tf.test.TestCase):
    def test_tiny_config_with_the_batch_norm_comparison(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            call_main(
                step_flops, "--config", "benchmark_tiny", "--steps", "1", "--compare_batch_norm"
            )
        text = out.getvalue()
        self.assertRegex(text, r"oneDNN (on|off)")
        self.assertRegex(text, r"privacy step \(M=\d\) +[0-9.]+ +[0-9.]+ +[0-9.]+ +\d+%")
        self.assertRegex(
            text,
            r"batch norm as Keras' own layer [0-9.]+ ms, fused [0-9.]+ ms: [0-9.]+x",
        )


if __name__ == "__main__":
    tf.test.main()
