"""The Trainer's public hooks (tfprivacy/train/callbacks.py), and the benchmarks' use of them.

Tools built on the Trainer (benchmarks/) use its public API only: callbacks, public
attributes and functions. The check parses every benchmark (also imports inside functions,
as tests/test_layering.py does) and flags
- an import of an underscore name from tfprivacy.train;
- an attribute `x._name` where x is a tfprivacy.train module or name the file imported;
- an attribute `._name` where `_name` is a private name tfprivacy.train defines (a function,
  method, class, module global or `self._name` attribute) and the benchmark does not define
  itself (its own helpers may share a name);
- a method `_name` of a class derived from a tfprivacy.train class, where `_name` is such a
  private name (an override of a private method).
"""

import ast
import os
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = "tfprivacy.train"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _parse(path):
    with open(path) as f:
        return ast.parse(f.read(), path)


def _train_modules() -> dict:
    """{module name: parsed tree} of tfprivacy/train."""
    folder = os.path.join(ROOT, *TRAIN.split("."))
    return {
        f"{TRAIN}.{file[:-3]}": _parse(os.path.join(folder, file))
        for file in sorted(os.listdir(folder))
        if file.endswith(".py") and file != "__init__.py"
    }


def _train_private_names() -> set:
    """Every private name tfprivacy/train defines: defs, classes, globals, self._x attributes."""
    names = set()
    for tree in _train_modules().values():
        names |= _defined_names(tree)
    return {n for n in names if _is_private(n)}


