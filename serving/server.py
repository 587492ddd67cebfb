"""A local stand-in for TF Serving: PredictionService + ModelService over gRPC.

    python -m serving.server --model_base_path MODEL_BASE [--port 8500] [--host 127.0.0.1]

Implements Predict, GetModelMetadata and GetModelStatus with the official
tensorflow-serving-api protos, so a client written against PredictionServiceStub talks to it
and to real `tensorflow_model_server` unchanged. Like TF Serving's default version policy it
serves the newest version of each model and polls for newer ones; dot-folders (exports in
progress) are ignored. Bad requests get the status codes TF Serving returns (read from its
sources: servables/tensorflow/predict_util.cc, get_model_metadata_impl.cc,
core/basic_manager.cc): NOT_FOUND for an unknown model or version, FAILED_PRECONDITION for an
unknown signature key, INVALID_ARGUMENT for bad inputs (alias, dtype, shape, graph asserts),
RESOURCE_EXHAUSTED (from gRPC itself) for a message above the receive limit.

MODEL_BASE is either a model's version folder (TF Serving's --model_base_path) or the export
root holding <model_name>/<version>/ (what serving.export writes); --model_config_file reads
TF Serving's models.config instead.

Bounded work per request. The message limit alone does not bound the work: a TensorProto may
declare a huge shape with a single value that tf.make_ndarray repeats to fill it, and the
graph's float activations are many times the uint8 input. So the shape each input declares is
checked against --max_request_pixels (frames x height x width) before any tensor is built;
a request above it gets RESOURCE_EXHAUSTED naming the cap. Frames of any height and width are
accepted: serving.export's graph pads them to f_d's multiple (4, or 8) and crops back, and the
pixels counted, here and for chunks, are the padded ones (height and width rounded up to the
multiple the SavedModel reports, see LoadedVersion.spatial_multiple), so that a request of
many tiny frames (1 x 1, run as 8 x 8) cannot cost 64 times its declared size. Accepted
requests run through the graph in chunks along the frames axis of at most --max_batch_pixels
pixels (and --max_batch_frames frames), so peak memory is about --workers chunks, whatever the
batch. An exception inside the model call that is not a TF status (which keeps its own code, as
in TF Serving) is answered INTERNAL, naming the model, version and input shape.

Versions that fail to load are retried, not remembered as broken forever. serving.export never
needs this: it writes a dot-folder and renames it into place, so a version folder appears
complete or not at all. A version copied in by other means (cp -r, rsync, an object-store
sync) can be seen half-written: variables/ present and saved_model.pb still on its way, or a
file truncated. Such a version is retried up to --max_load_retries times with exponential
backoff from --load_retry_seconds (TF Serving: --max_num_load_retries, 5), and again whenever
its files change (their sizes and mtimes), once they have stopped changing for one poll. The
served version stays in service until a newer one loads.

TLS: --ssl_cert and --ssl_key serve over TLS (PEM files); clients pass the CA (or the
self-signed certificate) to serving.client --ssl_root_cert. Without them the port is plaintext,
and binding a non-loopback --host logs a warning.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import signal
import threading
import time
from concurrent import futures

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from serving import signatures as S
from serving.backoff import Backoff
from serving.export import list_versions

log = logging.getLogger("serving.server")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Pixels the graph sees per call: about 1 GB of activations for the width-32 f_d, two
# 1024 x 1024 frames or 167 frames of 112 x 112.
DEFAULT_MAX_BATCH_PIXELS = 2 * 1024 * 1024


class RequestError(Exception):
    """A request TF Serving would refuse: carries the gRPC status code to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one Predict may cost; 0 switches a limit off.

    max_request_pixels: frames x height x width summed over the inputs, checked on the
      declared shapes before anything is materialised (RESOURCE_EXHAUSTED above it); height
      and width rounded up to the multiple the model's graph pads them to.
    max_batch_pixels, max_batch_frames: the largest chunk of the frames axis run through the
      graph at once (padded pixels too); bigger requests are run chunk by chunk and the
      outputs concatenated.
    """

    max_request_pixels: int = S.MAX_REQUEST_PIXELS
    max_batch_pixels: int = DEFAULT_MAX_BATCH_PIXELS
    max_batch_frames: int = 0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value < 0:
                raise ValueError(
                    f"{field.name} (--{field.name}) must be >= 0 (0: no limit), got {value}"
                )

    def chunk_frames(self, frames: int, pixels_per_frame: int) -> int:
        """Frames per graph call for a batch of `frames` frames of `pixels_per_frame` each."""
        chunk = max(frames, 1)
        if self.max_batch_pixels and pixels_per_frame > 0:
            chunk = min(chunk, self.max_batch_pixels // pixels_per_frame)
        if self.max_batch_frames:
            chunk = min(chunk, self.max_batch_frames)
        return max(chunk, 1)  # a single frame above the budget still runs (alone)


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


def _tf_status_to_grpc(error: tf.errors.OpError) -> grpc.StatusCode:
    # TF's error codes are the canonical gRPC codes, numerically identical.
    for code in grpc.StatusCode:
        if code.value[0] == error.error_code:
            return code
    return grpc.StatusCode.UNKNOWN


def _op_error_detail(error: tf.errors.OpError) -> str:
    """The informative line of a TF error (e.g. a failed assert), without the trace-back."""
    lines = [line.strip() for line in error.message.splitlines()]
    useful = [
        line
        for line in lines
        if line
        and not line.startswith(("Graph execution error", "Detected at node", "File ", "[[{{"))
    ]
    return (" ".join(useful) or error.message)[:2000]


def _proto_shape(alias: str, proto) -> tuple[int, ...]:
    """The shape a request TensorProto declares, read without materialising it."""
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if any(n < 0 for n in shape):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {alias!r}: shape {shape} has a negative dimension",
        )
    return shape


def _padded(shape: tuple[int, ...], multiple: int = 1) -> tuple[int, ...]:
    """An [N, H, W, C] shape (C <= 4) with H and W rounded up to `multiple` (what the graph
    runs on, see serving.export.pad_to_multiple); any other shape as it is."""
    if len(shape) == 4 and 1 <= shape[-1] <= 4 and multiple > 1:
        n, h, w, c = shape
        return (n, -(-h // multiple) * multiple, -(-w // multiple) * multiple, c)
    return shape


def _pixels(shape: tuple[int, ...], multiple: int = 1) -> int:
    """Frames x height x width of an [N, H, W, C] input (C <= 4), H and W rounded up to
    `multiple`; every element otherwise.

    Counting every element of any other shape keeps the cap a bound on memory whatever the
    signature accepts.
    """
    shape = _padded(shape, multiple)
    elements = math.prod(shape)
    if len(shape) == 4 and 1 <= shape[-1] <= 4:
        return elements // shape[-1]
    return elements


def _size_text(alias: str, shape: tuple[int, ...], multiple: int) -> str:
    """'frames' 20 x 1023 x 1023 x 3 (padded to 1024 x 1024), as a refusal names a shape."""
    text = f"{alias!r} {' x '.join(map(str, shape))}"
    padded = _padded(shape, multiple)
    if padded != shape:
        text += f" (padded to {padded[1]} x {padded[2]})"
    return text


def _check_input(alias: str, dtype_enum: int, shape: tuple[int, ...], info) -> None:
    """What TF Serving's session checks before running: dtype first, then shape."""
    want = tf.dtypes.as_dtype(info.dtype)
    try:
        got = tf.dtypes.as_dtype(dtype_enum)
    except TypeError as e:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"input {alias!r}: unknown dtype {dtype_enum}"
        ) from e
    if want != got:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {alias!r}: expects {want.name} but {got.name} is provided",
        )
    if info.tensor_shape.unknown_rank:
        return
    dims = [d.size for d in info.tensor_shape.dim]
    ok = len(dims) == len(shape) and all(d < 0 or d == n for d, n in zip(dims, shape, strict=True))
    if not ok:
        want_shape = tuple(None if d < 0 else d for d in dims)
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {alias!r}: shape {shape} is not compatible with {want_shape}",
        )


