"""The gRPC servicer of serving.server: Predict, GetModelMetadata, GetModelStatus, and the
checks a request passes before any work is done on it.

Bad requests get the status codes TF Serving returns (read from its sources:
servables/tensorflow/predict_util.cc, get_model_metadata_impl.cc, core/basic_manager.cc):
NOT_FOUND for an unknown model or version, FAILED_PRECONDITION for an unknown signature key,
INVALID_ARGUMENT for bad inputs (alias, dtype, shape, graph asserts), RESOURCE_EXHAUSTED (from
gRPC itself) for a message above the receive limit.

Bounded work per request. The message limit alone does not bound the work: a TensorProto may
declare a huge shape with a single value that tf.make_ndarray repeats to fill it, and the
graph's float activations are many times the uint8 input. So the shape each input declares is
checked against --max_request_pixels (frames x height x width) before any tensor is built;
a request above it gets RESOURCE_EXHAUSTED naming the cap. Frames of any height and width are
accepted: serving.export's graph pads them to f_d's multiple (4, or 8) and crops back, and the
pixels counted, here and for chunks, are the padded ones (height and width rounded up to the
multiple the SavedModel reports, see serving.versions.LoadedVersion.spatial_multiple), so that
a request of many tiny frames (1 x 1, run as 8 x 8) cannot cost 64 times its declared size.
Accepted requests run through the graph in chunks along the frames axis of at most
--max_batch_pixels pixels (and --max_batch_frames frames), so peak memory is about --workers
chunks, whatever the batch. An exception inside the model call that is not a TF status (which
keeps its own code, as in TF Serving) is answered INTERNAL, naming the model, version and input
shape.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import signatures as S
from serving.versions import LoadedVersion, ServedModel

log = logging.getLogger("serving.servicer")

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


class Servicer(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    """PredictionService and ModelService on the models' served versions (see the module doc)."""

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
