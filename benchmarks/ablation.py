"""The paper's ablation on the benchmark in one command: strategy x ensemble x restarting, and f_d.

    python -m benchmarks.ablation --out runs/ablation                 # every row not done yet
    python -m benchmarks.ablation --out runs/ablation --rows grl_m1,kbeam_m4_restart
    python -m benchmarks.ablation --out runs/ablation --rows entropy_m2 --train_seeds 0,1,2
    python -m benchmarks.ablation --out runs/ablation --table_only    # the table of finished rows
    python -m benchmarks.ablation --out runs/ablation --dry_run       # the commands, nothing run

Each row is the main job plus the row's overrides, trained without its own evaluation and
without the summary's fresh attacker (the ruler measures the degrader):

    python -m trainers.adversarial --config CONFIG --run_dir OUT/ROW --noevaluate
        --attack_steps 0 --set ROW_OVERRIDE ... [--set EXTRA ...]

then measured by the ruler with one seed, against that seed's raw:

    python -m trainers.evaluate --run OUT/ROW --seeds 1 --baselines raw

Rows run one at a time (two TF jobs on the same cores slow each other many times over), each
one's output in OUT/ROW.train.log and OUT/ROW.eval.log. A row whose report.json exists is done
and skipped; a row whose training finished (summary.json) is only evaluated; a row killed
mid-training resumes from its checkpoint. So a killed sweep goes on where it stopped when the
same command is run again. Every row's config is built and checked before anything runs.

The table (printed, and written to OUT/ablation.md): per row, action top-1 (% of raw) and
worst-case cMAP with the ruler's 95% bootstrap intervals over the test videos, the leakage
(cMAP - chance) / (raw cMAP - chance), f_d's PSNR against its input, and the worst-case
validation cMAP of the game's own attackers at the end of the game: a game that fools its own
attackers while the ruler reads everything (restarting) shows there.

--train_seeds runs each row once per `trainer.seed` (the game's own randomness: initial
weights, batch order), in OUT/ROW for seed 0 and OUT/ROW_seedN for the others, and adds a line
per row over its seeds: the mean action (% of raw) and leakage, and the worst of each. The ruler
keeps its seed for every training seed, so the rows differ only by the game's seed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import subprocess
import sys
import time

from absl import flags

from tfprivacy import runtime


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    strategy: str
    num_models: int
    restart: bool
    degrader: str = "pyramid"
    seed: int = 0  # trainer.seed of the game

    @property
    def run_name(self) -> str:
        """The row's folder under OUT: its name, with the training seed when it is not 0."""
        return self.name if self.seed == 0 else f"{self.name}_seed{self.seed}"

    def overrides(self, default: dict) -> list[str]:
        """The --set values that turn the main job into this row (none for the main job)."""
        out = []
        if self.strategy != default["strategy"]:
            out.append(f"adversary.strategy={self.strategy}")
        if self.num_models != default["num_models"]:
            out.append(f"adversary.num_models={self.num_models}")
        if self.restart:
            out += [
                f"adversary.restart_every={RESTART_EVERY}",
                f"adversary.restart_steps={RESTART_STEPS}",
            ]
        if self.degrader != default["degrader"]:
            out.append(f"model.degrader={self.degrader}")
        if self.seed:
            out.append(f"trainer.seed={self.seed}")
        return out


RESTART_EVERY = RESTART_STEPS = 100  # re-initialise the attackers every 100 steps, train 100


def _grid() -> list[Row]:
    rows = []
    for strategy in ("entropy", "grl", "kbeam"):
        for m in (1, 2, 4):
            for restart in (False, True):
                name = f"{strategy}_m{m}" + ("_restart" if restart else "")
                rows.append(Row(name, strategy, m, restart))
    conv = [Row(f"entropy_m2_{d}", "entropy", 2, False, degrader=d) for d in ("light", "full")]
    return rows + conv


ROWS = {row.name: row for row in _grid()}
# The whole 3 x 3 x 2 grid (strategy x M = 1, 2, 4 x restarting off, on), the main job's row
# first, and the two conv f_d under the main job's game.
DEFAULT_ROWS = [
    "entropy_m2",
    "entropy_m1",
    "entropy_m4",
    "entropy_m2_restart",
    "entropy_m1_restart",
    "entropy_m4_restart",
    "grl_m2",
    "grl_m1",
    "grl_m4",
    "grl_m2_restart",
    "grl_m1_restart",
    "grl_m4_restart",
    "kbeam_m2",
    "kbeam_m1",
    "kbeam_m4",
    "kbeam_m2_restart",
    "kbeam_m1_restart",
    "kbeam_m4_restart",
    "entropy_m2_light",
    "entropy_m2_full",
]

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "out", None, "Folder of the rows' runs and the table.", required=True, flag_values=FLAGS
)
flags.DEFINE_list(
    "rows",
    DEFAULT_ROWS,
    f"Rows to run, in order (all: {', '.join(ROWS)}).",
    flag_values=FLAGS,
)
runtime.define_config_flags(
    FLAGS,
    config_help="Named experiment every row starts from (the main job's: benchmark).",
    set_help="Override applied to every row, part.field=value (repeatable).",
)
flags.DEFINE_integer(
    "eval_seeds", 1, "Seeds of the ruler per row.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_bool(
    "table_only", False, "Only build the table from finished rows.", flag_values=FLAGS
)
flags.DEFINE_list(
    "train_seeds",
    ["0"],
    "trainer.seed values: each row is trained once per seed (OUT/ROW_seedN for N != 0).",
    flag_values=FLAGS,
)
flags.DEFINE_bool("dry_run", False, "Print each row's commands; run nothing.", flag_values=FLAGS)


