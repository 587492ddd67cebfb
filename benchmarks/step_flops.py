"""Achieved FLOP/s of the game's update steps against plain convolutions, in one process.

    python -m benchmarks.step_flops [--config benchmark] [--set ...] [--steps 30]

Builds the players of `--config` at its shapes and times, on fixed random batches (no input
pipeline), each kind of update: f_d on L_T + gamma L_adv, f_T, the M privacy models, and the
multi-step loop of the pretraining phases (trainer.steps_per_loop steps per call). FLOPs per
step are counted from each step's traced graph: every convolution and matrix product, forward
and gradient (Conv2D/3D, depthwise, their BackpropInput/BackpropFilter ops, MatMul), 2 FLOPs
per multiply-add, from static shapes; elementwise ops are left out, so the figures are a lower
bound of the work done. The reference is a plain Conv2D and a plain Conv3D in a tf.function
loop of the same size class, timed in the same process right before. Prints GFLOP/s per step
and its ratio to the plain conv2d (issue 10's target: >= 50%).

--compare_batch_norm also times the privacy step with the attackers' batch norm as Keras'
own layer (separate moments, normalisation and moving-average ops) against the fused one the
attackers use (tfprivacy.models.privacy.BatchNormalization), interleaved, best of 3 rounds.
"""

from __future__ import annotations

import time

from absl import app, flags

from tfprivacy import runtime

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
runtime.define_config_flags(
    FLAGS, config_help="Named experiment whose shapes and players are timed."
)
flags.DEFINE_integer(
    "steps",
    30,
    "Timed calls per step kind (after 3 warm-up calls).",
    lower_bound=1,
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "compare_batch_norm",
    False,
    "Also time the privacy step with Keras' own BatchNormalization against the fused one.",
    flag_values=FLAGS,
)

_CONV = {"Conv2D", "Conv3D", "DepthwiseConv2dNative"}
_BACKPROP = {
    "Conv2DBackpropInput": "out_grad",
    "Conv2DBackpropFilter": "out_grad",
    "Conv3DBackpropInputV2": "out_grad",
    "Conv3DBackpropFilterV2": "out_grad",
    "DepthwiseConv2dNativeBackpropInput": "out_grad",
    "DepthwiseConv2dNativeBackpropFilter": "out_grad",
}


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def graph_flops(graph) -> tuple[int, dict]:
    """FLOPs of the live convolutions and matrix products of `graph` (and of the functions it
    calls), from static shapes; (total, per op type)."""
    per_type: dict[str, int] = {}

    def live_ops(g):
        """Ops the outputs or a variable update depend on: the gradient ops that tape.gradient
        emits for unrequested tensors (e.g. a frozen model's filter gradients) are pruned at
        run time and not counted."""
        seeds = [t.op for t in getattr(g, "outputs", []) if hasattr(t, "op")]
        seeds += [
            op
            for op in g.get_operations()
            if op.type.startswith(("Assign", "ResourceApply", "ResourceScatter"))
        ]
        live, stack = set(), list(seeds)
        while stack:
            op = stack.pop()
            if op in live:
                continue
            live.add(op)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
        return live

    def visit(g):
        live = live_ops(g)
        for op in g.get_operations():
            if live and op not in live:
                continue
            flops = _op_flops(op)
            if flops:
                per_type[op.type] = per_type.get(op.type, 0) + flops
        for fn in getattr(g, "_functions", {}).values():
            inner = getattr(fn, "graph", None)
            if inner is not None:
                visit(inner)

    visit(graph)
    return sum(per_type.values()), per_type


