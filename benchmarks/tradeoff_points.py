"""Trained degraders on one privacy-utility plane: action (% of raw) against leakage.

    python -m benchmarks.tradeoff_points --out docs/frontier.png \\
        --point "default=runs/seeds/entropy_m2_seed1" --point "slower=runs/slow/entropy_m2_seed1"

Each --point is LABEL=RUN_DIR, a run measured by the ruler (RUN_DIR/report.json, written by
`trainers.evaluate` or `benchmarks.ablation`). Per point: action top-1 as a fraction of raw's
and the leakage, (worst-case cMAP - chance) / (raw cMAP - chance), as report.json's
`relative_to_raw` has them, with the bootstrap intervals of the degrader's own figures carried
over (raw's seed mean as the scale). The issue's bar (action >= `--bar_action` of raw, leakage
<= `--bar_leakage`) is the shaded corner. Prints the points as a Markdown table. Points must
share the ruler's seeds; a run measured with other seeds is refused by name.

The table's last two columns are the leakage on the measures that keep their range on skewed
attributes (report.relative_to_raw's leakage_nap, leakage_auc): worst-case mean normalised AP
over raw's, and (worst-case mean AUC - 0.5) over raw's; "n/a" for a report made before they
existed, "refused" where raw's gap to chance on that measure is too small to divide by. The bar
and the plot stay on the cMAP leakage.
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

from tfprivacy import runtime
from tfprivacy.eval import report as report_lib

FLAGS = flags.FlagValues()
flags.DEFINE_multi_string(
    "point", [], "LABEL=RUN_DIR, a run with a ruler report.json", flag_values=FLAGS
)
flags.DEFINE_string("out", "", "PNG to write (empty: only the table)", flag_values=FLAGS)
flags.DEFINE_string("title", "", "the plot's title", flag_values=FLAGS)
flags.DEFINE_float(
    "bar_action", 0.95, "the bar: action top-1 as a fraction of raw's", flag_values=FLAGS
)
flags.DEFINE_float("bar_leakage", 0.5, "the bar: leakage at most this", flag_values=FLAGS)


class PointError(ValueError):
    """A --point that cannot be plotted: names the label and the file."""


def parse_point(text: str) -> tuple[str, str]:
    label, sep, run_dir = text.partition("=")
    if not sep or not label or not run_dir:
        raise PointError(f"--point {text!r}: expected LABEL=RUN_DIR")
    return label, run_dir


def load_point(label: str, run_dir: str) -> dict:
    """The point's figures from RUN_DIR/report.json (fractions; intervals as (lo, hi))."""
    path = os.path.join(run_dir, "report.json")
    try:
        with open(path) as f:
            report = json.load(f)
    except FileNotFoundError:
        raise PointError(f"{label}: {path} not found (run trainers.evaluate on it)") from None
    except json.JSONDecodeError as e:
        raise PointError(f"{label}: {path} is not valid JSON ({e})") from None
    results = report.get("results", {})
    if "learned" not in results or "raw" not in results:
        raise PointError(f"{label}: {path} holds no 'learned' and 'raw' results")
    learned, raw = results["learned"], results["raw"]
    chance = report["chance"]["cmap"]
    raw_action = raw["action_top1"]["mean"]
    span = raw["worst_case"]["cmap"]["mean"] - chance
    if raw_action <= 0 or span <= 0:
        raise PointError(f"{label}: {path}: raw is at chance, nothing to scale by")
    action, cmap = learned["action_top1"], learned["worst_case"]["cmap"]
    point = {
        "label": label,
        "seeds": list(report.get("seeds", [])),
        "action": action["mean"] / raw_action,
        "action_ci": tuple(v / raw_action for v in action["ci"]),
        "leakage": (cmap["mean"] - chance) / span,
        "leakage_ci": tuple((v - chance) / span for v in cmap["ci"]),
    }
    point.update(_skew_leakages(learned, raw))
    return point


