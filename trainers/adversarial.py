"""Adversarial training of the degrader: `python -m trainers.adversarial [flags]`.

With no flags: the default pipeline on the built-in benchmark (generated on first use), then
the two-fold evaluation. Kill it at any point and run the same command again: it resumes.
"""

from absl import app, flags

from trainers import adversarial_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "benchmark", "Named experiment (configs/experiments.py).")
flags.DEFINE_multi_string("set", [], "Config override part.field=value (repeatable).")
flags.DEFINE_enum("strategy", None, ["grl", "kbeam", "entropy"], "Adversarial strategy.")
flags.DEFINE_integer("M", None, "Ensemble size: number of privacy models.")
flags.DEFINE_integer("R", None, "Restart the privacy models every R adversarial steps (0: never).")
flags.DEFINE_float("gamma", None, "Weight of the adversarial term.")
flags.DEFINE_integer("steps", None, "Adversarial steps.")
flags.DEFINE_string("run_dir", None, "Where checkpoints, summaries and reports go.")
flags.DEFINE_enum(
    "distribution", None, ["default", "mirrored", "multi_worker"], "tf.distribute strategy."
)
flags.DEFINE_bool("evaluate", True, "Run the two-fold evaluation after training.")


def main(argv):
    del argv
    cfg = adversarial_lib.resolve_config(
        FLAGS.config,
        FLAGS.set,
        strategy=FLAGS.strategy,
        num_models=FLAGS.M,
        restart_every=FLAGS.R,
        gamma=FLAGS.gamma,
        steps=FLAGS.steps,
        run_dir=FLAGS.run_dir,
        distribution=FLAGS.distribution,
    )
    adversarial_lib.run(cfg, evaluate=FLAGS.evaluate, deterministic_eval=True)


if __name__ == "__main__":
    app.run(main)
