"""Exports f_d as a SavedModel in TF Serving's layout, plus a models.config.

    python -m serving.export --run RUN_DIR --out MODEL_BASE [--version N]

writes MODEL_BASE/degrader/<version>/{saved_model.pb, variables/} and MODEL_BASE/models.config.
The `serving_default` signature takes uint8 frames [N, H, W, 3] and returns uint8 degraded
frames of the same shape.

Frame size: the graph runs f_d at the frames' native size instead of resizing to the training
size and back. f_d is fully convolutional, so native size costs nothing in accuracy of the
transform itself, while a resize round trip would add a blur that f_d never learned and that
the privacy evaluation never measured. Any H, W >= 1 is served: f_d itself needs multiples of
its spatial multiple (4, or 8 for the pyramid: tfprivacy.models.degrader.variant_multiple), so
the graph pads the frames at the bottom and right by edge replication up to the next multiple,
runs f_d and crops the output back to H x W (see pad_to_multiple for why edge replication).
Frames that already are multiples go through unpadded, bit for bit what f_d alone gives.
The multiple is also saved as the no-argument function `spatial_multiple` (not a signature:
TF Serving ignores it), so that serving.server can budget the padded pixels.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

from absl import flags
from absl import logging as absl_logging

from tfprivacy import pretrained, runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import tensorflow as tf

from serving import signatures as S
from tfprivacy import config as C
from tfprivacy.frames import to_uint8, to_unit_float

_VERSION_RE = re.compile(r"^[0-9]+$")


class ExportError(RuntimeError):
    """A layout problem (version exists, bad base path) or a failed write (disk full); the
    message names the path."""


def list_versions(model_dir: str) -> list[int]:
    """Integer version folders of a model, ascending.

    Dot-folders (an export in progress, `.tmp-<version>-<pid>`) and anything not purely
    numeric are ignored, as TF Serving does.
    """
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(model_dir)
        if _VERSION_RE.match(name) and os.path.isdir(os.path.join(model_dir, name))
    )


def check_frames(frames: tf.Tensor) -> tf.Tensor:
    """Graph-time checks on a frames tensor; each failure names the tensor and the rule.

    They are run-time asserts (not static shape checks) because TF Serving feeds the graph
    directly, bypassing the Python-side signature check. A failed assert is INVALID_ARGUMENT.
    Any H, W >= 1 passes (the serving function pads to f_d's multiple, see pad_to_multiple).
    """
    shape = tf.shape(frames)
    rank = tf.size(shape)
    checks = [
        tf.debugging.assert_equal(
            rank, 4, message=f"{S.INPUT_KEY}: expected rank 4 [N, H, W, 3], got rank"
        )
    ]
    with tf.control_dependencies(checks):
        # Only index the shape once its rank is known to be 4.
        padded = tf.concat([shape, tf.ones([4], tf.int32)], axis=0)
        channels, height, width = padded[3], padded[1], padded[2]
    checks += [
        tf.debugging.assert_equal(
            channels, 3, message=f"{S.INPUT_KEY}: expected 3 (RGB) channels in dim 3, got"
        ),
        tf.debugging.assert_positive(
            tf.minimum(height, width), message=f"{S.INPUT_KEY}: height and width must be > 0"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def pad_to_multiple(frames: tf.Tensor, multiple: int) -> tf.Tensor:
    """[N, H, W, C] -> [N, H', W', C], H' and W' the next multiples of `multiple` (H, W >= 1).

    Rows are added at the bottom and columns at the right, so the frame keeps its place on
    f_d's stride-2 sampling grid (and on the pyramid's k x k blocks) and cropping back is
    [:H, :W]; a frame that already is a multiple is gathered onto itself, unchanged.

    Edge replication (each new row repeats the last row, each new column the last column), not
    tf.pad's REFLECT or SYMMETRIC: those need pad < H (REFLECT) or pad <= H (SYMMETRIC), and a
    1-pixel frame needs 3 rows of padding for a multiple of 4, 7 for the pyramid's 8. Like
    them it continues the picture without a new edge, whereas zero (black) padding would put a
    hard edge next to the last rows and columns that f_d's convolutions would answer to in the
    cropped output.
    """
    shape = tf.shape(frames)
    height, width = shape[1], shape[2]
    rows = tf.minimum(tf.range(-(-height // multiple) * multiple), height - 1)
    cols = tf.minimum(tf.range(-(-width // multiple) * multiple), width - 1)
    return tf.gather(tf.gather(frames, rows, axis=1), cols, axis=2)


def degrader_multiple(degrader) -> int:
    """What H and W must be a multiple of for `degrader`: its own `spatial_multiple` attribute
    when it has one (serving.quantized_savedmodel's module), else read from its layers."""
    own = getattr(degrader, "spatial_multiple", None)
    if own is not None:
        return int(own)
    from tfprivacy.models.degrader import spatial_multiple  # Keras: not for the server's start

    return spatial_multiple(degrader)


class DegraderModule(tf.Module):
    """f_d alone (never the adversaries) behind a uint8-in, uint8-out serving function."""

    def __init__(self, degrader, multiple: int | None = None):
        super().__init__(name="degrader_export")
        self.degrader = degrader
        self.multiple = int(multiple or degrader_multiple(degrader))
        if self.multiple < 1:
            raise ValueError(f"multiple: must be >= 1, got {self.multiple}")
        value = self.multiple
        # Saved as a function, not a signature: serving.server reads it, TF Serving ignores it.
        fn = tf.function(lambda: tf.constant(value, tf.int32), input_signature=[])
        setattr(self, S.SPATIAL_MULTIPLE_FN, fn)

    def degrade(self, frames: tf.Tensor) -> dict[str, tf.Tensor]:
        frames = check_frames(frames)
        shape = tf.shape(frames)
        padded = pad_to_multiple(frames, self.multiple)  # uint8: exact and 4x cheaper to copy
        degraded = self.degrader(to_unit_float(padded), training=False)
        return {S.OUTPUT_KEY: to_uint8(degraded[:, : shape[1], : shape[2]])}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=S.INPUT_KEY)])
    def serve(self, frames):
        return self.degrade(frames)


