"""Calling a command line's main() in the test process, its flags parsed as `python -m` would."""

import contextlib
import logging

from tfprivacy import runtime


def call_main(module, *args: str):
    """`module.main` with `args` parsed into `module.FLAGS` from the defaults (the way
    tfprivacy.runtime.run_cli parses them); returns main's exit status.

    Raises absl's flags.Error where the command line would exit with a usage error.
    """
    return module.main(runtime.parse_flags(module.FLAGS, [module.__name__, *args]))


class _Collect(logging.Handler):
    def __init__(self, level, messages):
        super().__init__(level)
        self.messages = messages

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def logged(name: str, level: int = logging.WARNING):
    """The messages logger `name` emits at `level` or above inside the block, as a list (unlike
    assertLogs, none is no failure)."""
    messages: list[str] = []
    logger = logging.getLogger(name)
    handler = _Collect(level, messages)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
