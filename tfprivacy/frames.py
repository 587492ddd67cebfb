"""The frame contract: uint8 [0, 255] <-> float [0, 1], and which frames of a video form a clip.

One module for what the pipeline, the evaluation protocol, the SavedModel and TFLite exporters,
the edge runner and the benchmarks must agree on. It imports only NumPy and TensorFlow.

Value conversions (TF functions take tensors or anything tf.convert_to_tensor takes and build
graph ops; `_np` functions take array-likes and return NumPy arrays):

  to_unit_float / to_unit_float_np     uint8 v -> v / 255 (float32; the NumPy one takes dtype)
  to_uint8 / to_uint8_np               float x -> uint8 round_half_even(clip(x, 0, 1) * 255)
  round_to_uint8 / round_to_uint8_np   float x -> uint8 round_half_even(x * 255), NO clip:
                                       only for values already in [0, 1]

Both roundings are half to even (tf.round and np.rint/np.round): a value whose scaled float32
product is exactly k + 0.5 goes to the even neighbour. to_uint8 clips before scaling and
to_uint8_np rounds before clipping; on float32 inputs the two orders give the same byte for
every value but NaN, whose byte is whatever the platform's float -> uint8 cast gives (0 on
x86 for both; tests/test_frames.py). to_uint8 computes in the input's float dtype while
to_uint8_np first casts to float32, so the two may differ on float64 inputs.
The round_to_uint8 pair is kept for the call sites that never clipped (their inputs are in
[0, 1], where it equals to_uint8); outside [0, 1] its cast is platform-defined (x86 wraps:
-0.1 -> 230, 1.2 -> 50) where to_uint8 saturates to 0 and 255.

Frame indices (clip_length = T frames out of a video of N):

  eval_frame_indices     centre of each of T equal segments: floor((2i + 1) * N / (2T))
  train_frame_indices    stride max(1, N // T) from a seeded random start, looping when N < T
  spread_frame_indices   the training stride from num_clips starts spread over the video
  privacy_frame_indices  the segment-centre formula over one clip's T frames (Python ints),
                         every frame when privacy_frames <= 0 or >= T
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The largest uint8 value: float 1.0 on the [0, 1] scale.
UINT8_MAX = 255

# ---------------------------------------------------------------------------------------------
# uint8 <-> [0, 1]


def to_unit_float(frames) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [0, 1] (v / 255), as a TF op; the pipeline's normalisation.

    Float32 values on the 0..255 scale (a resized frame) are divided as they are.
    """
    return tf.cast(frames, tf.float32) / 255.0


def to_unit_float_np(frames, dtype=np.float32) -> np.ndarray:
    """uint8 [0, 255] -> [0, 1] (v / 255) as a NumPy array of `dtype` (float32 by default).

    In float32, the same values as to_unit_float: both divide correctly rounded.
    """
    dtype = np.dtype(dtype)
    return np.asarray(frames).astype(dtype) / dtype.type(UINT8_MAX)


def to_uint8(images) -> tf.Tensor:
    """float [0, 1] -> uint8 as a TF op: clip to [0, 1], scale by 255, round half to even.

    Values f_d pushes out of range saturate at 0 and 255. Computed in the input's dtype.
    """
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


def to_uint8_np(x) -> np.ndarray:
    """float [0, 1] -> uint8 NumPy array: float32, scale by 255, round half to even, clip."""
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, UINT8_MAX).astype(np.uint8)


def round_to_uint8(images) -> tf.Tensor:
    """float in [0, 1] -> uint8 as a TF op, WITHOUT clipping (see the module docstring).

    Equal to to_uint8 on [0, 1]; only for inputs known to be there (e.g. v / 255 frames).
    """
    return tf.cast(tf.round(images * 255.0), tf.uint8)


def round_to_uint8_np(x) -> np.ndarray:
    """float in [0, 1] -> uint8 NumPy array, WITHOUT clipping (see the module docstring).

    Equal to to_uint8_np on [0, 1]; only for inputs known to be there (an already clipped
    degrader output). Computed in the input's dtype.
    """
    return np.round(x * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Which frames form a clip


def eval_frame_indices(num_frames, clip_length: int) -> tf.Tensor:
    """T evenly spaced indices over the whole video: the centre of each of T equal segments.

    index_i = floor((2i + 1) * N / (2T)); N=16, T=8 -> 1, 3, ..., 15. Short videos repeat
    frames (N=4, T=8 -> 0, 0, 1, 1, 2, 2, 3, 3).
    """
    n = tf.cast(num_frames, tf.int32)
    i = tf.range(clip_length, dtype=tf.int32)
    return (2 * i + 1) * n // (2 * clip_length)


def train_frame_indices(num_frames, clip_length: int, seed) -> tf.Tensor:
    """T frames at stride max(1, N // T) from a random start; loops when N < T.

    The stride matches the eval sampling's temporal scale (motion speed carries the action).
    """
    n, stride, num_starts = _strided_starts(num_frames, clip_length)
    start = (
        tf.random.stateless_uniform([], seed=seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
        % num_starts
    )
    return (start + tf.range(clip_length, dtype=tf.int32) * stride) % n


def _strided_starts(num_frames, clip_length: int):
    """(N, stride max(1, N // T), number of starts >= 1) of T-frame clips at that stride."""
    n = tf.cast(num_frames, tf.int32)
    stride = tf.maximum(1, n // clip_length)
    span = (clip_length - 1) * stride + 1
    return n, stride, tf.maximum(tf.where(span <= n, n - span + 1, n), 1)


def spread_frame_indices(num_frames, clip_length: int, num_clips: int) -> tf.Tensor:
    """[num_clips, T] indices: clips at the training stride, starts spread evenly over the video.

    With N=16, T=8 (stride 2, starts 0..1) two clips take frames 0, 2, .., 14 and 1, 3, .., 15:
    together every frame once. The evaluation's training clips: deterministic, and covering
    the video rather than one random crop of it.
    """
    n, stride, num_starts = _strided_starts(num_frames, clip_length)
    k = tf.range(num_clips, dtype=tf.int32)
    starts = (k * (num_starts - 1)) // max(num_clips - 1, 1) if num_clips > 1 else k * 0
    if num_clips > 1:
        # Fewer starts than clips: wrap around so extra clips take the next offsets.
        starts = tf.where(num_starts >= num_clips, starts, k % num_starts)
    steps = tf.range(clip_length, dtype=tf.int32) * stride
    return (starts[:, None] + steps[None, :]) % n


def privacy_frame_indices(clip_length: int, privacy_frames: int) -> list[int]:
    """Evenly spaced frames of a clip that the privacy models see during the game.

    eval_frame_indices' segment centres with N = clip_length and T = privacy_frames, as Python
    ints; every frame of the clip when privacy_frames <= 0 or >= clip_length.
    """
    if privacy_frames <= 0 or privacy_frames >= clip_length:
        return list(range(clip_length))
    return [(2 * i + 1) * clip_length // (2 * privacy_frames) for i in range(privacy_frames)]
