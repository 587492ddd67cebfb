"""The training summary: the figures the main job prints, and whether they mean anything.

`summarize` turns the Trainer's phase results into summary.json (the two success criteria of
the game: action top-1 within 5 points of raw, privacy cMAP at least halfway to chance, both
counted only for a healthy run); `format_summary` is the screen the main job prints.
"""

from __future__ import annotations

from tfprivacy import config as C
from tfprivacy import metrics


def run_problems(results: dict) -> list[str]:
    """Why a finished run's criteria cannot be trusted: [] when none applies."""
    return metrics.health_problems(
        results.get("raw"), results.get("chance"), results.get("fidelity")
    )


def privacy_fall(raw_cmap: float, cmap: float, chance_cmap: float) -> float:
    """How far `cmap` has fallen from raw's towards chance, as a fraction (nan when raw is not
    above chance): the summary's criterion and the adaptive game length's judgement."""
    span = raw_cmap - chance_cmap
    return (raw_cmap - cmap) / span if span > 0 else float("nan")


def summarize(results: dict, cfg: C.ExperimentConfig) -> dict:
    """The figures the main job prints, with the issue's two criteria evaluated.

    The criteria count as met only for a healthy run (run_problems empty): a collapsed f_d on
    an untrained target would otherwise "keep" action accuracy at chance and "remove" privacy.
    With trainer.attack_steps 0 no fresh f_b was trained and the trainer validates none; figures
    of untrained attackers (runs from before that rule) are dropped, and no criterion is judged.
    """
    if cfg.trainer.attack_steps == 0:
        results = {k: v for k, v in results.items() if k != "degraded"}
    out = {
        "config": cfg.name,
        "strategy": cfg.adversary.strategy,
        "M": cfg.adversary.num_models,
        "R": cfg.adversary.restart_every,
        "gamma": cfg.adversary.gamma,
        "attack_steps": cfg.trainer.attack_steps,
        **results,
    }
    if "judge" in results:
        # The bar on validation (judge.action_bar, judge.leakage_bar), decided by the judges;
        # a healthy run only.
        out["bar_met"] = bool(results["judge"]["met"]) and not run_problems(results)
        out["adversarial_max_steps"] = max(
            cfg.trainer.adversarial_max_steps, cfg.trainer.adversarial_steps
        )
    if cfg.adversary.extend_until_fall > 0:
        out["extend_until_fall"] = cfg.adversary.extend_until_fall
        out["adversarial_max_steps"] = cfg.trainer.adversarial_max_steps
    if {"raw", "degraded", "chance"} <= results.keys():
        raw, deg, chance = results["raw"], results["degraded"], results["chance"]
        out["action_drop_points"] = 100 * (raw["action_top1"] - deg["action_top1"])
        out["privacy_fall_fraction"] = privacy_fall(
            raw["privacy_cmap_worst"], deg["privacy_cmap_worst"], chance["privacy_cmap_worst"]
        )
        out["problems"] = run_problems(results)
        healthy = not out["problems"]
        out["criteria"] = {
            "action_within_5_points": healthy and out["action_drop_points"] <= 5.0,
            "privacy_fell_halfway_to_chance": healthy and out["privacy_fall_fraction"] >= 0.5,
        }
    return out


