"""Logic behind `python -m trainers.adversarial`: flags -> config -> train -> summary."""

from __future__ import annotations

import time

from configs import get_config
from tfprivacy import config as C
from tfprivacy import runtime

# Shortcut flags -> the config field each sets.
SHORTCUTS = {
    "strategy": ("adversary", "strategy"),
    "num_models": ("adversary", "num_models"),
    "restart_every": ("adversary", "restart_every"),
    "gamma": ("adversary", "gamma"),
    "steps": ("trainer", "adversarial_steps"),
    "identity_steps": ("trainer", "identity_steps"),
    "pretrain_target_steps": ("trainer", "pretrain_target_steps"),
    "pretrain_privacy_steps": ("trainer", "pretrain_privacy_steps"),
    "attack_steps": ("trainer", "attack_steps"),
    "run_dir": ("trainer", "run_dir"),
    "distribution": ("trainer", "distribution"),
}


def resolve_config(
    name: str, overrides: list[str] | None = None, **shortcuts
) -> C.ExperimentConfig:
    """Named experiment + `--set part.field=value` overrides + the shortcut flags (which win;
    keys of SHORTCUTS, None = not given), checked as a whole (C.ConfigError names the field)."""
    cfg = get_config(name, list(overrides or []))
    for key, value in shortcuts.items():
        if key not in SHORTCUTS:
            raise TypeError(f"resolve_config: unknown shortcut {key!r}")
        if value is not None:
            part, field_name = SHORTCUTS[key]
            setattr(getattr(cfg, part), field_name, value)
    return C.check(cfg)


def run(cfg: C.ExperimentConfig, evaluate: bool = True, deterministic_eval: bool = False) -> dict:
    """Trains (resuming if the run dir has a checkpoint), prints the summary, then evaluates.

    deterministic_eval: switch TF to deterministic kernels before the evaluation (process-wide
    and one-way, so the command line asks for it, not callers that go on in-process).
    """
    from tfprivacy.data.check import require_usable

    # Every dataset problem at once (DataError naming each file and field), before any TF work.
    require_usable(cfg.data)
    from tfprivacy.train.distribute import make_strategy

    # A multi-worker strategy must exist before any other TF op of the process.
    strategy = make_strategy(cfg.trainer.distribution)
    from tfprivacy.train.loop import Trainer
    from tfprivacy.train.summary import format_summary

    runtime.quiet_logs()
    start = time.time()
    trainer = Trainer(cfg, strategy)
    summary = trainer.train()
    elapsed = time.time() - start
    if trainer.chief:
        print(format_summary(summary))
        print(f"training wall time (this process): {elapsed:.0f} s; run dir: {cfg.trainer.run_dir}")
    if evaluate and trainer.chief:
        from tfprivacy.eval.evaluate_lib import run_evaluation

        if deterministic_eval:
            from tfprivacy.eval.protocol import enable_determinism

            enable_determinism()
        run_evaluation(
            cfg.trainer.run_dir, baselines=None, seeds=cfg.eval.seeds, progress=cfg.trainer.progress
        )
        print(f"total wall time (train + evaluation): {time.time() - start:.0f} s")
    return summary
