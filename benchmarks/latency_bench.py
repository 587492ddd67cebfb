"""Per-frame latency of the degrader on one CPU thread: TFLite float32 / int8 vs float SavedModel.

  python -m benchmarks.latency_bench                      # the table of docs/camera.md
  python -m benchmarks.latency_bench --ablation           # which layer makes int8 slow
  python -m benchmarks.latency_bench --probe              # which single ops XNNPACK takes

Table: full and light degraders (the default config's width and residual blocks unless --width /
--blocks; --run RUN_DIR times that run's trained f_d instead: weights do not change the latency of
a dense network, but they do set int8's ranges), 112x112 and 224x224 (--sizes: S for S x S, or
H x W as 720x1280; each side rounded up to f_d's multiple, as serving.tflite converts it; with
--scale K, f_d runs on K x K block averages: serving.tflite.analysis_model), the
LiteRT interpreter with num_threads=1 (XNNPACK is applied by default), median of --runs invokes
after --warmup.
The float SavedModel reference runs the same Keras model through tf.saved_model load with TF's
intra- and inter-op pools set to one thread.

Ablation: the same full degrader with each deployment choice switched (normalisation none /
batch / instance; nearest upsampling as UpSampling2D (RESHAPE+TILE in TFLite), as a
RESIZE_NEAREST_NEIGHBOR op, as depth-to-space, or a transposed convolution), reporting float and
int8 latency, the number of XNNPACK partitions (DELEGATE nodes: more than one means the graph
leaves XNNPACK for the builtin kernels and comes back) and the latency with XNNPACK off.
"""

from __future__ import annotations

import collections
import os
import statistics
import tempfile
import time

import numpy as np
from absl import flags

from serving.frame_size import (
    FrameSizeParser,
    FrameSizeSerializer,
    frame_size_text,
    parse_frame_size,
    round_up,
)
from tfprivacy import runtime
from tfprivacy.config import DEGRADERS

SIZES = (112, 224)
# The ablation's rows: (normalisation, upsampling) of the full degrader, named "norm/up".
ABLATION_VARIANTS = (
    *((norm, "nearest") for norm in ("none", "batch", "instance")),
    *(("none", up) for up in ("resize_nearest", "resize_bilinear", "depth_to_space")),
    ("none", "transpose"),
    ("instance", "transpose"),
)
ABLATION_ROWS = tuple(f"{norm}/{up}" for norm, up in ABLATION_VARIANTS)
# The probe's rows: one layer each.
PROBE_LAYERS = (
    "conv3x3",
    "conv9x9",
    "depthwise3x3",
    "transpose_conv",
    "upsampling2d_nearest",
    "upsampling2d_bilinear",
    "resizing_nearest",
    "instance_norm",
    "add_relu1",
    "sigmoid",
    "tanh",
)


def _tf_one_thread():
    import tensorflow as tf

    # Must run before TF executes anything.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def time_tflite(flatbuffer: bytes, runs: int, warmup: int, xnnpack: bool = True) -> float:
    """Median ms of one invoke (batch 1) with the LiteRT interpreter on one thread."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(
        model_content=flatbuffer, num_threads=1, experimental_op_resolver_type=resolver
    )
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    rng = np.random.default_rng(0)
    if np.dtype(inp["dtype"]) == np.float32:
        x = rng.random(inp["shape"], dtype=np.float32)
    else:
        x = rng.integers(-128, 128, inp["shape"]).astype(inp["dtype"])
    it.set_tensor(inp["index"], x)
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def delegate_partitions(flatbuffer: bytes) -> tuple[int, dict]:
    """(number of XNNPACK partitions, op histogram of the converted graph)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer, num_threads=1)
    it.allocate_tensors()
    ops = collections.Counter(o["op_name"] for o in it._get_ops_details())
    return ops.pop("DELEGATE", 0), dict(ops)