def format_summary(summary: dict) -> str:
    """One screen: validation action top-1 and worst-case privacy cMAP, raw vs degraded."""
    lines = [
        f"tfprivacy run {summary['config']}: strategy={summary['strategy']} "
        f"M={summary['M']} R={summary['R']} gamma={summary['gamma']}",
        f"{'validation':<34}{'action top-1':>14}{'privacy cMAP (worst)':>24}",
    ]
    rows = [
        ("raw clips (pretrained f_T, f_b)", "raw"),
        (
            "f_d at start (no identity phase)"
            if summary.get("identity_skipped")
            else "f_d after identity pretraining",
            "identity",
        ),
        ("f_d, game's own f_b", "adversarial"),
        ("f_d, fresh f_b retrained on f_d", "degraded"),
        ("chance", "chance"),
    ]
    for label, key in rows:
        if key in summary:
            r = summary[key]
            lines.append(f"{label:<34}{r['action_top1']:>14.3f}{r['privacy_cmap_worst']:>24.3f}")
    if "criteria" in summary and "judge" in summary:
        # The judges' verdict (last line) is the run's; the attack phase's figures are a check.
        lines.append(
            f"fresh f_b after the game: privacy cMAP fell "
            f"{100 * summary['privacy_fall_fraction']:.0f}% of the way to chance; action drop "
            f"{summary['action_drop_points']:.1f} points"
        )
    elif "criteria" in summary:
        c = summary["criteria"]
        lines.append(
            f"action drop: {summary['action_drop_points']:.1f} points (target <= 5: "
            f"{'yes' if c['action_within_5_points'] else 'NO'}); privacy cMAP fell "
            f"{100 * summary['privacy_fall_fraction']:.0f}% of the way to chance (target >= 50%: "
            f"{'yes' if c['privacy_fell_halfway_to_chance'] else 'NO'})"
        )
    elif summary.get("attack_steps") == 0:
        lines.append(
            "no fresh f_b trained (trainer.attack_steps 0): the criteria are not judged; "
            "python -m trainers.evaluate --run RUN_DIR measures the degrader"
        )
    checks = summary.get("game_length_checks")
    if checks:
        last = checks[-1]
        ended = "its own f_b had" if last["stop"] else "at the cap, its own f_b had only"
        lines.append(
            f"adaptive game length: {summary.get('adversarial_steps_played', last['step'])} "
            f"adversarial steps (cap {summary.get('adversarial_max_steps', '?')}); {ended} "
            f"fallen {100 * last['fall']:.0f}% of the way to chance (ends at >= "
            f"{100 * summary.get('extend_until_fall', 0):.0f}%)"
        )
    if "fidelity" in summary:
        f = summary["fidelity"]
        lines.append(
            f"f_d output: PSNR {f['psnr_db']:.1f} dB against its input, within-frame std "
            f"{f['output_std']:.3f} (input {f['input_std']:.3f})"
        )
    bad = summary.get("bad_inputs") or []
    if bad:
        listed = "; ".join(f"{b['path']} ({b['reason']})" for b in bad[:10])
        more = f"; ... {len(bad) - 10} more in summary.json" if len(bad) > 10 else ""
        lines.append(f"skipped {len(bad)} unreadable input(s): {listed}{more}")
    for problem in summary.get("problems", []):
        lines.append(f"NOT A VALID RUN: {problem}")
    if "judge" in summary:
        lines += judge_lines(summary)
    return "\n".join(lines)


def judge_lines(summary: dict) -> list[str]:
    """The judges' table (one row per judged step) and the verdict: which checkpoint was kept
    and why, then MET, or NOT MET naming the side that failed."""
    judge = summary["judge"]
    raw = summary.get("judge_raw", {})
    target = judge.get("target", "a copy of the raw-pretrained f_T fine-tuned on f_d's output")
    lines = [
        f"judges ({target}; attackers fine-tuned from the raw-pretrained f_b; validation): "
        f"raw {raw.get('action_top1', float('nan')):.3f} action top-1, "
        f"{raw.get('privacy_cmap_worst', float('nan')):.3f} worst-case cMAP"
    ]
    for v in summary.get("judgements", []):
        back = f", back to step {v['rewound_to']}" if "rewound_to" in v else ""
        lines.append(
            f"  step {v['step']:>4}: action {100 * v['action_of_raw']:5.1f}% of raw, leakage "
            f"{v['leakage']:.2f} (action weight {v['action_weight']:.2f}{back})"
        )
    bar = (
        f"action >= {100 * judge.get('action_bar', 0.95):.0f}% of raw, leakage <= "
        f"{judge.get('leakage_bar', 0.5):.2f}"
    )
    if "kept_step" in judge:
        v = judge["verdict"]
        lines.append(
            f"kept f_d of adversarial step {judge['kept_step']}: validation action "
            f"{100 * v['action_of_raw']:.1f}% of raw, leakage {v['leakage']:.2f} ({judge['why']})"
        )
    if summary.get("bar_met"):
        lines.append(f"MET on validation ({bar})")
    else:
        failed = judge.get("failed") or ["run health"]
        lines.append(
            f"NOT MET on validation ({bar}): the {' and '.join(failed)} "
            f"side{'s' if len(failed) > 1 else ''} failed"
            + ("" if "kept_step" in judge else f"; {judge['why']}")
        )
    return lines
