"""Evaluation of a run: the learned f_d and hand-made baselines under one protocol, one report.

`run_evaluation` is what `python -m trainers.evaluate` and the main job's last phase call.
The splits are decoded and sampled once and shared by every degrader; baseline results come
from a cache keyed by the data config, the eval config, the seed and the baseline name.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfprivacy import config as C
from tfprivacy import metrics
from tfprivacy.data import pipeline
from tfprivacy.eval import baselines as B
from tfprivacy.eval import cache, intervals, protocol, report
from tfprivacy.eval import splits as splits_lib
from tfprivacy.version import __version__

LEARNED = "learned"
# frames.png shows raw, the learned f_d and two baselines; these stand in when the evaluated
# list has fewer than two non-raw baselines.
_FRAME_BASELINES = ("down4", "blur2")
_FRAME_SAMPLES = 4


def keras_degrade_fn(model) -> splits_lib.DegradeFn:
    """Wraps a Keras f_d as a frames -> frames function run in inference mode."""

    @tf.function(reduce_retracing=True)
    def fn(frames):
        return tf.cast(model(frames, training=False), tf.float32)

    return fn


class BaselineSeedCache:
    """protocol.evaluate_degrader's seed cache for one baseline, stored as JSON files."""

    def __init__(self, cache_dir: str, cfg: C.ExperimentConfig, baseline: str):
        self.cache_dir, self.cfg, self.baseline = cache_dir, cfg, baseline

    def key(self, seed: int) -> str:
        return cache.cache_key(self.cfg.data, self.cfg.eval, seed, self.baseline)

    def get(self, seed: int) -> dict | None:
        return cache.load(self.cache_dir, self.baseline, self.key(seed))

    def put(self, seed: int, result: dict) -> None:
        cache.store(self.cache_dir, self.baseline, self.key(seed), result)


