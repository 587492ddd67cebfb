"""The served versions of each model: finding, loading, polling and retrying them.

Part of serving.server (the entry point, `python -m serving.server`): `resolve_models` turns
its --model_base_path or --model_config_file into one `ServedModel` per model name, and the
server's poll thread calls `ServedModel.refresh` every --poll_seconds.

MODEL_BASE (--model_base_path) is either a model's version folder (TF Serving's
--model_base_path) or the export root holding <model_name>/<version>/ (what serving.export
writes); --model_config_file reads TF Serving's models.config instead. Like TF Serving's default
version policy, the newest version of each model is served and newer ones are polled for;
dot-folders (exports in progress) are ignored.

Versions that fail to load are retried, not remembered as broken forever. serving.export never
needs this: it writes a dot-folder and renames it into place, so a version folder appears
complete or not at all. A version copied in by other means (cp -r, rsync, an object-store
sync) can be seen half-written: variables/ present and saved_model.pb still on its way, or a
file truncated. Such a version is retried up to --max_load_retries times with exponential
backoff from --load_retry_seconds (TF Serving: --max_num_load_retries, 5), and again whenever
its files change (their sizes and mtimes), once they have stopped changing for one poll. The
served version stays in service until a newer one loads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import signatures as S
from serving.backoff import Backoff
from serving.export import list_versions

log = logging.getLogger("serving.versions")


@dataclasses.dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How a version that fails to load is retried (see the module doc).

    retries: loads after the first failed one, per unchanged contents; then the version is
      given up until its files change.
    base_seconds: the wait before the first retry, doubling per retry up to max_seconds.
    """

    retries: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 60.0
    FLAGS = ("--max_load_retries", "--load_retry_seconds")


@dataclasses.dataclass
class LoadedVersion:
    version: int
    path: str
    signatures: dict  # key -> concrete function
    signature_defs: dict  # key -> meta_graph_pb2.SignatureDef
    loaded: object  # keeps the restored object (and its variables) alive
    # What the graph pads H and W to (serving.export's `spatial_multiple` function); 1 for a
    # SavedModel without it (pixels are then counted as declared).
    spatial_multiple: int = 1


def _spatial_multiple(loaded, path: str) -> int:
    """The multiple a loaded SavedModel pads H and W to, or 1 when it does not say."""
    fn = getattr(loaded, S.SPATIAL_MULTIPLE_FN, None)
    if fn is None or not callable(fn):
        return 1
    try:
        multiple = int(fn())
    except Exception as e:  # not serving.export's function: serve it, count pixels as sent
        log.warning("%s: %s() failed (%s); counting pixels unpadded", path, fn, e)
        return 1
    if multiple < 1:
        raise ValueError(f"{path}: {S.SPATIAL_MULTIPLE_FN}() is {multiple}, expected >= 1")
    return multiple


@dataclasses.dataclass
class LoadFailure:
    """A version folder that failed to load, and when to try it again."""

    fingerprint: tuple  # the folder's files as last seen, see _fingerprint
    failures: int  # consecutive failed loads of these contents; 0 after a change
    retry_at: float  # time.monotonic() of the next attempt
    error: str


def _load_version(path: str, version: int) -> LoadedVersion:
    loaded = tf.saved_model.load(path)
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto = saved_model_pb2.SavedModel.FromString(f.read())
    serve = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    if not serve:
        raise ValueError(f"{path}: no MetaGraph tagged 'serve'")
    # Keep only callable signatures; __saved_model_init_op is bookkeeping, not an API.
    defs = {k: v for k, v in serve[0].signature_def.items() if k in loaded.signatures}
    multiple = _spatial_multiple(loaded, path)
    return LoadedVersion(version, path, dict(loaded.signatures), defs, loaded, multiple)


def _fingerprint(path: str) -> tuple:
    """(relative path, size, mtime) of every file under path: it moves while a copy arrives."""
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:  # removed between listing and stat: the next poll sees it
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(entries)


