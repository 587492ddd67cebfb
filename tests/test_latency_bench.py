"""benchmarks/latency_bench.py: --sizes as S or HxW, rounded up to each f_d's multiple."""

from __future__ import annotations

import argparse
import contextlib
import io

import tensorflow as tf
from absl import flags

from benchmarks import latency_bench as LB
from tfprivacy import runtime


class SizesTest(tf.test.TestCase):
    def _sizes(self, *args):
        runtime.parse_flags(LB.FLAGS, ["latency_bench", *args])
        return list(LB.FLAGS.sizes)

    def test_squares_and_height_x_width(self):
        self.assertEqual(self._sizes(), [(112, 112), (224, 224)])
        self.assertEqual(self._sizes("--sizes", "720x1280", "224"), [(720, 1280), (224, 224)])
        self.assertEqual(self._sizes("--sizes=56", "--sizes=13X22"), [(56, 56), (13, 22)])
        for bad in ("0x4", "720x", "wide", "1x2x3"):
            with self.assertRaisesRegex(flags.IllegalFlagValueError, f"--sizes={bad}"):
                self._sizes("--sizes", bad)

    def test_model_size_rounds_up_to_each_variant_multiple(self):
        self.assertEqual(LB.model_size((720, 1280), "full"), (720, 1280))
        self.assertEqual(LB.model_size((719, 1279), "light"), (720, 1280))
        self.assertEqual(LB.model_size((13, 22), "full"), (16, 24))
        self.assertEqual(LB.model_size((12, 20), "light"), (12, 20))
        self.assertEqual(LB.model_size((12, 20), "pyramid"), (16, 24))

    def test_table_row_at_a_non_square_size(self):
        args = argparse.Namespace(
            sizes=[(13, 22)], variants=["light"], run=None, width=4, blocks=0, runs=1, warmup=0,
            scale=1,
        )  # fmt: skip
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            LB.table(args)
        (row,) = [line for line in out.getvalue().splitlines() if line.startswith("| light")]
        self.assertRegex(row, r"^\| light \(w4, untrained\) \| 16x24 \| [0-9.]+ \| [0-9.]+ \|")
        # At an analysis scale: f_d on 1/3-size block averages, the size a multiple of 4 x 3.
        args.scale = 3
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            LB.table(args)
        (row,) = [line for line in out.getvalue().splitlines() if line.startswith("| light")]
        self.assertRegex(row, r"^\| light \(w4, untrained\) at 1/3 \| 24 \| [0-9.]+ \|")
        self.assertEqual(LB.model_size((13, 22), "light", 3), (24, 24))


if __name__ == "__main__":
    tf.test.main()
