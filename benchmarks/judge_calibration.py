"""Does the in-training judge see known effects? Hand-made filters scored by the judges.

    python -m benchmarks.judge_calibration --run RUN_DIR [--filters grey,down4,down8,grey_down4]
        [--seeds 0,1,2,3] [--degraders A.weights.h5,B.weights.h5] [--target_from scratch|raw]
        [--action_only]

RUN_DIR is a finished run of a config with judges (judge.every > 0): its judges' starting
weights (RUN_DIR/judges/) and its kept f_d. Each filter, and the run's f_d, goes through the
judgement the trainer makes at its checkpoints (tfprivacy/train/judges.py: a judge target of
the ruler's kind and copies of the raw-pretrained f_b trained on the filter's output of the
training clips, scored on the validation set), and the table prints validation action (% of
raw) and leakage. A judge that can steer the game must see what the ruler sees (docs/ruler.md):
greyscale removes the hue cues (skin colour) but not the fine marks, x8 downsampling removes the
1-2 px marks; grey_down4 leaks little, down4 more.

--seeds judges every degrader once per seed and prints the means (action as mean top-1 over
raw's mean top-1) and the spread of one judgement (the standard deviation over seeds of its %
of raw): how far one verdict can move. --degraders adds other f_d weights of the run's
architecture (e.g. other runs' kept f_d, whose ruler figures are known). --target_from judges
with the other judge target (judge.target_from): "raw" trains a raw-trained starting target
per seed (pretraining seed 1000 + seed; the run's own snapshot stays as it is). Nothing here
reads a test video.
"""

from __future__ import annotations

import os

from absl import app, flags

from tfprivacy import runtime

FLAGS = flags.FlagValues()
flags.DEFINE_string("run", None, "finished run dir of a config with judges", flag_values=FLAGS)
flags.DEFINE_string(
    "filters", "grey,down4,down8,grey_down4", "hand-made filters to judge", flag_values=FLAGS
)
flags.DEFINE_list(
    "seeds", ["0"], "the judgements' seeds (figures: means over them)", flag_values=FLAGS
)
flags.DEFINE_list(
    "degraders", [], "more f_d weights files of the run's architecture to judge", flag_values=FLAGS
)
flags.DEFINE_enum(
    "target_from",
    None,
    ["scratch", "raw"],
    "the judge target's start (judge.target_from); default: the run's",
    flag_values=FLAGS,
)
flags.DEFINE_bool("action_only", False, "judge the action alone (no attackers)", flag_values=FLAGS)
flags.mark_flag_as_required("run", flag_values=FLAGS)


def _row(name: str, runs: list[dict], raws: list[dict]) -> str:
    """One table row: means over the seeds, action as mean top-1 over raw's mean top-1."""
    import numpy as np

    from tfprivacy.train import judges as J

    fig, raw = J.mean_figures(runs), J.mean_figures(raws)
    v = J.verdict(0, fig, raw, 1.0)
    ratios = [
        100 * r["action_top1"] / w["action_top1"] if w["action_top1"] > 0 else float("nan")
        for r, w in zip(runs, raws, strict=True)
    ]  # a judge at 0 on raw (an untrained one) has no ratio: nan, as the verdicts say
    # raw against itself reads 100 at every seed: its own spread is in its top-1 (the table's
    # first column moves with it), so its row leaves the column empty.
    sd = f"{np.std(ratios, ddof=1):.1f}" if len(ratios) > 1 and runs is not raws else "-"
    cmap = fig["privacy_cmap_worst"]
    return (
        f"| {name} | {100 * fig['action_top1']:.1f} | {100 * v['action_of_raw']:.1f} | {sd} | "
        f"{100 * cmap:.1f} | {v['leakage']:.2f} |"
    )


def main(argv):
    del argv
    import copy
    import glob
    import shutil
    import tempfile

    from tfprivacy import artifacts
    from tfprivacy.eval import baselines as B
    from tfprivacy.train import judges as J
    from tfprivacy.train.loop import Trainer

    cfg = artifacts.load_config(FLAGS.run)
    if not cfg.judge.every:
        raise app.UsageError(f"{FLAGS.run}: its config has no judges (judge.every=0)")
    names = [n for n in FLAGS.filters.split(",") if n]
    for name in names:
        if name not in B.BASELINES:
            raise app.UsageError(f"--filters: unknown {name!r}; known: {', '.join(B.BASELINES)}")
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"--seeds: integers, got {','.join(FLAGS.seeds)}") from None
    for path in FLAGS.degraders:
        if not os.path.exists(path):
            raise app.UsageError(f"--degraders: {path}: no such file")
    trainer = Trainer(cfg)  # restores the finished run: its kept f_d, its judges' snapshot
    if not trainer.judges.has_snapshot():
        raise app.UsageError(f"{FLAGS.run}: no {J.JUDGE_DIR}/ snapshot (pretraining not done)")
    train, val = trainer.judge_train(), trainer.validator.val
    judge, tmp = trainer.judges, None
    other = copy.deepcopy(cfg)
    other.judge.target_from = FLAGS.target_from or cfg.judge.target_from
    if other.judge.target == "ruler" and other.judge.target_from == "raw":
        # A raw-trained starting target per seed, in a temporary judges dir (the run's stays).
        tmp = tempfile.mkdtemp(prefix="judge_calibration-")
        judge = J.Judges(other, trainer.players, tmp)
        os.makedirs(judge.dir, exist_ok=True)
        for path in glob.glob(os.path.join(trainer.judges.dir, "privacy_init_*")):
            shutil.copy(path, judge.dir)
    elif other.judge.target_from != cfg.judge.target_from:  # from scratch: reads, writes nothing
        judge = J.Judges(other, trainer.players, FLAGS.run)
    kept = os.path.join(FLAGS.run, artifacts.DEGRADER_WEIGHTS)
    weights = [("learned f_d (kept)", kept)] if os.path.exists(kept) else []
    weights += [(path, path) for path in FLAGS.degraders]
    rows = {"raw": []} | {n: [] for n in names} | {label: [] for label, _ in weights}
    privacy = not FLAGS.action_only
    for seed in seeds:
        if tmp is not None:
            judge.pretrain_target(train, seed=1000 + seed)
        rows["raw"].append(judge.judge(train, val, None, seed=seed, privacy=privacy))
        for name in names:
            rows[name].append(judge.judge(train, val, B.get_baseline(name), seed, privacy))
        for label, path in weights:
            trainer.players.degrader.load_weights(path)
            rows[label].append(judge.judge(train, val, judge.degrader_fn(), seed, privacy))
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    j = judge.cfg.judge
    steps = j.target_pretrain_steps if judge.scratch else j.target_steps
    how = "trained from scratch" if judge.scratch else "fine-tuned"
    print(
        f"judges on {FLAGS.run}'s validation set ({len(val.clips)} videos; target {how} for "
        f"{steps} steps, {j.privacy_steps if privacy else 0} attacker steps; "
        f"seeds {','.join(map(str, seeds))})"
    )
    print(
        "| degrader | action top-1 | % of raw | sd of one judgement | worst-case cMAP | leakage |"
    )
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        print(_row(name, runs, rows["raw"]))
    print(f"chance cMAP {100 * rows['raw'][0]['chance_cmap']:.1f}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
