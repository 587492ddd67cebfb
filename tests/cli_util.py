"""Calling a command line's main() in the test process, its flags parsed as `python -m` would."""

from tfprivacy import runtime


def call_main(module, *args: str):
    """`module.main` with `args` parsed into `module.FLAGS` from the defaults (the way
    tfprivacy.runtime.run_cli parses them); returns main's exit status.

    Raises absl's flags.Error where the command line would exit with a usage error.
    """
    return module.main(runtime.parse_flags(module.FLAGS, [module.__name__, *args]))
