"""What the evaluation keeps between runs: baseline results (JSON) and raw-trained weights.

Baseline results depend only on the data, the eval protocol and the seed. A learned f_d is
evaluated afresh every time, but raw / down4 / blur2 give the same numbers for the same data
and seed, so the sweep is paid once per dataset. The key hashes the data config, the eval
fields that change results, the seed, the baseline name and PROTOCOL_VERSION (bumped whenever
the protocol code changes what it measures).

`PretrainedWeights` keeps the "_ft" attackers' raw-trained weights, in memory and under
<cache_dir>/pretrained, keyed the same way (`pretrained_key`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING

from tfprivacy import config as C

if TYPE_CHECKING:
    import keras

PROTOCOL_VERSION = 5  # bump when model builders or the protocol change results

# PA-HMDB51 label semantics: 2 = frames no interval covers are unknown (-1), not absent. Keyed
# only for datasets that carry PA-HMDB51 annotations from outside (the built-in benchmark
# covers every frame, so its figures and cache keys did not change).
LABELS_VERSION = 2
_REAL_PAHMDB51 = ("hmdb51_pahmdb51",)

# EvalConfig fields that only choose what to run or where to store it, not what a run measures.
_NOT_IN_KEY = ("seeds", "baselines", "cache_dir")


def cache_key(data_cfg: C.DataConfig, eval_cfg: C.EvalConfig, seed: int, baseline: str) -> str:
    eval_fields = {k: v for k, v in dataclasses.asdict(eval_cfg).items() if k not in _NOT_IN_KEY}
    payload = {
        "data": C.key_dict(data_cfg),  # new fields at their defaults change no key
        "eval": eval_fields,
        "seed": int(seed),
        "baseline": baseline,
        "protocol": PROTOCOL_VERSION,
    }
    if data_cfg.dataset in _REAL_PAHMDB51:
        payload["labels"] = LABELS_VERSION
    return C.fingerprint(payload)


def default_cache_dir(cfg: C.ExperimentConfig) -> str:
    """cfg.eval.cache_dir, else <data root>/eval_cache, else ~/.cache/tfprivacy/eval_cache."""
    if cfg.eval.cache_dir:
        return cfg.eval.cache_dir
    root = cfg.data.data_dir
    if not root and cfg.data.dataset.startswith("benchmark"):
        from tfprivacy.data import synthetic

        root = synthetic.benchmark_root(
            cfg.data.synthetic, cross=cfg.data.dataset == "benchmark_cross"
        )
    if root and os.access(root, os.W_OK):
        return os.path.join(root, "eval_cache")
    # Real datasets often sit on read-only storage: keep the cache with the user's.
    base = os.environ.get("TFPRIVACY_DATA") or os.path.expanduser("~/.cache/tfprivacy")
    return os.path.join(base, "eval_cache")


def _path(cache_dir: str, baseline: str, key: str) -> str:
    return os.path.join(cache_dir, f"{baseline}-{key}.json")


def load(cache_dir: str, baseline: str, key: str) -> dict | None:
    """The cached per-seed result, or None when absent or unreadable (then recomputed)."""
    path = _path(cache_dir, baseline, key)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            entry = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    if entry.get("key") != key:
        return None
    return entry["result"]


def store(cache_dir: str, baseline: str, key: str, result: dict) -> str:
    """Writes atomically so a killed run never leaves a half-written entry."""
    os.makedirs(cache_dir, exist_ok=True)
    path = _path(cache_dir, baseline, key)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"key": key, "baseline": baseline, "result": result}, f, indent=1)
    os.replace(tmp, path)
    return path


def pretrained_key(cfg: C.ExperimentConfig, seed: int, arch: str) -> str:
    """The key of `arch`'s raw-trained weights for this data, eval config and seed."""
    return f"{arch}-" + cache_key(cfg.data, cfg.eval, seed, f"pretrained-{arch}")


class PretrainedWeights:
    """Raw-trained attacker weights per (data, eval config, seed, arch): memory, then disk.

    Trained once on raw frames and reused for every degrader of every evaluation with that
    key; on disk under <cache_dir>/pretrained when a cache dir is given.
    """

    _memory: dict[str, list] = {}

    def __init__(self, cache_dir: str | None = None):
        self.cache_dir = cache_dir

    def _path(self, key: str) -> str | None:
        if not self.cache_dir:
            return None
        return os.path.join(self.cache_dir, "pretrained", f"{key}.weights.h5")

    def get(self, key: str, model: keras.Model) -> bool:
        if key in self._memory:
            model.set_weights(self._memory[key])
            return True
        path = self._path(key)
        if path and os.path.exists(path):
            try:
                model.load_weights(path)
            except (OSError, ValueError):
                return False  # unreadable or stale: retrain
            self._memory[key] = model.get_weights()
            return True
        return False

    def put(self, key: str, model: keras.Model) -> None:
        self._memory[key] = model.get_weights()
        path = self._path(key)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
            model.save_weights(tmp)
            os.replace(tmp, path)
