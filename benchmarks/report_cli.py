"""Shared command line of the scripts that read an evaluation's report.json or make one.

`--report PATH` reads an existing report; `--run DIR` (with --config, --seeds, --set) runs
the evaluation of `baselines` into DIR first, with deterministic kernels.
"""

from __future__ import annotations

import json

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(baselines_help: str | None = None) -> None:
    """Defined at run time only, so tests can import several of these scripts."""
    flags.DEFINE_string("report", None, "report.json of an evaluation.")
    flags.DEFINE_string("run", None, "Run dir for a fresh evaluation.")
    flags.DEFINE_string("config", "benchmark", "Named experiment (with --run).")
    flags.DEFINE_integer("seeds", None, "Seeds (with --run); default eval.seeds.")
    flags.DEFINE_multi_string("set", [], "Config override part.field=value (with --run).")
    if baselines_help:
        flags.DEFINE_string("baselines", "raw", baselines_help)


def load_or_run(baselines: str, use_cache: bool = True) -> dict:
    """The report named by --report, or a fresh evaluation of `baselines` into --run."""
    if FLAGS.report:
        with open(FLAGS.report) as f:
            return json.load(f)
    if not FLAGS.run:
        raise app.UsageError("give --report REPORT_JSON or --run RUN_DIR")
    from tfprivacy.eval import evaluate_lib, protocol

    cfg = evaluate_lib.resolve_config(FLAGS.run, FLAGS.config, FLAGS.set)
    protocol.enable_determinism()
    return evaluate_lib.run_evaluation(
        FLAGS.run, baselines=baselines, seeds=FLAGS.seeds, cfg=cfg, use_cache=use_cache
    )
