"""Trained degraders shipped with the package: each a run dir of its own, read by the tools.

    python -m serving.export --pretrained pyramid --out models
    python -m serving.tflite --pretrained pyramid --out tflite_models --quant int8

`tfprivacy/pretrained/<name>/` holds what a run dir holds for the tools that read a trained
f_d (config.json, degrader.weights.h5) plus the run's summary.json and the ruler's report.md,
so a shipped degrader carries its own evidence. Rebuilt from a finished run, in a source
checkout (then committed), with

    python -m tfprivacy.pretrained --run runs/default --name pyramid

(after `python -m trainers.adversarial`, the main job, which trains and evaluates it). Where
tfprivacy is an installed package (site-packages), its folder is not written to: `--out DIR`
names the folder that receives DIR/NAME, which the tools then read with `--run DIR/NAME`.

Roles: `light` names the camera degrader, whichever shipped degrader holds that role (ALIASES):
today the pyramid itself (43 KB int8, 281 frames/s at 224x224 on one thread), because the conv
`light` architecture trained under the same game hides nothing under the ruler
(docs/results.md, "The paper's ablation on the benchmark"), and a filter that hides nothing is
not shipped as a privacy filter. No conv `full` f_d is shipped either: under the same game it
hides less than the pyramid and keeps no more action, and `--pretrained full` is refused with
that reason (NOT_SHIPPED).
"""

from __future__ import annotations

import os
import shutil
import site
import sysconfig

from tfprivacy import artifacts

ROOT = os.path.dirname(os.path.abspath(__file__))
FILES = (artifacts.CONFIG_FILE, artifacts.DEGRADER_WEIGHTS)
EVIDENCE = (artifacts.SUMMARY_FILE, "report.md")
# Role -> the shipped degrader that fills it.
ALIASES = {"light": "pyramid"}
# Names a user may expect that are deliberately not shipped -> why, and what to use instead.
NOT_SHIPPED = {
    "full": "the conv `full` f_d trained under the main job's game hides less than the pyramid "
    "under the ruler and keeps no more action (docs/results.md: the ablation), so it is not "
    "shipped; --pretrained pyramid is the shipped degrader, for servers and cameras alike",
}


def _shipped(root: str) -> list[str]:
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, FILES[1])))


def names(root: str = ROOT) -> list[str]:
    """The names --pretrained takes: the shipped degraders (folders of `root` holding f_d's
    weights) and the roles of ALIASES whose degrader is shipped."""
    shipped = _shipped(root)
    return shipped + sorted(a for a, d in ALIASES.items() if d in shipped and a not in shipped)


def path(name: str, root: str = ROOT) -> str:
    """The run dir of the shipped degrader `name` (or of the one an alias names); a clear error
    naming the known ones."""
    folder = ALIASES[name] if name in ALIASES and name not in _shipped(root) else name
    d = os.path.join(root, folder)
    if os.sep in name or name.startswith(".") or not os.path.isfile(os.path.join(d, FILES[1])):
        raise artifacts.RunDirError(_unknown(name, root))
    return d


def _unknown(name: str, root: str = ROOT) -> str:
    why = f" ({NOT_SHIPPED[name]})" if name in NOT_SHIPPED else ""
    return f"no pretrained degrader {name!r}{why}; shipped: {', '.join(names(root)) or 'none'}"


def _installed_dirs() -> list[str]:
    """The folders pip installs packages into, for this interpreter and its user."""
    dirs = [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    dirs += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    dirs.append(site.getusersitepackages())
    return [os.path.realpath(d) for d in dirs if d]


def ship_root(root: str | None = None) -> str:
    """The folder `ship` writes into: `root` when given; else this package's own folder, but
    only in a source checkout (setup.py beside the tfprivacy package, an editable install too),
    never an installed package's folder in site-packages."""
    if root:
        return root
    here = os.path.realpath(ROOT)
    checkout = os.path.dirname(os.path.dirname(here))
    installed = any(os.path.commonpath([here, d]) == d for d in _installed_dirs())
    if installed or not os.path.isfile(os.path.join(checkout, "setup.py")):
        raise ValueError(
            f"tfprivacy is installed at {os.path.dirname(here)}, not a source checkout: "
            "shipping into its package folder would change the installed package (and the "
            "next pip install would drop it); give --out DIR to write DIR/NAME, then use it "
            "with --run DIR/NAME, or ship from a checkout of the repository"
        )
    return ROOT


def ship(run_dir: str, name: str, root: str | None = None) -> str:
    """Copies a finished run's f_d and its evidence into `root`/`name` (see `ship_root`: the
    package's own folder only in a source checkout); returns that folder."""
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"pretrained name {name!r}: one plain folder name, please")
    for f in FILES:
        if not os.path.isfile(os.path.join(run_dir, f)):
            raise artifacts.RunDirError(f"{os.path.join(run_dir, f)}: missing; did it finish?")
    out = os.path.join(ship_root(root), name)
    os.makedirs(out, exist_ok=True)
    for f in FILES + EVIDENCE:
        src = os.path.join(run_dir, f)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out, f))
    return out


def define_source_flags(flag_values) -> None:
    """--run RUN_DIR or --pretrained NAME (exactly one), checked at parse time."""
    from absl import flags

    flags.DEFINE_string("run", None, "training run directory", flag_values=flag_values)
    flags.DEFINE_string(
        "pretrained",
        None,
        f"a degrader shipped with the package instead of --run: {', '.join(names())}",
        flag_values=flag_values,
    )
    flags.register_multi_flags_validator(
        ["run", "pretrained"],
        lambda v: (v["run"] is None) != (v["pretrained"] is None),
        message="give exactly one of --run RUN_DIR and --pretrained NAME",
        flag_values=flag_values,
    )

    @flags.validator("pretrained", flag_values=flag_values)
    def _known(name) -> bool:
        if name is not None and name not in names():
            raise flags.ValidationError(f"--pretrained: {_unknown(name)}")
        return True


def source_dir(flag_values) -> str:
    """The run dir the source flags name."""
    if flag_values.pretrained is not None:
        return path(flag_values.pretrained)
    return flag_values.run