def time_savedmodel(model, size, runs: int, warmup: int) -> float:
    """Median ms of the float model exported as a SavedModel and loaded back (batch 1);
    size: S or (H, W)."""
    import tensorflow as tf

    height, width = parse_frame_size(size)
    module = tf.Module()
    module.model = model
    module.f = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32)],
    )
    with tempfile.TemporaryDirectory() as d:
        tf.saved_model.save(module, d)
        loaded = tf.saved_model.load(d)
        shape = (1, height, width, 3)
        x = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
        for _ in range(warmup):
            loaded.f(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            loaded.f(x).numpy()
            times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def _calibration(size, n: int = 8):
    """n random float frames of size S or (H, W)."""
    return np.random.default_rng(1).random((n, *parse_frame_size(size), 3), dtype=np.float32)


def model_size(size, variant: str, scale: int = 1) -> tuple[int, int]:
    """(H, W) a `variant` f_d is built and converted at for a --sizes entry: rounded up to its
    multiple (tfprivacy.models.degrader.variant_multiple) times the analysis scale, as
    serving.tflite.convert does."""
    from tfprivacy.models.degrader import variant_multiple

    return round_up(size, variant_multiple(variant) * scale)


def _model_cfg(variant: str, width: int | None, blocks: int | None):
    from configs.experiments import get_config

    cfg = get_config("benchmark").model
    cfg.degrader = variant
    if width is not None:
        cfg.degrader_width = width
    if blocks is not None:
        cfg.degrader_res_blocks = blocks
    return cfg


def _table_models(args, size):
    """(row name, Keras f_d with static size, calibration frames, its (H, W)) for each table
    row at the --sizes entry `size` (rounded up to each f_d's multiple)."""
    from configs.experiments import get_config
    from serving.tflite import analysis_model, auto_scale
    from tfprivacy.models import build_degrader

    if not args.run:
        trained = get_config("benchmark").data.frame_size
        for variant in args.variants:
            cfg = _model_cfg(variant, args.width, args.blocks)
            scale = args.scale or auto_scale(size, trained)
            shape = model_size(size, variant, scale)
            name = f"{variant} (w{cfg.degrader_width}, untrained){_at(scale)}"
            model = build_degrader(cfg, frame_size=(shape[0] // scale, shape[1] // scale))
            yield name, analysis_model(model, scale, shape), _calibration(shape), shape
        return
    from serving.tflite import representative_frames_from_pipeline, run_model
    from tfprivacy.artifacts import load_config

    for run in args.run:
        model, shape, scale = run_model(run, size, args.scale)
        cfg = load_config(run)
        frames = representative_frames_from_pipeline(cfg.data, 64, shape)
        name = f"{cfg.model.degrader} (w{cfg.model.degrader_width}, {os.path.basename(run)})"
        yield f"{name}{_at(scale)}", model, frames, shape


def _at(scale: int) -> str:
    return "" if scale == 1 else f" at 1/{scale}"


def table(args) -> None:
    from serving.tflite import convert

    print(f"load average: {os.getloadavg()[0]:.2f}  runs={args.runs} warmup={args.warmup}")
    print(
        "| degrader | size | SavedModel float ms | TFLite float32 ms | TFLite int8 ms | "
        "int8 fps | float32 KB | int8 KB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for name, model, calibration, shape in _table_models(args, size):
            f32 = convert(model, shape, "float32")
            q8 = convert(model, shape, "int8", calibration)
            saved = time_savedmodel(model, shape, args.runs, args.warmup)
            # float and int8 side by side, interleaved, so machine noise hits both alike.
            tf32, tq8 = [], []
            for _ in range(3):
                tf32.append(time_tflite(f32, args.runs, args.warmup))
                tq8.append(time_tflite(q8, args.runs, args.warmup))
            tf32, tq8 = min(tf32), min(tq8)
            print(
                f"| {name} | {frame_size_text(shape)} | {saved:.1f} | {tf32:.1f} | {tq8:.1f} | "
                f"{1000 / tq8:.0f} | {len(f32) / 1024:.0f} | {len(q8) / 1024:.0f} |",
                flush=True,
            )


def _patched_builder(up: str):
    """D's layer recipes with another upsampling, for the ablation only."""
    import keras

    from tfprivacy.models import degrader as D

    class Resize(keras.layers.Layer):
        def __init__(self, method, **kw):
            super().__init__(**kw)
            self.method = method

        def call(self, x):
            import tensorflow as tf

            s = x.shape
            return tf.image.resize(x, (2 * s[1], 2 * s[2]), method=self.method)

    class DepthToSpace(keras.layers.Layer):
        def call(self, x):
            import tensorflow as tf

            return tf.nn.depth_to_space(tf.tile(x, [1, 1, 1, 4]), 2)

    class Builder(D._Builder):
        def full_body(self, x, w, blocks):
            if up != "transpose":
                return super().full_body(x, w, blocks)
            # The Johnson et al. / quick-probe design: stride-2 transposed convs upsample.
            x = self.conv(x, w, 9)
            x = self.conv(x, 2 * w, 3, strides=2)
            x = self.conv(x, 4 * w, 3, strides=2)
            for _ in range(blocks):
                y = self.conv(x, 4 * w, 3)
                y = self._norm(self.conv(y, 4 * w, 3, act=False))
                x = self.L.Add(name=self._name("res_add"))([x, y])
            for f in (2 * w, w):
                x = self.L.Conv2DTranspose(f, 3, strides=2, padding="same")(x)
                x = self.L.ReLU(name=self._name("relu"))(self._norm(x))
            return self.conv(x, 3, 9, act=False, zero=True)

        def up(self, x):
            if up == "resize_nearest":
                return Resize("nearest", name=self._name("up"))(x)
            if up == "resize_bilinear":
                return Resize("bilinear", name=self._name("up"))(x)
            if up == "depth_to_space":
                return DepthToSpace(name=self._name("up"))(x)
            return super().up(x)

    return Builder


def ablation(args) -> None:
    from serving.tflite import convert
    from tfprivacy.models import build_degrader
    from tfprivacy.models import degrader as D

    print(
        f"load average: {os.getloadavg()[0]:.2f}  full degrader width={args.width} "
        f"blocks={args.blocks}"
    )
    print(
        "| variant | size | float ms | int8 ms | int8/float | float no-XNN ms | "
        "int8 no-XNN ms | XNN partitions f/q | ops |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    original = D._Builder
    variants = list(ABLATION_VARIANTS)
    if args.only:
        variants = [v for v in variants if f"{v[0]}/{v[1]}" in args.only]
    try:
        for norm, up in variants:
            D._Builder = _patched_builder(up)
            for size in args.sizes:
                shape = model_size(size, args.ablation_variant)
                model = build_degrader(
                    _model_cfg(args.ablation_variant, args.width, args.blocks), shape, norm=norm
                )
                f32 = convert(model, shape, "float32")
                q8 = convert(model, shape, "int8", _calibration(shape))
                tf32 = min(time_tflite(f32, args.runs, args.warmup) for _ in range(2))
                tq8 = min(time_tflite(q8, args.runs, args.warmup) for _ in range(2))
                rf = time_tflite(f32, max(args.runs // 3, 3), 1, xnnpack=False)
                rq = time_tflite(q8, max(args.runs // 3, 3), 1, xnnpack=False)
                pf, _ = delegate_partitions(f32)
                pq, ops = delegate_partitions(q8)
                print(
                    f"| norm={norm} up={up} | {frame_size_text(shape)} | {tf32:.1f} | "
                    f"{tq8:.1f} | {tq8 / tf32:.2f} "
                    f"| {rf:.1f} | {rq:.1f} | {pf}/{pq} | "
                    f"{' '.join(f'{k}:{v}' for k, v in sorted(ops.items()))} |",
                    flush=True,
                )
    finally:
        D._Builder = original


def probe(args) -> None:
    """One layer per model at [1,56,56,32]: does XNNPACK take it in float and in int8?"""
    import keras

    from serving.tflite import convert

    size, ch = 56, 32
    layers = keras.layers
    cases = {
        "conv3x3": lambda: layers.Conv2D(ch, 3, padding="same"),
        "conv9x9": lambda: layers.Conv2D(ch, 9, padding="same"),
        "depthwise3x3": lambda: layers.DepthwiseConv2D(3, padding="same"),
        "transpose_conv": lambda: layers.Conv2DTranspose(ch, 3, strides=2, padding="same"),
        "upsampling2d_nearest": lambda: layers.UpSampling2D(2),
        "upsampling2d_bilinear": lambda: layers.UpSampling2D(2, interpolation="bilinear"),
        "resizing_nearest": lambda: layers.Resizing(2 * size, 2 * size, "nearest"),
        "instance_norm": lambda: layers.GroupNormalization(groups=-1),
        "add_relu1": None,
        "sigmoid": lambda: layers.Activation("sigmoid"),
        "tanh": lambda: layers.Activation("tanh"),
    }
    assert tuple(cases) == PROBE_LAYERS  # what --only is checked against
    print(
        "| layer | TFLite ops | XNN partitions f/q | float ms | int8 ms | "
        "float no-XNN ms | int8 no-XNN ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, make in cases.items():
        if args.only and name not in args.only:
            continue
        x = keras.Input((size, size, ch), batch_size=1)
        if make is None:
            y = layers.ReLU(max_value=1.0)(layers.Add()([x, x]))
        else:
            y = make()(x)
        model = keras.Model(x, y)
        # convert() wants 3-channel frames; wrap with a 1x1 conv and subtract its time.
        inp = keras.Input((size, size, 3), batch_size=1)
        head = layers.Conv2D(ch, 1)(inp)
        full = keras.Model(inp, model(head))
        f32 = convert(full, size, "float32")
        q8 = convert(full, size, "int8", _calibration(size, 4))
        times = [
            min(time_tflite(fb, args.runs, args.warmup, xnn) for _ in range(3))
            for xnn in (True, False)
            for fb in (f32, q8)
        ]
        pf, _ = delegate_partitions(f32)
        pq, ops = delegate_partitions(q8)
        ops.pop("CONV_2D", None) if name not in ("conv3x3", "conv9x9") else None
        print(
            f"| {name} | {' '.join(sorted(ops))} | {pf}/{pq} | "
            + " | ".join(f"{t:.2f}" for t in times)
            + " |",
            flush=True,
        )


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
# Multi-valued ones take several values after one --name (--run runs/default runs/light).
FLAGS = flags.FlagValues()
flags.DEFINE_bool("ablation", False, "the ablation table (see above)", flag_values=FLAGS)
flags.DEFINE_bool("probe", False, "the single-layer probe (see above)", flag_values=FLAGS)
flags.DEFINE_multi_enum(
    "variants", ["full", "light"], DEGRADERS, "degraders of the table", flag_values=FLAGS
)
flags.DEFINE_multi_string("run", None, "trained run dirs to time", flag_values=FLAGS)
flags.DEFINE_enum(
    "ablation_variant", "full", DEGRADERS, "degrader of the ablation", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "only",
    None,
    "ablation rows as norm/up (with --probe: layers) to time, not all",
    flag_values=FLAGS,
)
flags.DEFINE_multi(
    FrameSizeParser(),
    FrameSizeSerializer(),
    "sizes",
    list(SIZES),
    "frame sizes: S (S x S) or HxW (e.g. 720x1280), each side rounded up to f_d's multiple",
    flag_values=FLAGS,
)
flags.DEFINE_integer("width", None, "default: the config's", flag_values=FLAGS)
flags.DEFINE_integer(
    "scale",
    1,
    "table: analysis scale K (serving.tflite.analysis_model: f_d on K x K block averages); "
    "0: auto, min(H, W) // the training frame size",
    lower_bound=0,
    flag_values=FLAGS,
)
flags.DEFINE_integer("blocks", None, "default: the config's", flag_values=FLAGS)
flags.DEFINE_integer("runs", 30, "timed invokes; the median is reported", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 5, "untimed invokes before them", flag_values=FLAGS)


@flags.multi_flags_validator(["only", "probe"], flag_values=FLAGS)
def _check_only(values) -> bool:
    allowed = PROBE_LAYERS if values["probe"] else ABLATION_ROWS
    unknown = [name for name in values["only"] or () if name not in allowed]
    if unknown:
        what = "layers of --probe" if values["probe"] else "ablation rows"
        raise flags.ValidationError(
            f"--only {' '.join(unknown)}: the {what} are {' '.join(allowed)}"
        )
    return True


def main(argv) -> None:
    """Prints the table, the ablation or the probe. argv: the program name alone (run_cli)."""
    del argv
    _tf_one_thread()
    if FLAGS.probe:
        probe(FLAGS)
    elif FLAGS.ablation:
        ablation(FLAGS)
    else:
        table(FLAGS)


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
