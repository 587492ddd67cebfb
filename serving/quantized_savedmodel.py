"""A TF Serving SavedModel of f_d whose variables are int8 weights + float scales.

    python -m serving.quantized_savedmodel --run RUN_DIR --out MODEL_BASE [--name degrader_int8]

Every convolution kernel is stored as int8 with one float32 scale per output channel
(symmetric, scale = max|w| / 127; per input channel for depthwise kernels, whose last axis is
the depth multiplier); biases and normalisation parameters stay float32 (a few hundred
numbers). The graph dequantizes (`int8 * scale`) and runs the Keras model statelessly on those
tensors, so the variables take about a quarter of the float model's bytes while the compute,
the signature and the serving contract (serving.signatures, serving.export's uint8 in/out
module and checks) are those of the float export. TF Serving needs nothing special to load it.
"""

from __future__ import annotations

import os

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import numpy as np
import tensorflow as tf

from serving import export as E
from serving import signatures as S
from serving import tflite as T

QUANT_SUFFIX = "_int8"


def _channel_axis(path: str, ndim: int) -> int:
    # Depthwise kernels are [kh, kw, in, multiplier]: the channels are axis 2.
    return 2 if "depthwise" in path and ndim == 4 else ndim - 1


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel: w ~ q * scale, q in [-127, 127], scale shape broadcastable."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scale = np.max(np.abs(w), axis=reduce, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


class QuantizedDegrader(tf.Module):
    """f_d with int8 kernels; callable like the Keras model: (frames, training=False).

    The checkpoint holds three variables: every kernel's int8 values in one flat int8 tensor,
    their per-channel scales in one float32 tensor, and the remaining float parameters
    (biases, normalisation) in one more. One variable per kernel would cost a checkpoint
    entry and an object-graph node each: for the light degrader (47 variables, 13.7 KB of
    values) that overhead alone took the variables to 33% of the float model's bytes.
    """

    def __init__(self, model, name: str = "quantized_degrader"):
        super().__init__(name=name)
        # Hidden from tracking (a closure, not an attribute): the SavedModel must hold only
        # the quantized variables below, never the float kernels.
        self._get_model = lambda: model
        q_parts, scale_parts, float_parts = [], [], []
        plan = []  # per variable: (kind, offset, size, shape, scale offset, scale shape)
        offsets = {"q": 0, "s": 0, "f": 0}
        for v in [*model.trainable_variables, *model.non_trainable_variables]:
            value = np.asarray(v.numpy(), np.float32)
            if v.trainable and value.ndim >= 2:
                q, scale = quantize_per_channel(value, _channel_axis(v.path, value.ndim))
                plan.append(("q", offsets["q"], q.size, q.shape, offsets["s"], scale.shape))
                q_parts.append(q.ravel())
                scale_parts.append(scale.ravel())
                offsets["q"] += q.size
                offsets["s"] += scale.size
            else:
                plan.append(("f", offsets["f"], value.size, value.shape, 0, ()))
                float_parts.append(value.ravel())
                offsets["f"] += value.size
        self._plan = tuple(plan)
        self._num_trainable = len(model.trainable_variables)

        def packed(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros([0], dtype)

        self.kernels_int8 = tf.Variable(
            packed(q_parts, np.int8), trainable=False, name="kernels_int8"
        )
        self.kernel_scales = tf.Variable(
            packed(scale_parts, np.float32), trainable=False, name="kernel_scales"
        )
        self.float_params = tf.Variable(
            packed(float_parts, np.float32), trainable=False, name="float_params"
        )

    @property
    def spatial_multiple(self) -> int:
        """The float f_d's (serving.export pads frames to it): 4, or 8 for the pyramid."""
        from tfprivacy.models.degrader import spatial_multiple

        return spatial_multiple(self._get_model())

    def dequantized(self) -> list[tf.Tensor]:
        """Every model variable's value, in model.trainable + non_trainable order."""
        out = []
        for kind, offset, size, shape, s_offset, s_shape in self._plan:
            if kind == "q":
                q = tf.reshape(self.kernels_int8[offset : offset + size], shape)
                n = int(np.prod(s_shape))
                scale = tf.reshape(self.kernel_scales[s_offset : s_offset + n], s_shape)
                out.append(tf.cast(q, tf.float32) * scale)
            else:
                out.append(tf.reshape(self.float_params[offset : offset + size], shape))
        return out

    def __call__(self, frames, training: bool = False):
        model = self._get_model()
        values = self.dequantized()
        outputs, _ = model.stateless_call(
            values[: self._num_trainable],
            values[self._num_trainable :],
            frames,
            training=False,
        )
        return outputs


def variables_bytes(saved_model_dir: str) -> int:
    """Bytes of the SavedModel's variables/ folder."""
    root = os.path.join(saved_model_dir, "variables")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: missing; is {saved_model_dir!r} a SavedModel?")
    return sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root))


def export_quantized(
    model,
    model_base: str,
    model_name: str = S.MODEL_NAME + QUANT_SUFFIX,
    version: int | None = None,
) -> str:
    """Writes MODEL_BASE/<model_name>/<version>/ with serving.export's layout and signature."""
    return E.export_degrader(QuantizedDegrader(model), model_base, model_name, version)


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "training run directory", required=True, flag_values=FLAGS)
flags.DEFINE_string(
    "out", None, "model base path (TF Serving layout)", required=True, flag_values=FLAGS
)
flags.DEFINE_string(
    "name", S.MODEL_NAME + QUANT_SUFFIX, "model name (its folder under --out)", flag_values=FLAGS
)
flags.DEFINE_integer("version", None, "default: newest + 1", flag_values=FLAGS)
flags.DEFINE_integer(
    "frames",
    T.DEFAULT_REPRESENTATIVE_FRAMES,
    "frames drawn from the pipeline to measure PSNR against float",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "strict", False, f"exit 2 below {T.MIN_QUANT_PSNR_DB:.0f} dB PSNR", flag_values=FLAGS
)


def main(argv) -> int:
    """Exports --run's f_d with int8 variables; exit status 2 with --strict when its PSNR
    against float is below the floor. argv: the program name alone (run_cli)."""
    del argv
    from tfprivacy.artifacts import load_degrader

    model, cfg = load_degrader(FLAGS.run)
    path = export_quantized(model, FLAGS.out, FLAGS.name, FLAGS.version)
    E.write_models_config(FLAGS.out)
    print(f"wrote {path} (variables: {variables_bytes(path)} bytes)")
    frames = T.representative_frames_from_pipeline(cfg.data, FLAGS.frames, None)
    reference = model(frames, training=False).numpy()
    quantized = QuantizedDegrader(model)(tf.constant(frames)).numpy()
    lines, ok = T.psnr_lines({"int8": {"psnr_db": T.psnr(reference, quantized)}})
    print("\n".join(lines))
    return 0 if ok or not FLAGS.strict else 2


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
