"""`python -m tfprivacy.pretrained --run RUN_DIR --name NAME`: ship a finished run's f_d."""

from absl import app, flags

from tfprivacy import pretrained

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "finished training run directory", required=True)
flags.DEFINE_string(
    "name", None, "name to ship it under (tfprivacy/pretrained/NAME)", required=True
)


def main(argv):
    del argv
    print(pretrained.ship(FLAGS.run, FLAGS.name))


if __name__ == "__main__":
    app.run(main)
