"""f_d along its game: the kept checkpoints of its adversarial phase, each measured by the ruler.

    python -m trainers.adversarial --run_dir runs/s1 --noevaluate --attack_steps 0 \\
        --set trainer.max_to_keep=80
    python -m benchmarks.game_trajectory --run runs/s1 --out runs/s1_trajectory
    python -m benchmarks.game_trajectory --run runs/s1 --out runs/s1_trajectory --steps 300,600

A game that ends in the wrong place may have passed through the right one; a rule that picks
when to stop can only mend it if it did. This tool says which: it restores every checkpoint the
run kept inside its adversarial phase (one every trainer.checkpoint_every steps; the run keeps
trainer.max_to_keep of them, 3 by default, so train with a larger value to keep a trajectory),
writes f_d at each step as a run dir (OUT/stepNNNN: config.json, degrader.weights.h5; the
game's final f_d too), measures each with the ruler (`trainers.evaluate --run OUT/stepNNNN
--seeds N --baselines raw`, its output in OUT/stepNNNN.eval.log; a step whose report.json
exists is not measured again; a step dir written from another run is refused) and prints the
trajectory on the action / leakage plane as `benchmarks.tradeoff_points` does
(OUT/trajectory.md; `--plot` draws it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

from absl import flags

from benchmarks import tradeoff_points
from tfprivacy import artifacts, runtime
from tfprivacy import config as C

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "A trained run dir (its ckpt/ folder).", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Folder of the steps' run dirs and the table.", flag_values=FLAGS)
flags.DEFINE_list(
    "steps", [], "Adversarial steps to measure (default: every kept one).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "eval_seeds", 1, "Seeds of the ruler per step.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_string("plot", "", "PNG of the trajectory (empty: none).", flag_values=FLAGS)
flags.mark_flags_as_required(["run", "out"], flag_values=FLAGS)


@flags.validator("steps", flag_values=FLAGS)
def _check_steps(steps) -> bool:
    try:
        values = [int(s) for s in steps]
    except ValueError:
        raise flags.ValidationError(
            f"--steps {','.join(steps)}: give adversarial steps as integers, e.g. 300,600"
        ) from None
    if any(v <= 0 for v in values):
        raise flags.ValidationError(f"--steps {','.join(steps)}: give steps > 0")
    return True


class TrajectoryError(RuntimeError):
    """The run keeps no trajectory, a step asked for is not kept, or a measurement failed."""


def step_dir(out: str, step: int) -> str:
    return os.path.join(out, f"step{step:04d}")


def _final_step(run_dir: str) -> int | None:
    """The adversarial steps the game played, from its phase results (None: not recorded)."""
    from tfprivacy.train.distribute import worker_dir
    from tfprivacy.train.loop import PHASE_RESULTS

    path = os.path.join(worker_dir(run_dir), PHASE_RESULTS)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        played = json.load(f).get("adversarial_steps_played")
    return None if played is None else int(played)


def _adversarial_checkpoints(ckpt_dir: str) -> dict[int, str]:
    """{adversarial step: checkpoint path} of the kept checkpoints inside the adversarial phase,
    read from each checkpoint's phase counters without restoring a model. An unreadable
    checkpoint is skipped with a warning naming it."""
    import tensorflow as tf

    from tfprivacy.train.game import PHASES, checkpoint_position

    state = tf.train.get_checkpoint_state(ckpt_dir)
    kept = {}
    for path in list(state.all_model_checkpoint_paths) if state else []:
        try:
            phase, step = checkpoint_position(path)
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
            print(f"warning: {path} cannot be read ({e}); skipped", file=sys.stderr)
            continue
        if PHASES[phase] == "adversarial" and step > 0:
            kept[step] = path
    return kept


SOURCE_FILE = "trajectory_source.json"


def _claim(target: str, source: dict) -> None:
    """Marks a step dir as f_d of `source`; refuses one written from another run (its
    report.json would measure another f_d)."""
    path = os.path.join(target, SOURCE_FILE)
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old != source:
            raise TrajectoryError(
                f"{target} holds f_d of step {old.get('step')} of {old.get('run')}, not of "
                f"step {source['step']} of {source['run']}; give another --out"
            )
    os.makedirs(target, exist_ok=True)
    with open(path, "w") as f:
        json.dump(source, f)


def snapshot_degraders(run_dir: str, out: str, steps: list[int] | None = None) -> list[int]:
    """Writes f_d of every kept adversarial checkpoint (and the final f_d) under OUT; returns
    the steps written, in order. `steps` picks some of them (TrajectoryError names the kept
    ones when a step is not among them)."""
    from tfprivacy.train.distribute import worker_dir

    cfg = artifacts.load_config(run_dir)
    ckpt_dir = os.path.join(worker_dir(run_dir), artifacts.CHECKPOINT_DIR)
    kept = _adversarial_checkpoints(ckpt_dir)
    final = _final_step(run_dir)
    final_weights = os.path.join(run_dir, artifacts.DEGRADER_WEIGHTS)
    has_final = final is not None and os.path.exists(final_weights)
    if not kept and not has_final:
        raise TrajectoryError(
            f"{ckpt_dir}: no checkpoint of the adversarial phase is kept and the run has no "
            f"final f_d; train with --set trainer.max_to_keep=K (K above the run's number of "
            "checkpoints) to keep the game's trajectory"
        )
    # The final f_d's checkpoint is past the phase (attack or done), so it is never in `kept`.
    available = sorted(kept) + ([final] if has_final else [])
    wanted = sorted(steps) if steps else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise TrajectoryError(
            f"--steps {','.join(map(str, missing))}: not kept by {run_dir} (kept: "
            f"{', '.join(map(str, available))}; trainer.max_to_keep {cfg.trainer.max_to_keep})"
        )
    players = _players(cfg) if any(s in kept for s in wanted) else None
    for step in wanted:
        target = step_dir(out, step)
        _claim(target, {"run": os.path.abspath(run_dir), "step": step})
        if step in kept:
            players.checkpoint.restore(kept[step]).expect_partial()
            artifacts.save_degrader(target, players.degrader, cfg)
        else:  # the game's final f_d, as the run saved it
            C.save(cfg, os.path.join(target, artifacts.CONFIG_FILE))
            shutil.copyfile(final_weights, os.path.join(target, artifacts.DEGRADER_WEIGHTS))
    return wanted


def _players(cfg):
    """The run's players (built as its Trainer builds them), to restore checkpoints into."""
    from tfprivacy.data.sources import build_sources
    from tfprivacy.train.distribute import make_strategy
    from tfprivacy.train.game import Players
    from tfprivacy.train.loop import game_shapes

    strategy = make_strategy(cfg.trainer.distribution)
    return Players(cfg, game_shapes(cfg, build_sources(cfg.data)), strategy)


