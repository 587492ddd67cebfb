"""`python -m tfprivacy.pretrained --run RUN_DIR --name NAME [--out DIR]`: ship a finished
run's f_d (into tfprivacy/pretrained/NAME of a source checkout, or DIR/NAME)."""

import sys

from absl import flags

from tfprivacy import pretrained, runtime

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "run", None, "finished training run directory", required=True, flag_values=FLAGS
)
flags.DEFINE_string(
    "name",
    None,
    "name to ship it under (tfprivacy/pretrained/NAME, or --out/NAME)",
    required=True,
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "out",
    None,
    "folder to write NAME/ into; default: tfprivacy/pretrained of this source checkout (an "
    "installed tfprivacy's package folder is never written to: give --out there)",
    flag_values=FLAGS,
)


def main(argv):
    """Copies --run's f_d and evidence into the checkout's tfprivacy/pretrained (or --out);
    prints the folder written. argv: the program name alone (run_cli)."""
    del argv
    try:
        print(pretrained.ship(FLAGS.run, FLAGS.name, root=FLAGS.out))
    except (ValueError, OSError) as err:  # a bad name, an unfinished run: a message, no trace
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)  # copying files needs no TensorFlow