def _skew_leakages(learned: dict, raw: dict) -> dict:
    """leakage_nap / leakage_auc (None where absent or refused), their intervals and
    "refused" (leakage key -> why) from the learned and raw worst-case figures."""
    out: dict = {"refused": {}}
    for key, measure, figure, chance in report_lib.LEAKAGES[1:]:
        stat = learned["worst_case"].get(figure)
        span, why = report_lib.leakage_scale(raw["worst_case"].get(figure), chance, measure)
        out[key] = out[f"{key}_ci"] = None
        if why:
            out["refused"][key] = why
        elif span is not None and stat is not None:
            out[key] = (stat["mean"] - chance) / span
            if "ci" in stat:
                out[f"{key}_ci"] = tuple((v - chance) / span for v in stat["ci"])
    return out


def _leakage_cell(point: dict, key: str) -> str:
    if point.get(key) is None:
        return "refused" if key in point.get("refused", {}) else "n/a"
    ci = point.get(f"{key}_ci")
    return f"{point[key]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def check_same_seeds(points: list[dict]) -> None:
    seeds = {tuple(p["seeds"]) for p in points}
    if len(seeds) > 1:
        names = ", ".join(f"{p['label']} {p['seeds']}" for p in points)
        raise PointError(f"the points were measured with different ruler seeds ({names})")


def meets(point: dict, bar_action: float, bar_leakage: float) -> bool:
    return point["action"] >= bar_action and point["leakage"] <= bar_leakage


def table(points: list[dict], bar_action: float, bar_leakage: float) -> str:
    lines = [
        "| point | action (% of raw) | leakage | meets the bar | leakage (nAP) | leakage (AUC) |",
        "|---|---|---|---|---|---|",
    ]
    refusals: list[str] = []
    for p in points:
        lo, hi = (100 * v for v in p["action_ci"])
        llo, lhi = p["leakage_ci"]
        verdict = "yes" if meets(p, bar_action, bar_leakage) else "no"
        lines.append(
            f"| {p['label']} | {100 * p['action']:.1f} [{lo:.1f}, {hi:.1f}] | "
            f"{p['leakage']:.2f} [{llo:.2f}, {lhi:.2f}] | {verdict} | "
            f"{_leakage_cell(p, 'leakage_nap')} | {_leakage_cell(p, 'leakage_auc')} |"
        )
        refused = p.get("refused", {}).values()
        refusals += [f"{p['label']}: leakage ratio refused on {why}" for why in refused]
    return "\n".join(lines + ([""] + refusals if refusals else []))


def plot(points: list[dict], path: str, bar_action: float, bar_leakage: float, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    xs = [p["leakage"] for p in points] + [bar_leakage, 0.0, 1.0]
    ys = [100 * p["action"] for p in points] + [100 * bar_action, 100.0]
    x0, x1 = min(xs) - 0.05, max(xs) + 0.05
    y0, y1 = min(ys) - 2.0, max(ys) + 2.0
    ax.fill_between(
        [x0, bar_leakage], 100 * bar_action, y1, color="tab:green", alpha=0.12, label="the bar"
    )
    for p in points:
        x, y = p["leakage"], 100 * p["action"]
        xerr = [[x - p["leakage_ci"][0]], [p["leakage_ci"][1] - x]]
        yerr = [[y - 100 * p["action_ci"][0]], [100 * p["action_ci"][1] - y]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, ms=5)
        ax.annotate(p["label"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("leakage: (worst-case cMAP - chance) / (raw's - chance)")
    ax.set_ylabel("action top-1, % of raw")
    ax.set_title(title or "trained degraders under the ruler (95% intervals)", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    del argv
    if not FLAGS.point:
        print("error: give at least one --point LABEL=RUN_DIR", file=sys.stderr)
        return 2
    try:
        points = [load_point(*parse_point(p)) for p in FLAGS.point]
        check_same_seeds(points)
    except PointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(points, FLAGS.bar_action, FLAGS.bar_leakage))
    if FLAGS.out:
        plot(points, FLAGS.out, FLAGS.bar_action, FLAGS.bar_leakage, FLAGS.title)
        print(f"wrote {FLAGS.out}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)