def _subprocess_runner(cmd: list[str], log) -> int:
    return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def measure(out: str, steps: list[int], eval_seeds: int, runner=_subprocess_runner, echo=print):
    """The ruler on each step's f_d (skipped where report.json exists)."""
    for i, step in enumerate(steps, 1):
        run = step_dir(out, step)
        if os.path.exists(os.path.join(run, "report.json")):
            echo(f"[{i}/{len(steps)}] step {step}: measured already (report.json), skipped")
            continue
        cmd = [sys.executable, "-m", "trainers.evaluate", "--run", run]
        cmd += ["--seeds", str(eval_seeds), "--baselines", "raw"]
        echo(f"[{i}/{len(steps)}] step {step}: {shlex.join(cmd[1:])}")
        log_path = run + ".eval.log"
        with open(log_path, "w") as log:
            rc = runner(cmd, log)
        if rc != 0:
            raise TrajectoryError(
                f"step {step}: `{shlex.join(cmd)}` exited with status {rc}; its output is in "
                f"{log_path}. Measured steps are kept: the same command goes on from this one."
            )


def trajectory_table(out: str, steps: list[int]) -> tuple[str, list[dict]]:
    points = [tradeoff_points.load_point(f"step {s}", step_dir(out, s)) for s in steps]
    tradeoff_points.check_same_seeds(points)
    return tradeoff_points.table(points, 0.95, 0.5), points


def main(argv):
    del argv
    steps = [int(s) for s in FLAGS.steps]
    try:
        written = snapshot_degraders(FLAGS.run, FLAGS.out, steps or None)
        measure(FLAGS.out, written, FLAGS.eval_seeds)
        text, points = trajectory_table(FLAGS.out, written)
    except (TrajectoryError, artifacts.RunDirError, tradeoff_points.PointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    with open(os.path.join(FLAGS.out, "trajectory.md"), "w") as f:
        f.write(text + "\n")
    if FLAGS.plot:
        title = f"{FLAGS.run}: f_d along its game (95% intervals)"
        tradeoff_points.plot(points, FLAGS.plot, 0.95, 0.5, title)
        print(f"wrote {FLAGS.plot}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