def _defined_names(tree) -> set:
    """Names defined under `tree`: defs, classes, arguments, assigned names, self.x attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _class_private_names(qualified: str) -> set:
    """Private names the tfprivacy.train class `qualified` (module.Class) defines."""
    module, _, cls = qualified.rpartition(".")
    tree = _train_modules().get(module)
    for node in tree.body if tree else []:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {n for n in _defined_names(node) if _is_private(n)}
    return set()


def _train_imports(tree) -> dict:
    """{local name: what it names} for the file's imports of tfprivacy.train modules and names."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == TRAIN or alias.name.startswith(TRAIN + "."):
                    out[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == TRAIN or node.module.startswith(TRAIN + "."):
                for alias in node.names:
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _root(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _on_self_or_super(node: ast.Attribute) -> bool:
    value = node.value
    if isinstance(value, ast.Name):
        return value.id == "self"
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def private_uses(source: str, name: str = "<source>", train_private=None) -> list:
    """Where `source` (a module's text) touches a private name of tfprivacy.train."""
    train_private = _train_private_names() if train_private is None else train_private
    tree = ast.parse(source, name)
    imported = _train_imports(tree)
    out = []
    # Classes derived from tfprivacy.train classes: overriding or calling the base's private
    # names (self._x, super()._x, def _x) is touching them.
    inherited_all = set()
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        inherited = set()
        for base in cls.bases:
            root = _root(base)
            if root in imported:
                dotted = ast.unparse(base).split(".")
                inherited |= _class_private_names(".".join([imported[root], *dotted[1:]]))
        inherited_all |= inherited
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef) and node.name in inherited:
                out.append(f"{name}:{node.lineno} {cls.name} overrides private {node.name}")
            elif isinstance(node, ast.Attribute) and node.attr in inherited:
                if _on_self_or_super(node):
                    out.append(f"{name}:{node.lineno} {cls.name} uses {ast.unparse(node)}")
    own = _defined_names(tree) - set(imported) - inherited_all
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(TRAIN):
            for alias in node.names:
                if _is_private(alias.name):
                    out.append(f"{where} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            if _on_self_or_super(node) and node.attr in inherited_all:
                continue  # reported above
            if _root(node.value) in imported:
                out.append(f"{where} reads {ast.unparse(node)} (private in {TRAIN})")
            elif node.attr in train_private and node.attr not in own:
                out.append(f"{where} touches {ast.unparse(node)} (private in {TRAIN})")
    return out


def _violations():
    train_private = _train_private_names()
    out = []
    folder = os.path.join(ROOT, "benchmarks")
    for file in sorted(os.listdir(folder)):
        if file.endswith(".py"):
            with open(os.path.join(folder, file)) as f:
                out += private_uses(f.read(), f"benchmarks/{file}", train_private)
    return out


class BenchmarksUsePublicApiTest(unittest.TestCase):
    def test_no_benchmark_touches_a_private_name_of_the_trainer(self):
        self.assertEqual(_violations(), [])

    def test_the_checker_sees_each_kind_of_violation(self):
        names = _train_private_names()
        self.assertIn("_adversarial_step", names)  # a method
        self.assertIn("_counts", names)  # a self._x attribute
        self.assertIn("_one_line", names)  # a module function
        source = (
            "from tfprivacy.train.loop import Trainer\n"
            "from tfprivacy.train import loop as L\n"
            "def f(trainer, streams):\n"
            "    from tfprivacy.train.streams import _x\n"
            "    L._one_line(None)\n"
            "    streams._counts = [0, 0]\n"
            "    trainer.players._judge_train\n"
            "    class Sub(Trainer):\n"
            "        def _end_phase(self, name):\n"
            "            super()._end_phase(name)\n"
            "            self._own()\n"
            "        def _own(self):\n"
            "            return self._below\n"
        )
        found = private_uses(source, "x.py", names)
        lines = sorted(int(v.split(" ", 1)[0].split(":")[1]) for v in found)
        self.assertEqual(lines, [4, 5, 6, 7, 9, 10, 13], found)
        # A benchmark's own private helpers, also on a callback it derives, are its own.
        own = (
            "from tfprivacy.train.callbacks import TrainerCallback\n"
            "class C(TrainerCallback):\n"
            "    def on_phase_end(self, trainer, name):\n"
            "        self._probe(trainer)\n"
            "    def _probe(self, trainer):\n"
            "        self._check = 1\n"
            "        return trainer.players.new_privacy_model(0)\n"
        )
        self.assertEqual(private_uses(own, "ok.py", names), [])


class TrainerHooksTest(unittest.TestCase):
    def test_hooks_fire_in_phase_order_with_step_numbers(self):
        from configs import get_config
        from tfprivacy.train.callbacks import TrainerCallback
        from tfprivacy.train.game import PHASES
        from tfprivacy.train.loop import Trainer

        events = []

        class Recorder(TrainerCallback):
            def __init__(self, tag):
                self.tag = tag
                self.figures = {}
                self.assertions = []

            def on_train_begin(self, trainer):
                events.append((self.tag, "train_begin", trainer.phase_name))

            def on_phase_begin(self, trainer, name):
                events.append((self.tag, "phase_begin", name, trainer.phase_step))

            def on_adversarial_step_begin(self, trainer, step):
                events.append((self.tag, "step_begin", step, trainer.phase_step))

            def on_adversarial_step_end(self, trainer, step, figures):
                events.append((self.tag, "step_end", step, trainer.phase_step))
                self.figures[step] = figures

            def on_phase_end(self, trainer, name):
                # Before the phase's end-of-phase figures (and the phase counter's advance).
                events.append((self.tag, "phase_end", name, trainer.phase_step))
                self.assertions.append(trainer.phase_name == name)
                if name == "adversarial":
                    self.assertions.append("adversarial" not in trainer.results)

            def on_train_end(self, trainer, summary):
                events.append((self.tag, "train_end", trainer.phase_name, "degraded" in summary))

        first, second = Recorder("a"), Recorder("b")
        run_dir = self.enterContext(tempfile.TemporaryDirectory())
        # identity_tolerance=0: the identity phase runs its steps (never skipped).
        cfg = get_config(
            "benchmark_tiny", [f"trainer.run_dir={run_dir}", "trainer.identity_tolerance=0"]
        )
        t = cfg.trainer
        lengths = {
            "identity": t.identity_steps,
            "pretrain_target": t.pretrain_target_steps,
            "pretrain_privacy": t.pretrain_privacy_steps,
            "adversarial": t.adversarial_steps,
            "attack": t.attack_steps,
        }
        self.assertEqual(list(lengths), list(PHASES[:-1]))
        self.assertGreater(t.adversarial_steps, 1)
        trainer = Trainer(cfg, callbacks=[first, second])
        self.assertEqual(events, [])  # nothing fires before train()
        trainer.train()

        expected = [("train_begin", "identity")]
        for name, n in lengths.items():
            expected.append(("phase_begin", name, 0))
            if name == "adversarial":
                for k in range(n):
                    expected += [("step_begin", k, k), ("step_end", k, k + 1)]
            expected.append(("phase_end", name, n))
        expected.append(("train_end", "done", True))
        # Each hook reaches the callbacks in the order given: a, then b.
        self.assertEqual(events[0::2], [("a", *e) for e in expected])
        self.assertEqual(events[1::2], [("b", *e) for e in expected])
        self.assertTrue(all(first.assertions) and len(first.assertions) == len(lengths) + 1)
        # The step's figures, checked and as host values.
        self.assertEqual(sorted(first.figures), list(range(t.adversarial_steps)))
        for figures in first.figures.values():
            self.assertIn("privacy_loss", figures)
            for value in figures.values():
                for v in value if isinstance(value, list) else [value]:
                    self.assertIsInstance(v, float)

    def test_a_callback_without_the_hooks_is_refused(self):
        from configs import get_config
        from tfprivacy.train.loop import Trainer

        run_dir = self.enterContext(tempfile.TemporaryDirectory())
        cfg = get_config("benchmark_tiny", [f"trainer.run_dir={run_dir}"])
        with self.assertRaisesRegex(TypeError, "lacks on_train_begin.*TrainerCallback"):
            Trainer(cfg, callbacks=[object()])


if __name__ == "__main__":
    unittest.main()
