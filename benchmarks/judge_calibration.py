"""Does the in-training judge see known effects? Hand-made filters scored by the judges.

    python -m benchmarks.judge_calibration --run RUN_DIR [--filters grey,down4,down8,grey_down4]

RUN_DIR is a finished run of a config with judges (judge.every > 0): its judges' starting
weights (RUN_DIR/judges/) and its kept f_d. Each filter, and the run's f_d, goes through the
judgement the trainer makes at its checkpoints (tfprivacy/train/judges.py: fresh copies of the
raw-pretrained f_T and f_b fine-tuned on the filter's output of the training clips, scored on the
validation set), and the table prints validation action (% of raw) and leakage. A judge that
can steer the game must see what the ruler sees (docs/ruler.md): greyscale removes the hue
cues (skin colour) but not the fine marks, x8 downsampling removes the 1-2 px marks; grey_down4
leaks little, down4 more. Nothing here reads a test video.
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
flags.DEFINE_integer("seed", 0, "the judgements' seed", flag_values=FLAGS)
flags.mark_flag_as_required("run", flag_values=FLAGS)


def main(argv):
    del argv
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
    trainer = Trainer(cfg)  # restores the finished run: its kept f_d, its judges' snapshot
    if not trainer.judges.has_snapshot():
        raise app.UsageError(f"{FLAGS.run}: no {J.JUDGE_DIR}/ snapshot (pretraining not done)")
    train, val = trainer.judge_train(), trainer.validator.val
    judge = trainer.judges

    def figures(fn):
        return judge.judge(train, val, fn, seed=FLAGS.seed)

    raw = figures(None)
    rows = [("raw", raw)]
    rows += [(name, figures(B.get_baseline(name))) for name in names]
    if os.path.exists(os.path.join(FLAGS.run, artifacts.DEGRADER_WEIGHTS)):
        rows.append(("learned f_d (kept)", figures(judge.degrader_fn())))
    print(
        f"judges on {FLAGS.run}'s validation set ({len(val.clips)} videos; "
        f"{cfg.judge.target_steps} target / {cfg.judge.privacy_steps} attacker steps)"
    )
    print("| degrader | action top-1 | % of raw | worst-case cMAP | leakage |")
    print("|---|---|---|---|---|")
    for name, f in rows:
        v = J.verdict(0, f, raw, 1.0)
        print(
            f"| {name} | {100 * f['action_top1']:.1f} | {100 * v['action_of_raw']:.1f} | "
            f"{100 * f['privacy_cmap_worst']:.1f} | {v['leakage']:.2f} |"
        )
    print(f"chance cMAP {100 * raw['chance_cmap']:.1f}")
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
