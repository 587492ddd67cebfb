"""What an evaluation leaves in the run dir: report.json, report.md, tradeoff.png, frames.png.

The report dict (built by evaluate_lib) holds every number with the config and seeds that
produced it; the markdown tables and the plots are views of that dict only, so they can be
regenerated from report.json alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np

from tfprivacy.data.records import PRIVACY_ATTRIBUTES

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
TRADEOFF_PNG = "tradeoff.png"
FRAMES_PNG = "frames.png"


def _fmt(stat: Mapping, percent: bool = True) -> str:
    """mean [lo, hi] with a bootstrap interval, else mean ± std over seeds, else the mean."""
    scale = 100.0 if percent else 1.0
    mean = stat["mean"] * scale
    if "ci" in stat:
        lo, hi = (v * scale for v in stat["ci"])
        return f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"
    if len(stat.get("values", [])) > 1:
        return f"{mean:.1f} ± {stat['std'] * scale:.1f}"
    return f"{mean:.1f}"


def _table_head(title: str, columns) -> list[str]:
    """A report section's title and the head of its degrader-by-`columns` table."""
    return ["", f"## {title}", "", "| degrader | " + " | ".join(columns) + " |"] + [
        "|---|" + "---|" * len(columns)
    ]


def _signed(d: Mapping) -> str:
    lo, hi = (100 * v for v in d["ci"])
    return f"{100 * d['mean']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def relative_to_raw(report: Mapping) -> dict:
    """Per degrader (raw among the results): action top-1 as a fraction of raw's, and the
    leakage left, (cMAP - chance) / (raw cMAP - chance), both on the seed means; {} without raw.
    The issue's bar for a learned f_d: action >= 0.95 of raw, leakage <= 0.5."""
    results = report["results"]
    if "raw" not in results:
        return {}
    chance = report["chance"]["cmap"]
    raw = results["raw"]
    span = raw["worst_case"]["cmap"]["mean"] - chance
    out = {}
    for name, r in results.items():
        out[name] = {
            "action_of_raw": r["action_top1"]["mean"] / raw["action_top1"]["mean"],
            "leakage": (r["worst_case"]["cmap"]["mean"] - chance) / span if span > 0 else None,
        }
    return out


def relative_lines(report: Mapping) -> list[str]:
    """One line per degrader: its action as % of raw and the leakage left."""
    lines = []
    for name, rel in relative_to_raw(report).items():
        if name == "raw" or rel["leakage"] is None:
            continue
        lines.append(
            f"{name}: action {100 * rel['action_of_raw']:.1f}% of raw, leakage left "
            f"{rel['leakage']:.2f} of raw's (worst-case cMAP over chance)"
        )
    return lines


def markdown(report: Mapping) -> str:
    """Tables: the trade-off per degrader, per-attribute worst-case AP, cMAP per attacker."""
    results = report["results"]
    chance = report["chance"]
    seeds = report["seeds"]
    ev = report["eval"]
    conf = ev.get("confidence", 0.95)
    scratch = ", ".join(f"`{a}`" for a in ev["privacy_panel"])
    finetuned = ", ".join(f"`{a}_ft`" for a in ev.get("finetune_panel", ()))
    panel = [f"{scratch} ({ev.get('privacy_epochs')} epochs from scratch)"] if scratch else []
    if finetuned:
        panel.append(
            f"{finetuned} ({ev.get('pretrain_epochs')} epochs on raw frames, then "
            f"{ev.get('finetune_epochs')} on the degraded ones)"
        )
    lines = [
        f"# Two-fold evaluation: {report.get('experiment', '')}",
        "",
        f"Run dir: `{report.get('run_dir', '')}`. Seeds: {seeds}; figures in %, the mean over "
        f"seeds with its {100 * conf:.0f}% bootstrap interval over test items and seeds "
        "in brackets.",
        f"Fresh target model: `{ev['target']}` ({ev.get('target_epochs')} epochs); privacy "
        f"panel: {' and '.join(panel)}"
        + ". Worst case = the attacker with the highest cMAP; best AP = the highest AP of any "
        "attacker, per attribute. Feature probe = logistic regression of the attributes on the "
        "fresh target's penultimate features.",
        f"Chance: action top-1 {100 * chance['action_top1']:.1f}, "
        f"cMAP {100 * chance['cmap']:.1f} (mean test prevalence).",
        "",
    ]
    problems = report.get("problems") or {}
    if problems:
        lines += ["## NOT VALID: figures that prove nothing", ""]
        lines += [f"- {name}: {reason}" for name, rs in problems.items() for reason in rs]
        lines.append("")
    bad = report.get("bad_inputs") or []
    if bad:
        lines += [f"## Skipped inputs ({len(bad)}, unreadable)", ""]
        lines += [f"- `{b['path']}`: {b['reason']}" for b in bad]
        lines.append("")
    lines += [
        "## Privacy-utility trade-off",
        "",
        "| degrader | action top-1 ↑ | worst-case cMAP ↓ | feature probe cMAP ↓ "
        "| worst macro-F1 ↓ | worst attacker | PSNR dB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        w = r["worst_case"]
        attackers = ", ".join(sorted(set(w["models"])))
        probe = _fmt(r["feature_probe"]["cmap"]) if "feature_probe" in r else "-"
        psnr = f"{r['fidelity']['psnr_db']:.1f}" if "fidelity" in r else "-"
        lines.append(
            f"| {name} | {_fmt(r['action_top1'])} | {_fmt(w['cmap'])} | {probe} | "
            f"{_fmt(w['macro_f1'])} | {attackers} | {psnr} |"
        )
    relative = relative_lines(report)
    if relative:
        lines += ["", "Against raw (seed means): " + "; ".join(relative) + "."]
    comparisons = report.get("comparisons") or []
    if comparisons:
        lines += [
            "",
            f"## Paired comparisons with {comparisons[0]['reference']} (other - reference)",
            "",
            "| other | Δ action top-1 | Δ worst-case cMAP | verdict |",
            "|---|---|---|---|",
        ]
        for c in comparisons:
            lines.append(
                f"| {c['other']} | {_signed(c['action_top1'])} | {_signed(c['worst_cmap'])} "
                f"| {c['verdict']} |"
            )
    prevalence = chance.get("prevalence", {})
    lines += _table_head("Best AP per attribute (any attacker)", PRIVACY_ATTRIBUTES)
    if prevalence:
        lines.append(
            "| chance (prevalence) | "
            + " | ".join(f"{100 * prevalence[a]:.1f}" for a in PRIVACY_ATTRIBUTES)
            + " |"
        )
    for name, r in results.items():
        best = r["worst_case"].get("best_ap", r["worst_case"]["ap"])
        lines.append(f"| {name} | " + " | ".join(_fmt(best[a]) for a in PRIVACY_ATTRIBUTES) + " |")
    archs = list(next(iter(results.values()))["panel"]) if results else []
    lines += _table_head("cMAP of each attacker", archs)
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r["panel"][a]["cmap"]) for a in archs) + " |")
    timing = report.get("timing", {})
    if timing:
        lines += ["", "## Timing (s)", ""]
        for key, value in timing.items():
            if isinstance(value, (int, float)):
                lines.append(f"- {key}: {value:.1f}")
    return "\n".join(lines) + "\n"


