"""SavedModel export: TF Serving layout, the serving signature, graph checks, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from configs.experiments import get_config
from serving import export as E
from serving import signatures as S
from serving.frame_size import pad_frame, round_up
from tests.cli_util import call_main
from tfprivacy.artifacts import save_degrader
from tfprivacy.config import DEGRADERS
from tfprivacy.data.pipeline import process_clip
from tfprivacy.models import build_degrader
from tfprivacy.models.degrader import variant_multiple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_degrader(seed: int | None = None, variant: str | None = None):
    """benchmark_tiny's f_d; freshly built it is exactly the identity (zero-initialised delta).

    With a seed, every weight is redrawn so that the transform is visibly not the identity.
    variant: another degrader variant than the config's (full).
    """
    cfg = get_config("benchmark_tiny").model
    if variant is not None:
        cfg.degrader = variant
    model = build_degrader(cfg, frame_size=None)
    if seed is not None:
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
    return model


class ExportTest(tf.test.TestCase, parameterized.TestCase):
    def test_layout_versions_and_no_leftovers(self):
        base = self.get_temp_dir()
        model = tiny_degrader()
        first = E.export_degrader(model, base)
        second = E.export_degrader(model, base)
        model_dir = os.path.join(base, S.MODEL_NAME)
        self.assertEqual(first, os.path.join(model_dir, "1"))
        self.assertEqual(second, os.path.join(model_dir, "2"))
        self.assertTrue(os.path.isfile(os.path.join(first, "saved_model.pb")))
        self.assertTrue(os.path.isdir(os.path.join(first, "variables")))
        self.assertEqual(sorted(os.listdir(model_dir)), ["1", "2"])
        self.assertEqual(E.export_degrader(model, base, version=7), os.path.join(model_dir, "7"))
        self.assertEqual(E.list_versions(model_dir), [1, 2, 7])

    @parameterized.parameters("../escaped", "a/b", ".hidden", "")
    def test_model_name_cannot_leave_the_export_root(self, name):
        base = os.path.join(self.get_temp_dir(), f"root{abs(hash(name))}")
        os.makedirs(base)
        with self.assertRaisesRegex(E.ExportError, "a plain name"):
            E.export_degrader(None, base, name)
        self.assertEqual(os.listdir(base), [])
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(base), "escaped")))

    def test_signature_seen_by_saved_model_cli(self):
        path = E.export_degrader(tiny_degrader(), self.get_temp_dir())
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        cmd = (
            [cli]
            if os.path.exists(cli)
            else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
        )
        out = subprocess.run(
            cmd + ["show", "--all", "--dir", path],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        ).stdout
        serving = out[out.index(f"signature_def['{S.SIGNATURE_KEY}']") :]
        self.assertIn(
            f"inputs['{S.INPUT_KEY}'] tensor_info:\n        dtype: DT_UINT8\n"
            "        shape: (-1, -1, -1, 3)",
            serving,
        )
        self.assertIn(
            f"outputs['{S.OUTPUT_KEY}'] tensor_info:\n        dtype: DT_UINT8\n"
            "        shape: (-1, -1, -1, 3)",
            serving,
        )
        self.assertIn(f"Method name is: {S.METHOD_NAME}", serving)

    def test_identity_degrader_round_trips_uint8_exactly(self):
        # x -> x/255 -> f_d = identity -> *255, round -> x: every uint8 value survives.
        loaded = tf.saved_model.load(E.export_degrader(tiny_degrader(), self.get_temp_dir()))
        serve = loaded.signatures[S.SIGNATURE_KEY]
        values = np.arange(256, dtype=np.uint8)
        frames = np.resize(values, (4, 8, 8, 3)).astype(np.uint8)  # 768 = 3 x 256 values
        out = serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY]
        self.assertEqual(out.dtype, tf.uint8)
        self.assertAllEqual(out, frames)
        # Native, non-square size (multiples of 4) and a batch of 1 are served too.
        odd = frames[:1, :4, :8]
        self.assertAllEqual(serve(**{S.INPUT_KEY: tf.constant(odd)})[S.OUTPUT_KEY], odd)
        # And any other size, padded for f_d and cropped back: still the identity.
        for shape in ((2, 13, 7, 3), (1, 1, 1, 3), (1, 6, 10, 3)):
            other = np.resize(values, shape).astype(np.uint8)
            self.assertAllEqual(serve(**{S.INPUT_KEY: tf.constant(other)})[S.OUTPUT_KEY], other)

    def test_to_uint8_rounds_and_clips(self):
        # 0.5/255 -> 0.5 -> 0 (round half to even); 1.6/255 -> 2; -0.1 -> 0; 1.2 -> 255.
        x = tf.constant([0.5 / 255.0, 1.6 / 255.0, -0.1, 1.2, 128.0 / 255.0])
        self.assertAllEqual(E.to_uint8(x), [0, 2, 0, 255, 128])

    def test_normalisation_matches_the_pipeline(self):
        frames = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)), tf.uint8)
        self.assertAllEqual(E.to_unit_float(frames), process_clip(frames, 8))

    @parameterized.named_parameters(
        ("rank3", (8, 8, 3), "expected rank 4"),
        ("rank5", (1, 1, 8, 8, 3), "expected rank 4"),
        ("two_channels", (1, 8, 8, 2), "expected 3 (RGB) channels"),
        ("empty", (1, 0, 8, 3), "height and width must be > 0"),
        ("empty_width", (1, 8, 0, 3), "height and width must be > 0"),
    )
    def test_graph_checks_name_the_tensor(self, shape, message):
        # Traced with an unknown shape: what TF Serving's C++ feed bypassing Python looks like.
        check = tf.function(E.check_frames, input_signature=[tf.TensorSpec(None, tf.uint8)])
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, f"{S.INPUT_KEY}: .*"):
            try:
                check(tf.zeros(shape, tf.uint8))
            except tf.errors.InvalidArgumentError as e:
                self.assertIn(message, e.message)
                raise
        self.assertAllEqual(check(tf.zeros((2, 4, 8, 3), tf.uint8)).shape, (2, 4, 8, 3))

    @parameterized.parameters((1, 6, 8, 3), (1, 8, 10, 3), (2, 13, 7, 3), (1, 1, 1, 3))
    def test_graph_checks_pass_any_height_and_width(self, *shape):
        # Sizes that are not multiples of 4 (refused before issue 25) pass: the serving
        # function pads them.
        check = tf.function(E.check_frames, input_signature=[tf.TensorSpec(None, tf.uint8)])
        self.assertAllEqual(check(tf.zeros(shape, tf.uint8)).shape, shape)

    def test_signature_rejects_wrong_dtype_and_empty_frames(self):
        loaded = tf.saved_model.load(E.export_degrader(tiny_degrader(), self.get_temp_dir()))
        serve = loaded.signatures[S.SIGNATURE_KEY]
        with self.assertRaises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
            serve(**{S.INPUT_KEY: tf.zeros((1, 8, 8, 3), tf.float32)})
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "height and width must be"):
            serve(**{S.INPUT_KEY: tf.zeros((1, 0, 8, 3), tf.uint8)})
        # A height of 6 was refused ("height must be a positive multiple of 4") before
        # issue 25; it is now padded to 8 and cropped back.
        out = serve(**{S.INPUT_KEY: tf.zeros((1, 6, 8, 3), tf.uint8)})[S.OUTPUT_KEY]
        self.assertEqual(out.shape, (1, 6, 8, 3))

    def test_pad_to_multiple_replicates_the_last_row_and_column(self):
        frames = tf.constant(np.arange(2 * 3 * 5 * 1).reshape(2, 3, 5, 1), tf.uint8)
        padded = E.pad_to_multiple(frames, 4).numpy()
        self.assertEqual(padded.shape, (2, 4, 8, 1))
        self.assertAllEqual(padded[:, :3, :5], frames)
        self.assertAllEqual(padded[:, 3], padded[:, 2])  # the last row, repeated
        for col in range(5, 8):
            self.assertAllEqual(padded[:, :, col], padded[:, :, 4])  # the last column
        # The NumPy padding of the TFLite runner is the same.
        self.assertAllEqual(padded[0], pad_frame(frames.numpy()[0], (4, 8)))
        # A single pixel becomes 8 x 8 of it (reflect/symmetric padding cannot do that).
        one = E.pad_to_multiple(tf.constant([[[[7, 8, 9]]]], tf.uint8), 8).numpy()
        self.assertAllEqual(one, np.broadcast_to([7, 8, 9], (1, 8, 8, 3)))
        # A multiple is left as it is.
        self.assertAllEqual(E.pad_to_multiple(frames[:, :, :4], 1), frames[:, :, :4])

    @parameterized.parameters(*DEGRADERS)
    def test_any_size_is_padded_run_and_cropped_back(self, variant):
        model = tiny_degrader(seed=4, variant=variant)
        multiple = variant_multiple(variant)
        base = os.path.join(self.get_temp_dir(), variant)
        loaded = tf.saved_model.load(E.export_degrader(model, base))
        self.assertEqual(int(loaded.spatial_multiple()), multiple)  # read by serving.server
        serve = loaded.signatures[S.SIGNATURE_KEY]
        rng = np.random.default_rng(5)
        for shape in ((2, 13, 7, 3), (1, 1, 1, 3), (1, 719, 1279, 3)):
            frames = rng.integers(0, 256, shape).astype(np.uint8)
            out = serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY].numpy()
            self.assertEqual(out.shape, shape)
            self.assertEqual(out.dtype, np.uint8)
            # What f_d gives on the frames edge-padded to its multiple, cropped back.
            size = round_up(shape[1:3], multiple)
            padded = np.stack([pad_frame(f, size) for f in frames]).astype(np.float32) / 255.0
            direct = E.to_uint8(model(padded, training=False)).numpy()[:, : shape[1], : shape[2]]
            if out.size < 10**5:
                self.assertAllEqual(out, direct)
            else:  # the graph's and eager convolutions round differently on some large frames
                self.assertAllClose(out.astype(np.int16), direct.astype(np.int16), atol=1)
                self.assertGreater(np.mean(out == direct), 0.999)
        self.assertFalse(np.array_equal(out, frames))  # a seeded f_d, not the identity
        # Sizes that already are multiples cost nothing: exactly the unpadded f_d.
        frames = rng.integers(0, 256, (2, 2 * multiple, 3 * multiple, 3)).astype(np.uint8)
        out = serve(**{S.INPUT_KEY: tf.constant(frames)})[S.OUTPUT_KEY]
        direct = E.to_uint8(model(frames.astype(np.float32) / 255.0, training=False))
        self.assertAllEqual(out, direct)

    def test_quantized_export_pads_to_the_float_models_multiple(self):
        from serving import quantized_savedmodel as Q

        model = tiny_degrader(seed=6, variant="pyramid")
        path = Q.export_quantized(model, self.get_temp_dir())
        loaded = tf.saved_model.load(path)
        self.assertEqual(int(loaded.spatial_multiple()), 8)
        frames = np.random.default_rng(7).integers(0, 256, (2, 13, 7, 3)).astype(np.uint8)
        out = loaded.signatures[S.SIGNATURE_KEY](**{S.INPUT_KEY: tf.constant(frames)})
        self.assertEqual(out[S.OUTPUT_KEY].shape, frames.shape)

    def test_max_spatial_multiple_covers_every_variant(self):
        # serving.client sizes requests with it so that they fit any model's padded pixels.
        self.assertEqual(S.MAX_SPATIAL_MULTIPLE, max(variant_multiple(v) for v in DEGRADERS))

    def test_existing_version_is_never_overwritten(self):
        base = self.get_temp_dir()
        E.export_degrader(tiny_degrader(), base, version=3)
        with self.assertRaisesRegex(E.ExportError, "version 3 already exists"):
            E.export_degrader(tiny_degrader(), base, version=3)

    def test_crash_mid_write_leaves_no_version(self):
        base = self.get_temp_dir()
        model_dir = os.path.join(base, S.MODEL_NAME)
        real_save = tf.saved_model.save

        def save_then_crash(obj, export_dir, **kwargs):
            real_save(obj, export_dir, **kwargs)
            raise KeyboardInterrupt("killed after writing")

        with mock.patch.object(tf.saved_model, "save", save_then_crash):
            with self.assertRaises(KeyboardInterrupt):
                E.export_degrader(tiny_degrader(), base)
        self.assertEqual(os.listdir(model_dir), [])
        # A dot-folder left by a hard kill is not a version, and the next export takes 1.
        os.makedirs(os.path.join(model_dir, ".tmp-5-123"))
        self.assertEqual(E.list_versions(model_dir), [])
        self.assertEqual(E.export_degrader(tiny_degrader(), base), os.path.join(model_dir, "1"))

    def test_cli_exports_a_run_with_models_config(self):
        tmp = self.get_temp_dir()
        run_dir, base = os.path.join(tmp, "run"), os.path.join(tmp, "models")
        cfg = get_config("benchmark_tiny")
        save_degrader(run_dir, tiny_degrader(seed=1), cfg)
        self.assertEqual(call_main(E, "--run", run_dir, "--out", base), 0)
        self.assertEqual(
            call_main(E, "--run", run_dir, "--out", base, "--config_base_path", "/m"), 0
        )
        # An existing version: logged, naming it, and status 1 (no traceback).
        with self.assertLogs("absl", "ERROR") as logs:
            self.assertEqual(call_main(E, "--run", run_dir, "--out", base, "--version", "1"), 1)
        self.assertIn("version 1 already exists", "\n".join(logs.output))
        self.assertEqual(E.list_versions(os.path.join(base, S.MODEL_NAME)), [1, 2])
        config = model_server_config_pb2.ModelServerConfig()
        with open(os.path.join(base, S.MODELS_CONFIG)) as f:
            text_format.Parse(f.read(), config)
        (entry,) = config.model_config_list.config
        self.assertEqual(entry.name, S.MODEL_NAME)
        self.assertEqual(entry.base_path, "/m/degrader")
        self.assertEqual(entry.model_platform, "tensorflow")
        # The exported graph is the run's f_d: same output as the Keras model, quantised.
        model = tiny_degrader(seed=1)
        frames = np.random.default_rng(2).integers(0, 256, (2, 8, 12, 3)).astype(np.uint8)
        served = tf.saved_model.load(os.path.join(base, S.MODEL_NAME, "2"))
        out = served.signatures[S.SIGNATURE_KEY](**{S.INPUT_KEY: tf.constant(frames)})
        direct = E.to_uint8(model(frames.astype(np.float32) / 255.0, training=False))
        self.assertAllEqual(out[S.OUTPUT_KEY], direct)


if __name__ == "__main__":
    tf.test.main()
