"""benchmarks.ablation: the rows' commands, the resumable sweep and the table, without training
(a fake runner stands in for the subprocesses and writes what the real commands write)."""

import json
import os
import tempfile
import unittest

from absl import flags

from benchmarks import ablation
from tests.cli_util import call_main
from tfprivacy import config as C


def _interval(mean, lo, hi):
    return {"mean": mean, "ci": [lo, hi]}


def _report(top1, cmap, leakage, psnr):
    return {
        "seeds": [0],
        "results": {
            "learned": {
                "action_top1": _interval(top1, top1 - 0.02, top1 + 0.02),
                "worst_case": {"cmap": _interval(cmap, cmap - 0.01, cmap + 0.01)},
                "per_seed": [{"fidelity": {"psnr_db": psnr}}],
            },
            "raw": {
                "action_top1": _interval(0.84, 0.817, 0.862),
                "worst_case": {"cmap": _interval(0.924, 0.915, 0.932)},
            },
        },
        "relative_to_raw": {"learned": {"action_of_raw": top1 / 0.84, "leakage": leakage}},
    }


class FakeRunner:
    """Records each command; 'trains' (summary.json) and 'evaluates' (report.json) as the real
    commands do, or fails on the command whose run dir is `fail_on`."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, cmd, log):
        module = cmd[cmd.index("-m") + 1]
        run_dir = cmd[cmd.index("--run_dir" if module == "trainers.adversarial" else "--run") + 1]
        self.calls.append((module, os.path.basename(run_dir)))
        log.write("output of " + module)
        if os.path.basename(run_dir) == self.fail_on:
            return 3
        os.makedirs(run_dir, exist_ok=True)
        if module == "trainers.adversarial":
            with open(os.path.join(run_dir, "summary.json"), "w") as f:
                json.dump({"adversarial": {"privacy_cmap_worst": 0.611}}, f)
        else:
            with open(os.path.join(run_dir, "report.json"), "w") as f:
                json.dump(_report(0.801, 0.555, 0.07, 16.4), f)
        return 0


class AblationTest(unittest.TestCase):
    def test_rows_are_the_main_job_plus_their_overrides(self):
        sets = lambda name: ablation.row_sets(ablation.ROWS[name], "benchmark", [])  # noqa: E731
        self.assertEqual(sets("entropy_m2"), [])  # the main job itself
        self.assertEqual(
            sets("grl_m4_restart"),
            [
                "adversary.strategy=grl",
                "adversary.num_models=4",
                "adversary.restart_every=100",
                "adversary.restart_steps=100",
            ],
        )
        self.assertEqual(sets("entropy_m2_light"), ["model.degrader=light"])
        # A sweep-wide override applies to every row; the row's own wins.
        self.assertEqual(
            ablation.row_sets(ablation.ROWS["kbeam_m1"], "benchmark", ["adversary.num_models=3"]),
            ["adversary.num_models=3", "adversary.strategy=kbeam", "adversary.num_models=1"],
        )
        train, evaluate = ablation.commands(ablation.ROWS["kbeam_m1"], "/o", "benchmark", [], 1)
        self.assertEqual(train[1:3], ["-m", "trainers.adversarial"])
        self.assertIn("--noevaluate", train)
        self.assertEqual(train[train.index("--run_dir") + 1], "/o/kbeam_m1")
        self.assertEqual(
            evaluate[3:], ["--run", "/o/kbeam_m1", "--seeds", "1", "--baselines", "raw"]
        )
        # The whole grid is among the default rows, each once.
        for strategy in ("grl", "kbeam", "entropy"):
            for m in (1, 2, 4):
                for restart in ("", "_restart"):
                    self.assertIn(f"{strategy}_m{m}{restart}", ablation.DEFAULT_ROWS)
        self.assertEqual(len(ablation.DEFAULT_ROWS), len(set(ablation.DEFAULT_ROWS)))
        self.assertEqual(set(ablation.DEFAULT_ROWS), set(ablation.ROWS))

    def test_sweep_skips_done_rows_resumes_trained_ones_and_stops_on_a_failure(self):
        rows = [ablation.ROWS[n] for n in ("entropy_m1", "grl_m1", "kbeam_m1", "kbeam_m4")]
        with tempfile.TemporaryDirectory() as out:
            done = os.path.join(out, "entropy_m1")
            os.makedirs(done)
            with open(os.path.join(done, "report.json"), "w") as f:
                json.dump(_report(0.775, 0.568, 0.10, 17.9), f)
            trained = os.path.join(out, "grl_m1")
            os.makedirs(trained)
            with open(os.path.join(trained, "summary.json"), "w") as f:
                json.dump({"adversarial": {"privacy_cmap_worst": 0.95}}, f)
            runner, lines = FakeRunner(fail_on="kbeam_m4"), []
            with self.assertRaisesRegex(ablation.AblationError, "row kbeam_m4: .* status 3") as e:
                ablation.run_rows(rows, out, "benchmark", [], 1, runner=runner, echo=lines.append)
            self.assertIn(os.path.join(out, "kbeam_m4.train.log"), str(e.exception))
            self.assertEqual(
                runner.calls,
                [
                    ("trainers.evaluate", "grl_m1"),  # trained: only evaluated
                    ("trainers.adversarial", "kbeam_m1"),
                    ("trainers.evaluate", "kbeam_m1"),
                    ("trainers.adversarial", "kbeam_m4"),  # fails: nothing after it
                ],
            )
            self.assertIn("[1/4] entropy_m1: done (report.json exists), skipped", lines)
            with open(os.path.join(out, "kbeam_m1.train.log")) as f:
                self.assertEqual(f.read(), "output of trainers.adversarial")

            text = ablation.table(rows, out)
            lines = text.splitlines()
            self.assertEqual(len(lines), 2 + len(rows) + 1)
            self.assertEqual(
                lines[2],
                "| entropy | 1 | off | pyramid | 77.5 [75.5, 79.5] (92%) | 56.8 [55.8, 57.8] "
                "| 0.10 | 17.9 dB |  | `entropy_m1` |",
            )
            self.assertIn("| grl | 1 | off | pyramid | 80.1 [78.1, 82.1] (95%)", lines[3])
            self.assertIn("| 95.0 | `grl_m1` |", lines[3])  # the game's own attackers
            self.assertIn("| 61.1 | `kbeam_m1` |", lines[4])
            self.assertEqual(
                lines[5], "| kbeam | 4 | off | pyramid | not run | | | | | `kbeam_m4` |"
            )
            self.assertTrue(lines[6].startswith("| raw (no f_d) | | | | 84.0 [81.7, 86.2] | 92.4"))

    def test_training_seeds_run_apart_and_are_summarised_together(self):
        rows = ablation.seeded([ablation.ROWS["entropy_m2"], ablation.ROWS["grl_m1"]], [0, 1, 2])
        self.assertEqual(
            [r.run_name for r in rows],
            ["entropy_m2", "entropy_m2_seed1", "entropy_m2_seed2"]
            + ["grl_m1", "grl_m1_seed1", "grl_m1_seed2"],
        )
        train, evaluate = ablation.commands(rows[1], "/o", "benchmark", [], 1)
        self.assertEqual(train[train.index("--run_dir") + 1], "/o/entropy_m2_seed1")
        self.assertEqual(train[-2:], ["--set", "trainer.seed=1"])
        self.assertNotIn("trainer.seed=0", train)  # seed 0 is the main job's own run
        self.assertEqual(evaluate[evaluate.index("--run") + 1], "/o/entropy_m2_seed1")
        with tempfile.TemporaryDirectory() as out:
            for name, top1, leakage in (
                ("entropy_m2", 0.801, 0.07),
                ("entropy_m2_seed1", 0.688, 0.32),
                ("entropy_m2_seed2", 0.806, 0.11),
                ("grl_m1", 0.84, 1.0),
            ):
                os.makedirs(os.path.join(out, name))
                with open(os.path.join(out, name, "report.json"), "w") as f:
                    json.dump(_report(top1, 0.6, leakage, 16.5), f)
            lines = ablation.table(rows, out).splitlines()
        self.assertIn("`entropy_m2_seed1` |", lines[3])
        self.assertEqual(
            lines[5],
            "| entropy | 2 | off | pyramid | mean over 3 training seeds: 76.5 (91%), worst 82% "
            "| | 0.17, worst 0.32 | | | `entropy_m2` seeds 0,1,2 |",
        )
        self.assertIn("mean over 1 training seeds (2 not run): 84.0 (100%), worst 100%", lines[9])
        self.assertEqual(lines[9].count("|"), lines[0].count("|"))  # as many columns as the header

    def test_command_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "sweep")
            self.assertEqual(call_main(ablation, f"--out={out}", "--rows=grl_m4", "--dry_run"), 0)
            self.assertFalse(os.path.exists(out))  # a dry run writes nothing
            # A bad override is refused, naming the row, before anything runs.
            rc = call_main(ablation, f"--out={out}", "--set", "adversary.num_models=0")
            self.assertEqual(rc, 2)
            self.assertFalse(os.path.exists(out))
            self.assertEqual(
                call_main(ablation, f"--out={out}", "--rows=grl_m4,kbeam_m1", "--table_only"), 0
            )
            with open(os.path.join(out, "ablation.md")) as f:
                self.assertEqual(f.read().count("not run"), 2)
            with self.assertRaisesRegex(flags.Error, "unknown; the rows are"):
                call_main(ablation, f"--out={out}", "--rows=grl_m3")
            with self.assertRaisesRegex(flags.Error, "--train_seeds 0,0: give distinct"):
                call_main(ablation, f"--out={out}", "--train_seeds=0,0", "--dry_run")
            with self.assertRaisesRegex(flags.Error, "--train_seeds a: give integers"):
                call_main(ablation, f"--out={out}", "--train_seeds=a", "--dry_run")

    def test_row_config_error_names_the_row(self):
        with self.assertRaisesRegex(C.ConfigError, "row grl_m1: .*num_models"):
            ablation.check_rows([ablation.ROWS["grl_m1"]], "benchmark", ["adversary.num_models=-1"])


if __name__ == "__main__":
    unittest.main()
