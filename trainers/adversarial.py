"""Adversarial training of the degrader: `python -m trainers.adversarial [flags]`.

With no flags: the default pipeline on the built-in benchmark (generated on first use), then
the two-fold evaluation. Kill it at any point and run the same command again: it resumes.
"""

import sys

from absl import app, flags

from tfprivacy import config as C
from tfprivacy import runtime
from tfprivacy.data.records import DataError
from trainers import adversarial_lib

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
runtime.define_config_flags(FLAGS)
flags.DEFINE_enum("strategy", None, list(C.STRATEGIES), "Adversarial strategy.", flag_values=FLAGS)
flags.DEFINE_float("gamma", None, "Weight of the adversarial term.", flag_values=FLAGS)
for _name, _help in (
    ("M", "Ensemble size: number of privacy models."),
    ("R", "Restart the privacy models every R adversarial steps (0: never)."),
    ("steps", "Adversarial steps (trainer.adversarial_steps)."),
    ("identity_steps", "Identity pretraining steps of f_d."),
    ("pretrain_target_steps", "Pretraining steps of f_T on f_d's output."),
    ("pretrain_privacy_steps", "Pretraining steps of the f_b ensemble."),
    ("attack_steps", "Steps of the fresh f_b trained on the final f_d."),
):
    flags.DEFINE_integer(_name, None, _help, flag_values=FLAGS)
flags.DEFINE_string(
    "run_dir", None, "Where checkpoints, summaries and reports go.", flag_values=FLAGS
)
flags.DEFINE_enum(
    "distribution", None, list(C.DISTRIBUTIONS), "tf.distribute strategy.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "evaluate", True, "Run the two-fold evaluation after training.", flag_values=FLAGS
)
# Shortcut (adversarial_lib.SHORTCUTS key) -> its flag, where the paper's letters name it.
_FLAG_OF = {"num_models": "M", "restart_every": "R"}


def main(argv):
    """Trains (and evaluates) the run the flags name. argv: the program name alone (run_cli)."""
    del argv
    try:
        shortcuts = {k: FLAGS[_FLAG_OF.get(k, k)].value for k in adversarial_lib.SHORTCUTS}
        cfg = adversarial_lib.resolve_config(FLAGS.config, FLAGS.set, **shortcuts)
    except C.ConfigError as err:  # a bad value or name: no traceback, no work
        raise app.UsageError(str(err)) from None
    try:
        adversarial_lib.run(cfg, evaluate=FLAGS.evaluate, deterministic_eval=True)
    except DataError as err:  # the message lists every problem and what to do; no traceback
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
