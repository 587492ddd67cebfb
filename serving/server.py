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
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from concurrent import futures

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
from serving.export import list_versions

log = logging.getLogger("serving.server")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class RequestError(Exception):
    """A request TF Serving would refuse: carries the gRPC status code to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class LoadedVersion:
    version: int
    path: str
    signatures: dict  # key -> concrete function
    signature_defs: dict  # key -> meta_graph_pb2.SignatureDef
    loaded: object  # keeps the restored object (and its variables) alive


def _load_version(path: str, version: int) -> LoadedVersion:
    loaded = tf.saved_model.load(path)
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto = saved_model_pb2.SavedModel.FromString(f.read())
    serve = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    if not serve:
        raise ValueError(f"{path}: no MetaGraph tagged 'serve'")
    # Keep only callable signatures; __saved_model_init_op is bookkeeping, not an API.
    defs = {k: v for k, v in serve[0].signature_def.items() if k in loaded.signatures}
    return LoadedVersion(version, path, dict(loaded.signatures), defs, loaded)


class ServedModel:
    """One model name: its version folder, the newest loaded version, a failed-load memo."""

    def __init__(self, name: str, model_dir: str):
        self.name = name
        self.model_dir = model_dir
        self._current: LoadedVersion | None = None
        self._failed: set[int] = set()
        self._lock = threading.Lock()

    @property
    def current(self) -> LoadedVersion | None:
        return self._current

    def refresh(self) -> bool:
        """Loads the newest version if newer than the served one; True when it switched."""
        candidates = [v for v in list_versions(self.model_dir) if v not in self._failed]
        if not candidates:
            return False
        newest = candidates[-1]
        current = self._current
        if current is not None and newest <= current.version:
            return False
        path = os.path.join(self.model_dir, str(newest))
        try:
            loaded = _load_version(path, newest)
        except Exception as e:  # a broken export must not take the server down
            log.error("model %s: cannot load version %d from %s: %s", self.name, newest, path, e)
            self._failed.add(newest)
            return False
        with self._lock:
            self._current = loaded
        log.info("model %s: serving version %d (%s)", self.name, newest, path)
        return True


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


def _check_input(alias: str, array: np.ndarray, info) -> None:
    """What TF Serving's session checks before running: dtype first, then shape."""
    want = tf.dtypes.as_dtype(info.dtype)
    got = tf.dtypes.as_dtype(array.dtype)
    if want != got:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {alias!r}: expects {want.name} but {got.name} is provided",
        )
    if info.tensor_shape.unknown_rank:
        return
    dims = [d.size for d in info.tensor_shape.dim]
    ok = len(dims) == array.ndim and all(
        d < 0 or d == n for d, n in zip(dims, array.shape, strict=True)
    )
    if not ok:
        shape = tuple(None if d < 0 else d for d in dims)
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {alias!r}: shape {tuple(array.shape)} is not compatible with {shape}",
        )


class _Servicer(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    def __init__(self, models: dict[str, ServedModel]):
        self._models = models

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
        feeds = {}
        for alias, proto in request.inputs.items():
            try:
                array = tf.make_ndarray(proto)
            except Exception as e:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"input {alias!r}: malformed TensorProto: {e}"
                ) from e
            _check_input(alias, array, sig.inputs[alias])
            feeds[alias] = tf.constant(array)
        outputs = version.signatures[key](**feeds)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version.version
        response.model_spec.signature_name = key
        for alias in list(request.output_filter) or sorted(outputs):
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
        return response

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
    model_base_path: str = "", model_name: str = S.MODEL_NAME, model_config_file: str = ""
) -> dict[str, ServedModel]:
    """Model name -> version folder, from a models.config or a base path (see module doc)."""
    if model_config_file:
        config = model_server_config_pb2.ModelServerConfig()
        with open(model_config_file) as f:
            text_format.Parse(f.read(), config)
        entries = [(c.name, c.base_path) for c in config.model_config_list.config]
        if not entries:
            raise ValueError(f"{model_config_file}: model_config_list has no config entry")
        return {name: ServedModel(name, path) for name, path in entries}
    if not model_base_path:
        raise ValueError("give --model_base_path or --model_config_file")
    nested = os.path.join(model_base_path, model_name)
    model_dir = nested if os.path.isdir(nested) else model_base_path
    return {model_name: ServedModel(model_name, model_dir)}


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
    ):
        self.models = models
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
        servicer = _Servicer(models)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind {host}:{port}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_base_path", default="")
    parser.add_argument("--model_name", default=S.MODEL_NAME)
    parser.add_argument("--model_config_file", default="")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept remote clients")
    parser.add_argument("--port", type=int, default=8500, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max_message_mb", type=float, default=64.0)
    parser.add_argument("--poll_seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    models = resolve_models(args.model_base_path, args.model_name, args.model_config_file)
    server = ModelServer(
        models,
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        poll_seconds=args.poll_seconds,
    ).start()
    for name, model in models.items():
        if model.current is None:
            log.warning("model %s: no loadable version yet in %s", name, model.model_dir)
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
    sys.exit(main())
