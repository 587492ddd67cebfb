"""Two-fold evaluation: `python -m trainers.evaluate --run RUN_DIR [--baselines all] [--seeds N]`.

Freezes the run's f_d, trains fresh target and privacy models on its output and on hand-made
baselines, and writes report.json, report.md, tradeoff.png and frames.png into the run dir.
Without a trained f_d in --run, give --config (and --set) for a baselines-only report.

SIGTERM stops it with one line on stderr and status 143; baseline seeds already finished are
in the eval cache, so the same command resumes from them.
"""

from absl import app, flags

from tfprivacy import config as C
from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter
from tfprivacy.eval import cache, evaluate_lib, protocol  # noqa: E402

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "run",
    None,
    "Run directory of a training run, or where a baselines-only report goes.",
    required=True,
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "baselines",
    None,
    "Comma-separated baselines, 'all' for the full sweep, "
    "'' for none; default: the config's eval.baselines.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "seeds",
    None,
    "Seeds of the fresh models (mean and std); default eval.seeds.",
    flag_values=FLAGS,
)
runtime.define_config_flags(
    FLAGS,
    config_default=None,
    config_help="Named experiment, used when --run has no config.json.",
    set_help="Config override part.field=value (repeatable), e.g. eval.target_epochs=10.",
)
flags.DEFINE_bool("progress", True, "Progress bars and timing lines.", flag_values=FLAGS)
flags.DEFINE_bool("cache", True, "Reuse cached baseline results.", flag_values=FLAGS)


def main(argv):
    """Evaluates --run (see the module doc). argv: the program name alone (run_cli)."""
    del argv
    try:
        cfg = evaluate_lib.resolve_config(FLAGS.run, FLAGS.config, FLAGS.set)
    except C.ConfigError as err:  # a bad value or name: no traceback, no work
        raise app.UsageError(str(err)) from None
    protocol.enable_determinism()  # the same seed gives the same figures whatever the load
    if FLAGS.cache:
        kept = (
            f"baseline seeds finished so far are cached in {cache.default_cache_dir(cfg)}: "
            "the same command resumes from them"
        )
    else:
        kept = "nothing was cached (--nocache)"
    evaluate_lib.exit_on_sigterm(f"trainers.evaluate: stopped by SIGTERM; {kept}")
    evaluate_lib.run_evaluation(
        FLAGS.run,
        baselines=FLAGS.baselines,
        seeds=FLAGS.seeds,
        progress=FLAGS.progress,
        cfg=cfg,
        use_cache=FLAGS.cache,
    )


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
