"""Progress bars (tfprivacy/progress.py): one tqdm setup, a silent stand-in when off."""

import io
import unittest
from unittest import mock

from tfprivacy import progress


class ProgressTest(unittest.TestCase):
    def test_off_is_silent_and_takes_every_call_a_bar_takes(self):
        bar = progress.progress_bar(5, "x", enabled=False)
        self.assertIsInstance(bar, progress.NoBar)
        bar.total = 7
        bar.update(2)
        bar.set_postfix({"loss": "0.1"}, refresh=False)
        bar.refresh()
        bar.close()
        items = [1, 2, 3]
        self.assertIs(progress.progress_iter(items, 3, "y", enabled=False), items)

    def test_on_counts_and_names_its_bar(self):
        out = io.StringIO()
        with mock.patch("sys.stderr", out):
            bar = progress.progress_bar(4, "train", initial=1, leave=True, mininterval=0)
            bar.update(2)
            self.assertEqual(bar.n, 3)
            bar.close()
            seen = list(progress.progress_iter(range(3), 3, "gen", leave=True))
        self.assertEqual(seen, [0, 1, 2])
        self.assertIn("train", out.getvalue())
        self.assertIn("3/4", out.getvalue())
        self.assertIn("gen", out.getvalue())


if __name__ == "__main__":
    unittest.main()
