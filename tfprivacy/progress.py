"""Progress bars: one tqdm line per loop, or a silent stand-in when progress is off.

Every progress bar of the library comes from here (the benchmark generator's, the
evaluation's, the trainer's), so they share one tqdm setup; tqdm is imported only when a bar
is shown. A floor module: it imports nothing from tfprivacy.
"""

from __future__ import annotations

from collections.abc import Iterable


class NoBar:
    """What progress_bar returns when progress is off: every call a bar takes, doing nothing."""

    def __init__(self, total: int | None = None):
        self.total = total or 0

    def update(self, n=1):
        pass

    def refresh(self):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def progress_bar(
    total: int | None,
    desc: str,
    *,
    enabled: bool = True,
    unit: str = "it",
    initial: int = 0,
    leave: bool = False,
    mininterval: float = 1.0,
):
    """A tqdm bar to update by hand (update, set_postfix, close); a NoBar when not enabled.

    mininterval: seconds between redraws, so the log of a run that is not on a terminal gets
    a line per second (the default), not one per update.
    """
    if not enabled:
        return NoBar(total)
    return _tqdm(
        None, total, desc, unit=unit, leave=leave, mininterval=mininterval, initial=initial
    )


def progress_iter(
    iterable: Iterable,
    total: int | None,
    desc: str,
    *,
    enabled: bool = True,
    unit: str = "it",
    leave: bool = False,
    mininterval: float = 1.0,
) -> Iterable:
    """`iterable` with a tqdm bar advancing per item; `iterable` itself when not enabled."""
    if not enabled:
        return iterable
    return _tqdm(iterable, total, desc, unit=unit, leave=leave, mininterval=mininterval)


def _tqdm(iterable, total, desc, **kwargs):
    """The one tqdm setup every bar shares (imported only when a bar is shown)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, **kwargs)
