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

from tfprivacy import metrics
from tfprivacy.data.records import PRIVACY_ATTRIBUTES

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
TRADEOFF_PNG = "tradeoff.png"
FRAMES_PNG = "frames.png"


NA = "n/a"  # a figure the report does not hold (made before the measure existed)


def _fmt(stat: Mapping | None, percent: bool = True) -> str:
    """mean [lo, hi] with a bootstrap interval, else mean ± std over seeds, else the mean;
    "n/a" for a figure the report does not hold."""
    if stat is None:
        return NA
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


# A leakage ratio divides by raw's gap to chance; a gap below this, on a scale from chance (0)
# to perfect (1), cannot be resolved and the ratio is refused. PA-HMDB51's raw cMAP ~70 over
# chance ~69 is 0.03 of the 31 points above chance.
MIN_LEAKAGE_GAP = 0.05

# relative_to_raw's leakage ratios: (key, the measure in words, the worst-case figure, chance).
# chance None: the report's own (cMAP's, the mean test prevalence).
LEAKAGES = (
    ("leakage", "worst-case cMAP", "cmap", None),
    ("leakage_nap", "worst-case mean normalised AP", "nap_mean", metrics.NAP_CHANCE),
    ("leakage_auc", "worst-case mean AUC", "auc_mean", metrics.AUC_CHANCE),
)


def leakage_scale(raw: Mapping | None, chance: float, measure: str) -> tuple[float | None, str]:
    """Raw's gap to chance on one measure, what a leakage ratio divides by: (gap, "") when it
    can be resolved, (None, why not) when it cannot, (None, "") when raw lacks the measure.

    raw: raw's worst-case figure ({"mean", optional "ci"}). Refused when the gap is below
    MIN_LEAKAGE_GAP of the range above chance (1 - chance), or when raw's interval reaches
    chance (its lower bound is at or below it).
    """
    if raw is None:
        return None, ""
    gap = raw["mean"] - chance
    room = 1.0 - chance
    share = gap / room if room > 0 else 0.0
    if share < MIN_LEAKAGE_GAP:
        return None, (
            f"{measure}: raw's gap to chance is {100 * gap:.1f} points, {share:.3f} of the "
            f"range from chance ({100 * chance:.1f}) to perfect, below the "
            f"{MIN_LEAKAGE_GAP:.2f} a ratio needs"
        )
    if "ci" in raw and raw["ci"][0] <= chance:
        lo, hi = raw["ci"]
        return None, (
            f"{measure}: raw's gap to chance is {100 * gap:.1f} points but its interval "
            f"[{100 * lo:.1f}, {100 * hi:.1f}] reaches chance {100 * chance:.1f}"
        )
    return gap, ""


def relative_to_raw(report: Mapping) -> dict:
    """Per degrader (raw among the results): action top-1 as a fraction of raw's, and the
    leakage left on each measure, on the seed means; {} without raw.

    "leakage": (cMAP - chance) / (raw cMAP - chance), worst-case cMAP, chance the mean test
    prevalence; "leakage_nap": worst-case mean normalised AP / raw's (chance 0 on that scale);
    "leakage_auc": (AUC - 0.5) / (raw AUC - 0.5), worst-case mean AUC. Each is None where raw's
    gap to chance is too small to resolve (leakage_scale), with the reason under
    "leakage_refused" (leakage key -> message; present only then), and None without a message
    where the report lacks the measure. The issue's bar for a learned f_d: action >= 0.95 of
    raw, leakage <= 0.5."""
    results = report["results"]
    if "raw" not in results:
        return {}
    raw = results["raw"]
    scales, refused = {}, {}
    for key, measure, figure, chance in LEAKAGES:
        chance = report["chance"]["cmap"] if chance is None else chance
        span, why = leakage_scale(raw["worst_case"].get(figure), chance, measure)
        scales[key] = (figure, chance, span)
        if why:
            refused[key] = why
    out = {}
    for name, r in results.items():
        rel = {"action_of_raw": r["action_top1"]["mean"] / raw["action_top1"]["mean"]}
        for key, (figure, chance, span) in scales.items():
            stat = r["worst_case"].get(figure)
            rel[key] = (stat["mean"] - chance) / span if span and stat is not None else None
        if refused:
            rel["leakage_refused"] = dict(refused)
        out[name] = rel
    return out


