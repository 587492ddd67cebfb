"""tfprivacy.pretrained: shipped degraders load and export; the source flags are checked."""

import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
from absl import flags

from configs import get_config
from tfprivacy import artifacts, pretrained
from tfprivacy.models import build_degrader


class PretrainedTest(tf.test.TestCase):
    def test_ship_then_path_round_trip_and_clear_errors(self):
        run, root = (
            tempfile.mkdtemp(dir=self.get_temp_dir()),
            tempfile.mkdtemp(dir=self.get_temp_dir()),
        )
        cfg = get_config("benchmark_tiny")
        artifacts.save_degrader(run, build_degrader(cfg.model, frame_size=32), cfg)
        with open(os.path.join(run, "report.md"), "w") as f:
            f.write("# evidence\n")
        out = pretrained.ship(run, "tiny", root=root)
        self.assertEqual(pretrained.names(root), ["tiny"])
        self.assertEqual(pretrained.path("tiny", root=root), out)
        self.assertTrue(os.path.isfile(os.path.join(out, "report.md")))
        model, loaded = artifacts.load_degrader(out)
        self.assertEqual(loaded.model.degrader, cfg.model.degrader)
        with self.assertRaisesRegex(artifacts.RunDirError, "no pretrained degrader 'nope'.*tiny"):
            pretrained.path("nope", root=root)
        with self.assertRaisesRegex(ValueError, "plain folder name"):
            pretrained.ship(run, "../x", root=root)
        with self.assertRaisesRegex(artifacts.RunDirError, "missing"):
            pretrained.ship(tempfile.mkdtemp(dir=self.get_temp_dir()), "empty", root=root)

    def test_command_line_errors_are_messages(self):
        from tests.cli_util import call_main
        from tfprivacy.pretrained import __main__ as cli

        empty = tempfile.mkdtemp(dir=self.get_temp_dir())
        for name, message in (("x", "missing; did it finish?"), ("../x", "one plain folder")):
            with self.assertRaises(SystemExit) as ctx:
                call_main(cli, f"--run={empty}", f"--name={name}")
            self.assertIn(message, str(ctx.exception.code))

    def test_an_installed_package_folder_is_never_shipped_into(self):
        from tests.cli_util import call_main
        from tfprivacy.pretrained import __main__ as cli

        run = tempfile.mkdtemp(dir=self.get_temp_dir())
        for f in pretrained.FILES:
            with open(os.path.join(run, f), "w") as out:
                out.write("{}")
        installed = os.path.join(pretrained._installed_dirs()[0], "tfprivacy", "pretrained")
        not_a_checkout = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "a", "b")
        for root in (installed, not_a_checkout):
            with mock.patch.object(pretrained, "ROOT", root):
                with self.assertRaisesRegex(ValueError, "give --out DIR"):
                    pretrained.ship(run, "x")
                with self.assertRaises(SystemExit) as ctx:
                    call_main(cli, f"--run={run}", "--name=x")
                self.assertIn("not a source checkout", str(ctx.exception.code))
                self.assertFalse(os.path.exists(os.path.join(root, "x")))
                out = tempfile.mkdtemp(dir=self.get_temp_dir())
                call_main(cli, f"--run={run}", "--name=x", f"--out={out}")
                self.assertTrue(os.path.isfile(os.path.join(out, "x", pretrained.FILES[1])))
        self.assertEqual(pretrained.ship_root(), pretrained.ROOT)  # the tests run in a checkout

    def test_the_camera_role_names_the_shipped_pyramid(self):
        self.assertIn("light", pretrained.names())
        self.assertEqual(pretrained.path("light"), pretrained.path("pyramid"))
        root = tempfile.mkdtemp(dir=self.get_temp_dir())  # nothing shipped: no alias either
        self.assertEqual(pretrained.names(root), [])
        with self.assertRaisesRegex(artifacts.RunDirError, "no pretrained degrader 'light'"):
            pretrained.path("light", root=root)

    def test_shipped_default_loads_and_degrades(self):
        self.assertIn("pyramid", pretrained.names())
        model, cfg = artifacts.load_degrader(pretrained.path("pyramid"))
        self.assertEqual(cfg.model.degrader, "pyramid")
        x = np.random.default_rng(0).random((2, 64, 64, 3), np.float32)
        y = model(x).numpy()
        self.assertEqual(y.shape, x.shape)
        self.assertAllInRange(y, 0.0, 1.0)
        self.assertGreater(np.abs(y - x).mean(), 0.01)  # trained: not the identity

    def test_shipped_default_exports_for_any_frame_size(self):
        from serving import export

        out = tempfile.mkdtemp(dir=self.get_temp_dir())
        path = export.export_run(pretrained.path("pyramid"), out)
        served = tf.saved_model.load(path).signatures["serving_default"]
        for size in (64, 96):  # any multiple of 8: the SavedModel's spatial dims are free
            frames = tf.zeros((2, size, size, 3), tf.uint8)
            (result,) = served(frames=frames).values()
            self.assertEqual(tuple(result.shape), (2, size, size, 3))

    def test_source_flags_need_exactly_one(self):
        for argv, ok in (
            (["prog", "--pretrained", "pyramid"], True),
            (["prog", "--run", "/tmp/r"], True),
            (["prog"], False),
            (["prog", "--run", "/tmp/r", "--pretrained", "pyramid"], False),
            (["prog", "--pretrained", "bogus"], False),
        ):
            values = flags.FlagValues()
            pretrained.define_source_flags(values)
            if ok:
                values(argv)
                self.assertTrue(pretrained.source_dir(values))
            else:
                with self.assertRaises(flags.IllegalFlagValueError):
                    values(argv)

    def test_unshipped_names_say_why(self):
        values = flags.FlagValues()
        pretrained.define_source_flags(values)
        with self.assertRaisesRegex(flags.IllegalFlagValueError, "shipped: pyramid, light"):
            values(["prog", "--pretrained", "bogus"])
        # The conv `full` f_d a user may expect: refused with the reason and what to use.
        with self.assertRaisesRegex(flags.IllegalFlagValueError, "hides less than the pyramid"):
            values(["prog", "--pretrained", "full"])
        with self.assertRaisesRegex(artifacts.RunDirError, "hides less than the pyramid"):
            pretrained.path("full")


if __name__ == "__main__":
    tf.test.main()