def _frame_columns(splits, fns: dict) -> dict[str, np.ndarray]:
    """The middle frame of the first few test clips, raw and under each named degrader."""
    clips = splits.action_test[0][:_FRAME_SAMPLES]
    raw = clips[:, clips.shape[1] // 2]
    return {name: splits_lib.degrade_array(fn, raw) for name, fn in fns.items()}


def headline(r: dict) -> str:
    """One line: action top-1, worst-case cMAP and the feature probe, with their intervals."""
    fmt = report._fmt  # "mean [lo, hi]", the format of report.md
    text = (
        f"action top-1 {fmt(r['action_top1'])}, worst-case cMAP {fmt(r['worst_case']['cmap'])}"
        f" ({'/'.join(sorted(set(r['worst_case']['models'])))})"
    )
    if "feature_probe" in r:
        text += f", feature probe cMAP {fmt(r['feature_probe']['cmap'])}"
    return text


def compare(results: dict, confidence: float) -> list[dict]:
    """Paired bootstrap comparisons: the learned f_d (or raw) against every other degrader.

    Differences are other - reference on the same test draws and seeds; "verdict" says whether
    the other degrader dominates the reference beyond the intervals (intervals.dominance).
    """
    reference = LEARNED if LEARNED in results else "raw" if "raw" in results else None
    if reference is None or "replicates" not in results[reference]:
        return []
    ref = results[reference]["replicates"]
    out = []
    for name, r in results.items():
        if name == reference or "replicates" not in r:
            continue
        if len(r["replicates"]["action"]) != len(ref["action"]):
            continue
        d = intervals.dominance(ref, r["replicates"], confidence)
        out.append({"reference": reference, "other": name, **d})
    return out


def evaluation_problems(results: dict, chance: dict) -> dict[str, list[str]]:
    """Why figures of this evaluation cannot be trusted, by degrader ("ruler": the fresh models
    on raw data); {} when nothing applies. A degrader listed here wins no comparison."""
    out = {}
    raw = results.get("raw")
    if raw:
        figures = {
            "action_top1": raw["action_top1"]["mean"],
            "privacy_cmap_worst": raw["worst_case"]["cmap"]["mean"],
        }
        level = {"action_top1": chance["action_top1"], "privacy_cmap_worst": chance["cmap"]}
        if problems := metrics.health_problems(figures, level, None):
            out["ruler"] = problems
    for name, r in results.items():
        if problems := metrics.health_problems(None, None, r.get("fidelity")):
            out[name] = problems
    return out


def exit_on_sigterm(message: str) -> None:
    """Makes SIGTERM a clean exit: `message` as one line on stderr, then status 143 (128 + 15).

    Python's default is to die at once without a word, which leaves whoever stopped the
    evaluation (a scheduler, `timeout`, `kill`) guessing what survived. Raised as SystemExit
    in the main thread, so with-blocks and finally-blocks unwind as usual (a cached seed is
    written atomically: whole or not at all); a second SIGTERM kills at once.
    For entry points (signal handlers can only be set from the main thread).
    """

    def handler(signum, frame):
        del frame
        signal.signal(signum, signal.SIG_DFL)
        sys.stdout.flush()  # what was printed before it comes first
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def resolve_config(run_dir: str, name: str | None, overrides: Sequence[str]) -> C.ExperimentConfig:
    """The run's config.json plus overrides; or a named experiment for a baselines-only report."""
    from tfprivacy import artifacts, experiments

    if os.path.exists(os.path.join(run_dir, artifacts.CONFIG_FILE)):
        if name:
            raise C.ConfigError(f"--config {name!r}: {run_dir} already has its own config.json")
        return C.apply_overrides(artifacts.load_config(run_dir), list(overrides))
    if not name:
        raise C.ConfigError(
            f"{run_dir} has no {artifacts.CONFIG_FILE}: give --config NAME for a baselines-only "
            f"report (known: {', '.join(experiments.list_experiments())})"
        )
    return experiments.get_config(name, list(overrides))


FINAL_TEST_DIR = "final_test"


def report_dir(run_dir: str, cfg: C.ExperimentConfig) -> str:
    """Where the report goes: the run dir, or its final_test/ folder for the final test set
    (so the test split's report is never overwritten by it)."""
    return os.path.join(run_dir, FINAL_TEST_DIR) if cfg.eval.test_set == "final" else run_dir


def final_test_sources(sources, cfg: C.ExperimentConfig):
    """`sources` with the built-in benchmark's final test set as its test split (training
    side unchanged: the fresh models still train on the training split)."""
    import dataclasses

    from tfprivacy.data.sources import DatasetSources, final_test_records

    if not sources.joint:
        raise C.ConfigError("eval.test_set=final: the final test set is the joint benchmark's")
    split = dataclasses.replace(sources.action, test=final_test_records(cfg.data))
    return DatasetSources.of(split, videos=split, validation=sources.validation)


def run_evaluation(
    run_dir: str,
    baselines: str | Sequence[str] | None = None,
    seeds: int | None = None,
    progress: bool = True,
    cfg: C.ExperimentConfig | None = None,
    *,
    sources=None,
    use_cache: bool = True,
) -> dict:
    """Evaluates run_dir's f_d (when it has one) and `baselines`; writes the report there.

    baselines: names, a comma string, "all", or None for cfg.eval.baselines. seeds: how many
    fresh-model seeds (None: cfg.eval.seeds). cfg: None reads run_dir/config.json; a config
    without a degrader in run_dir gives a baselines-only report. sources: a DatasetSources to
    reuse (the trainer passes its own), else built from cfg.data. Returns the report dict.
    """
    from tfprivacy import artifacts

    start = time.perf_counter()
    say = print if progress else (lambda *a, **k: None)
    if cfg is None:
        cfg = artifacts.load_config(run_dir)
    names = B.resolve_baselines(cfg.eval.baselines if baselines is None else baselines)
    num_seeds = cfg.eval.seeds if seeds is None else int(seeds)
    seed_list = protocol.resolve_seeds(num_seeds)
    fns = _degraders(run_dir, names)

    t0 = time.perf_counter()
    sources = _evaluation_sources(run_dir, cfg, sources, say)
    splits = splits_lib.materialize_splits(sources, cfg)
    materialize_s = time.perf_counter() - t0
    say(f"[eval] materialised splits {splits.sizes()} in {materialize_s:.1f}s")

    cache_dir = cache.default_cache_dir(cfg) if use_cache else None
    results = _evaluate_degraders(fns, splits, cfg, seed_list, cache_dir, progress, say)
    timing: dict[str, float] = {"materialize_s": materialize_s}
    timing.update({f"{name}_s": r["timing"]["total_s"] for name, r in results.items()})
    frames = _frame_columns(splits, _frame_fns(names, fns))
    comparisons, problems = _verdicts(results, splits, cfg.eval.confidence, say)
    for r in results.values():
        r.pop("replicates", None)
    timing["total_s"] = time.perf_counter() - start
    out = _report(run_dir, cfg, seed_list, splits, cache_dir, results, comparisons, problems)
    out["timing"] = timing
    out["test_set"] = cfg.eval.test_set
    _write(out, report_dir(run_dir, cfg), frames, say)
    return out


def _degraders(run_dir: str, names: Sequence[str]) -> dict[str, splits_lib.DegradeFn]:
    """The degraders to evaluate, in report order: run_dir's f_d (LEARNED) when it has
    one, then the named baselines."""
    from tfprivacy import artifacts

    fns: dict[str, splits_lib.DegradeFn] = {}
    if os.path.exists(os.path.join(run_dir, artifacts.DEGRADER_WEIGHTS)):
        degrader, _ = artifacts.load_degrader(run_dir)
        fns[LEARNED] = keras_degrade_fn(degrader)
    elif not names:
        raise artifacts.RunDirError(
            f"{run_dir}: no {artifacts.DEGRADER_WEIGHTS} and no baselines: nothing to evaluate"
        )
    for name in names:
        fns[name] = B.get_baseline(name)
    return fns


def _evaluation_sources(run_dir: str, cfg: C.ExperimentConfig, sources, say):
    """`sources`, else built from cfg.data; with the final test set as the test split when
    cfg.eval.test_set is "final"."""
    if sources is None:
        from tfprivacy.data.sources import build_sources

        sources = build_sources(cfg.data)
    if cfg.eval.test_set == "final":
        sources = final_test_sources(sources, cfg)
        say(
            f"[eval] final test set: {len(sources.action.test)} videos (generator seed "
            f"{cfg.data.synthetic.final_test_seed}); report in {report_dir(run_dir, cfg)}"
        )
    return sources


def _evaluate_degraders(
    fns: dict[str, splits_lib.DegradeFn],
    splits: splits_lib.EvalSplits,
    cfg: C.ExperimentConfig,
    seed_list: list[int],
    cache_dir: str | None,
    progress: bool,
    say,
) -> dict[str, dict]:
    """protocol.evaluate_degrader for each degrader on the shared splits: name -> result.

    Baselines' seeds come from (and go to) the cache when there is a cache_dir; the learned
    f_d is evaluated afresh. The "_ft" attackers' raw pretraining is shared by all of them.
    """
    pretrained = cache.PretrainedWeights(cache_dir)
    results = {}
    for name, fn in fns.items():
        kind = "learned" if name == LEARNED else "baseline"
        seed_cache = (
            BaselineSeedCache(cache_dir, cfg, name) if kind == "baseline" and cache_dir else None
        )
        r = protocol.evaluate_degrader(
            fn,
            splits,
            cfg,
            seed_list,
            name=name,
            progress=progress,
            seed_cache=seed_cache,
            pretrained=pretrained,
        )
        r["kind"] = kind
        if seed_cache:
            r["cache_keys"] = {str(s): seed_cache.key(s) for s in seed_list}
        results[name] = r
        cached = f" (cached seeds {r['cached_seeds']})" if r["cached_seeds"] else ""
        say(f"[eval] {name}: {headline(r)} in {r['timing']['total_s']:.1f}s{cached}")
    return results


def _frame_fns(names: Sequence[str], fns: dict) -> dict:
    """The columns of frames.png: raw, the learned f_d when evaluated, and two baselines (the
    first two evaluated non-raw ones, completed from _FRAME_BASELINES)."""
    extra = [b for b in names if b != "raw"][:2]
    extra += [b for b in _FRAME_BASELINES if b not in extra][: 2 - len(extra)]
    frame_fns = {"raw": B.identity}
    if LEARNED in fns:
        frame_fns["degraded (f_d)"] = fns[LEARNED]
    frame_fns.update({b: B.get_baseline(b) for b in extra})
    return frame_fns


def _verdicts(
    results: dict, splits: splits_lib.EvalSplits, confidence: float, say
) -> tuple[list[dict], dict]:
    """The paired comparisons and the problems of the evaluation; a comparison that involves
    a degrader with a problem (or an untrustworthy ruler) gets the verdict "not valid"."""
    comparisons = compare(results, confidence)
    problems = evaluation_problems(results, splits.chance())
    for c in comparisons:
        invalid = problems.get("ruler", []) + problems.get(c["reference"], [])
        invalid += problems.get(c["other"], [])
        if invalid:
            c["verdict"] = "not valid"
    for name, reasons in problems.items():
        for reason in reasons:
            say(f"[eval] NOT VALID ({name}): {reason}")
    return comparisons, problems


def _report(
    run_dir: str,
    cfg: C.ExperimentConfig,
    seed_list: list[int],
    splits: splits_lib.EvalSplits,
    cache_dir: str | None,
    results: dict,
    comparisons: list[dict],
    problems: dict,
) -> dict:
    """The report dict, up to its timing, test set, relative-to-raw lines and files."""
    return {
        "experiment": cfg.name,
        "version": __version__,
        "protocol_version": cache.PROTOCOL_VERSION,
        "run_dir": os.path.abspath(run_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seeds": seed_list,
        "eval": C.to_dict(cfg.eval),
        "config": C.to_dict(cfg),
        "data": {
            "sizes": splits.sizes(),
            "clip_shape": list(splits.clip_shape),
            "privacy_on_images": splits.privacy_on_images,
        },
        "chance": splits.chance(),
        "cache_dir": cache_dir,
        "results": results,
        "comparisons": comparisons,
        "problems": problems,
        "bad_inputs": pipeline.bad_inputs(),
    }


def _write(out: dict, out_dir: str, frames: dict, say) -> None:
    """Adds the figures relative to raw, writes the report files into out_dir (out["files"])
    and prints the relative lines and where the report is."""
    out["relative_to_raw"] = report.relative_to_raw(out)
    os.makedirs(out_dir, exist_ok=True)
    out["files"] = report.write_report(out_dir, out, frames)
    for line in report.relative_lines(out):
        say(f"[eval] {line}")
    say(f"[eval] done in {out['timing']['total_s']:.1f}s; report: {out['files']['md']}")
