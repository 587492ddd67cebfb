"""Why a game settles where it does: its own attackers against fresh ones, over training.

    python -m benchmarks.game_diagnosis --config benchmark --out /tmp/diag [--set ...]
        [--probe_every 50] [--fresh_steps 300] [--probe_batches 40]

Trains like the main job (same phases, same config) up to the end of the adversarial phase.
Before the first adversarial step, every `probe_every` steps and after the last, it probes:
- the per-attribute AP of the game's own privacy models on f_d's output (held-out test clips);
- the per-attribute AP of a fresh privacy model (the ensemble's first architecture) trained
  for `fresh_steps` steps on f_d's output at that moment, from its own data stream (the game's
  streams are not touched, so the run is the one the main job would train);
- the gradient norms at f_d's weights of the utility term L_T and of gamma * L_adv on one batch,
  and the cosine between them;
- f_d's output on four test frames.
Writes diagnosis.json and diagnosis.png (APs over steps, gradient norms, frames) into --out
and prints one line per probe. The gap between the game's attackers and the fresh one is what
the game has learnt to fool rather than to remove.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from tfprivacy import runtime
from tfprivacy.data.records import PRIVACY_ATTRIBUTES
from tfprivacy.train.callbacks import TrainerCallback

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
runtime.define_config_flags(FLAGS)
flags.DEFINE_string(
    "out", None, "Folder for the run, diagnosis.json and diagnosis.png.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "probe_every", 50, "Adversarial steps between probes.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_integer(
    "fresh_steps", 300, "Training steps of each fresh attacker.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_integer(
    "probe_batches", 40, "Test batches the APs are measured on.", lower_bound=1, flag_values=FLAGS
)
flags.mark_flag_as_required("out", flag_values=FLAGS)


class Diagnosis(TrainerCallback):
    """Probes around the adversarial phase, as a Trainer callback (`diagnosed_trainer` attaches
    one): before adversarial steps 0, probe_every, 2 * probe_every, ... and once the phase's
    last step has run (recorded as step trainer.adversarial_steps). `records` holds one dict
    per probe. TensorFlow is imported where it is used, so the module imports without it."""

    def __init__(self, probe_every: int, fresh_steps: int, probe_batches: int):
        self.probe_every = probe_every
        self.fresh_steps = fresh_steps
        self.probe_batches = probe_batches
        self.records: list[dict] = []

    # ---- hooks ---------------------------------------------------------------------------
    def on_train_begin(self, trainer) -> None:
        """Held-out test clips for the APs, and the fresh attackers' own training stream."""
        from tfprivacy.data import pipeline
        from tfprivacy.train.streams import privacy_part

        cfg = trainer.cfg
        bs = cfg.data.batch_size
        idx = trainer.streams.frame_idx
        test = pipeline.video_dataset(trainer.sources.action.test, cfg.data, False, batch_size=bs)
        clips, actions, frames = pipeline.materialize(test, max_batches=self.probe_batches)
        inputs, labels = privacy_part(clips, frames, idx)
        self.test_inputs, self.test_labels = inputs.numpy(), labels.numpy()
        self.test_frames = clips[:4, 0]
        train = pipeline.video_dataset(trainer.streams.action_train, cfg.data, True, seed=991)
        self.probe_iter = iter(
            train.map(lambda c, a, f: ((c, a), privacy_part(c, f, idx))).repeat()
        )

    def on_adversarial_step_begin(self, trainer, step: int) -> None:
        if step % self.probe_every == 0:
            self.probe(trainer, step)

    def on_phase_end(self, trainer, name: str) -> None:
        if name == "adversarial":
            self.probe(trainer, trainer.cfg.trainer.adversarial_steps)

    # ---- probes --------------------------------------------------------------------------
    def _aps(self, trainer, models) -> list[list[float]]:
        import numpy as np
        import tensorflow as tf

        from tfprivacy.metrics import average_precision
        from tfprivacy.models import degrade_clips

        degrader = trainer.players.degrader
        degrade = tf.function(lambda x: degrade_clips(degrader, x, False))
        scores = [[] for _ in models]
        for i in range(0, len(self.test_inputs), 32):
            x = degrade(tf.constant(self.test_inputs[i : i + 32]))
            for j, m in enumerate(models):
                scores[j].append(m(x, training=False).numpy())
        return [average_precision(self.test_labels, np.concatenate(s)).tolist() for s in scores]

    def _fresh_attacker(self, trainer, step: int):
        import keras
        import tensorflow as tf

        from tfprivacy import losses
        from tfprivacy.models import degrade_clips

        keras.utils.set_random_seed(trainer.cfg.trainer.seed * 31 + step)
        with trainer.strategy.scope():
            model = trainer.players.new_privacy_model(0)
            opt = keras.optimizers.Adam(trainer.cfg.trainer.privacy_lr)
        degrader = trainer.players.degrader

        @tf.function
        def train_step(inputs, labels):
            degraded = degrade_clips(degrader, inputs, training=False)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(losses.privacy_loss(labels, model(degraded, training=True)))
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

        for _ in range(self.fresh_steps):
            _, (inputs, labels) = next(self.probe_iter)
            train_step(inputs, labels)
        return model

    def _grad_norms(self, trainer) -> dict:
        import tensorflow as tf

        from tfprivacy import losses
        from tfprivacy.models import degrade_clips

        (clips, actions), (_, labels) = next(self.probe_iter)
        s, players = trainer.steps, trainer.players
        variables = players.degrader.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            degraded = degrade_clips(players.degrader, clips, training=True)
            task = tf.reduce_mean(
                losses.target_loss(actions, players.target(degraded, training=False))
            )
            p_in = tf.gather(degraded, trainer.streams.frame_idx, axis=1)
            logits = [m(p_in, training=False) for m in players.privacy]
            adv = s.gamma * tf.reduce_mean(s.game_strategy.degrader_term(labels, logits))
        g_task = tape.gradient(task, variables)
        g_adv = tape.gradient(adv, variables)
        flat_t = tf.concat([tf.reshape(g, [-1]) for g in g_task if g is not None], 0)
        flat_a = tf.concat([tf.reshape(g, [-1]) for g in g_adv if g is not None], 0)
        nt, na = float(tf.norm(flat_t)), float(tf.norm(flat_a))
        cos = float(tf.reduce_sum(flat_t * flat_a)) / max(nt * na, 1e-12)
        return {"task": nt, "adv": na, "cosine": cos}

    def probe(self, trainer, step: int) -> None:
        import numpy as np

        game = self._aps(trainer, trainer.players.privacy)
        fresh = self._aps(trainer, [self._fresh_attacker(trainer, step)])[0]
        frames = trainer.validator.degraded_clips(self.test_frames[:, None])[:, 0]
        rec = {
            "step": step,
            "game_ap": game,
            "fresh_ap": fresh,
            "grad_norm": self._grad_norms(trainer),
            "action_top1_val": trainer.validator.action_accuracy(degrade=True),
        }
        self.records.append({**rec, "frames": frames})
        worst_game = max(float(np.mean(a)) for a in game)
        print(
            f"[diag] step {step}: game attackers cMAP {100 * worst_game:.1f}, fresh "
            f"{100 * float(np.mean(fresh)):.1f}; |grad L_T| {rec['grad_norm']['task']:.2e} "
            f"|grad gamma L_adv| {rec['grad_norm']['adv']:.2e} "
            f"cos {rec['grad_norm']['cosine']:+.2f}; val action {rec['action_top1_val']:.3f}",
            flush=True,
        )


