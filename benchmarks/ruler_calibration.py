"""Calibration of the two-fold evaluation with known answers: does the ruler see them?

Greyscale removes hue, so skin colour must fall to its prevalence; x8 area downsampling
removes 1-3 px marks, so face, gender and relationship must fall near theirs; on raw clips
the panel must reach what the data allows (the properties probe's level). Prints one table
(prevalence and best AP over the panel per attribute, for raw / grey / down8, with intervals)
and a verdict per check, and exits 1 when a check fails: a ruler that cannot see these
effects cannot judge a learned degrader.

    python -m benchmarks.ruler_calibration --report RUN/report.json
    python -m benchmarks.ruler_calibration --run RUN [--config benchmark] [--seeds 3] [--set ..]

The second form runs the baselines-only evaluation (raw, grey, down8) into RUN first.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from benchmarks import report_cli  # noqa: E402
from tfprivacy import runtime  # noqa: E402
from tfprivacy.data.records import PRIVACY_ATTRIBUTES  # noqa: E402

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
report_cli.define_flags(FLAGS)

# Bars of the checks, in AP points (issue: the ruler's calibration).
GREY_SKIN_MARGIN = 0.05
DOWN8_FINE_MARGIN = 0.08
FINE_ATTRIBUTES = ("face", "gender", "relationship")
RAW_MIN_CMAP = 0.85
# Per-attribute AP of the properties probe on raw frames (`python -m
# benchmarks.benchmark_properties` on generator v3, docs/benchmark.md "The generator"): the panel's
# best AP on raw must come within RAW_PROBE_MARGIN of each.
PROBE_RAW_AP = {
    "skin_color": 0.976,
    "face": 0.884,
    "gender": 0.973,
    "nudity": 0.760,
    "relationship": 0.779,
}
RAW_PROBE_MARGIN = 0.03


def _versus(ap: float, prevalence: float, margin: float) -> str:
    return (
        f"best AP {100 * ap:.1f} vs prevalence {100 * prevalence:.1f} "
        f"({100 * (ap - prevalence):+.1f}, bar +{100 * margin:.0f})"
    )


def checks(report: dict) -> list[tuple[str, bool, str]]:
    """(name, passed, detail) for each calibration check on a report with raw, grey, down8."""
    results = report["results"]
    missing = [b for b in ("raw", "grey", "down8") if b not in results]
    if missing:
        raise ValueError(f"report has no results for {missing}: evaluate raw,grey,down8")
    prevalence = report["chance"]["prevalence"]

    def best(name, attr):
        return results[name]["worst_case"]["best_ap"][attr]["mean"]

    out = []
    gap = best("grey", "skin_color") - prevalence["skin_color"]
    out.append(
        (
            "grey removes skin colour",
            gap <= GREY_SKIN_MARGIN,
            _versus(best("grey", "skin_color"), prevalence["skin_color"], GREY_SKIN_MARGIN),
        )
    )
    for attr in FINE_ATTRIBUTES:
        gap = best("down8", attr) - prevalence[attr]
        out.append(
            (
                f"x8 removes {attr}",
                gap <= DOWN8_FINE_MARGIN,
                _versus(best("down8", attr), prevalence[attr], DOWN8_FINE_MARGIN),
            )
        )
    raw_cmap = results["raw"]["worst_case"]["cmap"]["mean"]
    out.append(
        (
            "raw worst-case cMAP at the probe's level",
            raw_cmap >= RAW_MIN_CMAP,
            f"{100 * raw_cmap:.1f} (bar {100 * RAW_MIN_CMAP:.0f})",
        )
    )
    for attr, probe in PROBE_RAW_AP.items():
        ap = best("raw", attr)
        out.append(
            (
                f"raw {attr} at the probe's level",
                ap >= probe - RAW_PROBE_MARGIN,
                f"best AP {100 * ap:.1f} vs probe {100 * probe:.1f}",
            )
        )
    return out


def table(report: dict) -> str:
    prevalence = report["chance"]["prevalence"]
    results = report["results"]
    head = f"{'':22s}" + "".join(f"{a[:12]:>20s}" for a in PRIVACY_ATTRIBUTES)
    lines = [
        head,
        f"{'prevalence':22s}" + "".join(f"{100 * prevalence[a]:20.1f}" for a in PRIVACY_ATTRIBUTES),
    ]
    for name in ("raw", "grey", "down8"):
        best = results[name]["worst_case"]["best_ap"]
        cells = []
        for a in PRIVACY_ATTRIBUTES:
            stat = best[a]
            ci = stat.get("ci")
            cell = f"{100 * stat['mean']:.1f}"
            if ci:
                cell += f" [{100 * ci[0]:.1f},{100 * ci[1]:.1f}]"
            cells.append(f"{cell:>20s}")
        lines.append(f"{name + ' best AP':22s}" + "".join(cells))
    return "\n".join(lines)


def main(argv):
    """Prints the table and the checks; exit status 1 when one fails. argv: the program name
    alone (run_cli)."""
    del argv
    report = report_cli.load_or_run(FLAGS, "raw,grey,down8")
    print(
        f"calibration of the two-fold evaluation ({report.get('experiment', '')}, seeds "
        f"{report['seeds']}): best AP over the panel, %, with bootstrap intervals"
    )
    print(table(report))
    results = checks(report)
    for name, passed, detail in results:
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")
    failed = [n for n, p, _ in results if not p]
    if failed:
        print(f"ruler calibration FAILED: {', '.join(failed)}")
        sys.exit(1)
    print("ruler calibration passed")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
