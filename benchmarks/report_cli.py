"""Shared command line of the scripts that read an evaluation's report.json or make one.

`--report PATH` reads an existing report; `--run DIR` (with --config, --seeds, --set) runs
the evaluation of `baselines` into DIR first, with deterministic kernels. Each script defines
these flags in its own FlagValues (`define_flags(FLAGS)`), never absl's global one, so several
of the scripts can be imported in one process.
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
