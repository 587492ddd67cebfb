"""Hand-made privacy filters: the baselines a learned f_d must beat.

Every filter is a TF function on float frames [..., H, W, 3] in [0, 1] returning the same
shape and range, so it plugs into the evaluation exactly where a learned f_d does.
Downsampling keeps the frame size (area downsample, then bilinear resize back) because the
fresh models are built for the training clip shape, as in the paper's baselines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import tensorflow as tf

# ITU-R BT.601 luma, the weights of tf.image.rgb_to_grayscale.
_LUMA = (0.2989, 0.5870, 0.1140)


def _as_frames(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[..., H, W, 3] -> ([N, H, W, 3], original shape) so tf.image ops (3-D/4-D only) apply."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank is not None and x.shape.rank < 3:
        raise ValueError(f"baseline filter: expected frames [..., H, W, 3], got shape {x.shape}")
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[-1], shape[-3:]], 0)), shape


def identity(x: tf.Tensor) -> tf.Tensor:
    return tf.convert_to_tensor(x, tf.float32)


def _shrink_and_grow(x: tf.Tensor, factor: int, method: str) -> tf.Tensor:
    """Area-average to (H/factor, W/factor), then resize back to (H, W) with `method`."""
    frames, shape = _as_frames(x)
    h, w = shape[-3], shape[-2]
    small = tf.image.resize(
        frames, [tf.maximum(h // factor, 1), tf.maximum(w // factor, 1)], method="area"
    )
    out = tf.image.resize(small, [h, w], method=method)
    return tf.reshape(tf.clip_by_value(out, 0.0, 1.0), shape)


def downsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Area-average to (H/factor, W/factor), then bilinear back to (H, W)."""
    return _shrink_and_grow(x, factor, "bilinear")


def pixelate(x: tf.Tensor, block: int) -> tf.Tensor:
    """Mosaic: average each block x block tile and repeat it (nearest-neighbour upsampling)."""
    return _shrink_and_grow(x, block, "nearest")


def gaussian_kernel(sigma: float, radius: int | None = None) -> tf.Tensor:
    """Normalised 1-D Gaussian taps over [-radius, radius], radius ceil(3 sigma) by default."""
    if radius is None:
        radius = max(1, math.ceil(3 * sigma))
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(t**2) / (2.0 * sigma**2))
    return k / tf.reduce_sum(k)


def blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable Gaussian blur, symmetric padding so borders keep their brightness."""
    frames, shape = _as_frames(x)
    radius = max(1, math.ceil(3 * sigma))
    # SYMMETRIC padding needs pad <= dim: tiny frames get a kernel truncated to fit.
    if None not in frames.shape[1:3]:
        radius = min(radius, min(frames.shape[1:3]) - 1)
    if radius <= 0:
        return tf.reshape(frames, shape)
    k = gaussian_kernel(sigma, radius)
    padded = tf.pad(frames, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "SYMMETRIC")
    kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1])
    ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(padded, kx, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, ky, [1, 1, 1, 1], "VALID")
    return tf.reshape(out, shape)


def grey(x: tf.Tensor) -> tf.Tensor:
    """Luma replicated to three channels (keeps the 3-channel interface of every model)."""
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.tensordot(x, tf.constant(_LUMA, tf.float32), axes=[[-1], [0]])[..., None]
    return tf.repeat(y, 3, axis=-1)


def grey_downsample(x: tf.Tensor, factor: int) -> tf.Tensor:
    return downsample(grey(x), factor)


BASELINES: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {"raw": identity}
for _f in (2, 4, 8, 16):
    BASELINES[f"down{_f}"] = functools.partial(downsample, factor=_f)
for _s in (1, 2, 4):
    BASELINES[f"blur{_s}"] = functools.partial(blur, sigma=float(_s))
for _b in (4, 8):
    BASELINES[f"pixelate{_b}"] = functools.partial(pixelate, block=_b)
BASELINES["grey"] = grey
for _f in (2, 4, 8):
    BASELINES[f"grey_down{_f}"] = functools.partial(grey_downsample, factor=_f)


def all_baselines() -> list[str]:
    """Every registered baseline name, in sweep order (raw first)."""
    return list(BASELINES)


def get_baseline(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return BASELINES[name]


def resolve_baselines(spec) -> list[str]:
    """'all' -> every baseline; a comma string or a sequence -> those names, checked."""
    if isinstance(spec, str):
        spec = all_baselines() if spec.strip() == "all" else [s for s in spec.split(",") if s]
    names = [s.strip() for s in spec]
    for name in names:
        get_baseline(name)
    return names
