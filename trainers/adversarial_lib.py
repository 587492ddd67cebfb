"""Logic behind `python -m trainers.adversarial`: flags -> config -> train -> summary."""

from __future__ import annotations

import logging
import time

from configs import get_config
from tfprivacy import config as C


def resolve_config(
    name: str,
    overrides: list[str] | None = None,
    *,
    strategy: str | None = None,
    num_models: int | None = None,
    restart_every: int | None = None,
    gamma: float | None = None,
    steps: int | None = None,
    run_dir: str | None = None,
    distribution: str | None = None,
) -> C.ExperimentConfig:
    """Named experiment + `--set part.field=value` overrides + the shortcut flags (which win)."""
    extra = []
    for key, value in (
        ("adversary.strategy", strategy),
        ("adversary.num_models", num_models),
        ("adversary.restart_every", restart_every),
        ("adversary.gamma", gamma),
        ("trainer.adversarial_steps", steps),
        ("trainer.run_dir", run_dir),
        ("trainer.distribution", distribution),
    ):
        if value is not None:
            extra.append(f"{key}={value}")
    return get_config(name, list(overrides or []) + extra)


def quiet_logs() -> None:
    """Progress bars and the summary are the output; TF's and absl's INFO chatter is not."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run(cfg: C.ExperimentConfig, evaluate: bool = True, deterministic_eval: bool = False) -> dict:
    """Trains (resuming if the run dir has a checkpoint), prints the summary, then evaluates.

    deterministic_eval: switch TF to deterministic kernels before the evaluation (process-wide
    and one-way, so the command line asks for it, not callers that go on in-process).
    """
    from tfprivacy.train.distribute import make_strategy

    # A multi-worker strategy must exist before any other TF op of the process.
    strategy = make_strategy(cfg.trainer.distribution)
    from tfprivacy.train.loop import Trainer, format_summary

    quiet_logs()
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
