"""Quantization-aware fine-tuning of f_d with tensorflow-model-optimization, then int8 TFLite.

    python -m serving.qat --run RUN_DIR --out degrader_qat_int8.tflite [--steps 200]

tfmot accepts only tf_keras (Keras 2) models (docs/design.md section 6), so:
  1. build a tf_keras twin of f_d with the same layers in the same order
     (tfprivacy.models.build_degrader(..., keras_module=tf_keras)) and copy the Keras 3 weights;
  2. wrap it with tfmot's default 8-bit scheme (quantize_model: fake-quant on weights and
     activations, BatchNorm folded into the preceding conv);
  3. fine-tune by distillation: minimise mean |q(x) - f_d(x)| on frames, with the float
     f_d's output as the target, so the quantized net learns to reproduce f_d (no labels and no
     adversaries needed, and the privacy/utility trade-off learnt by f_d is what is kept);
  4. convert to full-integer int8 TFLite (int8 input/output tensors, like serving.tflite).

Use it when post-training int8 (serving.tflite.convert(..., "int8")) loses accuracy.
"""

from __future__ import annotations

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import numpy as np
import tensorflow as tf

from serving import tflite


class QATError(ValueError):
    """A twin that does not line up with f_d, or bad fine-tuning inputs; names the layer/field."""


def build_twin(model_cfg, frame_size: int, norm: str | None = None):
    """The tf_keras twin of build_degrader(model_cfg, frame_size) (random weights)."""
    import tf_keras

    from tfprivacy.models import build_degrader

    return build_degrader(model_cfg, frame_size=frame_size, norm=norm, keras_module=tf_keras)


def copy_weights(source, twin) -> None:
    """Copies the Keras 3 model's weights into the tf_keras twin, checking layer by layer."""
    src = [layer for layer in source.layers if layer.weights]
    dst = [layer for layer in twin.layers if layer.weights]
    if [type(s).__name__ for s in src] != [type(d).__name__ for d in dst]:
        raise QATError(
            f"twin {twin.name!r} does not line up with {source.name!r}: layers with weights "
            f"{[type(d).__name__ for d in dst]} vs {[type(s).__name__ for s in src]}"
        )
    for s, d in zip(src, dst, strict=True):
        values = s.get_weights()
        shapes = [tuple(w.shape) for w in d.get_weights()]
        if [v.shape for v in values] != shapes:
            raise QATError(
                f"layer {s.name!r} -> {d.name!r}: weight shapes "
                f"{[v.shape for v in values]} vs {shapes}"
            )
        d.set_weights(values)


def _pass_through_config():
    """A tfmot QuantizeConfig for weightless data-movement layers (DepthToSpace).

    Nothing to fake-quantize: the layer moves values without changing them, so its output
    keeps its input's quantization (TFLite's int8 DEPTH_TO_SPACE requires exactly that).
    """
    import tensorflow_model_optimization as tfmot

    class PassThroughQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    return PassThroughQuantizeConfig


