"""The main job over several training seeds, scored by the ruler on the final test set.

    python -m benchmarks.seed_sweep --seeds 100-107 [--out runs/seed_sweep] [--set ...]

For each training seed S, OUT/seedS holds one run of the main job (`python -m
trainers.adversarial --run_dir OUT/seedS --set trainer.seed=S --set eval.test_set=final`): the
game with its judges, then the ruler (3 evaluation seeds by default) on the built-in benchmark's
final test set, a draw of the generator that nothing else reads (report in
OUT/seedS/final_test/). Each run is its own process, one at a time. Resumable: a seed whose
final report exists is not run again; one killed mid-way resumes where it stopped (the trainer
resumes from its checkpoint). Then prints the per-seed table (the judges' validation verdict
beside the ruler's final-test figures), the mean and worst rows, how many seeds meet the bar,
and writes the action / leakage plot (OUT/seed_sweep.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags

from tfprivacy import runtime

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "seeds", "100-107", "training seeds: ranges and commas, e.g. 100-107 or 1,5", flag_values=FLAGS
)
flags.DEFINE_string("out", "runs/seed_sweep", "folder of the runs (OUT/seedS)", flag_values=FLAGS)
flags.DEFINE_string("config", "benchmark", "named experiment of every run", flag_values=FLAGS)
flags.DEFINE_multi_string(
    "set", [], "config override for every run (repeatable)", flag_values=FLAGS
)
flags.DEFINE_string("test_set", "final", "the ruler's test set: final or test", flag_values=FLAGS)
flags.DEFINE_bool(
    "table_only", False, "only the table and plot of the runs there", flag_values=FLAGS
)
flags.DEFINE_float(
    "bar_action", 0.95, "the bar: action at least this fraction of raw", flag_values=FLAGS
)
flags.DEFINE_float("bar_leakage", 0.5, "the bar: leakage at most this", flag_values=FLAGS)


class SweepError(ValueError):
    """A bad --seeds value or a run that failed; the message names it."""


def parse_seeds(text: str) -> list[int]:
    """'100-103,7' -> [100, 101, 102, 103, 7]; distinct integers >= 0."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise SweepError(
                f"--seeds {text!r}: {part!r} is not an integer or a range A-B"
            ) from None
        if sep and int(hi) < int(lo):
            raise SweepError(f"--seeds {text!r}: range {part!r} runs backwards")
        seeds.extend(values)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SweepError(f"--seeds {text!r}: give distinct integers >= 0")
    return seeds


def run_dir(out: str, seed: int) -> str:
    return os.path.join(out, f"seed{seed}")


def report_path(out: str, seed: int, test_set: str) -> str:
    sub = ("final_test",) if test_set == "final" else ()
    return os.path.join(run_dir(out, seed), *sub, "report.json")


def command(seed: int, out: str, config: str, overrides: list[str], test_set: str) -> list[str]:
    """The main job of one training seed, as a user runs it."""
    cmd = [sys.executable, "-m", "trainers.adversarial", "--config", config]
    cmd += ["--run_dir", run_dir(out, seed), "--set", f"trainer.seed={seed}"]
    cmd += ["--set", f"eval.test_set={test_set}"]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def _load(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def row(seed: int, out: str, test_set: str, bar_action: float, bar_leakage: float) -> dict | None:
    """One seed's figures: the ruler's (final-test) point and the judges' validation verdict."""
    from benchmarks import tradeoff_points as T

    path = report_path(out, seed, test_set)
    if not os.path.exists(path):
        return None
    point = T.load_point(f"seed {seed}", os.path.dirname(path))
    point["seed"] = seed
    point["meets"] = T.meets(point, bar_action, bar_leakage)
    summary = _load(os.path.join(run_dir(out, seed), "summary.json")) or {}
    judge = summary.get("judge", {})
    point["judge"] = judge
    point["bar_met_validation"] = summary.get("bar_met")
    point["steps_played"] = summary.get("adversarial_steps_played")
    point["train_s"] = summary.get("train_seconds_this_process")
    return point


def table(rows: list[dict], bar_action: float, bar_leakage: float) -> str:
    lines = [
        "| training seed | validation (judges): kept step, action, leakage, verdict | "
        "final test (ruler): action top-1 % of raw | leakage | meets the bar |",
        "|---|---|---|---|---|",
    ]
    for p in rows:
        j = p["judge"]
        v = j.get("verdict")
        if v:
            val = (
                f"step {j['kept_step']} of {p['steps_played']}, {100 * v['action_of_raw']:.1f}%, "
                f"{v['leakage']:.2f}, {'MET' if p['bar_met_validation'] else 'NOT MET'}"
            )
        else:
            val = "no judges"
        lo, hi = p["action_ci"]
        llo, lhi = p["leakage_ci"]
        lines.append(
            f"| {p['seed']} | {val} | {100 * p['action']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
            f"{p['leakage']:.2f} [{llo:.2f}, {lhi:.2f}] | {'yes' if p['meets'] else 'NO'} |"
        )
    if rows:
        n = len(rows)
        actions, leaks = [p["action"] for p in rows], [p["leakage"] for p in rows]
        lines.append(
            f"| mean of {n} | | {100 * sum(actions) / n:.1f} | {sum(leaks) / n:.2f} | "
            f"{sum(p['meets'] for p in rows)} of {n} |"
        )
        lines.append(f"| worst | | {100 * min(actions):.1f} | {max(leaks):.2f} | |")
    lines.append(
        f"bar: action >= {100 * bar_action:.0f}% of raw and leakage <= {bar_leakage:.2f} "
        "(leakage = (worst-case cMAP - chance) / (raw's - chance), the ruler's seed means)"
    )
    return "\n".join(lines)


def main(argv):
    del argv
    try:
        seeds = parse_seeds(FLAGS.seeds)
    except SweepError as err:
        raise app.UsageError(str(err)) from None
    if FLAGS.test_set not in ("final", "test"):
        raise app.UsageError(f"--test_set {FLAGS.test_set!r}: final or test")
    os.makedirs(FLAGS.out, exist_ok=True)
    if not FLAGS.table_only:
        for seed in seeds:
            if os.path.exists(report_path(FLAGS.out, seed, FLAGS.test_set)):
                print(f"seed {seed}: done ({report_path(FLAGS.out, seed, FLAGS.test_set)})")
                continue
            cmd = command(seed, FLAGS.out, FLAGS.config, list(FLAGS.set), FLAGS.test_set)
            print(f"seed {seed}: {' '.join(cmd[1:])}", flush=True)
            start = time.time()
            if subprocess.run(cmd, check=False).returncode != 0:
                raise SweepError(f"seed {seed}: the main job failed (rerun to resume)")
            print(f"seed {seed}: main job in {time.time() - start:.0f} s", flush=True)
    rows = [
        r
        for s in seeds
        if (r := row(s, FLAGS.out, FLAGS.test_set, FLAGS.bar_action, FLAGS.bar_leakage))
    ]
    missing = [s for s in seeds if s not in {r["seed"] for r in rows}]
    print(table(rows, FLAGS.bar_action, FLAGS.bar_leakage))
    if missing:
        print(f"not run yet: seeds {', '.join(map(str, missing))}")
    if rows:
        from benchmarks import tradeoff_points as T

        path = os.path.join(FLAGS.out, "seed_sweep.png")
        T.plot(
            rows,
            path,
            FLAGS.bar_action,
            FLAGS.bar_leakage,
            f"{len(rows)} training seeds, {FLAGS.test_set} test set",
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)