def _materialise(alias: str, proto) -> np.ndarray:
    """The request tensor as an array; only called once its declared size passed the cap."""
    try:
        return tf.make_ndarray(proto)
    except Exception as e:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"input {alias!r}: malformed TensorProto: {e}"
        ) from e


class _Servicer(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    def __init__(self, models: dict[str, ServedModel], limits: RequestLimits):
        self._models = models
        self._limits = limits

    # -- lookup -------------------------------------------------------------------------

    def _version(self, model_spec) -> tuple[ServedModel, LoadedVersion]:
        name = model_spec.name
        model = self._models.get(name)
        current = model.current if model is not None else None
        which = model_spec.WhichOneof("version_choice")
        if which == "version_label":
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unrecognized servable version label: {model_spec.version_label}",
            )
        if which == "version":
            request_desc = f"Specific({name}, {model_spec.version.value})"
        else:
            request_desc = f"Latest({name})"
        if current is None or (which == "version" and model_spec.version.value != current.version):
            raise RequestError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request_desc}"
            )
        return model, current

    # -- PredictionService --------------------------------------------------------------

    def Predict(self, request, context):
        return self._answer(context, self._predict, request)

    def GetModelMetadata(self, request, context):
        return self._answer(context, self._metadata, request)

    # -- ModelService -------------------------------------------------------------------

    def GetModelStatus(self, request, context):
        return self._answer(context, self._status, request)

    def _answer(self, context, fn, request):
        try:
            return fn(request)
        except RequestError as e:
            context.abort(e.code, str(e))
        except tf.errors.OpError as e:
            context.abort(_tf_status_to_grpc(e), _op_error_detail(e))
        except Exception as e:  # never let one request take a worker thread down
            log.exception("internal error")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    def _predict(self, request):
        if not request.HasField("model_spec"):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        _, version = self._version(request.model_spec)
        key = request.model_spec.signature_name or S.SIGNATURE_KEY
        if key not in version.signatures:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.'
            )
        sig = version.signature_defs[key]
        expected = set(sig.inputs)
        sent = set(request.inputs)
        if sent != expected:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({sorted(sent)}) != len({sorted(expected)}). "
                f"Sent extra: {sorted(sent - expected)}. "
                f"Missing but required: {sorted(expected - sent)}.",
            )
        unknown = [a for a in request.output_filter if a not in sig.outputs]
        if unknown:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {unknown[0]} "
                f"Outputs expected to be in the set {sorted(sig.outputs)}.",
            )
        # Everything below the message limit is checked on declared shapes first: building
        # the arrays (or running the graph) is what a too-large request must never get to.
        shapes = {}
        for alias in sorted(request.inputs):
            proto = request.inputs[alias]
            shapes[alias] = _proto_shape(alias, proto)
            _check_input(alias, proto.dtype, shapes[alias], sig.inputs[alias])
        # Padded as the graph will run them: any H, W >= 1 is accepted (serving.export).
        multiple = version.spatial_multiple
        pixels = sum(_pixels(shape, multiple) for shape in shapes.values())
        cap = self._limits.max_request_pixels
        if cap and pixels > cap:
            sizes = ", ".join(_size_text(a, s, multiple) for a, s in shapes.items())
            rounded = f", height and width rounded up to multiples of {multiple}"
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request of {pixels} pixels ({sizes}) exceeds the cap of {cap} pixels "
                f"(frames x height x width{rounded if multiple > 1 else ''}) per request, "
                f"--max_request_pixels; send fewer or smaller frames per request",
            )
        feeds = {alias: _materialise(alias, request.inputs[alias]) for alias in shapes}
        aliases = list(request.output_filter) or sorted(sig.outputs)
        outputs = self._run(request.model_spec.name, version, key, feeds, aliases, pixels)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version.version
        response.model_spec.signature_name = key
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias]))
        return response

    def _run(
        self,
        name: str,
        version: LoadedVersion,
        key: str,
        feeds: dict[str, np.ndarray],
        aliases: list[str],
        pixels: int,
    ) -> dict[str, np.ndarray]:
        """The signature on feeds, chunk by chunk along the frames axis (see RequestLimits)."""
        leading = {a.shape[0] if a.ndim else None for a in feeds.values()}
        frames = leading.pop() if len(leading) == 1 else None
        if frames is None:  # no common batch axis to split: run as one
            return self._call(name, version, key, feeds, aliases)
        chunk = self._limits.chunk_frames(frames, pixels // frames if frames else 0)
        if frames <= chunk:
            return self._call(name, version, key, feeds, aliases)
        # Written into preallocated outputs, so the chunks' results never exist twice.
        result: dict[str, np.ndarray] = {}
        for start in range(0, frames, chunk):
            part = {alias: array[start : start + chunk] for alias, array in feeds.items()}
            size = min(chunk, frames - start)
            for alias, out in self._call(name, version, key, part, aliases).items():
                if out.ndim == 0 or out.shape[0] != size:
                    raise RequestError(
                        grpc.StatusCode.INTERNAL,
                        f"output {alias!r} of model {name!r} has shape {out.shape} for "
                        f"{size} frames, so it cannot be computed in chunks; raise "
                        "--max_batch_pixels / --max_batch_frames above this request",
                    )
                if alias not in result:
                    result[alias] = np.empty((frames, *out.shape[1:]), out.dtype)
                result[alias][start : start + size] = out
        return result

    def _call(self, name, version, key, feeds, aliases) -> dict[str, np.ndarray]:
        """One graph call; whatever the model raises stays inside this request.

        A TF status keeps its code, as in TF Serving (a failed graph assert is
        INVALID_ARGUMENT, an allocation failure RESOURCE_EXHAUSTED); any other exception is
        INTERNAL, naming what failed on which shapes.
        """
        try:
            outputs = version.signatures[key](**{a: tf.constant(x) for a, x in feeds.items()})
            return {alias: outputs[alias].numpy() for alias in aliases}
        except tf.errors.OpError:
            raise
        except Exception as e:
            shapes = ", ".join(f"{a!r} {tuple(x.shape)}" for a, x in feeds.items())
            log.exception("model %s version %d failed", name, version.version)
            raise RequestError(
                grpc.StatusCode.INTERNAL,
                f"model {name!r} version {version.version} signature {key!r} failed on "
                f"{shapes}: {type(e).__name__}: {e}",
            ) from e

    def _metadata(self, request):
        if not request.HasField("model_spec"):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "GetModelMetadataRequest must specify at least one metadata_field",
            )
        for field in request.metadata_field:
            if field != S.METADATA_FIELD:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported"
                )
        model, version = self._version(request.model_spec)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in version.signature_defs.items():
            sig_map.signature_def[key].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = version.version
        response.metadata[S.METADATA_FIELD].Pack(sig_map)
        return response

    def _status(self, request):
        if not request.HasField("model_spec"):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        spec = request.model_spec
        model = self._models.get(spec.name)
        current = model.current if model is not None else None
        if current is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        if spec.HasField("version") and spec.version.value != current.version:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find version {spec.version.value} of model {spec.name}",
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = current.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


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


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _read_pem(flag: str, path: str, kind: str) -> bytes:
    """A PEM file's bytes; checked here because gRPC only reports "Failed to bind" on bad ones."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{flag}: cannot read {path!r}: {e.strerror}") from e
    if b"-----BEGIN " not in data or kind.encode() not in data:
        raise ValueError(f"{flag}: {path!r} holds no PEM block of a {kind}")
    return data


class ModelServer:
    """The gRPC server plus the poll thread that loads new versions."""

    def __init__(
        self,
        models: dict[str, ServedModel],
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 8,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        poll_seconds: float = 2.0,
        limits: RequestLimits | None = None,
        ssl_cert: str = "",
        ssl_key: str = "",
    ):
        self.models = models
        self.limits = limits or RequestLimits()
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        if bool(ssl_cert) != bool(ssl_key):
            missing = "--ssl_key" if ssl_cert else "--ssl_cert"
            raise ValueError(f"TLS needs both --ssl_cert and --ssl_key; {missing} is missing")
        self.tls = bool(ssl_cert)
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
        servicer = _Servicer(models, self.limits)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, self._server)
        try:
            if self.tls:
                key = _read_pem("--ssl_key", ssl_key, "PRIVATE KEY")
                cert = _read_pem("--ssl_cert", ssl_cert, "CERTIFICATE")
                credentials = grpc.ssl_server_credentials([(key, cert)])
                self.port = self._server.add_secure_port(f"{host}:{port}", credentials)
            else:
                if not _is_loopback(host):
                    log.warning(
                        "serving plaintext gRPC on %s, which is not a loopback address: frames "
                        "and results cross the network unencrypted (give --ssl_cert and "
                        "--ssl_key)",
                        host,
                    )
                self.port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError as e:  # gRPC's only word for any failure to open the port
            self.port = 0
            cause = f" ({e})"
        else:
            cause = ""
        if self.port == 0:
            hint = "; or --ssl_key is not the key of --ssl_cert" if self.tls else ""
            raise OSError(f"cannot bind {host}:{port}: in use or not an address here{hint}{cause}")
        self.address = f"{host}:{self.port}"
        self._poller = threading.Thread(target=self._poll, name="version-poll", daemon=True)

    def refresh(self) -> None:
        for model in self.models.values():
            model.refresh()

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.refresh()
            except Exception:  # a transient file-system error must not end polling
                log.exception("version poll failed")

    def start(self) -> ModelServer:
        self.refresh()
        self._server.start()
        self._poller.start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        self._stop.set()
        self._server.stop(grace).wait()
        if self._poller.is_alive():
            self._poller.join(timeout=self._poll_seconds + 1)

    def wait(self) -> None:
        self._server.wait_for_termination()


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "model_base_path",
    "",
    "a model's version folder (TF Serving's --model_base_path) or the export root",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "model_name",
    S.MODEL_NAME,
    "name it is served under (its folder, under an export root)",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "model_config_file",
    "",
    "TF Serving's models.config (instead of --model_base_path)",
    flag_values=FLAGS,
)
flags.DEFINE_string("host", "127.0.0.1", "0.0.0.0 to accept remote clients", flag_values=FLAGS)
flags.DEFINE_integer("port", 8500, "0 picks a free port", flag_values=FLAGS)
flags.DEFINE_integer("workers", 8, "gRPC worker threads", flag_values=FLAGS)
flags.DEFINE_float(
    "max_message_mb", 64.0, "gRPC receive/send message limit, in MiB", flag_values=FLAGS
)
flags.DEFINE_float("poll_seconds", 2.0, "seconds between polls for new versions", flag_values=FLAGS)
flags.DEFINE_integer(
    "max_request_pixels",
    S.MAX_REQUEST_PIXELS,
    "cap on frames x height x width per Predict (height and width rounded up to the "
    "model's multiple, as its graph pads them), checked before decoding "
    "(RESOURCE_EXHAUSTED above it); 0: no cap",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_batch_pixels",
    DEFAULT_MAX_BATCH_PIXELS,
    "larger requests run through the graph in chunks of frames of at most this "
    "many pixels (a single larger frame runs alone); 0: no limit",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_batch_frames",
    0,
    "and of at most this many frames; 0: only --max_batch_pixels limits chunks",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_load_retries",
    RetryPolicy.retries,
    "retries of a version that fails to load, before waiting for its files to change",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "load_retry_seconds",
    RetryPolicy.base_seconds,
    "wait before the first retry, doubling per retry (at most 60 s)",
    flag_values=FLAGS,
)
flags.DEFINE_string("ssl_cert", "", "PEM certificate (chain): serve TLS", flag_values=FLAGS)
flags.DEFINE_string("ssl_key", "", "PEM private key of --ssl_cert", flag_values=FLAGS)


def main(argv) -> int:
    """Serves until SIGINT or SIGTERM; 0, or 2 on a bad flag value or file (logged, no
    traceback). argv: the program name alone (run_cli)."""
    del argv
    log.setLevel(logging.INFO)  # the versions it loads are part of its output
    try:
        retry = RetryPolicy(retries=FLAGS.max_load_retries, base_seconds=FLAGS.load_retry_seconds)
        models = resolve_models(
            FLAGS.model_base_path, FLAGS.model_name, FLAGS.model_config_file, retry
        )
        limits = RequestLimits(
            max_request_pixels=FLAGS.max_request_pixels,
            max_batch_pixels=FLAGS.max_batch_pixels,
            max_batch_frames=FLAGS.max_batch_frames,
        )
        server = ModelServer(
            models,
            host=FLAGS.host,
            port=FLAGS.port,
            workers=FLAGS.workers,
            max_message_bytes=int(FLAGS.max_message_mb * 1024 * 1024),
            poll_seconds=FLAGS.poll_seconds,
            limits=limits,
            ssl_cert=FLAGS.ssl_cert,
            ssl_key=FLAGS.ssl_key,
        )
    except (ValueError, OSError) as e:  # a bad flag or file: say which, without a trace-back
        log.error("%s", e)
        return 2
    server.start()
    for name, model in models.items():
        if model.current is None:
            log.warning("model %s: no loadable version yet in %s", name, model.model_dir)
    log.info("TLS %s", "on" if server.tls else "off (plaintext)")
    print(f"serving on {server.address}", flush=True)

    done = threading.Event()

    def _shutdown(signum, frame):
        done.set()

    signal.signal(signal.SIGINT, _shutdown)
    signal.signal(signal.SIGTERM, _shutdown)
    done.wait()
    server.stop()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
