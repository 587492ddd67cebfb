"""Process start-up for the command lines: TensorFlow imported without its CPU-only chatter.

On a machine without an NVIDIA device, importing the CUDA build of TensorFlow prints a dozen
C++ lines before anything of ours ("Could not find cuda drivers", "failed call to cuInit:
UNKNOWN ERROR (303)", oneDNN and CPU-feature notes), written before absl's logging is set up,
so TF_CPP_MIN_LOG_LEVEL does not silence them. `import_tensorflow()` captures stderr while TF
loads and initialises its devices, and passes on every line except those known notes. With an
NVIDIA device (or TFPRIVACY_TF_VERBOSE=1) nothing is captured: the GPU build still reports its
devices. Without one, TF's C++ warnings are off too (TF_CPP_MIN_LOG_LEVEL=2 unless the user
set it).

`run_cli(main, FLAGS)` is the start of every command line (serving/, benchmarks/, trainers/,
tfprivacy.data.check, tfprivacy.pretrained): absl flags from the module's own FlagValues, a bad
value refused before any work, then TensorFlow imported quietly (unless the command line does
not use it), `quiet_logs()`, and `main(argv)`.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile

# The start-up notes of a CUDA build of TF on a CPU-only machine (not errors of a run).
_CHATTER = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"cudart_stub\.cc|Could not find cuda drivers|cpu_feature_guard\.cc|"
    r"To enable the following instructions|failed call to cuInit|cuda_platform\.cc|"
    r"computation placer already registered|Unable to register cu(DNN|FFT|BLAS) factory"
)


def has_nvidia_device() -> bool:
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def import_tensorflow():
    """Imports TensorFlow (and lists its devices) with the CPU-only start-up notes dropped;
    returns the module."""
    if has_nvidia_device() or os.environ.get("TFPRIVACY_TF_VERBOSE") == "1":
        import tensorflow as tf

        return tf
    # 2: TF's C++ warnings off as well as its INFO lines, unless the user set the level (errors
    # still print). During training TF's graph optimiser logs a 25-line type-inference dump
    # ("is neither a subtype nor a supertype ... while inferring type of node 'cond/output'")
    # for the tf.data iterator inside a tf.while_loop: a warning about TF's own graph, not
    # the run's, that reads like an error. TFPRIVACY_TF_VERBOSE=1 shows everything.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device initialisation logs the cuInit line
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines()
                if line.strip() and not _CHATTER.search(line)
            ]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
    return tf


_VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def cpu_description() -> str:
    """The CPU's model name and the vector extensions TF's kernels care about, from
    /proc/cpuinfo (Linux); 'unknown CPU' elsewhere."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        return model
    found = [name for name in _VECTOR_FLAGS if name in flags]
    return f"{model} ({', '.join(found) if found else 'no AVX2'})"


