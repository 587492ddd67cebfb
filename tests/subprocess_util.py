"""Helpers shared by the tests that run the trainer as separate processes."""

import os
import subprocess
import sys

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_weights(path: str) -> dict:
    """Every dataset of a Keras .weights.h5 file, by its path inside the file."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path) as f:
        f.visititems(visit)
    return out


def trainer_command(run_dir: str, *flags: str) -> list[str]:
    """`python -m trainers.adversarial` on the tiny benchmark, training only, plus `flags`."""
    return [
        sys.executable,
        "-m",
        "trainers.adversarial",
        "--config=benchmark_tiny",
        f"--run_dir={run_dir}",
        "--evaluate=false",
        *flags,
    ]


def run_python(*args: str, env=None, timeout: int = 180) -> subprocess.CompletedProcess:
    """`python ARGS` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
