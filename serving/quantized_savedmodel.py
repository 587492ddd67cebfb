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

import argparse
import os

import numpy as np
import tensorflow as tf

from serving import export as E
from serving import signatures as S

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
    """f_d with int8 kernels; callable like the Keras model: (frames, training=False)."""

    def __init__(self, model, name: str = "quantized_degrader"):
        super().__init__(name=name)
        # Hidden from tracking (a closure, not an attribute): the SavedModel must hold only
        # the quantized variables below, never the float kernels.
        self._get_model = lambda: model
        self.q, self.scale, self.float_vars = [], [], []
        self._plan = []  # per trainable variable: ("q", index) or ("f", index)
        for v in model.trainable_variables:
            value = np.asarray(v.numpy())
            if value.ndim >= 2:
                q, scale = quantize_per_channel(value, _channel_axis(v.path, value.ndim))
                self._plan.append(("q", len(self.q)))
                self.q.append(tf.Variable(q, trainable=False, name=_safe(v.path) + QUANT_SUFFIX))
                self.scale.append(
                    tf.Variable(scale, trainable=False, name=_safe(v.path) + "_scale")
                )
            else:
                self._plan.append(("f", len(self.float_vars)))
                self.float_vars.append(tf.Variable(value, trainable=False, name=_safe(v.path)))
        self.non_trainable = [
            tf.Variable(np.asarray(v.numpy()), trainable=False, name=_safe(v.path))
            for v in model.non_trainable_variables
        ]

    def dequantized(self) -> list[tf.Tensor]:
        out = []
        for kind, i in self._plan:
            if kind == "q":
                out.append(tf.cast(self.q[i], tf.float32) * self.scale[i])
            else:
                out.append(tf.convert_to_tensor(self.float_vars[i]))
        return out

    def __call__(self, frames, training: bool = False):
        model = self._get_model()
        outputs, _ = model.stateless_call(
            self.dequantized(),
            [tf.convert_to_tensor(v) for v in self.non_trainable],
            frames,
            training=False,
        )
        return outputs


def _safe(path: str) -> str:
    return path.replace("/", "_")


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


def main(argv=None) -> int:
    from tfprivacy.train.artifacts import load_degrader

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="training run directory")
    parser.add_argument("--out", required=True, help="model base path (TF Serving layout)")
    parser.add_argument("--name", default=S.MODEL_NAME + QUANT_SUFFIX)
    parser.add_argument("--version", type=int, default=None)
    args = parser.parse_args(argv)
    model, _ = load_degrader(args.run)
    path = export_quantized(model, args.out, args.name, args.version)
    E.write_models_config(args.out)
    print(f"wrote {path} (variables: {variables_bytes(path)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
