"""Process start-up for the command lines: TensorFlow imported without its CPU-only chatter.

On a machine without an NVIDIA device, importing the CUDA build of TensorFlow prints a dozen
C++ lines before anything of ours ("Could not find cuda drivers", "failed call to cuInit:
UNKNOWN ERROR (303)", oneDNN and CPU-feature notes), written before absl's logging is set up,
so TF_CPP_MIN_LOG_LEVEL does not silence them. `import_tensorflow()` captures stderr while TF
loads and initialises its devices, and passes on every line except those known notes. With an
NVIDIA device (or TFPRIVACY_TF_VERBOSE=1) nothing is captured: the GPU build still reports its
devices.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile

# The start-up notes of a CUDA build of TF on a CPU-only machine (not errors of a run).
_CHATTER = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"cudart_stub\.cc|Could not find cuda drivers|cpu_feature_guard\.cc|"
    r"To enable the following instructions|failed call to cuInit|cuda_platform\.cc|"
    r"computation placer already registered|Unable to register cu(DNN|FFT|BLAS) factory"
)


def has_nvidia_device() -> bool:
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def import_tensorflow():
    """Imports TensorFlow (and lists its devices) with the CPU-only start-up notes dropped;
    returns the module."""
    if has_nvidia_device() or os.environ.get("TFPRIVACY_TF_VERBOSE") == "1":
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device initialisation logs the cuInit line
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines()
                if line.strip() and not _CHATTER.search(line)
            ]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
    return tf


def quiet_logs() -> None:
    """Progress bars and summaries are the output; TF's and absl's INFO chatter is not."""
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
