"""The players of the game and the one checkpoint that holds all of them.

Everything that a resumed run needs is a variable tracked here: every model, every optimizer,
the phase, the step within the phase and the batches each data stream has consumed.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy.data.records import NUM_ATTRIBUTES
from tfprivacy.models import build_degrader, build_privacy, build_target

# Phases in order. "attack" retrains fresh privacy models on the frozen degrader: the
# training-time figure that cannot be explained by f_d having fooled its own adversaries.
PHASES = ("identity", "pretrain_target", "pretrain_privacy", "adversarial", "attack", "done")


def privacy_archs(model_cfg: C.ModelConfig, num_models: int) -> list[str]:
    """M privacy models drawn round-robin from the configured families."""
    if not model_cfg.privacy:
        raise C.ConfigError("model.privacy: at least one privacy architecture is needed")
    return [model_cfg.privacy[i % len(model_cfg.privacy)] for i in range(num_models)]


def _adam(lr: float, mixed_precision: bool):
    opt = keras.optimizers.Adam(learning_rate=lr)
    if mixed_precision:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


@dataclasses.dataclass
class Shapes:
    clip: tuple[int, int, int, int]  # (T, H, W, 3)
    privacy_input: tuple  # (T or 1, H, W, 3): clips, or single images in cross-dataset mode
    num_actions: int


class Players:
    """f_d, f_T and M privacy models f_b, one optimizer each, built in the strategy's scope."""

    def __init__(self, cfg: C.ExperimentConfig, shapes: Shapes, strategy: tf.distribute.Strategy):
        self.cfg = cfg
        self.shapes = shapes
        self.strategy = strategy
        self.archs = privacy_archs(cfg.model, cfg.adversary.num_models)
        mp = cfg.trainer.mixed_precision
        if mp:
            keras.mixed_precision.set_global_policy("mixed_float16")
        with strategy.scope():
            keras.utils.set_random_seed(cfg.trainer.seed)
            self.degrader = build_degrader(cfg.model, frame_size=shapes.clip[1])
            self.target = build_target(
                cfg.model.target, shapes.num_actions, shapes.clip, cfg.model.target_width
            )
            self.privacy = [self.new_privacy_model(i) for i in range(len(self.archs))]
            # The utility anchor (adversary.anchor_weight): f_T's weights at the end of its
            # pretraining, frozen; only built when used, so other runs' checkpoints hold no
            # extra model.
            self.anchor = None
            if cfg.adversary.anchor_weight > 0:
                self.anchor = build_target(
                    cfg.model.target, shapes.num_actions, shapes.clip, cfg.model.target_width
                )
                self.anchor.trainable = False
            self.degrader_opt = _adam(cfg.trainer.degrader_lr, mp)
            self.target_opt = _adam(cfg.trainer.target_lr, mp)
            self.privacy_opts = [_adam(cfg.trainer.privacy_lr, mp) for _ in self.privacy]
            # Optimizer slots exist before restore, so a checkpoint restores them eagerly.
            self.degrader_opt.build(self.degrader.trainable_variables)
            self.target_opt.build(self.target.trainable_variables)
            for opt, model in zip(self.privacy_opts, self.privacy, strict=True):
                opt.build(model.trainable_variables)
            self.phase = tf.Variable(0, dtype=tf.int64, trainable=False, name="phase")
            self.phase_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="phase_step")
            # Batches consumed by each data stream in the current phase (resume skips them).
            self.consumed = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="consumed")
            # Weight of the action term in f_d's loss, steered by the judges (judge.every);
            # checkpointed only when they run, so other runs' checkpoints are unchanged.
            self.action_weight = tf.Variable(
                1.0, dtype=tf.float32, trainable=False, name="action_weight"
            )
        self.checkpoint = tf.train.Checkpoint(
            degrader=self.degrader,
            target=self.target,
            degrader_opt=self.degrader_opt,
            target_opt=self.target_opt,
            phase=self.phase,
            phase_step=self.phase_step,
            consumed=self.consumed,
            **{f"privacy_{i}": m for i, m in enumerate(self.privacy)},
            **{f"privacy_opt_{i}": o for i, o in enumerate(self.privacy_opts)},
            **({"anchor": self.anchor} if self.anchor is not None else {}),
            **({"action_weight": self.action_weight} if cfg.judge.every else {}),
        )

    def freeze_anchor(self) -> None:
        """The anchor takes f_T's current weights (called once, after f_T's pretraining)."""
        if self.anchor is not None:
            self.anchor.set_weights(self.target.get_weights())

    def new_privacy_model(self, index: int):
        """A new privacy model of the ensemble's `index`-th architecture, built in the caller's
        distribution scope and seeded by the global seed; the checkpoint does not track it."""
        arch = self.archs[index]
        return build_privacy(
            arch,
            NUM_ATTRIBUTES,
            self.shapes.privacy_input,
            self.cfg.model.privacy_width,
            name=f"privacy_{index}_{arch}",
        )

    @property
    def phase_name(self) -> str:
        return PHASES[int(self.phase.numpy())]

    def reinitialise_privacy(self, seed: int) -> None:
        """Model restarting: fresh weights (seeded, so resumed runs restart identically)."""
        for i, model in enumerate(self.privacy):
            keras.utils.set_random_seed(seed * 1009 + i)
            with self.strategy.scope():
                fresh = self.new_privacy_model(i)
            model.set_weights(fresh.get_weights())
            opt = self.privacy_opts[i]
            for var in opt.variables:
                if "iteration" in var.path or "learning_rate" in var.path:
                    continue
                var.assign(tf.zeros_like(var))

    def seed_as_after_reinitialise(self, seed: int) -> None:
        """Leaves the global seeds as `reinitialise_privacy(seed)` leaves them."""
        keras.utils.set_random_seed(seed * 1009 + len(self.privacy) - 1)

    def all_finite(self) -> tuple[bool, str]:
        """Checks every weight; returns (ok, name of the first model holding a non-finite value)."""
        models = [("degrader", self.degrader), ("target", self.target)] + [
            (m.name, m) for m in self.privacy
        ]
        for name, model in models:
            for var in model.weights:
                if not np.all(np.isfinite(var.numpy())):
                    return False, f"{name}/{var.path}"
        return True, ""


def checkpoint_position(path: str) -> tuple[int, int]:
    """(phase index into PHASES, step within the phase) a Players checkpoint was written at,
    read without building or restoring a model; raises what tf.train.load_checkpoint and the
    reader raise for a damaged checkpoint."""
    reader = tf.train.load_checkpoint(path)
    phase = int(reader.get_tensor(f"phase/{_VARIABLE_VALUE}"))
    step = int(reader.get_tensor(f"phase_step/{_VARIABLE_VALUE}"))
    return phase, step


# How tf.train.Checkpoint names a tracked variable's value (the Players' checkpoint keys).
_VARIABLE_VALUE = ".ATTRIBUTES/VARIABLE_VALUE"
