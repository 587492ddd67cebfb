"""Privacy models f_b: multi-label attribute logits.

Frame models ([B, H, W, 3] -> [B, A]) of three families, as in the paper's panel:
- "plain": VGG-ish (3x3 convs, two per stage after the first, then max-pool);
- "residual": ResNet-ish (stride-2 residual blocks with projection shortcuts);
- "depthwise": MobileNet-v1-like (3x3 depthwise + 1x1 pointwise).
On clips, a frame model runs on the B*T frames at once and its logits are AVERAGED over T
(`FrameLogitAverage`). "video" is a 3D CNN that sees the whole clip (evaluation only).

No normalisation layers, for the reasons given in target.py (small adversarial batches,
restarts, replicas); the residual blocks start as their shortcut (zero-initialised last conv).
"""

from __future__ import annotations

import keras
from keras import ops

from tfprivacy import config as C
from tfprivacy.models.target import check_clip_shape, conv3d_features, pool_plan, standardise

FRAME_ARCHS = C.FRAME_ARCHS
PRIVACY_ARCHS = C.PRIVACY_ARCHS


@keras.saving.register_keras_serializable(package="tfprivacy")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization computed by TF's fused kernel (FusedBatchNormV3, oneDNN's
    batch norm on CPU) for 4-D channels-last inputs on the TensorFlow backend; the same
    weights, update rule and outputs (to float rounding), Keras' own path otherwise.

    Keras 3 lowers training-mode batch norm to separate moments, normalisation and moving-
    average ops; in the attackers' training step (3x3 convolutions of 8-32 channels on 64x64
    frames) those memory-bound ops took about 40% of the step (docs/benchmark.md,
    "Where the privacy step's time goes").

    Named as Keras' own class on purpose: Keras 3 weights files key a model's layers by their
    class name, so weights saved by attackers built with keras.layers.BatchNormalization (the
    evaluation's caches, the judges' snapshots) load into these and these into those.
    """

    def _fused(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, "float32")  # as Keras: batch norm in float32 under mixed precision
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The fused kernel returns the Bessel-corrected variance for the moving average;
            # Keras moves towards the batch's own (biased) variance, as the output uses.
            n = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
            variance = variance * (n - 1.0) / ops.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                is_training=False,
            )
        return ops.cast(y, self.compute_dtype)


def _conv(x, filters, kernel, name, strides=1, zero=False, act="relu"):
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="zeros" if zero else "he_normal",
        name=name,
    )(x)
    # Batch norm: the attackers must learn 1-2 px cues within a short budget (without it the
    # frame CNNs stayed near chance on face/gender/relationship for hundreds of steps).
    x = BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation(act, name=f"{name}_act")(x) if act else x


def _frame_features(x, arch, image_shape, width, name):
    stages = len(pool_plan((1, *image_shape)))
    x = standardise(x, name)
    if arch == "plain":
        for i in range(stages):
            filters = width * 2 ** min(i, 3)
            x = _conv(x, filters, 3, f"{name}_conv{i}a")
            if i > 0:  # one conv at full resolution: most of the cost, little of the depth
                x = _conv(x, filters, 3, f"{name}_conv{i}b")
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"{name}_pool{i}")(x)
        return x
    if arch == "residual":
        x = _conv(x, width, 3, f"{name}_stem")
        for i in range(stages):
            filters = width * 2 ** min(i + 1, 3)
            # ResNet-D shortcut (average pool, then 1x1): a strided 1x1 conv crashes TF 2.21's
            # oneDNN CPU kernels (heap corruption) at 64x64 with few channels (measured).
            shortcut = keras.layers.AveragePooling2D(2, padding="same", name=f"{name}_down{i}")(x)
            shortcut = _conv(shortcut, filters, 1, f"{name}_proj{i}", act=None)
            y = _conv(x, filters, 3, f"{name}_b{i}a", strides=2)
            y = _conv(y, filters, 3, f"{name}_b{i}b", zero=True, act=None)
            x = keras.layers.Add(name=f"{name}_add{i}")([shortcut, y])
            x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
        return x
    if arch == "depthwise":
        x = _conv(x, width, 3, f"{name}_stem")
        for i in range(stages):
            filters = width * 2 ** min(i + 1, 3)
            x = keras.layers.DepthwiseConv2D(
                3, strides=2, padding="same", activation="relu", name=f"{name}_dw{i}"
            )(x)
            x = _conv(x, filters, 1, f"{name}_pw{i}")
        return x
    raise ValueError(f"privacy frame arch: unknown {arch!r}; use one of {FRAME_ARCHS}")


def build_privacy_frame_model(
    arch: str,
    num_attributes: int,
    image_shape: tuple[int, int, int],
    width: int = 16,
    name: str = "privacy_frame",
) -> keras.Model:
    """[B, H, W, 3] float32 in [0, 1] -> float32 logits [B, num_attributes] (images, e.g. VISPR).

    `image_shape` is (H, W, 3); a clip shape (T, H, W, 3) is accepted and its T dropped.
    """
    if arch not in FRAME_ARCHS:
        raise ValueError(f"privacy frame arch: unknown {arch!r}; use one of {FRAME_ARCHS}")
    if num_attributes < 1 or width < 1:
        raise ValueError(f"privacy: num_attributes and width must be >= 1, got {num_attributes}")
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) == 4:
        image_shape = image_shape[1:]
    if len(image_shape) != 3 or image_shape[-1] != 3:
        raise ValueError(
            f"build_privacy_frame_model: image_shape must be (H, W, 3), got {image_shape}"
        )
    frames = keras.Input(shape=image_shape, dtype="float32", name="frames")
    x = _frame_features(frames, arch, image_shape, width, name)
    # Max, not average: a private cue (a face's marks, a 1 px link between two people) is small
    # and anywhere in the frame; averaging dilutes it over the background.
    x = keras.layers.GlobalMaxPooling2D(name=f"{name}_gmp")(x)
    logits = keras.layers.Dense(num_attributes, dtype="float32", name=f"{name}_logits")(x)
    return keras.Model(frames, logits, name=name)


@keras.saving.register_keras_serializable(package="tfprivacy")
class FrameLogitAverage(keras.layers.Layer):
    """Runs a frame model on all B*T frames in one call and averages its logits over T."""

    def __init__(self, frame_model, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.frame_model = frame_model

    def call(self, clips, training=None):
        shape = ops.shape(clips)
        flat = ops.reshape(clips, (-1, shape[2], shape[3], shape[4]))
        logits = ops.cast(self.frame_model(flat, training=training), "float32")
        return ops.mean(ops.reshape(logits, (shape[0], shape[1], -1)), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.frame_model.output_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["frame_model"] = keras.saving.serialize_keras_object(self.frame_model)
        return config

    @classmethod
    def from_config(cls, config):
        config["frame_model"] = keras.saving.deserialize_keras_object(config["frame_model"])
        return cls(**config)


def wrap_frame_model(frame_model, clip_shape, name: str = "privacy") -> keras.Model:
    """Clip model [B, T, H, W, 3] -> [B, A] sharing `frame_model`'s weights (for cross-dataset
    training, where f_b sees privacy images and degraded clips)."""
    clip_shape = check_clip_shape(clip_shape, "wrap_frame_model")
    clips = keras.Input(shape=clip_shape, dtype="float32", name="clips")
    logits = FrameLogitAverage(frame_model, name=f"{name}_frame_avg")(clips)
    return keras.Model(clips, logits, name=name)


def frame_model_of(privacy_model) -> keras.Model | None:
    """The frame model inside a clip privacy model, or None for a 'video' model."""
    for layer in privacy_model.layers:
        if isinstance(layer, FrameLogitAverage):
            return layer.frame_model
    return None


def build_privacy(
    arch: str,
    num_attributes: int,
    clip_shape,
    width: int = 16,
    name: str = "privacy",
) -> keras.Model:
    """Builds f_b on clips: [B, T, H, W, 3] -> float32 logits [B, num_attributes]."""
    if arch not in PRIVACY_ARCHS:
        raise ValueError(f"privacy arch: unknown {arch!r}; use one of {PRIVACY_ARCHS}")
    clip_shape = check_clip_shape(clip_shape, "build_privacy")
    if arch == "video":
        if num_attributes < 1 or width < 1:
            raise ValueError(
                f"privacy: num_attributes and width must be >= 1, got {num_attributes}"
            )
        clips = keras.Input(shape=clip_shape, dtype="float32", name="clips")
        x = conv3d_features(clips, "c3d_small", clip_shape, width, name)
        x = keras.layers.GlobalMaxPooling3D(name=f"{name}_gmp")(x)
        logits = keras.layers.Dense(num_attributes, dtype="float32", name=f"{name}_logits")(x)
        return keras.Model(clips, logits, name=name)
    frame_model = build_privacy_frame_model(
        arch, num_attributes, clip_shape[1:], width, name=f"{name}_frame"
    )
    return wrap_frame_model(frame_model, clip_shape, name=name)
