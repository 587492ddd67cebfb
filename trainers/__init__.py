# First, before anything imports TensorFlow: the package switches oneDNN on (tfprivacy/__init__).
import tfprivacy  # noqa: F401