@flags.validator("rows", flag_values=FLAGS)
def _check_rows(rows) -> bool:
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise flags.ValidationError(
            f"--rows {','.join(unknown)}: unknown; the rows are {', '.join(ROWS)}"
        )
    if not rows:
        raise flags.ValidationError("--rows: name at least one row")
    return True


@flags.validator("train_seeds", flag_values=FLAGS)
def _check_train_seeds(seeds) -> bool:
    try:
        values = [int(s) for s in seeds]
    except ValueError:
        raise flags.ValidationError(
            f"--train_seeds {','.join(seeds)}: give integers, e.g. 0,1,2"
        ) from None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise flags.ValidationError(
            f"--train_seeds {','.join(seeds)}: give distinct integers >= 0, e.g. 0,1,2"
        )
    return True


def seeded(rows: list[Row], seeds: list[int]) -> list[Row]:
    """Every row once per training seed, a row's seeds together."""
    return [dataclasses.replace(row, seed=s) for row in rows for s in seeds]


class AblationError(RuntimeError):
    """A row's command failed: names the row, the command and its log."""


def main_job_defaults(config: str, sets: list[str]) -> dict:
    return dict(_main_job_defaults(config, tuple(sets)))


@functools.lru_cache(maxsize=8)
def _main_job_defaults(config: str, sets: tuple[str, ...]) -> tuple:
    """The game's settings that rows override, built once per (config, --set list)."""
    from tfprivacy.experiments import get_config

    cfg = get_config(config, list(sets))
    return (
        ("strategy", cfg.adversary.strategy),
        ("num_models", cfg.adversary.num_models),
        ("degrader", cfg.model.degrader),
    )


def row_sets(row: Row, config: str, sets: list[str]) -> list[str]:
    """Every --set the row's training takes: the sweep's own, then the row's (which win)."""
    return list(sets) + row.overrides(main_job_defaults(config, sets))


def check_rows(rows: list[Row], config: str, sets: list[str]) -> None:
    """Builds and checks every row's config (ConfigError naming the row) before any work."""
    from tfprivacy import config as C
    from tfprivacy.experiments import get_config

    for row in rows:
        try:
            get_config(config, row_sets(row, config, sets))
        except C.ConfigError as e:
            raise C.ConfigError(f"row {row.run_name}: {e}") from None


def commands(
    row: Row, out: str, config: str, sets: list[str], eval_seeds: int
) -> tuple[list, list]:
    run_dir = os.path.join(out, row.run_name)
    train = [sys.executable, "-m", "trainers.adversarial", "--config", config, "--run_dir", run_dir]
    train += ["--noevaluate", "--attack_steps", "0"]
    for s in row_sets(row, config, sets):
        train += ["--set", s]
    evaluate = [sys.executable, "-m", "trainers.evaluate", "--run", run_dir]
    evaluate += ["--seeds", str(eval_seeds), "--baselines", "raw"]
    return train, evaluate


def state(out: str, row: Row) -> str:
    """'done' (report.json), 'trained' (summary.json) or 'todo'."""
    run_dir = os.path.join(out, row.run_name)
    if os.path.exists(os.path.join(run_dir, "report.json")):
        return "done"
    if os.path.exists(os.path.join(run_dir, "summary.json")):
        return "trained"
    return "todo"


def _run(cmd: list[str], log_path: str, row: Row, runner) -> float:
    start = time.time()
    with open(log_path, "w") as log:
        rc = runner(cmd, log)
    if rc != 0:
        raise AblationError(
            f"row {row.run_name}: `{shlex.join(cmd)}` exited with status {rc}; its output is in "
            f"{log_path}. Finished rows are kept: the same command goes on from this row."
        )
    return time.time() - start


def _subprocess_runner(cmd: list[str], log) -> int:
    return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def run_rows(rows, out, config, sets, eval_seeds, runner=_subprocess_runner, echo=print) -> None:
    os.makedirs(out, exist_ok=True)
    for i, row in enumerate(rows, 1):
        train, evaluate = commands(row, out, config, sets, eval_seeds)
        st = state(out, row)
        if st == "done":
            echo(f"[{i}/{len(rows)}] {row.run_name}: done (report.json exists), skipped")
            continue
        if st == "todo":
            echo(f"[{i}/{len(rows)}] {row.run_name}: training ({shlex.join(train[1:])})")
            seconds = _run(train, os.path.join(out, f"{row.run_name}.train.log"), row, runner)
            echo(f"[{i}/{len(rows)}] {row.run_name}: trained in {seconds:.0f} s")
        echo(f"[{i}/{len(rows)}] {row.run_name}: evaluating ({shlex.join(evaluate[1:])})")
        seconds = _run(evaluate, os.path.join(out, f"{row.run_name}.eval.log"), row, runner)
        line = table_row(row, os.path.join(out, row.run_name))
        echo(f"[{i}/{len(rows)}] {row.run_name}: evaluated in {seconds:.0f} s: {line}")