def leakage_text(rel: Mapping, key: str) -> str:
    """One leakage of a relative_to_raw entry: "0.25", "refused" or "n/a" (not measured)."""
    if rel.get(key) is not None:
        return f"{rel[key]:.2f}"
    return "refused" if key in rel.get("leakage_refused", {}) else NA


def _relative_parts(report: Mapping) -> tuple[list[str], list[str]]:
    """(one line per degrader but raw, the refusal messages) of relative_to_raw."""
    relative = relative_to_raw(report)
    lines = []
    for name, rel in relative.items():
        if name == "raw":
            continue
        lines.append(
            f"{name}: action {100 * rel['action_of_raw']:.1f}% of raw, leakage left "
            f"{leakage_text(rel, 'leakage')} of raw's (worst-case cMAP over chance), "
            f"{leakage_text(rel, 'leakage_nap')} on normalised AP, "
            f"{leakage_text(rel, 'leakage_auc')} on AUC"
        )
    refused = relative.get("raw", {}).get("leakage_refused", {})
    return lines, [f"leakage ratio refused on {why}" for why in refused.values()]


def relative_lines(report: Mapping) -> list[str]:
    """One line per degrader: its action as % of raw and the leakage left on cMAP, normalised
    AP and AUC ("refused" or "n/a" where there is none); then one line per refused ratio."""
    lines, refusals = _relative_parts(report)
    return lines + refusals


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
        "fresh target's penultimate features. nAP = normalised AP, (AP - prevalence) / "
        "(1 - prevalence) per attribute, and AUC = ROC-AUC: measures that keep their range on "
        "skewed attributes, where AP (and cMAP) sit near prevalence whatever the attacker; "
        "their worst case = the attacker with the highest mean over attributes.",
        f"Chance: action top-1 {100 * chance['action_top1']:.1f}, "
        f"cMAP {100 * chance['cmap']:.1f} (mean test prevalence), "
        f"nAP {100 * metrics.NAP_CHANCE:.1f}, AUC {100 * metrics.AUC_CHANCE:.1f}.",
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
        "| degrader | action top-1 ↑ | worst-case cMAP ↓ | worst-case nAP ↓ | worst-case AUC ↓ "
        "| feature probe cMAP ↓ | worst macro-F1 ↓ | worst attacker | PSNR dB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        w = r["worst_case"]
        attackers = ", ".join(sorted(set(w["models"])))
        probe = _fmt(r["feature_probe"]["cmap"]) if "feature_probe" in r else "-"
        psnr = f"{r['fidelity']['psnr_db']:.1f}" if "fidelity" in r else "-"
        lines.append(
            f"| {name} | {_fmt(r['action_top1'])} | {_fmt(w['cmap'])} | "
            f"{_fmt(w.get('nap_mean'))} | {_fmt(w.get('auc_mean'))} | {probe} | "
            f"{_fmt(w['macro_f1'])} | {attackers} | {psnr} |"
        )
    relative, refusals = _relative_parts(report)
    if relative:
        lines += ["", "Against raw (seed means): " + "; ".join(relative) + "."]
    if refusals:
        lines += ["", "Raw too close to chance to divide by: " + "; ".join(refusals) + "."]
    comparisons = report.get("comparisons") or []
    if comparisons:
        on_nap = all("worst_nap" in c for c in comparisons)
        lines += [
            "",
            f"## Paired comparisons with {comparisons[0]['reference']} (other - reference)",
            "",
            "Verdicts on action top-1 and "
            + (
                "worst-case nAP (a measure with range on skewed attributes); cMAP for comparison."
                if on_nap
                else "worst-case cMAP (this report has no nAP replicates)."
            ),
            "",
            "| other | Δ action top-1 | Δ worst-case nAP | Δ worst-case cMAP | verdict |",
            "|---|---|---|---|---|",
        ]
        for c in comparisons:
            nap = _signed(c["worst_nap"]) if "worst_nap" in c else NA
            lines.append(
                f"| {c['other']} | {_signed(c['action_top1'])} | {nap} | "
                f"{_signed(c['worst_cmap'])} | {c['verdict']} |"
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
    for key, title in (("nap_mean", "Mean nAP"), ("auc_mean", "Mean AUC")):
        if not any(key in p for r in results.values() for p in r["panel"].values()):
            continue
        lines += _table_head(f"{title} of each attacker", archs)
        for name, r in results.items():
            cells = " | ".join(_fmt(r["panel"][a].get(key)) for a in archs)
            lines.append(f"| {name} | {cells} |")
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
