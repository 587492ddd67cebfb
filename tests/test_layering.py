"""Layering, checked by parsing every import (also those inside functions).

Floors, from the bottom: the floor modules (config, frames, metrics, experiments, losses,
optim, progress, version) -> data, models -> artifacts (run-dir I/O) -> eval, train (neither
imports the other) -> the entry points (trainers/, serving/, benchmarks/, configs/), which the
library never imports.
"""

import ast
import os
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("trainers", "configs", "serving", "benchmarks")
# package -> tfprivacy packages it must not import
FORBIDDEN = {
    # run-dir I/O: above the models (it rebuilds f_d), below the evaluation and the trainer
    "tfprivacy.artifacts": ("tfprivacy.eval", "tfprivacy.train", "tfprivacy.data"),
    "tfprivacy.data": ("tfprivacy.eval", "tfprivacy.train", "tfprivacy.models"),
    "tfprivacy.models": ("tfprivacy.eval", "tfprivacy.train", "tfprivacy.data"),
    "tfprivacy.eval": ("tfprivacy.train",),
    "tfprivacy.train": ("tfprivacy.eval",),
}
FLOOR = ("config", "frames", "metrics", "experiments", "losses", "optim", "progress", "version")


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # "from tfprivacy import eval" imports tfprivacy.eval
                yield node.lineno, f"{node.module}.{alias.name}"


def _violations():
    out = []
    for folder, _, files in os.walk(os.path.join(ROOT, "tfprivacy")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            module = rel[:-3].replace(os.sep, ".").removesuffix(".__init__")
            for line, imported in _imports(path):
                top = imported.split(".")[0]
                where = f"{rel}:{line} imports {imported}"
                if top in ENTRY_POINTS:
                    out.append(f"{where} (the library never imports entry points)")
                for package, banned in FORBIDDEN.items():
                    if module.startswith(package + ".") or module == package:
                        for b in banned:
                            if imported == b or imported.startswith(b + "."):
                                out.append(f"{where} ({package} must not import {b})")
                if module in {f"tfprivacy.{f}" for f in FLOOR} and imported.startswith(
                    ("tfprivacy.data", "tfprivacy.models", "tfprivacy.eval", "tfprivacy.train")
                ):
                    out.append(f"{where} (a floor module imports only the floor)")
    return out


class LayeringTest(unittest.TestCase):
    def test_no_import_crosses_a_floor(self):
        self.assertEqual(_violations(), [])

    def test_the_checker_sees_a_violation(self):
        imports = dict(
            (name, line) for line, name in _imports(os.path.join(ROOT, "tests", "test_layering.py"))
        )
        self.assertIn("ast", imports)  # imports inside the file are found
        tree = "def f():\n    from trainers import adversarial_lib\n"
        found = [n.module for n in ast.walk(ast.parse(tree)) if isinstance(n, ast.ImportFrom)]
        self.assertEqual(found, ["trainers"])


if __name__ == "__main__":
    unittest.main()