def _op_flops(op) -> int:
    try:
        if op.type in _CONV:
            out = op.outputs[0].shape.as_list()
            kernel = op.inputs[1].shape.as_list()  # [k..., C_in, C_out or multiplier]
            if None in out or None in kernel:
                return 0
            if op.type == "DepthwiseConv2dNative":
                return 2 * _prod(out) * _prod(kernel[:-2])
            return 2 * _prod(out) * _prod(kernel[:-1])
        if op.type in _BACKPROP:
            # Same multiply-adds as the forward conv: over the output gradient's elements.
            grad = op.inputs[2].shape.as_list()
            if "Filter" in op.type:
                kernel = op.outputs[0].shape.as_list()
            else:
                kernel = op.inputs[1].shape.as_list()
                if len(kernel) == 1:  # a shape tensor: read the constant when static
                    return 0
            if None in grad or None in kernel:
                return 0
            if op.type.startswith("Depthwise"):
                return 2 * _prod(grad) * _prod(kernel[:-2])
            return 2 * _prod(grad) * _prod(kernel[:-1])
        if op.type in ("MatMul", "BatchMatMulV2"):
            a = op.inputs[0].shape.as_list()
            out = op.outputs[0].shape.as_list()
            ta = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
            k = a[-2] if ta else a[-1]
            if None in out or k is None:
                return 0
            return 2 * _prod(out) * int(k)
    except (ValueError, TypeError):
        return 0
    return 0


def _time(fn, args, steps: int) -> float:
    for _ in range(3):
        out = fn(*args)
    _block(out)
    start = time.perf_counter()
    for _ in range(steps):
        out = fn(*args)
    _block(out)
    return (time.perf_counter() - start) / steps


def _block(out):
    import tensorflow as tf

    for t in tf.nest.flatten(out):
        if hasattr(t, "numpy"):
            t.numpy()


def reference(steps: int) -> dict:
    """GFLOP/s of a plain Conv2D (16 x 64 x 64 x 32 -> 32, 3x3) and Conv3D (8 x 8 x 32 x 32 x 16
    -> 16, 3x3x3), forward only, 10 per call."""
    import tensorflow as tf

    out = {}
    cases = {
        "conv2d": ((16, 64, 64, 32), (3, 3, 32, 32), tf.nn.conv2d),
        "conv3d": ((8, 8, 32, 32, 16), (3, 3, 3, 16, 16), tf.nn.conv3d),
    }
    for name, (xs, ks, op) in cases.items():
        x = tf.random.uniform(xs)
        k = tf.Variable(tf.random.normal(ks) * 0.1)
        strides = [1] * len(xs)

        @tf.function
        def run(x, op=op, k=k, strides=strides):
            y = x
            for _ in range(10):
                y = op(y, k, strides, "SAME")
            return tf.reduce_sum(y)

        flops = 10 * 2 * _prod(xs[:-1]) * ks[-1] * _prod(ks[:-1])
        seconds = _time(run, (x,), steps)
        out[name] = flops / seconds / 1e9
    return out


