"""Shared command line of the scripts that read an evaluation's report.json or make one.

`--report PATH` reads an existing report; `--run DIR` (with --config, --seeds, --set) runs
the evaluation of `baselines` into DIR first, with deterministic kernels. Each script defines
these flags in its own FlagValues (`define_flags(FLAGS)`), never absl's global one, so several
of the scripts can be imported in one process.

Run on its own it prints a report's privacy measures per degrader (`summary_lines`):

    python -m benchmarks.report_cli --report runs/x/report.json

worst-case cMAP, mean normalised AP and mean AUC with their intervals, and the leakage left on
each against raw (report.relative_to_raw, recomputed from the figures, so a report made before
normalised AP and AUC existed prints "n/a" for them).
"""

from __future__ import annotations

import json

from absl import flags


def define_flags(flag_values: flags.FlagValues, baselines_help: str | None = None) -> None:
    """--report, --run, --config, --seeds, --set (and --baselines, given its help) in
    `flag_values`; one of --report and --run is required, checked at parse time."""
    flags.DEFINE_string("report", None, "report.json of an evaluation.", flag_values=flag_values)
    flags.DEFINE_string("run", None, "Run dir for a fresh evaluation.", flag_values=flag_values)
    flags.DEFINE_string(
        "config", "benchmark", "Named experiment (with --run).", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "seeds", None, "Seeds (with --run); default eval.seeds.", flag_values=flag_values
    )
    flags.DEFINE_multi_string(
        "set", [], "Config override part.field=value (with --run).", flag_values=flag_values
    )
    if baselines_help:
        flags.DEFINE_string("baselines", "raw", baselines_help, flag_values=flag_values)
    flags.register_multi_flags_validator(
        ["report", "run"],
        lambda v: bool(v["report"] or v["run"]),
        message="give --report REPORT_JSON or --run RUN_DIR",
        flag_values=flag_values,
    )


def load_or_run(flag_values: flags.FlagValues, baselines: str, use_cache: bool = True) -> dict:
    """The report named by --report, or a fresh evaluation of `baselines` into --run."""
    if flag_values.report:
        with open(flag_values.report) as f:
            return json.load(f)
    from tfprivacy.eval import evaluate_lib, protocol

    cfg = evaluate_lib.resolve_config(flag_values.run, flag_values.config, flag_values.set)
    protocol.enable_determinism()
    return evaluate_lib.run_evaluation(
        flag_values.run,
        baselines=baselines,
        seeds=flag_values.seeds,
        cfg=cfg,
        use_cache=use_cache,
    )


def summary_lines(report: dict) -> list[str]:
    """One line per degrader: action top-1, worst-case cMAP, normalised AP and AUC ("n/a"
    where the report lacks them) and, against raw, the leakage left on each ("refused" where
    raw is too close to chance to divide by); then the refusals' reasons."""
    from tfprivacy.eval import report as report_lib

    fmt = report_lib._fmt
    relative = report_lib.relative_to_raw(report)
    lines = []
    for name, r in report.get("results", {}).items():
        w = r["worst_case"]
        text = (
            f"{name}: action top-1 {fmt(r['action_top1'])}, worst-case cMAP {fmt(w['cmap'])}, "
            f"nAP {fmt(w.get('nap_mean'))}, AUC {fmt(w.get('auc_mean'))}"
        )
        rel = relative.get(name)
        if rel and name != "raw":
            text += "; leakage " + ", ".join(
                f"{label} {report_lib.leakage_text(rel, key)}"
                for key, label in (
                    ("leakage", "cMAP"),
                    ("leakage_nap", "nAP"),
                    ("leakage_auc", "AUC"),
                )
            )
        lines.append(text)
    refused = relative.get("raw", {}).get("leakage_refused", {})
    return lines + [f"leakage ratio refused on {why}" for why in refused.values()]


FLAGS = flags.FlagValues()
define_flags(FLAGS, "Baselines to evaluate (with --run).")


def main(argv) -> int:
    del argv
    for line in summary_lines(load_or_run(FLAGS, FLAGS.baselines)):
        print(line)
    return 0


if __name__ == "__main__":
    from tfprivacy import runtime

    runtime.run_cli(main, FLAGS)