class ServedModel:
    """One model name: its version folder, the newest loaded version, failed loads to retry."""

    def __init__(self, name: str, model_dir: str, retry: RetryPolicy | None = None):
        self.name = name
        self.model_dir = model_dir
        self.retry = retry or RetryPolicy()
        self._current: LoadedVersion | None = None
        self._failures: dict[int, LoadFailure] = {}
        self._lock = threading.Lock()

    @property
    def current(self) -> LoadedVersion | None:
        return self._current

    @property
    def failures(self) -> dict[int, LoadFailure]:
        """Versions newer than the served one that failed to load (a copy, for inspection)."""
        return dict(self._failures)

    def _due(self, version: int, failure: LoadFailure, fingerprint: tuple, now: float) -> bool:
        """Whether a version that failed before should be loaded again now."""
        if fingerprint != failure.fingerprint:
            # A copy still arriving, or a fixed export: start afresh, but only load once the
            # files have stayed the same for one poll, not while they are being written.
            log.info("model %s: version %d changed since it failed to load", self.name, version)
            failure.fingerprint = fingerprint
            failure.failures = 0
            failure.retry_at = now
            return False
        return failure.failures <= self.retry.retries and now >= failure.retry_at

    def _record_failure(
        self, version: int, path: str, fingerprint: tuple, error: Exception, now: float
    ) -> None:
        failure = self._failures.setdefault(version, LoadFailure(fingerprint, 0, now, ""))
        failure.fingerprint = fingerprint  # as before the load: a change since is retried
        failure.failures += 1
        failure.error = f"{type(error).__name__}: {error}"
        if failure.failures > self.retry.retries:
            log.error(
                "model %s: cannot load version %d from %s (%d attempts, giving up until its "
                "files change): %s",
                self.name,
                version,
                path,
                failure.failures,
                failure.error,
            )
            return
        delay = self.retry.delay(failure.failures)
        failure.retry_at = now + delay
        log.error(
            "model %s: cannot load version %d from %s (attempt %d of %d, next in %.1f s or "
            "when its files change): %s",
            self.name,
            version,
            path,
            failure.failures,
            self.retry.retries + 1,
            delay,
            failure.error,
        )

    def refresh(self) -> bool:
        """Loads the newest loadable version if newer than the served one; True on a switch.

        Versions are tried newest first; one that failed before is skipped until its retry
        is due, so an older complete version can be served meanwhile.
        """
        versions = list_versions(self.model_dir)
        present = set(versions)
        self._failures = {v: f for v, f in self._failures.items() if v in present}
        current = self._current
        now = time.monotonic()
        for version in reversed(versions):
            if current is not None and version <= current.version:
                break
            path = os.path.join(self.model_dir, str(version))
            fingerprint = _fingerprint(path)  # before loading, so a change meanwhile counts
            failure = self._failures.get(version)
            if failure is not None and not self._due(version, failure, fingerprint, now):
                continue
            try:
                loaded = _load_version(path, version)
            except Exception as e:  # a broken export must not take the server down
                self._record_failure(version, path, fingerprint, e, now)
                continue
            with self._lock:
                self._current = loaded
            self._failures = {v: f for v, f in self._failures.items() if v > version}
            log.info("model %s: serving version %d (%s)", self.name, version, path)
            return True
        return False


def resolve_models(
    model_base_path: str = "",
    model_name: str = S.MODEL_NAME,
    model_config_file: str = "",
    retry: RetryPolicy | None = None,
) -> dict[str, ServedModel]:
    """Model name -> version folder, from a models.config or a base path (see module doc)."""
    if model_config_file:
        config = model_server_config_pb2.ModelServerConfig()
        with open(model_config_file) as f:
            text_format.Parse(f.read(), config)
        entries = [(c.name, c.base_path) for c in config.model_config_list.config]
        if not entries:
            raise ValueError(f"{model_config_file}: model_config_list has no config entry")
        return {name: ServedModel(name, path, retry) for name, path in entries}
    if not model_base_path:
        raise ValueError("give --model_base_path or --model_config_file")
    nested = os.path.join(model_base_path, model_name)
    model_dir = nested if os.path.isdir(nested) else model_base_path
    return {model_name: ServedModel(model_name, model_dir, retry)}
