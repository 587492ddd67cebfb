"""Checks a dataset directory before any training: `python -m tfprivacy.data.check --config NAME`.

Why: the loaders fail fast on malformed annotations, but several defects only surface hours
into a run or never at all: listed videos missing on disk or undecodable (the pipeline skips
them and aborts past data.max_bad_fraction, mid-epoch), an action split left empty because
every video it lists is a PA-HMDB51 video (held out by the protocol), a class without a single
training video, a privacy attribute present in no training frame. This module loads the
records exactly as training does (`sources.build_sources`), probes every listed file (open the
container, decode the first frame; in parallel threads), and turns each defect into a
`Problem` whose message says what is wrong and what to do.

Output: one table per concern (split sizes, privacy labels, class balance), the problems, and a
verdict line, "OK: ..." or "NOT USABLE: N problems"; the command exits 0 or 1.
`require_usable(data_cfg)` is the same check for a trainer to call first: it raises one
`DataError` listing every problem.

The privacy table counts, per split and attribute, the frames (images) with the attribute
present and, for videos, the frames whose label is unknown: no PA-HMDB51 interval covers them
(`pahmdb51.load_annotations` labels them -1; losses and metrics ignore them).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
from absl import flags

from tfprivacy import runtime
from tfprivacy.config import DataConfig
from tfprivacy.data import hmdb51, sources, video_io
from tfprivacy.data.records import PRIVACY_ATTRIBUTES, DataError, ImageRecord, VideoRecord

ERROR, WARNING = "error", "warning"
DEFAULT_WORKERS = min(8, 2 * (os.cpu_count() or 1))

# The directories each real dataset needs, and what belongs in them (for the messages).
_REQUIRED_DIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "hmdb51_pahmdb51": (
        ("hmdb51_dir", "HMDB51's videos as <action>/<video>.avi"),
        ("hmdb51_splits_dir", "HMDB51's split files <action>_test_split<1|2|3>.txt"),
        ("pahmdb51_dir", "PA-HMDB51's annotations <action>.json (PrivacyAttributes/)"),
    ),
    "ucf101_vispr": (
        ("ucf101_dir", "UCF101's videos as <Class>/v_<Class>_gXX_cYY.avi"),
        ("ucf101_splits_dir", "UCF101's classInd.txt, trainlist0N.txt and testlist0N.txt"),
        ("vispr_dir", "VISPR's annotations/<split>/ and images/<split>/"),
    ),
}

# The built-in benchmark is generated, so every defect of it has the same fix.
_REGENERATE = (
    "The generated benchmark is damaged: delete the meta.json of its directory (above these "
    "files; data.data_dir, default under $TFPRIVACY_DATA) and the next run regenerates it"
)
# Real datasets: where a split's files go and which lists name them, for the messages.
_SOURCES = {
    ("hmdb51_pahmdb51", "action"): (
        "data.hmdb51_dir as <action>/<video>.avi",
        "the split files in data.hmdb51_splits_dir",
    ),
    ("hmdb51_pahmdb51", "privacy"): (
        "data.hmdb51_dir as <action>/<video>.avi (PA-HMDB51 videos are HMDB51 videos)",
        "data.pahmdb51_dir and the split files in data.hmdb51_splits_dir",
    ),
    ("ucf101_vispr", "action"): (
        "data.ucf101_dir as <Class>/<video>.avi",
        "trainlist0N.txt/testlist0N.txt in data.ucf101_splits_dir",
    ),
    ("ucf101_vispr", "images"): (
        "data.vispr_dir as images/<split>/<id>.jpg",
        "data.vispr_dir/annotations/<split>",
    ),
}


def _fix(dataset: str, split_name: str, defect: str) -> str:
    """What to do about `defect` ("missing", "undecodable", "no_video", "empty") in a split."""
    if dataset.startswith("benchmark"):
        return _REGENERATE
    where, lists = _SOURCES[(dataset, split_name.split(" ")[0])]
    return {
        "missing": f"Put them under {where}, or remove them from {lists}",
        "undecodable": (
            f"Replace them with intact copies under {where} (download again, or re-encode with "
            f"ffmpeg), or remove them from {lists}"
        ),
        "no_video": f"Add its videos under {where} and list them in {lists}",
        "empty": f"Check {lists}, and that the files are under {where}",
    }[defect]


@dataclasses.dataclass
class Problem:
    """One defect: `severity` is ERROR (not usable) or WARNING; `message` says what to do."""

    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper()}: {self.message}"


@dataclasses.dataclass
class SplitReport:
    """What was listed and found for one split of videos or images."""

    name: str  # "action train", "privacy test", "images train", "action+privacy train", ...
    kind: str  # "videos" | "images"
    listed: int
    missing: list[str] = dataclasses.field(default_factory=list)
    undecodable: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, why)
    held_out: int | None = None  # PA-HMDB51 videos the protocol keeps out of this action split
    # Action classes (video splits): listed and usable (found and decodable) videos per class.
    class_counts: dict[str, int] | None = None
    usable_counts: dict[str, int] | None = None
    # Privacy labels: frames (videos) or images in total, and those with each attribute present.
    labelled: int | None = None
    attribute_counts: dict[str, int] | None = None
    # Video splits: frames whose label of each attribute is unknown (-1, no interval covers it).
    unknown_counts: dict[str, int] | None = None

    @property
    def found(self) -> int:
        return self.listed - len(self.missing)

    @property
    def bad(self) -> int:
        return len(self.missing) + len(self.undecodable)


@dataclasses.dataclass
class CheckReport:
    dataset: str
    split: int
    splits: list[SplitReport] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def verdict(self) -> str:
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        if not self.ok:
            return f"NOT USABLE: {len(self.errors)} problems{warned}"
        videos = sum(s.listed for s in self.splits if s.kind == "videos")
        images = sum(s.listed for s in self.splits if s.kind == "images")
        what = f"{videos} videos" + (f" and {images} images" if images else "")
        return f"OK: data.dataset={self.dataset!r} is usable: {what} checked{warned}"

    def format(self) -> str:
        return format_report(self)


# ---------------------------------------------------------------------------------------------
# Checks


def check_dataset(data_cfg: DataConfig, max_workers: int | None = None) -> CheckReport:
    """Loads `data_cfg`'s records as training does and checks them; never raises DataError.

    The built-in benchmark is generated first if missing (as `build_sources` does).
    max_workers: threads probing files (default DEFAULT_WORKERS).
    """
    report = CheckReport(dataset=data_cfg.dataset, split=data_cfg.split)
    if not _check_dirs(data_cfg, report):
        return report
    try:
        src = sources.build_sources(data_cfg)
    except DataError as err:
        report.problems.append(
            Problem(
                ERROR,
                f"cannot load data.dataset={data_cfg.dataset!r}: {err}. Fix the file or field "
                "named here and run the check again",
            )
        )
        return report
    splits: list[tuple[SplitReport, list]] = []
    action_label = "action+privacy" if src.joint else "action"
    for side, records in (("train", src.action.train), ("test", src.action.test)):
        splits.append((SplitReport(f"{action_label} {side}", "videos", len(records)), records))
    if src.privacy_videos is not None and not src.joint:
        pv = src.privacy_videos
        for side, records in (("train", pv.train), ("test", pv.test)):
            splits.append((SplitReport(f"privacy {side}", "videos", len(records)), records))
    if src.privacy_images is not None:
        for side, records in zip(("train", "test"), src.privacy_images, strict=True):
            splits.append((SplitReport(f"images {side}", "images", len(records)), records))

    results = probe_files(
        [r.path for _, records in splits for r in records], max_workers or DEFAULT_WORKERS
    )
    class_names = src.action.class_names
    for split, records in splits:
        for record in records:
            reason = results[record.path]
            if reason == _MISSING:
                split.missing.append(record.path)
            elif reason is not None:
                split.undecodable.append((record.path, reason))
        if split.kind == "videos":
            _count_classes(split, records, class_names, results)
        _count_attributes(split, records)
        report.splits.append(split)

    explained: set[str] = set()
    if data_cfg.dataset == "hmdb51_pahmdb51":
        explained = _check_held_out(data_cfg, src, report)
    for split, _ in splits:
        _check_split(data_cfg, split, report, explained_empty=split.name in explained)
    _check_classes(data_cfg, report)
    return report


def require_usable(data_cfg: DataConfig, max_workers: int | None = None) -> CheckReport:
    """`check_dataset`, raising one DataError that lists every error; returns the report if OK.

    For a trainer to call before building anything: the message is complete as it stands
    (print it, no traceback needed). Warnings do not raise.
    """
    report = check_dataset(data_cfg, max_workers)
    if not report.ok:
        lines = "\n".join(f"- {p.message}" for p in report.errors)
        raise DataError(
            f"data.dataset={data_cfg.dataset!r} is not usable "
            f"({len(report.errors)} problems; `python -m tfprivacy.data.check` prints the "
            f"full report):\n{lines}"
        )
    return report


_MISSING = "file does not exist"


def probe_file(path: str) -> str | None:
    """None if `path` opens and its first frame decodes; _MISSING, or the reason it does not.

    Images are probed with the same FFmpeg decoder (image2 demuxer) as videos.
    """
    if not os.path.isfile(path):
        return _MISSING
    try:
        video_io.read_video(path, max_frames=1)
    except video_io.VideoReadError as err:
        return err.reason
    except Exception as err:  # one odd file must not stop the check
        return f"cannot decode ({type(err).__name__}: {err})"
    return None


def probe_files(
    paths: Sequence[str], max_workers: int, probe: Callable[[str], str | None] = probe_file
) -> dict[str, str | None]:
    """{path: probe(path)} over the unique paths, probed in parallel threads."""
    unique = list(dict.fromkeys(paths))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return dict(zip(unique, pool.map(probe, unique), strict=True))


def _check_dirs(data_cfg: DataConfig, report: CheckReport) -> bool:
    """Every directory field the dataset needs is set, exists and is not empty."""
    ok = True
    for field, content in _REQUIRED_DIRS.get(data_cfg.dataset, ()):
        value = getattr(data_cfg, field)
        path = os.path.expanduser(value)
        try:
            empty = os.path.isdir(path) and not os.listdir(path)
        except OSError as err:
            report.problems.append(
                Problem(ERROR, f"data.{field}={value!r} cannot be listed ({err}); fix its access")
            )
            ok = False
            continue
        if not value:
            message = (
                f"data.dataset={data_cfg.dataset!r} needs data.{field} (the directory of "
                f"{content}); set it with --set data.{field}=PATH"
            )
        elif not os.path.isdir(path):
            message = (
                f"data.{field}={value!r} does not exist or is not a directory; point it at "
                f"the directory of {content}"
            )
        elif empty:
            message = f"data.{field}={value!r} is empty; put {content} there"
        else:
            continue
        report.problems.append(Problem(ERROR, message))
        ok = False
    return ok


def _count_classes(split: SplitReport, records, class_names, results) -> None:
    split.class_counts = dict.fromkeys(class_names, 0)
    split.usable_counts = dict.fromkeys(class_names, 0)
    for record in records:
        name = class_names[record.action]
        split.class_counts[name] += 1
        split.usable_counts[name] += results[record.path] is None


def _count_attributes(split: SplitReport, records) -> None:
    videos = False
    if records and isinstance(records[0], ImageRecord):
        labels = np.stack([r.labels for r in records])
    elif records and all(
        isinstance(r, VideoRecord) and r.frame_labels is not None for r in records
    ):
        labels = np.concatenate([r.frame_labels for r in records])
        videos = True
    else:
        return
    split.labelled = int(labels.shape[0])
    present = (labels > 0).sum(axis=0)
    split.attribute_counts = {a: int(n) for a, n in zip(PRIVACY_ATTRIBUTES, present, strict=True)}
    if videos:
        unknown = (labels < 0).sum(axis=0)
        split.unknown_counts = {a: int(n) for a, n in zip(PRIVACY_ATTRIBUTES, unknown, strict=True)}


def _too_many_bad(bad: int, total: int, max_bad_fraction: float) -> bool:
    # Mirrors pipeline.BadVideoTracker.too_many: the pipeline counts missing and undecodable
    # inputs of one split against the same fraction, and all-bad always fails.
    return bad > max_bad_fraction * total or (bad > 0 and bad >= total)


def _check_split(
    data_cfg: DataConfig, split: SplitReport, report: CheckReport, explained_empty: bool
) -> None:
    dataset, add = data_cfg.dataset, report.problems.append
    if split.listed == 0:
        if not explained_empty:
            fix = _fix(dataset, split.name, "empty")
            add(Problem(ERROR, f"{split.name} lists no {split.kind}. {fix}"))
        return
    fraction = data_cfg.max_bad_fraction
    severity = ERROR if _too_many_bad(split.bad, split.listed, fraction) else WARNING
    if severity == ERROR:
        limit = (
            f"{split.bad} of {split.listed} missing or undecodable is more than "
            f"data.max_bad_fraction={fraction}, so training would stop"
        )
    else:
        limit = f"within data.max_bad_fraction={fraction}: training skips them"
    if split.missing:
        all_missing = (
            " None of them is there: is the directory field right?"
            if len(split.missing) == split.listed
            else ""
        )
        add(
            Problem(
                severity,
                f"{len(split.missing)} of {split.listed} {split.kind} listed for {split.name} "
                f"are missing ({limit}): {', '.join(split.missing)}. "
                f"{_fix(dataset, split.name, 'missing')}.{all_missing}",
            )
        )
    if split.undecodable:
        listed = "; ".join(f"{path} [{reason}]" for path, reason in split.undecodable)
        add(
            Problem(
                severity,
                f"{len(split.undecodable)} of {split.listed} {split.kind} in {split.name} are "
                f"undecodable ({limit}): {listed}. {_fix(dataset, split.name, 'undecodable')}",
            )
        )
    if split.name.endswith("train") and split.attribute_counts is not None:
        for attribute, count in split.attribute_counts.items():
            if count == 0:
                add(
                    Problem(
                        WARNING,
                        f"privacy attribute {attribute!r} is present in none of the "
                        f"{split.labelled} {'frames' if split.kind == 'videos' else 'images'} "
                        f"of {split.name}: the privacy models cannot learn it and its score "
                        "means nothing; check the annotations or use more data",
                    )
                )


def _check_classes(data_cfg: DataConfig, report: CheckReport) -> None:
    for split in report.splits:
        if split.usable_counts is None or not split.name.startswith("action") or not split.listed:
            continue
        train = split.name.endswith("train")
        for name, usable in split.usable_counts.items():
            if usable:
                continue
            listed = split.class_counts[name]
            if listed:
                what = f"no usable video in {split.name}: its {listed} listed are missing or "
                what += "undecodable (see above)"
            else:
                what = f"no video listed in {split.name}"
            effect = "the target model cannot learn it" if train else "its accuracy goes unmeasured"
            fix = _fix(data_cfg.dataset, split.name, "no_video")
            report.problems.append(
                Problem(ERROR if train else WARNING, f"class {name!r} has {what}; {effect}. {fix}")
            )


def _check_held_out(
    data_cfg: DataConfig, src: sources.DatasetSources, report: CheckReport
) -> set[str]:
    """PA-HMDB51 videos held out of the action split, counted as `sources` holds them out.

    Mirrors sources._hmdb51_pahmdb51: every annotated video (all of which end up in the
    privacy split) is excluded by name from HMDB51's train and test lists. Returns the names
    of the action splits whose emptiness this explained.
    """
    pv = src.privacy_videos
    held_out = {os.path.basename(r.path) for r in pv.train + pv.test}
    splits_dir = os.path.expanduser(data_cfg.hmdb51_splits_dir)
    assignments = hmdb51.read_split_assignments(splits_dir, data_cfg.split)
    listed = {hmdb51.TRAIN: [], hmdb51.TEST: []}
    for videos in assignments.values():
        for video, label in videos.items():
            if label != hmdb51.UNUSED:
                listed[label].append(video)
    counts = {}
    for split in report.splits:
        if split.name in ("action train", "action test"):
            label = hmdb51.TRAIN if split.name == "action train" else hmdb51.TEST
            counts[split.name] = (len(listed[label]), sum(v in held_out for v in listed[label]))
            split.held_out = counts[split.name][1]
    total, held = (sum(c[i] for c in counts.values()) for i in (0, 1))
    hint = (
        f"HMDB51's other videos must be under data.hmdb51_dir "
        f"(data.hmdb51_dir={data_cfg.hmdb51_dir!r}) and listed in the split files under "
        f"data.hmdb51_splits_dir (the released testTrainMulti_7030_splits, split "
        f"{data_cfg.split})"
    )
    if total and held == total:
        report.problems.append(
            Problem(
                ERROR,
                f"the action split is empty because all {total} listed videos are PA-HMDB51 "
                f"videos, which the protocol holds out; {hint}",
            )
        )
        return set(counts)
    explained = set()
    for name, (n, h) in counts.items():
        if n and h == n:
            explained.add(name)
            report.problems.append(
                Problem(
                    ERROR,
                    f"the {name} split is empty because all {n} videos it lists are PA-HMDB51 "
                    f"videos, which the protocol holds out; {hint}",
                )
            )
    return explained


# ---------------------------------------------------------------------------------------------
# Printing


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    """Plain-text columns: the first left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(cells[0]), *(line(r) for r in cells[1:])]


