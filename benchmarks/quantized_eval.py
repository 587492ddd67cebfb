"""Does quantization keep the privacy-utility figures? The two-fold protocol on f_d and its TFLite
conversions, side by side in one run, on the same materialised splits and seeds.

    python -m benchmarks.quantized_eval --run RUN_DIR [--quants float32,int8] [--seeds 1]

Prints, per artifact: bytes, PSNR against the float Keras f_d on test frames, action top-1 and
worst-case cMAP of fresh models trained on its output, and the gap to float in points (the
issue's bar: int8 within 1 point on both).
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "Training run directory.", required=True)
flags.DEFINE_list("quants", ["float32", "int8"], "TFLite quantization types to evaluate.")
flags.DEFINE_integer("seeds", 1, "Fresh-model seeds.")


def main(argv):
    del argv
    from trainers.adversarial_lib import quiet_logs

    quiet_logs()
    from serving import tflite
    from tfprivacy.data.sources import build_sources
    from tfprivacy.eval import protocol
    from tfprivacy.eval.evaluate_lib import keras_degrade_fn
    from tfprivacy.train import artifacts

    start = time.perf_counter()
    cfg = artifacts.load_config(FLAGS.run)
    size = cfg.data.frame_size
    model, _ = artifacts.load_degrader(FLAGS.run, frame_size=size)
    splits = protocol.materialize_splits(build_sources(cfg.data), cfg)
    probe = splits.action_test[0][:4].reshape((-1, size, size, 3)).astype(np.float32) / 255.0
    reference = np.asarray(model(probe, training=False))
    representative = tflite.representative_frames_from_pipeline(cfg.data)

    fns = {"keras float": (keras_degrade_fn(model), None)}
    for quant in FLAGS.quants:
        blob = tflite.convert(model, size, quant, representative)
        fns[f"tflite {quant}"] = (tflite.TFLiteDegrader(blob, num_threads=2), len(blob))

    rows = []
    for name, (fn, nbytes) in fns.items():
        psnr = tflite.psnr(reference, np.asarray(fn(probe))) if nbytes else float("inf")
        report = protocol.evaluate_degrader(fn, splits, cfg, FLAGS.seeds, name=name)
        rows.append(
            (
                name,
                nbytes,
                psnr,
                100 * report["action_top1"]["mean"],
                100 * report["worst_case"]["cmap"]["mean"],
            )
        )
        print(f"{name}: done ({time.perf_counter() - start:.0f}s)", flush=True)

    float_acc, float_cmap = rows[0][3], rows[0][4]
    header = ("artifact", "bytes", "PSNR dB", "top-1", "cMAP", "d top-1", "d cMAP")
    widths = (16, 10, 9, 8, 8, 9, 8)
    print(
        "\n"
        + "".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for name, nbytes, psnr, acc, cmap in rows:
        size_text = f"{nbytes:,}" if nbytes else "-"
        print(
            f"{name:<16}{size_text:>10}{psnr:>9.1f}{acc:>8.1f}{cmap:>8.1f}"
            f"{acc - float_acc:>+9.1f}{cmap - float_cmap:>+8.1f}"
        )
    print(f"total {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    app.run(main)