def main(argv):
    del argv
    runtime.import_tensorflow()
    import numpy as np
    import tensorflow as tf

    from tfprivacy import config as C
    from tfprivacy.data.records import NUM_ATTRIBUTES
    from tfprivacy.experiments import get_config
    from tfprivacy.frames import privacy_frame_indices
    from tfprivacy.train.game import Players, Shapes
    from tfprivacy.train.steps import Steps

    try:
        cfg = get_config(FLAGS.config, list(FLAGS.set))
    except C.ConfigError as err:
        raise app.UsageError(str(err)) from None
    runtime.quiet_logs()
    d = cfg.data
    b, t, s = d.batch_size, d.clip_length, d.frame_size
    idx = privacy_frame_indices(t, cfg.adversary.privacy_frames)
    strategy = tf.distribute.get_strategy()
    shapes = Shapes((t, s, s, 3), (len(idx), s, s, 3), 8)
    players = Players(cfg, shapes, strategy)
    steps = Steps(players, b, joint=True, frame_idx=idx)
    rng = np.random.default_rng(0)
    clips = tf.constant(rng.random((b, t, s, s, 3), np.float32))
    actions = tf.constant(rng.integers(0, 8, b), tf.int32)
    labels = tf.constant(rng.integers(0, 2, (b, NUM_ATTRIBUTES)).astype(np.float32))
    action = (clips, actions)
    privacy = (tf.gather(clips, idx, axis=1), labels)
    n = cfg.trainer.steps_per_loop
    dataset = tf.data.Dataset.from_tensors(privacy).repeat()
    iterator = iter(dataset)

    print(f"CPU: {runtime.cpu_description()}; oneDNN {runtime.onednn_status()}")
    ref = reference(FLAGS.steps)
    print(
        f"plain conv2d {ref['conv2d']:.1f} GFLOP/s, plain conv3d {ref['conv3d']:.1f} GFLOP/s "
        f"(forward, in this process)"
    )
    cases = {
        "f_d step (L_T + gamma L_adv)": (steps.degrader, (action, privacy), 1),
        "f_T step": (steps.target, (action,), 1),
        f"privacy step (M={len(players.privacy)})": (steps.privacy, (privacy,), 1),
    }
    breakdown = {}
    print(f"{'step':<34}{'ms/step':>10}{'GFLOP/step':>12}{'GFLOP/s':>10}{'of conv2d':>11}")
    for name, (fn, args, per_call) in cases.items():
        graph = fn.get_concrete_function(*args).graph
        flops, per_type = graph_flops(graph)
        breakdown[name] = per_type
        seconds = _time(fn, args, FLAGS.steps) / per_call
        rate = flops / seconds / 1e9
        print(
            f"{name:<34}{1000 * seconds:>10.1f}{flops / 1e9:>12.3f}{rate:>10.1f}"
            f"{100 * rate / ref['conv2d']:>10.0f}%"
        )
    for name, per_type in breakdown.items():
        parts = sorted(per_type.items(), key=lambda kv: -kv[1])
        print(f"  {name}: " + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in parts) + " GFLOP")
    # The pretraining phases' loop: n privacy steps per call, losses to the host once.
    one_flops, _ = graph_flops(steps.privacy.get_concrete_function(privacy).graph)
    pick = lambda element: element  # noqa: E731
    loop_seconds = _time(lambda: steps.loop("privacy", iterator, pick, n), (), FLAGS.steps) / n
    single_seconds = _time(lambda: steps.privacy(next(iterator)), (), FLAGS.steps)
    print(
        f"privacy steps from a dataset: one call per step {1000 * single_seconds:.1f} ms, "
        f"{n} per call {1000 * loop_seconds:.1f} ms/step "
        f"({single_seconds / loop_seconds:.2f}x; {one_flops / loop_seconds / 1e9:.1f} GFLOP/s)"
    )
    if FLAGS.compare_batch_norm:
        _compare_batch_norm(cfg, shapes, strategy, steps, privacy, b, idx)


def _compare_batch_norm(cfg, shapes, strategy, steps, privacy, b, idx) -> None:
    """Prints the privacy step's time with Keras' BatchNormalization and with the fused one."""
    from unittest import mock

    import keras

    from tfprivacy.models import privacy as P
    from tfprivacy.train.game import Players
    from tfprivacy.train.steps import Steps

    with mock.patch.object(P, "BatchNormalization", keras.layers.BatchNormalization):
        keras_steps = Steps(Players(cfg, shapes, strategy), b, joint=True, frame_idx=idx)
    times = {"Keras' own": [], "fused": []}
    for _ in range(3):
        times["Keras' own"].append(_time(keras_steps.privacy, (privacy,), FLAGS.steps))
        times["fused"].append(_time(steps.privacy, (privacy,), FLAGS.steps))
    old, new = min(times["Keras' own"]), min(times["fused"])
    print(
        f"privacy step with the attackers' batch norm as Keras' own layer {1000 * old:.1f} ms, "
        f"fused {1000 * new:.1f} ms: {old / new:.2f}x (best of 3 interleaved rounds)"
    )


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