def _next_version(model_dir: str) -> int:
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def export_degrader(
    degrader, model_base: str, model_name: str = S.MODEL_NAME, version: int | None = None
) -> str:
    """Writes MODEL_BASE/<model_name>/<version>/ atomically; returns that directory.

    The SavedModel is written to a dot-folder first and renamed into place, so a crash never
    leaves a half-written version that a server polling the folder would try to load. A write
    that fails (disk full, quota, I/O error) removes the dot-folder too and raises ExportError
    saying so: the version number stays free and servers keep the versions they have.
    """
    if problem := C.model_name_problem(model_name):
        raise ExportError(f"--model_name {model_name!r}: {problem}; it would leave {model_base}")
    model_dir = os.path.join(model_base, model_name)
    os.makedirs(model_dir, exist_ok=True)
    if version is None:
        version = _next_version(model_dir)
    if version < 1:
        raise ExportError(f"--version must be >= 1, got {version}")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ExportError(
            f"{final}: version {version} already exists; a live version is "
            "never overwritten (omit --version to take the next one)"
        )
    tmp = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = DegraderModule(degrader)
    try:
        tf.saved_model.save(module, tmp, signatures={S.SIGNATURE_KEY: module.serve})
        os.rename(tmp, final)
    except (OSError, tf.errors.OpError) as e:
        # TF's own file writes report a full disk as an OpError, Python's as an OSError.
        shutil.rmtree(tmp, ignore_errors=True)
        left = "could not be removed either" if os.path.exists(tmp) else "was removed"
        raise ExportError(
            f"{final}: exporting version {version} failed: {_write_error(e)}; nothing was "
            f"published (the partial copy {tmp} {left}), so a server polling {model_dir} "
            "keeps the versions it has"
        ) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_error(error: Exception) -> str:
    """An OSError or TF error in one line: what failed, on which file when known."""
    if isinstance(error, OSError) and error.strerror:
        name = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{name}"
    if isinstance(error, tf.errors.OpError):
        return (error.message.strip().splitlines() or [type(error).__name__])[0]
    return f"{type(error).__name__}: {error}"


def models_config_text(model_base: str, model_names: list[str], base_prefix: str = "") -> str:
    """TF Serving's model_config_list text proto for the models under model_base.

    base_prefix replaces model_base in the written base_path (e.g. "/models" when the folder
    is mounted into a TF Serving container); empty means the absolute local path.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    prefix = base_prefix or os.path.abspath(model_base)
    config = model_server_config_pb2.ModelServerConfig()
    for name in model_names:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{prefix.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
    return text_format.MessageToString(config)


def write_models_config(model_base: str, base_prefix: str = "") -> str:
    """(Re)writes MODEL_BASE/models.config listing every model folder with a version."""
    names = sorted(
        name
        for name in os.listdir(model_base)
        if not name.startswith(".") and list_versions(os.path.join(model_base, name))
    )
    path = os.path.join(model_base, S.MODELS_CONFIG)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(models_config_text(model_base, names, base_prefix))
        os.replace(tmp, path)
    except BaseException:  # a full disk: keep the old models.config, leave no stray file
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def export_run(
    run_dir: str,
    model_base: str,
    version: int | None = None,
    model_name: str | None = None,
    base_prefix: str = "",
) -> str:
    """Loads a run's f_d (free spatial dims) and exports it; returns the version directory."""
    from tfprivacy.artifacts import load_degrader

    degrader, cfg = load_degrader(run_dir, frame_size=None)
    path = export_degrader(degrader, model_base, model_name or cfg.export.model_name, version)
    write_models_config(model_base, base_prefix)
    return path


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
pretrained.define_source_flags(FLAGS)  # --run RUN_DIR or --pretrained NAME
flags.DEFINE_string(
    "out", None, "MODEL_BASE (TF Serving layout root)", required=True, flag_values=FLAGS
)
flags.DEFINE_integer("version", None, "default: newest + 1", flag_values=FLAGS)
flags.DEFINE_string("model_name", None, "default: the run's export config", flag_values=FLAGS)
flags.DEFINE_string(
    "config_base_path",
    "",
    "prefix for base_path in models.config (e.g. /models inside a container)",
    flag_values=FLAGS,
)


def main(argv) -> int:
    """Exports --run's f_d into --out; 1 on an ExportError. argv: the program name alone."""
    del argv
    try:
        path = export_run(
            pretrained.source_dir(FLAGS),
            FLAGS.out,
            FLAGS.version,
            FLAGS.model_name,
            FLAGS.config_base_path,
        )
    except ExportError as e:  # the message names the folder and what failed: no trace-back
        absl_logging.error("%s", e)
        return 1
    print(f"exported {path}")
    print(f"config   {os.path.join(FLAGS.out, S.MODELS_CONFIG)}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
