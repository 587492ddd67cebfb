"""What a training run leaves in its run directory, and how other tools read it back.

Layout of a run dir:
  config.json            the resolved ExperimentConfig
  ckpt/                  tf.train.CheckpointManager: the whole game (all players, optimizers,
                         step and phase); used to resume
  degrader.weights.h5    the final degrader f_d (Keras weights), what evaluation and export read
  summary.json           training-time figures (validation accuracy / cMAP, raw vs degraded)
  tb/                    TensorBoard summaries
"""

from __future__ import annotations

import os

from tfprivacy import config as C

CONFIG_FILE = "config.json"
DEGRADER_WEIGHTS = "degrader.weights.h5"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "ckpt"
TENSORBOARD_DIR = "tb"


class RunDirError(FileNotFoundError):
    """A run directory without the files a tool needs; the message names the missing file."""


def save_degrader(run_dir: str, degrader, cfg: C.ExperimentConfig) -> str:
    """Writes config.json and degrader.weights.h5 (atomically) into run_dir."""
    os.makedirs(run_dir, exist_ok=True)
    C.save(cfg, os.path.join(run_dir, CONFIG_FILE))
    path = os.path.join(run_dir, DEGRADER_WEIGHTS)
    tmp = os.path.join(run_dir, "tmp." + DEGRADER_WEIGHTS)
    degrader.save_weights(tmp)
    os.replace(tmp, path)
    return path


def load_config(run_dir: str) -> C.ExperimentConfig:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise RunDirError(f"{path}: missing; is {run_dir!r} a tfprivacy run directory?")
    return C.load(path)


def load_degrader(run_dir: str, frame_size: int | None = None):
    """Rebuilds f_d from the run's config and loads its final weights.

    frame_size None builds a model with free spatial dims (any size divisible by 4);
    an int fixes them (TFLite export needs static shapes).
    Returns (keras.Model, ExperimentConfig).
    """
    from tfprivacy.models import build_degrader

    cfg = load_config(run_dir)
    weights = os.path.join(run_dir, DEGRADER_WEIGHTS)
    if not os.path.exists(weights):
        raise RunDirError(f"{weights}: missing; did training finish?")
    model = build_degrader(cfg.model, frame_size=frame_size)
    model.load_weights(weights)
    return model, cfg
