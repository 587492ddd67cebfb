"""Installs tfprivacy with its pinned stack (measured to install together on Python 3.11)."""

import pathlib

from setuptools import find_packages, setup

version = {}
exec(pathlib.Path("tfprivacy/version.py").read_text(), version)

INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "numpy>=1.26,<3",
    "absl-py>=1.4",
    "av==18.1.0",
    "matplotlib>=3.8",
    "scikit-learn>=1.4",
    "tqdm>=4.66",
    "tensorboard==2.21.0",
    "tensorflow-serving-api==2.21.0",
    "grpcio>=1.60",
    "ai-edge-litert==2.3.0",
    "tensorflow-model-optimization==0.8.1",
    "tf-keras==2.21.0",
    # Imported directly, not only through the packages above: declared so that a change in
    # what those pull in cannot remove them. protobuf: google.protobuf.text_format in
    # serving.export/serving.versions (bound: what tensorflow 2.21 and tensorflow-serving-api
    # 2.21 require); pillow: the VISPR-style JPEGs of tfprivacy.data.synthetic --cross; scipy:
    # benchmarks.benchmark_properties (the first release built against numpy 2).
    "protobuf>=6.31.1,<8",
    "pillow>=10",
    "scipy>=1.13",
]

setup(
    name="tfprivacy",
    version=version["__version__"],
    description="Privacy-preserving video recognition with a learned degradation (TF/Keras).",
    python_requires=">=3.11",
    # The library and its entry points, all run as `python -m PACKAGE.MODULE` once installed.
    packages=find_packages(
        include=[
            pkg
            for top in ("tfprivacy", "trainers", "serving", "benchmarks", "configs")
            for pkg in (top, f"{top}.*")
        ]
    ),
    # The shipped degraders (tfprivacy/pretrained/<name>/: config, weights, evidence).
    package_data={"tfprivacy.pretrained": ["*/*.json", "*/*.h5", "*/*.md"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.6", "ruff>=0.6"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
    },
)