def plot_tradeoff(report: Mapping, path: str) -> str:
    """Action top-1 against worst-case cMAP; up and left is better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for name, r in report["results"].items():
        learned = r.get("kind") == "learned"
        x, y = r["worst_case"]["cmap"], r["action_top1"]
        ax.errorbar(
            100 * x["mean"],
            100 * y["mean"],
            xerr=_err(x),
            yerr=_err(y),
            fmt="*" if learned else "o",
            markersize=14 if learned else 7,
            color="tab:red" if learned else "tab:blue",
            capsize=3,
        )
        ax.annotate(
            name,
            (100 * x["mean"], 100 * y["mean"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    chance = report["chance"]
    ax.axhline(100 * chance["action_top1"], color="grey", ls="--", lw=1, label="action chance")
    ax.axvline(100 * chance["cmap"], color="grey", ls=":", lw=1, label="cMAP chance")
    ax.set_xlabel(
        "worst-case privacy cMAP over the panel (%) ↓"
        + (
            f"; bars: {100 * report['eval'].get('confidence', 0.95):.0f}% intervals"
            if any("ci" in r["action_top1"] for r in report["results"].values())
            else "; bars: std"
        )
    )
    ax.set_ylabel("action top-1 (%) ↑")
    ax.set_title(f"Privacy-utility trade-off: {report.get('experiment', '')}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _err(stat: Mapping):
    """Error bar half-widths in %: the bootstrap interval when present, else the seeds' std."""
    if "ci" in stat:
        lo, hi = stat["ci"]
        return [[100 * max(stat["mean"] - lo, 0.0)], [100 * max(hi - stat["mean"], 0.0)]]
    return 100 * stat["std"]


def plot_frames(columns: Mapping[str, np.ndarray], path: str) -> str:
    """The same frames side by side: one column per name, one row per frame (uint8 [K,H,W,3])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(columns)
    rows = min(len(v) for v in columns.values())
    if rows == 0:
        raise ValueError("plot_frames: no frames to draw")
    fig, axes = plt.subplots(
        rows, len(names), figsize=(1.8 * len(names), 1.8 * rows), dpi=120, squeeze=False
    )
    for j, name in enumerate(names):
        for i in range(rows):
            ax = axes[i, j]
            ax.imshow(np.asarray(columns[name][i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run_dir: str, report: Mapping, frames: Mapping[str, np.ndarray] | None) -> dict:
    """Writes the four files atomically where it matters (JSON); returns their paths."""
    os.makedirs(run_dir, exist_ok=True)
    paths = {
        k: os.path.join(run_dir, f)
        for k, f in (
            ("json", REPORT_JSON),
            ("md", REPORT_MD),
            ("tradeoff", TRADEOFF_PNG),
            ("frames", FRAMES_PNG),
        )
    }
    tmp = paths["json"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, sort_keys=False)
    os.replace(tmp, paths["json"])
    with open(paths["md"], "w") as f:
        f.write(markdown(report))
    plot_tradeoff(report, paths["tradeoff"])
    if frames:
        plot_frames(frames, paths["frames"])
    else:
        paths.pop("frames")
    return paths