def _min_max(counts: dict[str, int] | None) -> str:
    if not counts:
        return "-"
    return f"{min(counts.values())}/{max(counts.values())}"


def format_report(report: CheckReport) -> str:
    out = [f"Dataset check: data.dataset={report.dataset!r}, data.split={report.split}"]
    if report.splits:
        out += [""]
        out += _table(
            (
                "split",
                "listed",
                "found",
                "missing",
                "undecodable",
                "held out",
                "classes",
                "per class min/max",
            ),
            [
                (
                    s.name,
                    s.listed,
                    s.found,
                    len(s.missing),
                    len(s.undecodable),
                    "-" if s.held_out is None else s.held_out,
                    "-" if s.class_counts is None else len(s.class_counts),
                    _min_max(s.class_counts),
                )
                for s in report.splits
            ],
        )
    labelled = [s for s in report.splits if s.attribute_counts is not None]
    if labelled:
        out += [
            "",
            "privacy labels: frames (images) with each attribute present; below each video "
            "split, its frames with the attribute unknown (no annotation interval covers "
            "them; losses and metrics ignore them)",
        ]
        rows = []
        for s in labelled:
            rows.append((s.name, s.labelled, *s.attribute_counts.values()))
            if s.unknown_counts is not None:
                rows.append(("  unknown", "", *s.unknown_counts.values()))
        out += _table(("split", "frames/images", *PRIVACY_ATTRIBUTES), rows)
    with_classes = [s for s in report.splits if s.class_counts is not None]
    if with_classes:
        names = list(with_classes[0].class_counts)
        out += ["", "class balance: listed videos per class"]
        out += _table(
            ("class", *(s.name for s in with_classes)),
            [(n, *(s.class_counts.get(n, 0) for s in with_classes)) for n in names],
        )
    if report.notes:
        out += [""] + [f"note: {n}" for n in report.notes]
    if report.problems:
        out += [""] + [str(p) for p in report.errors + report.warnings]
    out += ["", report.verdict()]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Command line: its flags in this module's own FlagValues (see tfprivacy.runtime.run_cli).

FLAGS = flags.FlagValues()
runtime.define_config_flags(FLAGS)
flags.DEFINE_integer(
    "workers", DEFAULT_WORKERS, "Threads probing videos and images.", flag_values=FLAGS
)


def main(argv) -> None:
    """Prints the report; exits 0 when the data is usable, 1 otherwise. argv: the program name
    alone (run_cli)."""
    from tfprivacy.config import ConfigError
    from tfprivacy.experiments import get_config

    del argv
    try:
        cfg = get_config(FLAGS.config, list(FLAGS.set))
        report = check_dataset(cfg.data, max_workers=FLAGS.workers)
    except (ConfigError, DataError) as err:  # a bad name or value: a message, no traceback
        sys.exit(f"{type(err).__name__}: {err}")
    print(report.format())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS, tensorflow=False)  # the check never imports TensorFlow
