"""The degradation transform f_d: frame -> frame of the same size, in [0, 1].

Two variants share one interface:
- "full": Johnson et al.'s style-transfer net (9x9 conv, two stride-2 convs, residual blocks,
  two upsampling stages, 9x9 conv to 3 channels), width and block count from the config.
- "light": the camera degrader. No convolution runs at full resolution: a stride-2 stem conv,
  depthwise-separable convolutions at 1/4 resolution (the config's residual blocks), one
  upsampling to 1/2 resolution, and a pixel-shuffle head (a conv to 3 * 2 * 2 channels at 1/2
  resolution, then depth-to-space) that produces a full-resolution delta. The full-resolution
  3-channel convolutions are the layers where int8 TFLite loses to float on x86 CPUs
  (docs/camera.md, "Why int8 was slower than float"); without them int8 and float32 both run
  at more than 300 frames/s at 224x224 on one thread (benchmarks/latency_bench.py).

Deployment choices (docs/design.md section 6):
- Normalisation is selectable. The project default is "none": it folds into nothing because there
  is nothing to fold, it is in tfmot's QAT registry trivially, it has no train/inference gap (no
  batch statistics: f_d sees mixed batches of action clips and privacy images in the
  cross-dataset game, whose statistics differ) and it behaves identically on every replica.
  "batch" (folds into the conv for TFLite, registered with tfmot) and "instance" (paper
  fidelity; does not fold, not QAT-registered) are available.
- Upsampling is UpSampling2D (nearest) + Conv2D: both convert to TFLite and are registered with
  tfmot, nearest upsampling keeps spatial dims static when the frame size is given, and it avoids
  the checkerboard artefacts of transposed convolutions.
- Output is residual: `relu_max1(x + delta)`, i.e. clip(x + delta, 0, 1), with the last conv
  (delta) initialised to zero. At initialisation f_d is exactly the identity, so identity
  pretraining starts at zero reconstruction loss instead of having to learn to copy the input
  through a bottleneck; Add and ReLU(max_value=1) are both QAT-registered and convert to
  int8 TFLite, unlike a logit/sigmoid output.

`keras_module` builds the same network with `tf_keras` (the QAT twin): same layers, same order,
so `twin.set_weights(model.get_weights())` transfers the weights.

Variants are registered by name (`register_degrader`, as strategies are in
tfprivacy/train/strategies.py): a registered name is a valid `model.degrader`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from tfprivacy import config as C

DEGRADER_VARIANTS = C.DEGRADERS
NORMS = C.NORMS
# Project default normalisation (see the module docstring for why it is "none").
DEGRADER_NORM = "none"


def build_degrader(
    model_cfg,
    frame_size: int | tuple[int, int] | None = None,
    name: str = "degrader",
    norm: str | None = None,
    keras_module=None,
):
    """Builds f_d: [B, H, W, 3] float32 in [0, 1] -> [B, H, W, 3] float32 in [0, 1].

    Args:
      model_cfg: a `ModelConfig` (uses `degrader`, `degrader_norm`, `degrader_width` and
        `degrader_res_blocks`).
      frame_size: H = W of the frames, or (H, W), giving fully static shapes (needed for TFLite
        export), or None for any spatial size divisible by `variant_multiple(variant)` (4; 8 for
        the pyramid). Frames of other sizes are padded to it by the exporters (serving.export,
        serving.tflite), never here.
      name: the Keras model name.
      norm: "none", "batch" or "instance"; None takes the config's `degrader_norm`.
      keras_module: `keras` (default) or `tf_keras` to build the QAT twin.
    """
    variant = model_cfg.degrader
    registered = _variant(variant)
    norm = norm or model_cfg.degrader_norm
    if norm not in NORMS:
        raise ValueError(f"degrader norm: unknown {norm!r}; use one of {NORMS}")
    width = int(model_cfg.degrader_width)
    blocks = int(model_cfg.degrader_res_blocks)
    if width < 1:
        raise ValueError(f"model.degrader_width must be >= 1, got {width}")
    if blocks < 0:
        raise ValueError(f"model.degrader_res_blocks must be >= 0, got {blocks}")
    height, width_px = frame_hw(frame_size) if frame_size is not None else (None, None)
    multiple = variant_multiple(variant)
    if frame_size is not None and any(n <= 0 or n % multiple for n in (height, width_px)):
        # Other sizes would not come back equal (see variant_multiple).
        raise ValueError(
            f"{variant} degrader: frame_size must be a positive multiple of {multiple}, "
            f"got {frame_size}"
        )

    km = keras_module or keras
    b = _Builder(km.layers, norm)
    frames = km.Input(shape=(height, width_px, 3), dtype="float32", name="frames")
    out = registered.build(b, frames, width, blocks)
    out = km.layers.ReLU(max_value=1.0, dtype="float32", name="clip01")(out)
    model = km.Model(frames, out, name=name)
    for layer_name, weights in b.fixed.items():
        layer = model.get_layer(layer_name)
        if weights is None:  # the pyramid's gate logits: zero kernel, bias PYRAMID_GATE_BIAS
            kernel, bias = layer.get_weights()
            weights = [np.zeros_like(kernel), np.full_like(bias, PYRAMID_GATE_BIAS)]
        layer.set_weights(weights)
    return model


# Every variant halves H and W twice (stride-2 convolutions, "same" padding) and doubles them
# back twice: other sizes come back one pixel off (ceil(H / 2) * 2 != H) and the residual sum
# fails. (STRIDE_MULTIPLE = 2 * 2.)
STRIDE_MULTIPLE = 4


def variant_multiple(variant: str) -> int:
    """What H and W of the variant's frames must be a multiple of: 4, 8 for the pyramid.

    The pyramid also averages k x k blocks at full resolution (AveragePooling2D, "valid") for
    each k of PYRAMID_LEVELS and upsamples them back by k, which gives H and W back only for
    multiples of every k.
    """
    return _variant(variant).multiple


def spatial_multiple(model) -> int:
    """What H and W must be a multiple of for a built f_d (Keras 3, tf_keras or a tfmot QAT
    model of one): STRIDE_MULTIPLE, and every pooling size (see variant_multiple)."""
    multiple = STRIDE_MULTIPLE
    for layer in getattr(model, "layers", ()):
        inner = getattr(layer, "layer", layer)  # tfmot's QuantizeWrapper
        if type(inner).__name__ in ("AveragePooling2D", "MaxPooling2D"):
            multiple = math.lcm(multiple, *(int(k) for k in inner.pool_size))
    return multiple


def frame_hw(frame_size) -> tuple[int, int]:
    """frame_size as (H, W): an int S is (S, S); a pair (H, W) stays itself."""
    if isinstance(frame_size, int | np.integer):
        return int(frame_size), int(frame_size)
    height, width = frame_size  # a pair, or this raises
    return int(height), int(width)


class _Builder:
    """Layer recipes shared by both variants; names are stable so twins line up."""

    def __init__(self, layers, norm: str):
        self.L = layers
        self.norm = norm
        self.n = 0
        self.fixed: dict = {}  # layer name -> weights set once the model is built

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def conv(self, x, filters, kernel, strides=1, act=True, zero=False):
        L = self.L
        x = L.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding="same",
            # A conv followed by batch norm needs no bias (it would be folded away anyway).
            use_bias=self.norm != "batch" or not act,
            kernel_initializer="zeros" if zero else "he_normal",
            name=self._name("conv"),
        )(x)
        if act:
            x = self._norm(x)
            x = L.ReLU(name=self._name("relu"))(x)
        return x

    def sepconv(self, x, filters, kernel=3, strides=1, act=True):
        # Depthwise + pointwise as two registered layers (not SeparableConv2D) so that tfmot's
        # default scheme and the TFLite converter both see layers they know.
        L = self.L
        x = L.DepthwiseConv2D(
            kernel, strides=strides, padding="same", use_bias=False, name=self._name("dwconv")
        )(x)
        return self.conv(x, filters, 1, act=act)

    def _norm(self, x):
        L = self.L
        if self.norm == "batch":
            return L.BatchNormalization(name=self._name("bn"))(x)
        if self.norm == "instance":
            return L.GroupNormalization(groups=-1, name=self._name("in"))(x)
        return x

    def up(self, x):
        return self.L.UpSampling2D(2, interpolation="nearest", name=self._name("up"))(x)

    def full_body(self, x, w, blocks):
        x = self.conv(x, w, 9)
        x = self.conv(x, 2 * w, 3, strides=2)
        x = self.conv(x, 4 * w, 3, strides=2)
        for _ in range(blocks):
            y = self.conv(x, 4 * w, 3)
            y = self.conv(y, 4 * w, 3, act=False)
            y = self._norm(y)
            x = self.L.Add(name=self._name("res_add"))([x, y])
        x = self.conv(self.up(x), 2 * w, 3)
        x = self.conv(self.up(x), w, 3)
        return self.conv(x, 3, 9, act=False, zero=True)

    def fixed_conv(self, x, kernel: np.ndarray, kind: str):
        """A 1x1 convolution with a fixed kernel [C_in, C_out] (set once the model is built)."""
        name = self._name(kind)
        self.fixed[name] = [kernel.reshape(1, 1, *kernel.shape).astype(np.float32)]
        return self.L.Conv2D(kernel.shape[1], 1, use_bias=False, trainable=False, name=name)(x)

    def pyramid(self, x, w, blocks):
        """x blended per pixel towards its greyscale, then towards ever coarser versions of it.

        out = c + g1 (L2(c) - c) ..., c = x + g0 (grey(x) - x): every gate g in (0, 1) is a
        per-pixel map from a small network (its context gathered at 1/4 resolution, then brought
        back to 1/2 resolution beside the stem's features, U-Net style, so that a gate can tell
        a hand from the face next to it; upsampled bilinearly to full resolution), and Lk(c)
        is c averaged over k x k blocks and upsampled bilinearly. Each output pixel is a convex
        combination of desaturated and smoothed versions of the input: f_d can only remove
        colour and detail, where its gates say, never add a pattern of its own.
        """
        L = self.L
        stem = self.conv(x, 2 * w, 3, strides=2)  # 1/2
        h = self.sepconv(stem, 4 * w, strides=2)  # 1/4
        for _ in range(blocks):
            y = self.sepconv(h, 4 * w)
            y = self.sepconv(y, 4 * w, act=False)
            h = L.Add(name=self._name("res_add"))([h, y])
        h = self.conv(self.up(h), 2 * w, 1)  # back to 1/2
        h = L.Add(name=self._name("skip_add"))([h, stem])
        h = self.sepconv(h, 2 * w)
        n = 1 + len(PYRAMID_LEVELS)
        name = self._name("gate_logits")
        self.fixed[name] = None  # zero kernel, bias PYRAMID_GATE_BIAS (trainable)
        logits = L.Conv2D(n, 3, padding="same", kernel_initializer="zeros", name=name)(h)
        gates = L.Activation("sigmoid", name=self._name("gates"))(logits)
        gates = bilinear_up_layer(L)(2, name=self._name("gates_up"))(gates)

        def blend(a, target, i):  # a + g_i * (target - a), g_i repeated over the 3 channels
            pick = np.zeros((n, 3), np.float32)
            pick[i, :] = 1.0
            g = self.fixed_conv(gates, pick, "gate_pick")
            diff = L.Subtract(name=self._name("sub"))([target, a])
            return L.Add(name=self._name("blend"))(
                [a, L.Multiply(name=self._name("mul"))([g, diff])]
            )

        grey = self.fixed_conv(x, np.repeat(np.array(_LUMA, np.float32)[:, None], 3, 1), "grey")
        c = blend(x, grey, 0)
        y = c
        for i, k in enumerate(PYRAMID_LEVELS):
            coarse = L.AveragePooling2D(k, name=self._name("pool"))(c)
            coarse = bilinear_up_layer(L)(k, name=self._name("up"))(coarse)
            y = blend(y, coarse, i + 1)
        return y

    def light_body(self, x, w, blocks):
        x = self.conv(x, 2 * w, 3, strides=2)  # 1/2 resolution from the first layer on
        x = self.sepconv(x, 4 * w, strides=2)  # 1/4
        for _ in range(blocks):
            y = self.sepconv(x, 4 * w)
            y = self.sepconv(y, 4 * w, act=False)
            y = self._norm(y)
            x = self.L.Add(name=self._name("res_add"))([x, y])
        x = self.sepconv(self.up(x), 2 * w)  # 1/2
        # Pixel shuffle: 12 channels at 1/2 resolution are the 2x2 sub-pixels of a
        # full-resolution 3-channel delta (zero at initialisation, like the full head).
        x = self.conv(x, 3 * 4, 3, act=False, zero=True)
        return depth_to_space_layer(self.L)(2, name=self._name("depth_to_space"))(x)


# The pyramid's coarsest level averages PYRAMID_FACTOR x PYRAMID_FACTOR blocks.
PYRAMID_LEVELS = (2, 4, 8)
PYRAMID_FACTOR = PYRAMID_LEVELS[-1]
# Gate logits start here: sigmoid(-5) = 0.0067, so f_d starts within 1% of the identity.
PYRAMID_GATE_BIAS = -5.0
_LUMA = (0.299, 0.587, 0.114)


# ---- the variants' registry -----------------------------------------------------------------
# A builder: (recipes, frames, width, blocks) -> f_d's output before its clip to [0, 1].
# `recipes` holds the layer recipes the built-in variants use (conv, sepconv, up, ...; `.L` the
# layers module of the Keras flavour being built: keras.layers, or tf_keras.layers for the
# QAT twin); `frames` the [B, H, W, 3] input; width and blocks the config's degrader_width and
# degrader_res_blocks. build_degrader clips the output (ReLU, max 1) and names the model.
DegraderBuilder = Callable[..., object]


@dataclasses.dataclass(frozen=True)
class _Registered:
    build: DegraderBuilder
    multiple: int  # what H and W must be a multiple of (variant_multiple)


_REGISTRY: dict[str, _Registered] = {}


def register_degrader(name: str, multiple: int = STRIDE_MULTIPLE):
    """Decorator: makes builder `fn` the f_d variant `name` (and `name` a valid model.degrader).

    `fn(recipes, frames, width, blocks)` returns f_d's output before its clip to [0, 1] (see
    DegraderBuilder above); `multiple` is what H and W of its frames must be a multiple of
    (4 for a network that halves them twice and doubles them back).
    """
    if multiple < 1:
        raise ValueError(f"degrader {name!r}: multiple must be >= 1, got {multiple}")

    def wrap(fn: DegraderBuilder) -> DegraderBuilder:
        if name in _REGISTRY:
            raise ValueError(f"degrader {name!r} is registered twice")
        _REGISTRY[name] = _Registered(fn, int(multiple))
        C.register_degrader_name(name)
        return fn

    return wrap


def unregister_degrader(name: str) -> None:
    """Forgets a registered variant (tests registering one of their own clean up with it)."""
    _REGISTRY.pop(name, None)
    C.unregister_degrader_name(name)


def degrader_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def _variant(variant: str) -> _Registered:
    if variant not in _REGISTRY:
        raise C.ConfigError(f"model.degrader: unknown variant {variant!r}; use {degrader_names()}")
    return _REGISTRY[variant]


def _residual(b, frames, delta):
    # Residual output in float32 even under mixed precision: x + delta (clipped by the caller).
    return b.L.Add(dtype="float32", name="residual_add")([frames, delta])


@register_degrader("full")
def _full(b, frames, width, blocks):
    return _residual(b, frames, b.full_body(frames, width, blocks))


@register_degrader("light")
def _light(b, frames, width, blocks):
    return _residual(b, frames, b.light_body(frames, width, blocks))


@register_degrader("pyramid", multiple=math.lcm(STRIDE_MULTIPLE, *PYRAMID_LEVELS))
def _pyramid(b, frames, width, blocks):
    return b.pyramid(frames, width, blocks)


def _one_class_per_keras(build):
    """Decorator for `build(layers) -> Layer class`: made once per Keras flavour (keras.layers
    or tf_keras.layers, the QAT twin's), and registered as serializable for Keras 3."""
    made: dict = {}

    @functools.wraps(build)
    def get(layers):
        if layers not in made:
            cls = build(layers)
            if layers is keras.layers:
                cls = keras.saving.register_keras_serializable("tfprivacy")(cls)
            made[layers] = cls
        return made[layers]

    return get


@_one_class_per_keras
def bilinear_up_layer(layers):
    """The BilinearUp layer class for `layers` (keras.layers or tf_keras.layers).

    x2, x4, ... bilinear upsampling (tf.image.resize, half-pixel centres: TFLite
    RESIZE_BILINEAR) of any spatial size: Keras' UpSampling2D(interpolation="bilinear") needs
    static sizes, and the exported SavedModel serves frames of any size. Weightless, so the
    tf_keras twin lines up; serving.qat gives it a pass-through quantize config (int8
    RESIZE_BILINEAR keeps its input's quantization).
    """

    class BilinearUp(layers.Layer):
        def __init__(self, factor: int = 2, **kwargs):
            super().__init__(**kwargs)
            self.factor = int(factor)

        def call(self, x):
            import tensorflow as tf

            size = tf.shape(x)[1:3] * self.factor
            out = tf.image.resize(x, size, method="bilinear")
            h, w = x.shape[1], x.shape[2]
            static = (h and h * self.factor, w and w * self.factor)
            return tf.ensure_shape(out, (None, *static, x.shape[3]))

        def compute_output_shape(self, input_shape):
            b, h, w, c = tuple(input_shape)
            return (b, h and h * self.factor, w and w * self.factor, c)

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    return BilinearUp


@_one_class_per_keras
def depth_to_space_layer(layers):
    """The DepthToSpace layer class for `layers` (keras.layers or tf_keras.layers).

    Neither Keras has one; this wraps tf.nn.depth_to_space (TFLite DEPTH_TO_SPACE, which
    XNNPACK runs in float and int8). It has no weights, so the tf_keras twin lines up, and
    serving.qat gives it a quantize config that passes its input's quantization through.
    """

    class DepthToSpace(layers.Layer):
        def __init__(self, block_size: int = 2, **kwargs):
            super().__init__(**kwargs)
            self.block_size = int(block_size)

        def call(self, x):
            import tensorflow as tf

            return tf.nn.depth_to_space(x, self.block_size)

        def compute_output_shape(self, input_shape):
            b, h, w, c = tuple(input_shape)
            k = self.block_size
            return (b, h and h * k, w and w * k, c // (k * k))

        def get_config(self):
            return {**super().get_config(), "block_size": self.block_size}

    return DepthToSpace


def degrade_clips(degrader, clips, training: bool):
    """Runs f_d on every frame: [B, T, H, W, 3] -> [B, T, H, W, 3] (float32)."""
    if len(clips.shape) != 5:
        raise ValueError(f"degrade_clips: clips must be [B, T, H, W, 3], got shape {clips.shape}")
    shape = ops.shape(clips)
    flat = ops.reshape(clips, (-1, shape[2], shape[3], shape[4]))
    out = degrader(flat, training=training)
    return ops.reshape(ops.cast(out, "float32"), shape)
