"""The Trainer's public hooks: callback objects called at fixed points of a run.

A tool that watches or probes a run (benchmarks/game_diagnosis.py) passes callbacks to
`Trainer(cfg, callbacks=[...])` instead of subclassing the Trainer. Subclass `TrainerCallback`
and override the hooks you need; each is called with the Trainer first, in the order the
callbacks were given, and the others stay no-ops. This module imports no TensorFlow, so a
callback class can be defined at the top of a module that imports TensorFlow lazily.

Hooks, in the order a run calls them:
- `on_train_begin(trainer)`: `train()` starts, before any phase's data streams are opened
  (models built, checkpoint restored).
- `on_phase_begin(trainer, name)`: phase `name` (game.PHASES) starts or, in a resumed run,
  resumes; `trainer.phase_step` is the step it starts from (0 unless resumed).
- `on_adversarial_step_begin(trainer, step)`: before adversarial step `step`'s updates
  (0-based: the first step of the phase is 0; a restart of the privacy models, if due, comes
  after this hook).
- `on_adversarial_step_end(trainer, step, figures)`: after them; `figures` the step's losses
  and accuracies as Python floats (lists for one value per privacy model), the same `step`.
- `on_phase_end(trainer, name)`: the phase's last step has run (or it had none), before its
  end-of-phase validation figures, the phase counter's advance and the checkpoint.
- `on_train_end(trainer, summary)`: every phase is done; `summary` what `train()` returns.

A hook may read anything public on the Trainer and run extra models of its own; it must not
draw from the Trainer's data streams (`trainer.streams`), which would change the batches the
run sees and break resuming.
"""

from __future__ import annotations


class TrainerCallback:
    """Base class of the Trainer's callbacks: every hook a no-op (see the module docstring)."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_phase_begin(self, trainer, name: str) -> None:
        pass

    def on_adversarial_step_begin(self, trainer, step: int) -> None:
        pass

    def on_adversarial_step_end(self, trainer, step: int, figures: dict) -> None:
        pass

    def on_phase_end(self, trainer, name: str) -> None:
        pass

    def on_train_end(self, trainer, summary: dict) -> None:
        pass


HOOKS = (
    "on_train_begin",
    "on_phase_begin",
    "on_adversarial_step_begin",
    "on_adversarial_step_end",
    "on_phase_end",
    "on_train_end",
)
