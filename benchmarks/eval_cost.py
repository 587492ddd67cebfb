"""Where the two-fold evaluation's time goes: decode, degrade, and the fit of each model.

    python -m benchmarks.eval_cost --report RUN/report.json
    python -m benchmarks.eval_cost --run RUN [--config benchmark] [--baselines raw] [--seeds 3]

The first form reads the timing an evaluation recorded in its report.json; the second runs a
fresh evaluation (no cache) into RUN first. Prints, per degrader, the degrade time, each
seed's fit time per model (target with its feature probe; each attacker, the raw pretraining
of the fine-tuned attackers shown apart), and the total against the budget of 8 minutes per
degrader (all seeds, full panel) on the project's 2-core machines.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from benchmarks import report_cli  # noqa: E402
from tfprivacy import runtime  # noqa: E402

BUDGET_S = 8 * 60

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
report_cli.define_flags(FLAGS, "Baselines to evaluate (with --run; no cache).")


def lines(report: dict) -> list[str]:
    timing = report.get("timing", {})
    out = [f"decode + sample every split once: {timing.get('materialize_s', 0.0):.1f} s"]
    for name, r in report["results"].items():
        t = r["timing"]
        out.append(f"{name}: degrade {t['degrade_s']:.1f} s")
        pretrain_total = 0.0
        for s in r["per_seed"]:
            if s["seed"] in r.get("cached_seeds", []):
                continue
            parts = [f"target {s['target']['seconds']:.1f}"]
            for arch, p in s["panel"].items():
                pre = p.get("pretrain_seconds", 0.0)
                pretrain_total += pre
                note = f" (of which raw pretraining {pre:.1f})" if pre else ""
                parts.append(f"{arch} {p['seconds']:.1f}{note}")
            out.append(f"  seed {s['seed']}: " + ", ".join(parts) + " s")
        if r.get("cached_seeds"):
            out.append(f"  cached seeds {r['cached_seeds']}: no fitting")
        total = t["total_s"]
        verdict = "within" if total - pretrain_total <= BUDGET_S else "OVER"
        out.append(
            f"  total {total:.1f} s ({total / 60:.1f} min); without the once-per-seed raw "
            f"pretraining {total - pretrain_total:.1f} s: {verdict} the {BUDGET_S // 60}-minute "
            "budget per degrader"
        )
    out.append(f"whole evaluation: {timing.get('total_s', 0.0):.1f} s")
    return out


def main(argv):
    """Prints where the evaluation's time went. argv: the program name alone (run_cli)."""
    del argv
    report = report_cli.load_or_run(FLAGS, FLAGS.baselines, use_cache=False)
    print("\n".join(lines(report)))


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
