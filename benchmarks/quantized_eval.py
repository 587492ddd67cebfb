"""Does quantization keep the privacy-utility figures? Every deployable artifact of one run's f_d
through the two-fold protocol, side by side in one run, on the same sampled clips and seeds.

    python -m benchmarks.quantized_eval --run RUN_DIR [--quants float32,float16,dynamic,int8]
        [--qat_steps 200] [--savedmodel] [--seeds 3] [--out RUN_DIR/quantized_eval.json]
    python -m benchmarks.quantized_eval --run RUN_DIR --replot   # redraw the .png from the JSON

Per artifact: bytes (the .tflite file; the variables/ folder for SavedModels), PSNR of its
output against the float Keras f_d on test frames, the fraction of uint8 output values that
differ from float's, and action top-1 / worst-case cMAP of fresh models trained on its output
(mean and std over seeds).

The comparison with float is paired: for each seed, the artifact's fresh models start from the
same initial weights and see the same clips in the same order as float's, and the bootstrap
over test videos and seeds (tfprivacy.eval.intervals) draws the same test videos and seeds for
both, so each replicate's difference is paired. The table gives the mean difference, its 95%
interval and a verdict on the issue's bar (within 1 point of float on both figures): "yes" when
the whole interval lies within +-1, "no" when it lies outside, "undecided" when the interval
straddles the bar (more --seeds or test videos narrow it).
An artifact whose uint8 output equals float's everywhere reuses float's per-seed results: the
fresh models are deterministic, so retraining them would print the same figures.

The last column separates quantization from training noise: float's fresh models (trained on
float's output) score each artifact's test output, with no retraining. That difference is
what a deployed attacker or recogniser sees when the camera switches to the quantized model,
and it is exact per seed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time

import numpy as np
from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter
from serving.tflite import QUANT_TYPES  # noqa: E402

# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "Training run directory.", required=True, flag_values=FLAGS)
flags.DEFINE_list(
    "quants", ["float32", "int8"], "TFLite quantization types to evaluate.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "qat_steps", 0, "Also evaluate a QAT int8 model fine-tuned this long.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "savedmodel", False, "Also evaluate the int8-variable SavedModel.", flag_values=FLAGS
)
flags.DEFINE_integer("seeds", 3, "Fresh-model seeds (paired across artifacts).", flag_values=FLAGS)
flags.DEFINE_string(
    "out", None, "JSON results; default RUN_DIR/quantized_eval.json.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "replot", False, "Only redraw the plot from an existing --out JSON.", flag_values=FLAGS
)


@flags.validator("quants", flag_values=FLAGS)
def _check_quants(quants) -> bool:
    unknown = [q for q in quants if q not in QUANT_TYPES]
    if unknown:
        raise flags.ValidationError(
            f"--quants {','.join(unknown)}: the quantization types are <{'|'.join(QUANT_TYPES)}>"
        )
    return True


BAR_POINTS = 1.0
# Two-sided 95% Student t quantiles by degrees of freedom (seeds - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def paired_difference(values, reference, bar: float = BAR_POINTS) -> dict:
    """Mean, standard error and 95% interval of values[i] - reference[i] (points), and a verdict.

    verdict: "yes" if the interval lies within [-bar, bar], "no" if it lies wholly outside,
    otherwise "undecided". With one seed there is no interval: "yes"/"no" on the one
    difference, marked by se None.
    """
    d = np.asarray(values, np.float64) - np.asarray(reference, np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f"paired_difference: need equal-length 1-D lists, got {d.shape}")
    mean = float(d.mean())
    if len(d) == 1:
        return {"mean": mean, "se": None, "ci95": None, "verdict": _one(mean, bar)}
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    half = _T95.get(len(d) - 1, 1.96) * se
    lo, hi = mean - half, mean + half
    return {"mean": mean, "se": se, "ci95": [lo, hi], "verdict": _verdict(lo, hi, bar)}


def _verdict(lo: float, hi: float, bar: float) -> str:
    """ "yes" if [lo, hi] lies within [-bar, bar], "no" if wholly outside, else "undecided"."""
    if -bar <= lo and hi <= bar:
        return "yes"
    if hi < -bar or lo > bar:
        return "no"
    return "undecided"


def bootstrap_difference(values, reference, bar: float = BAR_POINTS) -> dict:
    """The paired difference of two replicate arrays (points, same draws), with a verdict.

    Same keys as paired_difference; "se" is the standard deviation of the replicates.
    """
    from tfprivacy.eval import intervals

    d = np.asarray(values, np.float64) - np.asarray(reference, np.float64)
    lo, hi = intervals.interval(d, 0.95)
    return {
        "mean": float(d.mean()),
        "se": float(d.std()),
        "ci95": [lo, hi],
        "verdict": _verdict(lo, hi, bar),
    }


def combined_verdict(*verdicts: str) -> str:
    """ "no" if any figure fails the bar, "undecided" if any is undecided, else "yes"."""
    for v in ("no", "undecided"):
        if v in verdicts:
            return v
    return "yes"


def _one(mean: float, bar: float) -> str:
    return "yes" if abs(mean) <= bar else "no"


def _figures(result: dict) -> tuple[list[float], list[float]]:
    per_seed = result["per_seed"]
    return (
        [100 * s["action_top1"] for s in per_seed],
        [100 * s["worst_case"]["cmap"] for s in per_seed],
    )


def changed_fraction(a, b) -> float:
    """Fraction of uint8 values that differ between two degraded EvalSplits."""
    pairs = list(zip(a.distinct_arrays(), b.distinct_arrays(), strict=True))
    diff = sum(int(np.count_nonzero(x != y)) for x, y in pairs)
    return diff / sum(x.size for x, _ in pairs)


def evaluate_artifacts(fns: dict, splits, cfg, seeds, reference: str, log=print) -> dict:
    """Runs the protocol on each artifact's degraded splits, pairing seeds with `reference`.

    fns: name -> (degrade_fn, bytes or None), the reference (float) among them. The
    reference's fresh models also score every other artifact's test output ("transfer").
    Returns name -> {"bytes", "changed", "report" (protocol.aggregate output), "seconds"}.
    """
    from tfprivacy.eval import protocol

    seed_list = protocol.resolve_seeds(seeds)
    pretrained = protocol.PretrainedWeights()
    degraded = {name: protocol.degrade_splits(fn, splits) for name, (fn, _) in fns.items()}
    others = {name: d for name, d in degraded.items() if name != reference}
    out, full = {}, {}  # full: per-seed results with per-item predictions
    for name in [reference, *others]:
        t0 = time.perf_counter()
        changed = changed_fraction(degraded[name], degraded[reference])
        if name != reference and changed == 0.0:
            per_seed = full[reference]
            log(f"{name}: uint8 output identical to {reference}: its results are reused")
        else:
            transfer = others if name == reference else None
            per_seed = [
                protocol.evaluate_seed(
                    degraded[name], cfg, s, transfer=transfer, raw=splits, pretrained=pretrained
                )
                for s in seed_list
            ]
        full[name] = per_seed
        report = protocol.aggregate(per_seed, splits, cfg.eval)
        out[name] = {
            "bytes": fns[name][1],
            "changed": changed,
            "report": report,
            "replicates": report.pop("replicates", None),
            "seconds": time.perf_counter() - t0,
        }
        log(f"{name}: done in {out[name]['seconds']:.0f}s")
    return out


def _transfer_figures(reference_report: dict, name: str) -> tuple[list[float], list[float]]:
    """Per seed, the float-trained fresh models' figures on artifact `name`'s test output."""
    per_seed = reference_report["per_seed"]
    return (
        [100 * s["transfer"][name]["action_top1"] for s in per_seed],
        [100 * s["transfer"][name]["worst_case"]["cmap"] for s in per_seed],
    )


def _fmt_diff(d: dict) -> str:
    if d["se"] is None:
        return f"{d['mean']:+.1f}"
    return f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]"


def summarize(results: dict, reference: str, psnrs: dict) -> list[dict]:
    """One row per artifact: sizes, PSNR, mean/std figures and paired differences to float."""
    ref_acc, ref_cmap = _figures(results[reference]["report"])
    rows = []
    for name, r in results.items():
        acc, cmap = _figures(r["report"])
        row = {
            "artifact": name,
            "bytes": r["bytes"],
            "psnr_db": psnrs.get(name),
            "changed_fraction": r["changed"],
            "top1": [float(np.mean(acc)), float(np.std(acc))],
            "cmap": [float(np.mean(cmap)), float(np.std(cmap))],
        }
        reps, ref_reps = r.get("replicates"), results[reference].get("replicates")
        if name != reference and reps is not None and ref_reps is not None:
            row["d_top1"] = bootstrap_difference(100 * reps["action"], 100 * ref_reps["action"])
            row["d_cmap"] = bootstrap_difference(
                100 * reps["worst_cmap"], 100 * ref_reps["worst_cmap"]
            )
        elif name != reference:
            row["d_top1"] = paired_difference(acc, ref_acc)
            row["d_cmap"] = paired_difference(cmap, ref_cmap)
        if name != reference:
            t_acc, t_cmap = _transfer_figures(results[reference]["report"], name)
            row["transfer_d_top1"] = paired_difference(t_acc, ref_acc)
            row["transfer_d_cmap"] = paired_difference(t_cmap, ref_cmap)
        rows.append(row)
    return rows


def print_table(rows: list[dict], seeds: int) -> None:
    print(
        f"\n| artifact | bytes | PSNR dB | uint8 changed | top-1 (mean ± std, {seeds} seeds) | "
        "worst cMAP | Δ top-1 [95% CI] | Δ cMAP [95% CI] | within 1 point | "
        "float-trained models: Δ top-1 / Δ cMAP |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        nbytes = f"{r['bytes']:,}" if r["bytes"] else "-"
        psnr = "-" if r["psnr_db"] is None else f"{r['psnr_db']:.1f}"
        if "d_top1" in r:
            dt, dc = _fmt_diff(r["d_top1"]), _fmt_diff(r["d_cmap"])
            verdict = combined_verdict(r["d_top1"]["verdict"], r["d_cmap"]["verdict"])
            transfer = f"{r['transfer_d_top1']['mean']:+.1f} / {r['transfer_d_cmap']['mean']:+.1f}"
        else:
            dt = dc = verdict = transfer = "(reference)"
        print(
            f"| {r['artifact']} | {nbytes} | {psnr} | {100 * r['changed_fraction']:.2f}% | "
            f"{r['top1'][0]:.1f} ± {r['top1'][1]:.1f} | {r['cmap'][0]:.1f} ± {r['cmap'][1]:.1f} | "
            f"{dt} | {dc} | {verdict} | {transfer} |",
            flush=True,
        )


def plot_differences(rows: list[dict], path: str, title: str = "") -> str:
    """Forest plot: per artifact, the paired difference to float with its 95% interval
    (retrained fresh models, dot and bar) and the float-trained models' difference (cross),
    for action top-1 and worst-case cMAP; the shaded band is the +-1 point bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "d_top1" in r]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.5 * len(rows) + 1.6), dpi=120, sharey=True)
    ys = np.arange(len(rows))[::-1]
    for ax, key, label in zip(
        axes,
        ("top1", "cmap"),
        ("Δ action top-1 (points)", "Δ worst-case cMAP (points)"),
        strict=True,
    ):
        ax.axvspan(-BAR_POINTS, BAR_POINTS, color="tab:green", alpha=0.15, label="±1 point")
        ax.axvline(0, color="grey", lw=1)
        for y, r in zip(ys, rows, strict=True):
            d = r[f"d_{key}"]
            if d["ci95"] is not None:
                ax.plot(d["ci95"], [y, y], color="tab:blue", lw=2)
            ax.plot(d["mean"], y, "o", color="tab:blue")
            ax.plot(r[f"transfer_d_{key}"]["mean"], y, "x", color="tab:red", markersize=8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(ys, [r["artifact"] for r in rows])
    axes[0].plot([], [], "o-", color="tab:blue", label="retrained fresh models (95% CI)")
    axes[0].plot([], [], "x", color="tab:red", label="float-trained models")
    axes[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(title or "Quantized f_d vs float (paired by seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _artifacts(model, cfg, size, representative, tmp):
    """name -> (degrade_fn, bytes); float Keras first."""
    from serving import qat, tflite
    from serving import quantized_savedmodel as QS
    from serving import signatures as S
    from tfprivacy.eval.evaluate_lib import keras_degrade_fn

    fns = {"keras float": (keras_degrade_fn(model), None)}
    for quant in FLAGS.quants:
        blob = tflite.convert(model, size, quant, representative)
        fns[f"tflite {quant}"] = (tflite.TFLiteDegrader(blob, num_threads=2), len(blob))
    if FLAGS.qat_steps > 0:
        qat_model, history = qat.qat_finetune(
            model, cfg.model, representative, size, steps=FLAGS.qat_steps
        )
        print(f"QAT L1 {history[0]:.4f} -> {history[-1]:.4f} over {len(history)} steps")
        blob = qat.convert_qat(qat_model, size, representative[:64])
        fns["tflite qat int8"] = (tflite.TFLiteDegrader(blob, num_threads=2), len(blob))
    if FLAGS.savedmodel:
        import tensorflow as tf

        path = QS.export_quantized(model, tmp, version=1)
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures[S.SIGNATURE_KEY]
        fns["savedmodel int8 vars"] = (_uint8_signature_fn(serve), QS.variables_bytes(path))
    return fns


def _uint8_signature_fn(serve):
    """A float [0,1] degrade_fn over a uint8 -> uint8 serving signature.

    Its inputs are v / 255 frames (protocol.degrade_array, the PSNR probe): no clip needed.
    """
    from serving import signatures as S
    from tfprivacy.frames import round_to_uint8, to_unit_float

    def fn(frames):
        x = round_to_uint8(frames)
        return to_unit_float(serve(**{S.INPUT_KEY: x})[S.OUTPUT_KEY])

    return fn


def main(argv):
    """Evaluates the artifacts of --run (or redraws the plot). argv: the program name alone
    (run_cli)."""
    del argv
    from serving import tflite
    from tfprivacy import artifacts
    from tfprivacy.data.sources import build_sources
    from tfprivacy.eval import protocol
    from tfprivacy.frames import to_unit_float_np

    protocol.enable_determinism()  # the same seed gives the same figures whatever the load
    import keras

    keras.utils.set_random_seed(0)  # a global seed: QAT's twin initialises seeded under it

    out = FLAGS.out or os.path.join(FLAGS.run, "quantized_eval.json")
    plot_path = os.path.splitext(out)[0] + ".png"
    title = f"Quantized f_d vs float: {os.path.basename(os.path.normpath(FLAGS.run))}"
    if FLAGS.replot:
        with open(out) as f:
            saved = json.load(f)
        print(f"wrote {plot_differences(saved['rows'], plot_path, title)}")
        return
    start = time.perf_counter()
    cfg = artifacts.load_config(FLAGS.run)
    size = cfg.data.frame_size
    model, _ = artifacts.load_degrader(FLAGS.run, frame_size=size)
    splits = protocol.materialize_splits(build_sources(cfg.data), cfg)
    probe = to_unit_float_np(splits.action_test[0][:16].reshape((-1, size, size, 3)))
    reference = np.asarray(model(probe, training=False))
    representative = tflite.representative_frames_from_pipeline(cfg.data)
    with tempfile.TemporaryDirectory() as tmp:
        fns = _artifacts(model, cfg, size, representative, tmp)
        psnrs = {
            name: tflite.psnr(reference, np.asarray(fn(probe)))
            for name, (fn, nbytes) in fns.items()
            if nbytes
        }
        results = evaluate_artifacts(fns, splits, cfg, FLAGS.seeds, "keras float")
    rows = summarize(results, "keras float", psnrs)
    for r in results.values():
        r.pop("replicates", None)  # numpy arrays: summarised in rows, not written
    print_table(rows, FLAGS.seeds)
    plot_differences(rows, plot_path, title)
    with open(out, "w") as f:
        json.dump(
            {"run": FLAGS.run, "seeds": FLAGS.seeds, "rows": rows, "results": results}, f, indent=1
        )
    print(f"wrote {out} and {plot_path}; total {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