def quantize(twin):
    """tfmot's default 8-bit QAT wrapper around the twin (weights preserved).

    Layers outside tfmot's registry that only move data (the light degrader's DepthToSpace)
    are annotated with a pass-through config, the pyramid degrader's elementwise Multiply and
    Subtract with tfmot's output-quantizing config (as its registry treats Add); everything
    else gets the default scheme.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as configs8,
    )

    from tfprivacy.models.degrader import bilinear_up_layer, depth_to_space_layer

    qk = tfmot.quantization.keras
    d2s = depth_to_space_layer(tf_keras.layers)
    up = bilinear_up_layer(tf_keras.layers)
    config_cls = _pass_through_config()

    def annotate(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, d2s | up):
            return qk.quantize_annotate_layer(fresh, config_cls())
        if isinstance(layer, tf_keras.layers.Multiply | tf_keras.layers.Subtract):
            return qk.quantize_annotate_layer(fresh, configs8.Default8BitOutputQuantizeConfig())
        return fresh

    try:
        # quantize_model annotates every other layer with the default scheme; clone_model
        # builds fresh layers, so the weights are copied over before applying.
        annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
        annotated.set_weights(twin.get_weights())
        scope = {
            "DepthToSpace": d2s,
            "BilinearUp": up,
            "PassThroughQuantizeConfig": config_cls,
            "Default8BitOutputQuantizeConfig": configs8.Default8BitOutputQuantizeConfig,
        }
        with qk.quantize_scope(scope):
            return qk.quantize_model(annotated)
    except (RuntimeError, ValueError) as err:
        # e.g. GroupNormalization (instance norm) is not in tfmot's default registry.
        raise QATError(f"tfmot cannot quantize {twin.name!r}: {err}") from err


def calibrate_ranges(qat_model, twin, frames) -> int:
    """Sets every activation quantizer's min/max from the float twin's activations on frames.

    tfmot starts activation ranges at [-6, 6] and moves them by an exponential moving average
    (decay 0.999): after a short fine-tune they are still near [-6, 6], measured worse than
    post-training int8 (21.9 vs 26.2 dB PSNR). Starting from the observed ranges, as
    post-training calibration does, the fine-tune only has to refine them.
    Returns the number of (min, max) pairs set.
    """
    import tf_keras

    names = [layer.name for layer in twin.layers[1:]]
    probe = tf_keras.Model(twin.inputs, [twin.get_layer(n).output for n in names])
    acts = {n: [] for n in names}
    for i in range(0, len(frames), 32):
        for n, a in zip(names, probe(frames[i : i + 32], training=False), strict=True):
            a = a.numpy()
            acts[n].append((float(a.min()), float(a.max())))
    ranges = {
        n: (min(0.0, min(v[0] for v in r)), max(0.0, max(v[1] for v in r))) for n, r in acts.items()
    }
    ranges["<input>"] = (min(0.0, float(frames.min())), float(frames.max()))
    count = 0
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        key = inner.name if inner is not None else "<input>"
        if key not in ranges:
            continue
        lo, hi = ranges[key]
        for v in layer.non_trainable_weights:
            name = v.name.split("/")[-1].split(":")[0]
            if name.endswith("_min") and "kernel" not in name:
                v.assign(lo)
                count += 1
            elif name.endswith("_max") and "kernel" not in name:
                v.assign(hi)
    return count


def qat_finetune(
    model,
    model_cfg,
    frames,
    frame_size: int,
    steps: int = 200,
    batch_size: int = 8,
    learning_rate: float = 1e-4,
    norm: str | None = None,
    seed: int = 0,
):
    """Fine-tunes a QAT copy of the Keras 3 f_d `model` to match its float output.

    Args:
      model: the trained Keras 3 f_d (any input size; run on frames as given).
      model_cfg: its ModelConfig (to build the twin); norm as passed to build_degrader.
      frames: float32 [N, S, S, 3] in [0, 1], S = frame_size (e.g. from the training pipeline).
      steps, batch_size, learning_rate, seed: the distillation schedule.
    Returns:
      (qat_model: tf_keras model with fake-quant, history: list of per-step L1 losses).
    """
    import tf_keras

    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4 or frames.shape[1:] != (frame_size, frame_size, 3):
        raise QATError(f"frames: shape {frames.shape}, expected [N, {frame_size}, {frame_size}, 3]")
    # Targets computed once: the float f_d is the teacher and is not trained.
    targets = np.concatenate(
        [np.asarray(model(frames[i : i + 64], training=False)) for i in range(0, len(frames), 64)]
    )
    twin = build_twin(model_cfg, frame_size, norm=norm)
    copy_weights(model, twin)
    qat_model = quantize(twin)
    calibrate_ranges(qat_model, twin, frames)
    optimizer = tf_keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            # training=True: tfmot's activation quantizers update their moving min/max only in
            # training mode, so the ranges follow the weights as they are fine-tuned.
            loss = tf.reduce_mean(tf.abs(qat_model(x, training=True) - y))
        grads = tape.gradient(loss, qat_model.trainable_variables)
        optimizer.apply_gradients(zip(grads, qat_model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    history = []
    for _ in range(steps):
        idx = rng.integers(0, len(frames), batch_size)
        history.append(float(step(tf.constant(frames[idx]), tf.constant(targets[idx]))))
    return qat_model, history


def convert_qat(
    qat_model, frame_size: int, representative_frames, output_path: str | None = None
) -> bytes:
    """Full-integer int8 TFLite (int8 input/output) from a QAT model.

    The ranges come from the model's fake-quant nodes; the converter still asks for
    representative frames once the weights are frozen (it no longer sees a tfmot model) and
    uses them for the few tensors without fake-quant ranges.
    """
    converter = tflite.frozen_converter(qat_model, frame_size)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = tflite.representative_dataset(
        representative_frames, frame_size
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    if output_path:
        tflite.write_atomic(output_path, flatbuffer)
    return flatbuffer


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "training run directory", required=True, flag_values=FLAGS)
flags.DEFINE_string("out", None, "output .tflite path", required=True, flag_values=FLAGS)
flags.DEFINE_integer("frame_size", None, "default: export config", flag_values=FLAGS)
flags.DEFINE_integer("frames", 256, "frames drawn from the pipeline", flag_values=FLAGS)
flags.DEFINE_integer("steps", 200, "QAT fine-tuning steps", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 8, "frames per fine-tuning step", flag_values=FLAGS)
flags.DEFINE_float("learning_rate", 1e-4, "Adam's learning rate", flag_values=FLAGS)


def main(argv) -> int:
    """QAT fine-tunes --run's f_d and writes int8 TFLite to --out; prints PSNR of QAT and
    post-training int8 against float. argv: the program name alone (run_cli)."""
    del argv
    from tfprivacy.artifacts import load_degrader

    _, cfg = load_degrader(FLAGS.run)
    size = FLAGS.frame_size or cfg.export.tflite_frame_size
    model, _ = load_degrader(FLAGS.run, frame_size=size)
    frames = tflite.representative_frames_from_pipeline(cfg.data, FLAGS.frames, size)
    held_out = frames[-16:]
    qat_model, history = qat_finetune(
        model, cfg.model, frames[:-16], size, FLAGS.steps, FLAGS.batch_size, FLAGS.learning_rate
    )
    flatbuffer = convert_qat(qat_model, size, frames[:64], output_path=FLAGS.out)
    ptq = tflite.convert(model, size, "int8", frames[:64])
    report = tflite.artifact_report(model, {"ptq_int8": ptq, "qat_int8": flatbuffer}, held_out)
    print(f"QAT L1 loss {history[0]:.4f} -> {history[-1]:.4f} over {len(history)} steps")
    for name, row in report.items():
        print(f"{name:9s} {row['bytes']:>9d} bytes  PSNR vs float {row['psnr_db']:.1f} dB")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
