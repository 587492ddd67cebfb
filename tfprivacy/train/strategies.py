"""Game strategies: each owns f_d's adversarial loss term and its per-step schedule.

A strategy answers two questions of the adversarial phase:
- `degrader_term(labels, privacy_logits)`: the per-example L_adv that f_d minimises (with
  weight gamma, beside the utility loss L_T), given the M privacy models' logits;
- `step(game, step, out)`: which updates one adversarial step runs, in which order, through
  the `game` (a `GameActions`: one update of each player, and the target-accuracy guard).

Adding a strategy is one class plus `@register("name")`; the name becomes a valid
`adversary.strategy`. The paper's three:
- grl: f_b (adversary.privacy_steps updates), f_T, then f_d against the worst privacy
  model's negative BCE (gradient reversal read as alternating updates);
- kbeam: f_d against the best privacy model on each example (K-Beam's max over models), then
  f_b until its best training accuracy passes a threshold, then f_T while validation action
  accuracy is below its threshold;
- entropy: f_d maximises the privacy models' prediction entropy (the paper's default), then
  f_T under the same guard, then f_b.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from tfprivacy import config as C
from tfprivacy import losses


class GameActions(Protocol):
    """What a strategy's schedule may do within one adversarial step (Trainer provides it).

    Each call runs one update and records its figures in `out` under the phase's usual keys.
    """

    def privacy(self, out: dict) -> None: ...  # f_b on f_d's output
    def target(self, out: dict) -> None: ...  # f_T on f_d's output (f_d fixed)
    def degrader(self, out: dict) -> None: ...  # f_d on L_T + gamma * L_adv
    def target_until_threshold(self, out: dict, step: int) -> None: ...  # f_T + f_d on L_T


class Strategy:
    """Base class: subclasses set their loss term and schedule."""

    name = ""

    def __init__(self, adv: C.AdversaryConfig):
        self.adv = adv

    def degrader_term(self, labels, privacy_logits: list):
        """Per-example adversarial loss of f_d, [B] float32."""
        raise NotImplementedError

    def step(self, game: GameActions, step: int, out: dict) -> None:
        """One adversarial step's updates, in order."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Strategy]] = {}


def register(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: makes `name` a strategy (and a valid adversary.strategy)."""

    def wrap(cls: type[Strategy]) -> type[Strategy]:
        if name in _REGISTRY:
            raise ValueError(f"strategy {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        C.register_strategy_name(name)
        return cls

    return wrap


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def build(adv: C.AdversaryConfig) -> Strategy:
    if adv.strategy not in _REGISTRY:
        raise C.ConfigError(f"adversary.strategy: unknown {adv.strategy!r}; one of {names()}")
    return _REGISTRY[adv.strategy](adv)


@register("grl")
class GradientReversal(Strategy):
    def degrader_term(self, labels, privacy_logits):
        return losses.worst_case_over_models(
            [losses.negative_privacy_loss(labels, lg) for lg in privacy_logits]
        )

    def step(self, game, step, out):
        for _ in range(self.adv.privacy_steps):
            game.privacy(out)
        game.target(out)
        game.degrader(out)


@register("kbeam")
class KBeam(Strategy):
    def degrader_term(self, labels, privacy_logits):
        per_example, _ = losses.kbeam_degrader_loss(labels, privacy_logits)
        return per_example

    def step(self, game, step, out):
        game.degrader(out)
        for _ in range(max(1, self.adv.max_inner_steps)):
            game.privacy(out)
            if float(np.max(np.asarray(out["privacy_acc"]))) >= self.adv.privacy_train_threshold:
                break
        game.target_until_threshold(out, step)


@register("entropy")
class Entropy(Strategy):
    def degrader_term(self, labels, privacy_logits):
        return losses.entropy_degrader_loss(privacy_logits)

    def step(self, game, step, out):
        game.degrader(out)
        game.target_until_threshold(out, step)
        for _ in range(self.adv.privacy_steps):
            game.privacy(out)
