"""Every `python -m MODULE` command that README.md shows in a code block still exists: each
module, started from the repository root as the README starts it, answers `--helpfull` with exit
status 0. A renamed or removed command line fails here instead of in a user's terminal.

The project's command lines parse their flags through tfprivacy.runtime.run_cli before
TensorFlow is imported, so most answer in well under a second; those that import TF while
importing the module (the serving ones, trainers.evaluate, benchmarks.quantized_eval) took 5 to 9 s
on the 2-core machine beside a training job, hence the generous timeout.
"""

import os
import re
import unittest

from absl.testing import parameterized

from tests.subprocess_util import ROOT, run_python

README = os.path.join(ROOT, "README.md")

# `python -m X` lines of the README that start tools, not the project's command lines.
NOT_OURS = frozenset({"pip", "venv", "pytest"})

# `python -m pkg.module` or `.venv/bin/python3 -m pkg.module`, anywhere in a line.
_COMMAND = re.compile(r"(?:^|[\s/(&;|])python3?\s+-m\s+([A-Za-z_][\w.]*)")

HELP_TIMEOUT_S = 120


def code_blocks(text: str) -> list[str]:
    """The text of every fenced (```) code block and every inline `code` span of `text`."""
    blocks, rest, inside, lines = [], [], False, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if inside:
                blocks.append("\n".join(lines))
                lines = []
            inside = not inside
            continue
        (lines if inside else rest).append(line)
    blocks.extend(re.findall(r"`([^`\n]+)`", "\n".join(rest)))
    return blocks


def readme_modules(text: str) -> list[str]:
    """The distinct modules run with `python -m` in the code of `text`, in order of appearance."""
    found: dict[str, None] = {}
    for block in code_blocks(text):
        for module in _COMMAND.findall(block):
            found.setdefault(module.rstrip("."), None)
    return list(found)


def _readme_text() -> str:
    with open(README, encoding="utf-8") as f:
        return f.read()


OURS = [m for m in readme_modules(_readme_text()) if m.split(".")[0] not in NOT_OURS]


class ParseTest(unittest.TestCase):
    def test_finds_commands_in_fences_and_inline_code_only(self):
        text = "\n".join(
            [
                "Run `python -m tools.inline --x 1` or read python -m prose.only here.",
                "```bash",
                "python3 -m venv .venv && .venv/bin/python -m pkg.first --flag",
                "  python -m pkg.second && python -m pkg.first",
                "```",
            ]
        )
        self.assertEqual(readme_modules(text), ["venv", "pkg.first", "pkg.second", "tools.inline"])

    def test_readme_names_the_main_commands(self):
        self.assertIn("trainers.adversarial", OURS)
        self.assertIn("trainers.evaluate", OURS)


class ReadmeCommandsTest(parameterized.TestCase):
    @parameterized.named_parameters((module.replace(".", "_"), module) for module in OURS)
    def test_helpfull(self, module):
        # Without TF_CPP_MIN_LOG_LEVEL (conftest sets it): started as a user starts it.
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        result = run_python("-m", module, "--helpfull", env=env, timeout=HELP_TIMEOUT_S)
        self.assertEqual(
            result.returncode,
            0,
            f"README names `python -m {module}`, whose --helpfull exited "
            f"{result.returncode}:\n{result.stderr[-2000:]}",
        )
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    unittest.main()
