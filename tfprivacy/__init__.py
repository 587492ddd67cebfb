"""tfprivacy: adversarially learned privacy-preserving degradation for video recognition.

Importing the package switches TensorFlow's oneDNN kernels on (TF_ENABLE_ONEDNN_OPTS=1) unless
the user has set that variable. TensorFlow turns them on by itself only on CPUs with AVX-512
VNNI/BF16 or AMX; on an AVX2 CPU its own kernels ran the evaluation's 3-D target 20x slower
(docs/design.md, "Speed on every CPU"). TF reads the variable once, when it loads, so every
entry point (trainers, serving, benchmarks, tests' conftest) imports this package before
TensorFlow; `tfprivacy.runtime.onednn_status()` says whether it took effect.
"""

import os as _os

_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from tfprivacy.version import __version__  # noqa: E402

__all__ = ["__version__"]