def onednn_status() -> str:
    """Whether the loaded TensorFlow runs its oneDNN kernels, and why: 'on' or 'off', with
    the TF_ENABLE_ONEDNN_OPTS value that decided it (tfprivacy/__init__ sets 1 unless the user
    set it). TF reads the variable when it loads, so this asks TF itself."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    try:
        from tensorflow.python.util import _pywrap_util_port

        on = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return f"unknown (TF_ENABLE_ONEDNN_OPTS={value})"
    return f"{'on' if on else 'off'} (TF_ENABLE_ONEDNN_OPTS={value})"


def quiet_logs() -> None:
    """Progress bars and summaries are the output; TF's and absl's INFO chatter is not."""
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------
# Command lines: absl flags, one way for every `python -m ...` of the project.
#
# Those modules import one another (serving.server imports serving.export, serving.edge imports
# serving.tflite, ...), so each keeps its flags in its own FlagValues (`FLAGS` at module level)
# rather than absl's global one, where two modules' --run or --out would collide. `run_cli`
# puts the flags of the module being run, and only those, on the command line.


def expand_list_flags(argv: list[str], flag_values) -> list[str]:
    """argv with `--name a b c` written `--name=a --name=b --name=c` for each multi-valued flag
    of `flag_values`: such a flag takes its values as argparse's nargs did (those that follow
    it, up to the next argument starting with '-'), as well as absl's repeated --name=a.

    Raises flags.Error for a multi-valued flag given no value.
    """
    from absl import flags

    multi = {name for name in flag_values if isinstance(flag_values[name], flags.MultiFlag)}
    out, i = [argv[0]], 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out += argv[i - 1 :]
            break
        name = arg.lstrip("-")
        if not arg.startswith("-") or "=" in name or name not in multi:
            out.append(arg)
            continue
        values = []
        while i < len(argv) and not argv[i].startswith("-"):
            values.append(argv[i])
            i += 1
        if not values:
            raise flags.Error(f"flag --{name}: give at least one value")
        out += [f"--{name}={value}" for value in values]
    return out


def define_config_flags(
    flag_values,
    config_default: str | None = "benchmark",
    config_help: str = "Named experiment (configs/experiments.py).",
    set_help: str = "Config override part.field=value (repeatable).",
) -> None:
    """--config NAME and the repeatable --set part.field=value, the pair every command line
    that builds an experiment config takes."""
    from absl import flags

    flags.DEFINE_string("config", config_default, config_help, flag_values=flag_values)
    flags.DEFINE_multi_string("set", [], set_help, flag_values=flag_values)


def parse_flags(flag_values, argv: list[str]) -> list[str]:
    """Parses `argv` (program name first) into `flag_values` from their defaults; returns what
    `main(argv)` of a `run_cli` command line receives. For tests, which call main directly.

    Raises flags.Error (a bad value, a missing required flag, an unexpected argument).
    """
    flag_values.unparse_flags()
    rest = flag_values(expand_list_flags(list(argv), flag_values))
    _no_positional_arguments(rest)
    return rest


def _no_positional_arguments(rest: list[str]) -> None:
    from absl import flags

    if len(rest) > 1:
        raise flags.Error(f"unexpected argument(s): {' '.join(rest[1:])} (flags are --name=value)")


def run_cli(main, flag_values, tensorflow: bool = True) -> None:
    """`app.run(main)` with the flags of `flag_values` (the running module's FLAGS) on the
    command line, beside absl's own (--helpfull lists them all; --flagfile, --verbosity).

    A bad flag value (an unknown choice names the allowed ones), a missing required flag or a
    stray argument: absl's usage error, status 1, before any work. --help (-h) and --helpfull
    print the help and exit 0. Then TensorFlow is imported by `import_tensorflow` (without its
    CPU-only start-up notes; a module importing TF at the top calls it first itself, when run
    as __main__), TF's and absl's INFO lines are silenced by `quiet_logs` unless --verbosity was
    given, and `main(argv)` runs; its return value is the exit status. `tensorflow=False`: a
    command line that never uses TF (the dataset check) starts without importing it.
    """
    import textwrap

    from absl import app, flags

    flags.FLAGS.append_flag_values(flag_values)
    for module, defined in flag_values.flags_by_module_dict().items():
        for flag in defined:  # --help lists the running module's flags under its name
            flags.FLAGS.register_flag_by_module(module, flag)

    def parse(argv):
        argv = [arg if arg != "-h" else "--help" for arg in argv]  # argparse's -h, still
        try:
            rest = flags.FLAGS(expand_list_flags(argv, flag_values))
            _no_positional_arguments(rest)
        except flags.Error as err:  # what app.parse_flags_with_usage prints
            message = str(err)
            if "\n" in message:
                message = "\n" + textwrap.indent(message, "  ")
            sys.stderr.write(f"FATAL Flags parsing error: {message}\n")
            sys.stderr.write("Pass --helpshort or --helpfull to see help on flags.\n")
            sys.exit(1)
        except SystemExit as stop:  # only absl's help flags exit while parsing, with 1
            raise SystemExit(0 if stop.code == 1 else stop.code) from None
        flag_values.mark_as_parsed()
        return rest

    def start(argv):
        # Quiet before TensorFlow loads: absl turns INFO on once the flags are parsed, and
        # what TF imports logs at INFO (matplotlib's first-use "generated new fontManager").
        if not flags.FLAGS["verbosity"].present:
            quiet_logs()
        if tensorflow:
            import_tensorflow()
        return main(argv)

    app.run(start, flags_parser=parse)