def _interval(v: dict) -> str:
    return f"{100 * v['mean']:.1f} [{100 * v['ci'][0]:.1f}, {100 * v['ci'][1]:.1f}]"


def _load(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


HEADER = (
    "| strategy | M | restarting | f_d | action top-1 (% of raw) | worst-case cMAP | leakage "
    "| f_d PSNR | game's own f_b, val cMAP | row |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _describe(row: Row) -> str:
    restart = f"R={RESTART_EVERY}, {RESTART_STEPS} steps" if row.restart else "off"
    return f"| {row.strategy} | {row.num_models} | {restart} | {row.degrader} |"


def table_row(row: Row, run_dir: str, report: dict | None = None) -> str:
    """The row's line; `report` is its report.json when the caller has read it already."""
    if report is None:
        report = _load(os.path.join(run_dir, "report.json"))
    if report is None:
        return f"{_describe(row)} not run | | | | | `{row.run_name}` |"
    learned = report["results"]["learned"]
    rel = report["relative_to_raw"]["learned"]
    psnr = learned["per_seed"][0]["fidelity"]["psnr_db"]
    summary = _load(os.path.join(run_dir, "summary.json")) or {}
    own = summary.get("adversarial", {}).get("privacy_cmap_worst")
    own_text = f"{100 * own:.1f}" if own is not None else ""
    return (
        f"{_describe(row)} {_interval(learned['action_top1'])} ({100 * rel['action_of_raw']:.0f}%) "
        f"| {_interval(learned['worst_case']['cmap'])} | {_ratio(rel['leakage'])} | {psnr:.1f} dB "
        f"| {own_text} | `{row.run_name}` |"
    )


def _ratio(value) -> str:
    """A leakage ratio, or why report.json refused it (raw's gap to chance too small)."""
    return "refused" if value is None else f"{value:.2f}"


def seeds_line(row: Row, seeds: list[int], reports: list[dict]) -> str:
    """One row over its training seeds: mean and worst action (% of raw) and leakage."""
    of_raw = [r["relative_to_raw"]["learned"]["action_of_raw"] for r in reports]
    top1 = [r["results"]["learned"]["action_top1"]["mean"] for r in reports]
    leak = [r["relative_to_raw"]["learned"]["leakage"] for r in reports]
    n = len(reports)
    if any(v is None for v in leak):  # refused: raw's gap to chance too small to resolve
        leak_text = "refused (raw too near chance)"
    else:
        leak_text = f"{sum(leak) / n:.2f}, worst {max(leak):.2f}"
    missing = "" if n == len(seeds) else f" ({len(seeds) - n} not run)"
    return (
        f"{_describe(row)} mean over {n} training seeds{missing}: "
        f"{100 * sum(top1) / n:.1f} ({100 * sum(of_raw) / n:.0f}%), worst {100 * min(of_raw):.0f}% "
        f"| | {leak_text} | | "
        f"| `{row.name}` seeds {','.join(str(s) for s in seeds)} |"
    )


def table(rows: list[Row], out: str) -> str:
    reports = [_load(os.path.join(out, row.run_name, "report.json")) for row in rows]
    lines = [HEADER]
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.name, []).append(i)
    for idx in groups.values():
        for i in idx:
            lines.append(table_row(rows[i], os.path.join(out, rows[i].run_name), reports[i]))
        done = [reports[i] for i in idx if reports[i] is not None]
        if len(idx) > 1 and done:
            lines.append(seeds_line(rows[idx[0]], [rows[i].seed for i in idx], done))
    raws = [r for r in reports if r is not None]
    if raws:
        raw = raws[0]["results"]["raw"]
        seeds = sorted({tuple(r["seeds"]) for r in raws})
        note = "" if len(seeds) == 1 else f" (rows measured with different seeds: {seeds})"
        lines.append(
            f"| raw (no f_d) | | | | {_interval(raw['action_top1'])} | "
            f"{_interval(raw['worst_case']['cmap'])} | 1.00 | | | seeds {list(seeds[0])}{note} |"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    from tfprivacy import config as C

    rows = seeded([ROWS[name] for name in FLAGS.rows], [int(x) for x in FLAGS.train_seeds])
    try:
        check_rows(rows, FLAGS.config, FLAGS.set)
    except C.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if FLAGS.dry_run:
        for row in rows:
            for cmd in commands(row, FLAGS.out, FLAGS.config, FLAGS.set, FLAGS.eval_seeds):
                print(shlex.join(["python", *cmd[1:]]))
        return 0
    if not FLAGS.table_only:
        try:
            run_rows(rows, FLAGS.out, FLAGS.config, FLAGS.set, FLAGS.eval_seeds)
        except AblationError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    text = table(rows, FLAGS.out)
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "ablation.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)
