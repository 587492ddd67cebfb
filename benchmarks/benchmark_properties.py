"""Properties probe of the built-in benchmark: does it pose the intended trade-off?

Generates (or reuses) the default benchmark, decodes it with video_io and trains small Keras
models for a fixed short budget (seeded), then prints on the test split:
  - action top-1 from one frame vs from an 8-frame clip, raw, downsampled x4 and blurred
    (Gaussian sigma 2 px), plus x2 with --clip_x2 (about a minute more): motion carries the
    action, and wave/beckon and clap/rub_hands differ only in fine motion, which x2 keeps and
    x4 or the blur erase;
  - per-attribute AP of a 2D CNN on frames: raw, x8 (area down, nearest up), greyscale,
    greyscale + x4 (skin colour survives x8 but not greyscale; face/gender/relationship fall
    toward chance at x8).

    python -m benchmarks.benchmark_properties [--family props|body] [--base_dir DIR]
        [--frame_epochs N] [--clip_epochs N] [--clip_x2]

--family body probes the second family (tfprivacy/data/synthetic_body.py): its prevalences
are PA-HMDB51's (skewed), so the privacy table also prints each attribute's AP normalised by
its prevalence, (AP - p) / (1 - p), and ROC-AUC, which keep their range where AP sits near 1
for every filter.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from tfprivacy import runtime  # noqa: E402

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

from tfprivacy import config as C  # noqa: E402
from tfprivacy import metrics  # noqa: E402
from tfprivacy.data import synthetic, video_io  # noqa: E402
from tfprivacy.data.records import PRIVACY_ATTRIBUTES  # noqa: E402

CLIP = 8


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Area downsample by `factor` then nearest upsample back (uint8 in, uint8 out)."""
    if factor == 1:
        return x
    *lead, h, w, c = x.shape
    small = x.reshape(*lead, h // factor, factor, w // factor, factor, c).mean(axis=(-4, -2))
    big = small.repeat(factor, axis=-3).repeat(factor, axis=-2)
    return np.round(big).astype(np.uint8)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the two spatial axes of [..., H, W, 3] uint8 frames."""
    sigmas = (0,) * (x.ndim - 3) + (sigma, sigma, 0)
    return np.round(gaussian_filter(x.astype(np.float32), sigmas)).astype(np.uint8)


def greyscale(x: np.ndarray) -> np.ndarray:
    luma = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.round(luma)[..., None], 3, axis=-1).astype(np.uint8)


def frame_cnn(size: int, outputs: int, activation: str) -> keras.Model:
    # Stride-1 convolutions before each pooling so 1-2 px marks reach the deeper layers;
    # batch norm makes the short budget enough for the fine cues on colour frames.
    inputs = keras.Input((size, size, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for width in (16, 32, 48, 64):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(x))


def clip_cnn(size: int, num_classes: int) -> keras.Model:
    """A small 3D CNN on frame differences only: motion is the signal.

    Fed raw frames too, it memorises the 480 training scenes instead of learning motion
    (measured: train 100%, test near chance), hence differences only and no batch norm.
    """
    inputs = keras.Input((CLIP, size, size, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Lambda(lambda v: v[:, 1:] - v[:, :-1])(x)
    for width, strides in ((16, (1, 2, 2)), (32, (1, 2, 2)), (64, 2), (64, 2)):
        x = keras.layers.Conv3D(width, 3, strides=strides, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def fit(build, x, y, loss, epochs, lr=1e-3, seed=0):
    """Seeds, then builds (so initial weights are seeded too), compiles and trains."""
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(keras.optimizers.Adam(lr), loss=loss)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def load(split, frames_per_video: int) -> tuple:
    """Decoded videos [N, F, S, S, 3] uint8, actions [N], frame labels [N, F, 5]."""
    videos = np.stack([video_io.read_video(r.path) for r in split])
    actions = np.array([r.action for r in split], np.int32)
    labels = np.stack([r.frame_labels for r in split]).astype(np.float32)
    return videos[:, :frames_per_video], actions, labels


def sample_frames(videos, labels, per_video, rng):
    n, f = videos.shape[:2]
    idx = np.stack([rng.choice(f, per_video, replace=False) for _ in range(n)])
    rows = np.repeat(np.arange(n), per_video)
    return videos[rows, idx.ravel()], labels[rows, idx.ravel()], rows


def sample_clips(videos, starts):
    clips = [videos[:, s : s + CLIP] for s in starts]
    return np.concatenate(clips), len(starts)


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "base_dir",
    None,
    "where the benchmark is generated or found (default: $TFPRIVACY_DATA, else ~/.cache/tfprivacy)",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "family", "props", C.SYNTHETIC_FAMILIES, "which built-in benchmark family", flag_values=FLAGS
)
flags.DEFINE_integer("frame_epochs", 12, "epochs of each frame CNN", flag_values=FLAGS)
flags.DEFINE_integer("clip_epochs", 8, "epochs of each clip CNN", flag_values=FLAGS)
flags.DEFINE_bool("clip_x2", False, "also train on x2 clips", flag_values=FLAGS)


def main(argv) -> None:
    """Prints the probe's tables. argv: the program name alone (run_cli)."""
    del argv
    start = time.time()
    cfg = C.SyntheticConfig(family=FLAGS.family)
    root = synthetic.benchmark_root(cfg, FLAGS.base_dir)
    synthetic.ensure_benchmark(cfg, root)
    split = synthetic.load_split(root)
    rng = np.random.default_rng(0)
    tr_v, tr_a, tr_l = load(split.train, cfg.frames_per_video)
    te_v, te_a, te_l = load(split.test, cfg.frames_per_video)
    size, num_classes = cfg.frame_size, cfg.num_actions
    print(
        f"benchmark {root}: {len(tr_v)} train / {len(te_v)} test videos, {time.time() - start:.0f}s"
    )
    prevalence = np.concatenate([tr_l, te_l]).reshape(-1, 5).mean(0)
    print(
        "frame prevalence: "
        + " ".join(f"{a}={p:.2f}" for a, p in zip(PRIVACY_ATTRIBUTES, prevalence, strict=True))
    )

    # --- action: one frame vs a clip, raw and x4 -----------------------------------------
    f_tr, _, rows_tr = sample_frames(tr_v, tr_l, 4, rng)
    f_te, _, rows_te = sample_frames(te_v, te_l, 4, rng)
    model = fit(
        lambda: frame_cnn(size, num_classes, "softmax"),
        f_tr,
        tr_a[rows_tr],
        "sparse_categorical_crossentropy",
        FLAGS.frame_epochs,
    )
    pred = model.predict(f_te, batch_size=128, verbose=0).argmax(-1)
    results = {"frame raw": (pred == te_a[rows_te]).mean()}
    per_class = {}
    starts_tr = range(0, cfg.frames_per_video - CLIP + 1, 2)
    starts_te = [(cfg.frames_per_video - CLIP) // 2]
    clip_filters = {
        "clip raw": lambda x: x,
        "clip x2": lambda x: downsample(x, 2),
        "clip x4": lambda x: downsample(x, 4),
        "clip blur2": lambda x: blur(x, 2.0),
    }
    if not FLAGS.clip_x2:  # keeps the default run within its time budget
        del clip_filters["clip x2"]
    for name, fn in clip_filters.items():
        c_tr, reps = sample_clips(fn(tr_v), starts_tr)
        c_te, _ = sample_clips(fn(te_v), starts_te)
        model = fit(
            lambda: clip_cnn(size, num_classes),
            c_tr,
            np.tile(tr_a, reps),
            "sparse_categorical_crossentropy",
            FLAGS.clip_epochs,
            lr=2e-3,
        )
        pred = model.predict(c_te, batch_size=64, verbose=0).argmax(-1)
        results[name] = (pred == te_a).mean()
        per_class[name] = [(pred[te_a == k] == k).mean() for k in range(num_classes)]
        print(f"  {name}: {results[name]:.3f} ({time.time() - start:.0f}s)", flush=True)
    print(f"\naction top-1 (chance {1 / num_classes:.2f}), {time.time() - start:.0f}s")
    for name, acc in results.items():
        print(f"  {name:10s} {acc:.3f}")
    actions = synthetic.family_actions(cfg)[:num_classes]
    print("  per class  " + " ".join(f"{a[:6]:>6s}" for a in actions))
    for name, accs in per_class.items():
        print(f"  {name:10s} " + " ".join(f"{a:6.2f}" for a in accs))

    # --- privacy: per-attribute AP of a frame CNN under hand-made filters ----------------
    filters = {
        "raw": lambda x: x,
        "x8": lambda x: downsample(x, 8),
        "grey": greyscale,
        "grey+x4": lambda x: greyscale(downsample(x, 4)),
    }
    p_tr, l_tr, _ = sample_frames(tr_v, tr_l, 4, rng)
    p_te, l_te, _ = sample_frames(te_v, te_l, 4, rng)
    print(
        f"\nprivacy AP per attribute (test frames; chance = prevalence), {time.time() - start:.0f}s"
    )
    print("  filter   " + " ".join(f"{a[:8]:>8s}" for a in PRIVACY_ATTRIBUTES) + "     cMAP")
    print("  chance   " + " ".join(f"{p:8.3f}" for p in l_te.mean(0)) + f" {l_te.mean():8.3f}")
    ranged = {}
    for name, fn in filters.items():
        model = fit(
            lambda: frame_cnn(size, 5, "sigmoid"),
            fn(p_tr),
            l_tr,
            "binary_crossentropy",
            FLAGS.frame_epochs,
        )
        scores = model.predict(fn(p_te), batch_size=128, verbose=0)
        aps = [average_precision_score(l_te[:, j], scores[:, j]) for j in range(5)]
        row = " ".join(f"{ap:8.3f}" for ap in aps)
        print(f"  {name:8s} {row} {np.mean(aps):8.3f}   ({time.time() - start:.0f}s)", flush=True)
        ranged[name] = (
            metrics.normalize_ap(np.array(aps), metrics.prevalence(l_te)),
            metrics.roc_auc(l_te, scores),
        )
    for title, k, chance in (("AP normalised by prevalence, (AP - p) / (1 - p)", 0, 0.0),
                             ("ROC-AUC", 1, 0.5)):  # fmt: skip
        print(f"\nprivacy {title} per attribute (chance {chance:.1f})")
        print("  filter   " + " ".join(f"{a[:8]:>8s}" for a in PRIVACY_ATTRIBUTES) + "    worst")
        for name, values in ranged.items():
            row = " ".join(f"{v:8.3f}" for v in values[k])
            print(f"  {name:8s} {row} {np.nanmax(values[k]):8.3f}")
    print(f"\ntotal {time.time() - start:.0f}s")


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