def diagnosed_trainer(cfg, probe_every: int, fresh_steps: int, probe_batches: int):
    """(trainer, diagnosis): a Trainer of `cfg` with a Diagnosis among its callbacks
    (imported lazily: TF). `trainer.train()` runs the game and fills `diagnosis.records`."""
    from tfprivacy.train.loop import Trainer

    diagnosis = Diagnosis(probe_every, fresh_steps, probe_batches)
    return Trainer(cfg, callbacks=[diagnosis]), diagnosis


def plot(records: list, attributes, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = [r["step"] for r in records]
    fig = plt.figure(figsize=(13, 7.5))
    ax = fig.add_subplot(2, 2, 1)
    for k, attr in enumerate(attributes):
        game = [max(a[k] for a in r["game_ap"]) for r in records]
        fresh = [r["fresh_ap"][k] for r in records]
        (line,) = ax.plot(steps, fresh, "-o", ms=3, label=f"{attr} fresh")
        ax.plot(steps, game, "--", color=line.get_color(), label=f"{attr} game")
    ax.set_xlabel("adversarial step")
    ax.set_ylabel("AP on f_d's output (test clips)")
    ax.set_title("game's own attackers (dashed) vs a fresh attacker (solid)")
    ax.legend(fontsize=7, ncol=2)
    ax = fig.add_subplot(2, 2, 2)
    ax.semilogy(steps, [r["grad_norm"]["task"] for r in records], "-o", label="|grad L_T|")
    ax.semilogy(steps, [r["grad_norm"]["adv"] for r in records], "-o", label="|grad gamma L_adv|")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["grad_norm"]["cosine"] for r in records], "k:", label="cosine")
    ax2.set_ylabel("cosine")
    ax.set_xlabel("adversarial step")
    ax.set_title("gradient norms at f_d's weights")
    ax.legend(fontsize=8, loc="upper left")
    ax = fig.add_subplot(2, 1, 2)
    rows = [np.concatenate(list(r["frames"]), axis=1) for r in records]
    pick = [0, len(rows) // 2, len(rows) - 1] if len(rows) > 2 else list(range(len(rows)))
    ax.imshow(np.clip(np.concatenate([rows[i] for i in pick], axis=0), 0, 1))
    ax.set_yticks([(i + 0.5) * rows[0].shape[0] for i in range(len(pick))])
    ax.set_yticklabels([f"step {steps[i]}" for i in pick])
    ax.set_xticks([])
    ax.set_title("f_d's output on four test frames")
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv):
    del argv
    runtime.import_tensorflow()
    from tfprivacy import config as C
    from tfprivacy.experiments import get_config

    try:
        cfg = get_config(FLAGS.config, list(FLAGS.set) + [f"trainer.run_dir={FLAGS.out}"])
    except C.ConfigError as err:
        raise app.UsageError(str(err)) from None
    runtime.quiet_logs()
    attributes = PRIVACY_ATTRIBUTES
    trainer, diagnosis = diagnosed_trainer(
        cfg, FLAGS.probe_every, FLAGS.fresh_steps, FLAGS.probe_batches
    )
    trainer.train()
    records = [{k: v for k, v in r.items() if k != "frames"} for r in diagnosis.records]
    out = {
        "config": FLAGS.config,
        "overrides": list(FLAGS.set),
        "attributes": list(attributes),
        "fresh_steps": FLAGS.fresh_steps,
        "probes": records,
    }
    with open(os.path.join(FLAGS.out, "diagnosis.json"), "w") as f:
        json.dump(out, f, indent=2)
    title = f"{FLAGS.config} {' '.join(FLAGS.set)}".strip()
    plot(diagnosis.records, attributes, os.path.join(FLAGS.out, "diagnosis.png"), title)
    print(f"wrote {FLAGS.out}/diagnosis.json and diagnosis.png")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
