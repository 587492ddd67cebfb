"""A local stand-in for TF Serving: PredictionService + ModelService over gRPC.

    python -m serving.server --model_base_path MODEL_BASE [--port 8500] [--host 127.0.0.1]

Implements Predict, GetModelMetadata and GetModelStatus with the official
tensorflow-serving-api protos, so a client written against PredictionServiceStub talks to it
and to real `tensorflow_model_server` unchanged. Like TF Serving's default version policy it
serves the newest version of each model and polls for newer ones; dot-folders (exports in
progress) are ignored. Bad requests get the status codes TF Serving returns.

MODEL_BASE is either a model's version folder (TF Serving's --model_base_path) or the export
root holding <model_name>/<version>/ (what serving.export writes); --model_config_file reads
TF Serving's models.config instead.

The server in three modules:
  serving.versions  finding, loading and polling each model's versions; a version that fails
                    to load (a copy still arriving) is retried with backoff (--max_load_retries,
                    --load_retry_seconds) and again when its files change.
  serving.servicer  the gRPC methods and the checks on each request: bounded work per request
                    (--max_request_pixels checked on the declared shapes before any tensor is
                    built; chunks of --max_batch_pixels / --max_batch_frames through the graph).
  serving.server    this module: the gRPC server with its poll thread, TLS, the flags, main.

TLS: --ssl_cert and --ssl_key serve over TLS (PEM files); clients pass the CA (or the
self-signed certificate) to serving.client --ssl_root_cert. Without them the port is plaintext,
and binding a non-loopback --host logs a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from concurrent import futures

from absl import flags

from tfprivacy import runtime

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import signatures as S
from serving.servicer import DEFAULT_MAX_BATCH_PIXELS, RequestLimits, Servicer
from serving.servicer import RequestError as RequestError
from serving.servicer import _pixels as _pixels
from serving.versions import LoadedVersion as LoadedVersion
from serving.versions import LoadFailure as LoadFailure
from serving.versions import RetryPolicy, ServedModel, resolve_models
from serving.versions import _spatial_multiple as _spatial_multiple

# The `X as X` imports above re-export what moved to serving.versions and serving.servicer,
# importable from here as before. Patch a function where it is called
# (serving.versions._load_version, serving.servicer._materialise), not here.
_Servicer = Servicer  # its name when it lived here

log = logging.getLogger("serving.server")
# The loggers whose INFO lines main shows: the versions it loads are part of its output.
_LOGGERS = ("serving.server", "serving.versions", "serving.servicer")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
        servicer = Servicer(models, self.limits)
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
    for name in _LOGGERS:  # the versions it loads are part of its output
        logging.getLogger(name).setLevel(logging.INFO)
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
