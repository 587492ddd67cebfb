"""Test-session set-up: quiet TF logs, and the built-in benchmark cached in one temp dir.

Tests that need benchmark data share one tiny generated copy (keyed by its config), never the
user's ~/.cache.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As every entry point does (tfprivacy/__init__): oneDNN on before any test imports TF.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if "TFPRIVACY_DATA" not in os.environ or not os.environ.get("TFPRIVACY_KEEP_DATA"):
    os.environ["TFPRIVACY_DATA"] = tempfile.mkdtemp(prefix="tfprivacy-test-data-")
