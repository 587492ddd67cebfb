"""Fault injection: four faults injected for real on this machine (loopback only), one line each.

    python -m benchmarks.fault_injection [--faults server_restart,truncated_checkpoint,...]
        [--work_dir DIR] [--retries 8] [--retry_seconds 0.5]

server_restart        serving.server (a subprocess) is frozen with SIGSTOP while a Predict is
                      in flight, SIGKILLed and started again on the same port: the client must
                      resend (UNAVAILABLE, backoff) and get the same frames as before the kill.
truncated_checkpoint  a finished tiny training run's newest checkpoint has its .data file cut
                      to half its size: the resumed run must warn, naming it, resume from the
                      one before it and finish; with every checkpoint cut short, it must
                      stop with one error naming each.
export_disk_full      the disk fills while serving.export writes saved_model.pb (ENOSPC after
                      the variables are written): no version folder appears, the partial copy
                      is removed, the error says what happened, the next export takes the
                      same version number.
eval_sigterm          trainers.evaluate on the tiny benchmark (raw,down4, 2 seeds) gets
                      SIGTERM once raw's first seed is cached: status 143 and one line, no
                      trace-back; the same command then reuses the cached seed.

Each line: fault, what was injected, what happened, PASS or FAIL (with why), seconds. Exit
status 1 on any FAIL. Every scenario is a function returning a Result, which is what
tests/test_fault_injection.py runs. Scratch files go into --work_dir (default: a temporary
folder, removed afterwards); so does the generated tiny benchmark, unless TFPRIVACY_DATA is set.
About 70 s in all on 2 cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfprivacy import runtime  # noqa: E402

if __name__ == "__main__":
    runtime.import_tensorflow()  # before TF loads: no CPU-only start-up chatter

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import errno  # noqa: E402
import glob  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent import futures  # noqa: E402
from unittest import mock  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from tensorflow.python.lib.io import file_io  # noqa: E402

from configs import get_config  # noqa: E402
from serving import client as C  # noqa: E402
from serving import export as E  # noqa: E402
from serving import server as SV  # noqa: E402
from serving import signatures as S  # noqa: E402
from tfprivacy import artifacts  # noqa: E402
from tfprivacy.models import build_degrader  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Seconds a subprocess may take to start (TF import) before the scenario gives up on it.
START_TIMEOUT_S = 120
# The evaluation of eval_sigterm: the tiny benchmark with the cheapest fresh models.
EVAL_SETTINGS = (
    "eval.target_width=4",
    "eval.privacy_width=4",
    "eval.train_clips_per_video=1",
    "eval.bootstrap=50",
)


@dataclasses.dataclass
class Result:
    """One fault: what was done, what the code did about it, and what was wrong with that."""

    fault: str
    injected: str
    observed: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL (" + "; ".join(self.problems) + ")"
        return (
            f"{self.fault}: injected {self.injected} -> {self.observed} | {verdict} | "
            f"{self.seconds:.1f} s"
        )


@contextlib.contextmanager
def _timed(result: Result):
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start


def _env() -> dict:
    """The environment of the subprocesses: this checkout first on the path, quiet TF."""
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}


def _tiny_degrader(seed: int):
    """benchmark_tiny's f_d with every weight redrawn, so its output is not its input."""
    model = build_degrader(get_config("benchmark_tiny").model, frame_size=None)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.weights])
    return model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _popen(command: list[str], log_path: str, err_path: str = "") -> subprocess.Popen:
    """command in this checkout; stdout into log_path, stderr too or into err_path.

    Files, not pipes: a pipe nobody reads fills and stalls the process.
    """
    with open(log_path, "ab") as out, open(err_path or os.devnull, "ab") as err:
        stderr = err if err_path else subprocess.STDOUT
        return subprocess.Popen(command, cwd=REPO, env=_env(), stdout=out, stderr=stderr)


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> bool:
    """Polls ready() until it holds (True), proc ends or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return ready()
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 30 s; a frozen process is woken first."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _server(base: str, port: int, log_path: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "serving.server", "--model_base_path", base]
    return _popen(command + ["--port", str(port), "--poll_seconds", "30"], log_path)


def server_restart(work_dir: str, retries: int = 8, retry_seconds: float = 0.5) -> Result:
    """The server killed with a request in flight and restarted: the client rides it out.

    SIGSTOP first makes "in flight" certain: the request reaches the frozen server's socket and
    waits there, and the SIGKILL that follows cuts it off mid-way.
    """
    result = Result(
        "server_restart",
        "SIGSTOP + SIGKILL of serving.server with a Predict in flight, restart on the same port",
    )
    with _timed(result):
        work = os.path.join(work_dir, "server_restart")
        base = os.path.join(work, "models")
        E.export_degrader(_tiny_degrader(seed=3), base)
        port = _free_port()
        logs = [os.path.join(work, f"server{i}.log") for i in (1, 2)]
        first = _server(base, port, logs[0])
        restarted = None
        channel, stub = C.make_stub(f"127.0.0.1:{port}")
        try:
            if not _wait_until(lambda: "serving on" in _read(logs[0]), first, START_TIMEOUT_S):
                result.check(False, f"serving.server did not start; see {logs[0]}")
                return result
            frames = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
            before = C.degrade_frames(stub, frames)
            policy = C.RetryPolicy(retries=retries, base_seconds=retry_seconds)
            codes = []
            os.kill(first.pid, signal.SIGSTOP)
            with futures.ThreadPoolExecutor(1) as pool:
                call = pool.submit(
                    C.degrade_frames,
                    stub,
                    frames,
                    retry=policy,
                    channel=channel,
                    on_retry=lambda n, error, delay: codes.append(error.code().name),
                )
                time.sleep(0.5)  # the request is on the frozen server's socket
                in_flight = not call.done()
                killed = time.perf_counter()
                first.kill()
                first.wait()
                restarted = _server(base, port, logs[1])
                budget = sum(policy.delay(n) for n in range(1, retries + 1)) + START_TIMEOUT_S
                try:
                    after = call.result(timeout=budget)
                except grpc.RpcError as e:
                    after = None
                    result.check(False, f"the call failed: {e.code().name}: {e.details()}")
                except futures.TimeoutError:
                    after = None
                    result.check(False, f"the call did not end within {budget:.0f} s")
                seconds = time.perf_counter() - killed
                result.check(
                    restarted.poll() is None,
                    f"the restarted server exited: {_last_line(_read(logs[1]))}",
                )
        finally:
            channel.close()
            _stop(first)
            _stop(restarted)
        result.check(in_flight, "the request was answered before the kill: not in flight")
        result.check(bool(codes), "the call succeeded without a single retry")
        result.check(
            not codes or codes[0] == "UNAVAILABLE",
            f"the cut-off request failed with {codes[:1]}, not UNAVAILABLE",
        )
        if after is not None:
            result.check(np.array_equal(after, before), "frames differ from before the kill")
        kinds = ", ".join(sorted(set(codes))) or "none"
        result.observed = (
            f"the in-flight call was resent {len(codes)} times ({kinds}; backoff from "
            f"{retry_seconds} s) and succeeded {seconds:.1f} s after the kill with the same "
            "frames as before it"
            if after is not None
            else f"{len(codes)} retries ({kinds}), then no answer"
        )
    return result


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def truncated_checkpoint(work_dir: str) -> Result:
    """A finished tiny run whose newest checkpoint is cut to half: resume from the one before.

    Then every checkpoint cut short: the run must refuse to start, naming each of them.
    """
    from tfprivacy.train import loop

    result = Result(
        "truncated_checkpoint",
        "newest checkpoint's .data-00000-of-00001 truncated to half its size",
    )
    with _timed(result):
        run_dir = os.path.join(work_dir, "truncated_checkpoint", "run")
        overrides = [f"trainer.run_dir={run_dir}", "trainer.checkpoint_every=2"]
        with contextlib.redirect_stdout(io.StringIO()):
            loop.Trainer(get_config("benchmark_tiny", overrides)).train()
        ckpt_dir = os.path.join(run_dir, artifacts.CHECKPOINT_DIR)
        paths = list(tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths)
        if not result.check(len(paths) >= 2, f"{ckpt_dir}: fewer than two checkpoints"):
            return result
        bad, previous = paths[-1], paths[-2]
        data = f"{bad}.data-00000-of-00001"
        size = os.path.getsize(data)
        os.truncate(data, size // 2)

        records = _Records()
        loop.log.addHandler(records)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                trainer = loop.Trainer(get_config("benchmark_tiny", overrides))
                summary = trainer.train()
        finally:
            loop.log.removeHandler(records)
        named = [m for m in records.messages if bad in m and "cannot be restored" in m]
        result.check(bool(named), f"no warning naming {bad}: {records.messages}")
        result.check(
            trainer.resumed_from == previous,
            f"resumed from {trainer.resumed_from}, not the previous checkpoint {previous}",
        )
        result.check(f"Resuming from {previous}" in out.getvalue(), "no 'Resuming from' line")
        result.check(trainer.players.phase_name == "done", "the resumed run did not finish")
        result.check("degraded" in summary, "the resumed run wrote no final figures")
        # The resumed run's last save reuses the bad checkpoint's number: it must read whole.
        latest = tf.train.latest_checkpoint(ckpt_dir)
        reader = tf.train.load_checkpoint(latest)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
        # With every checkpoint cut short there is nothing to fall back to: one clear error.
        paths = list(tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths)
        for path in paths:
            os.truncate(f"{path}.data-00000-of-00001", 64)
        error = ""
        try:
            loop.Trainer(get_config("benchmark_tiny", overrides))
        except loop.CheckpointRestoreError as e:
            error = str(e)
        named_all = all(os.path.basename(p) in error for p in paths)
        result.check(named_all, f"all {len(paths)} cut short: error {error!r} names not all")
        warning = named[0].replace(os.path.dirname(bad) + os.sep, "")[:110] if named else "-"
        result.observed = (
            f"warned '{warning}', resumed from {os.path.basename(str(trainer.resumed_from))} "
            f"and finished; the newest checkpoint ({os.path.basename(latest)}) reads back "
            f"whole; with all {len(paths)} cut short, CheckpointRestoreError naming each"
        )
    return result


def export_disk_full(work_dir: str) -> Result:
    """ENOSPC while saved_model.pb is written (the variables are already on disk)."""
    result = Result(
        "export_disk_full",
        "OSError(ENOSPC) from the saved_model.pb write of an export (half the bytes written)",
    )
    with _timed(result):
        base = os.path.join(work_dir, "export_disk_full", "models")
        model_dir = os.path.join(base, S.MODEL_NAME)
        E.export_degrader(_tiny_degrader(seed=1), base)
        versions = E.list_versions(model_dir)
        written = []

        def disk_full(filename, contents, overwrite=True):
            folder = os.path.dirname(filename)
            written.append((filename, sorted(os.listdir(folder))))
            with open(filename, "wb") as f:  # what fitted before the disk was full
                f.write(contents[: len(contents) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

        message = ""
        with mock.patch.object(file_io, "atomic_write_string_to_file", disk_full):
            try:
                E.export_degrader(_tiny_degrader(seed=2), base)
            except E.ExportError as e:
                message = str(e)
        if not result.check(bool(written), "not injected: TF wrote saved_model.pb otherwise"):
            return result
        result.check(bool(message), "the export did not fail")
        result.check(E.list_versions(model_dir) == versions, "a new version became visible")
        leftovers = [n for n in os.listdir(model_dir) if n.startswith(".")]
        result.check(not leftovers, f"partial copies left in {model_dir}: {leftovers}")
        for needed in ("No space left on device", "version 2", "nothing was published"):
            result.check(needed in message, f"the error does not say {needed!r}: {message}")
        served = SV.resolve_models(base)[S.MODEL_NAME]
        served.refresh()
        current = served.current.version if served.current else None
        result.check(current == versions[-1], f"the server serves {current}, not v{versions[-1]}")
        again = E.export_degrader(_tiny_degrader(seed=2), base)
        result.check(again.endswith(os.sep + "2"), f"the next export took {again}")
        result.observed = (
            f"ExportError '{message.replace(base + os.sep, '')}'; versions still {versions}, "
            f"no dot-folder, server on v{current}, next export is v2"
        )
    return result


def _eval_command(run: str, cache_dir: str) -> list[str]:
    sets = [f"--set={s}" for s in (*EVAL_SETTINGS, f"eval.cache_dir={cache_dir}")]
    return [
        sys.executable,
        "-m",
        "trainers.evaluate",
        "--config=benchmark_tiny",
        f"--run={run}",
        "--baselines=raw,down4",
        "--seeds=2",
        *sets,
    ]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def eval_sigterm(work_dir: str) -> Result:
    """SIGTERM once the first baseline's first seed is cached; the rerun resumes from what was
    cached at the stop. On a loaded machine the tiny evaluation can finish all its seeds
    before the poll wakes: that attempt injected nothing and is made again (3 at most)."""
    result = Result(
        "eval_sigterm",
        "SIGTERM to trainers.evaluate (raw,down4 x 2 seeds) once raw's seed 0 was cached",
    )
    with _timed(result):
        for attempt in range(3):
            work = os.path.join(work_dir, f"eval_sigterm{attempt}")
            run, cache_dir = os.path.join(work, "run"), os.path.join(work, "cache")
            os.makedirs(work, exist_ok=True)
            command = _eval_command(run, cache_dir)

            def cached(baseline: str = "raw", cache_dir=cache_dir) -> list[str]:
                return glob.glob(os.path.join(cache_dir, f"{baseline}-*.json"))

            first_log = os.path.join(work, "first.log")
            first_err = os.path.join(work, "first.err")
            first = _popen(command, first_log, first_err)
            try:
                if not _wait_until(lambda: bool(cached()), first, 4 * START_TIMEOUT_S):
                    result.check(False, f"no raw seed was cached; see {first_log}, {first_err}")
                    return result
                finished_first = first.poll() is not None
                if not finished_first:
                    first.send_signal(signal.SIGTERM)
                status = first.wait(timeout=60)
            finally:
                _stop(first)
            if not finished_first:
                break
        else:
            result.check(False, "the evaluation finished before SIGTERM in 3 attempts")
            return result
        text = _read(first_err)
        last = _last_line(text)
        result.check(status == 143, f"exit status {status}, not 143 (128 + SIGTERM)")
        result.check("Traceback" not in text, f"a trace-back in {first_err}")
        result.check(
            last.startswith("trainers.evaluate: stopped by SIGTERM") and cache_dir in last,
            f"last line is not the SIGTERM message naming the cache: {last!r}",
        )
        # What the stop left: raw's first seed at least, and not the whole evaluation.
        stored = {b: list(range(len(cached(b)))) for b in ("raw", "down4")}
        result.check(
            stored["raw"] and stored["down4"] != [0, 1],
            f"cached at the stop: {stored}, expected raw's seed 0 and not every seed",
        )

        second = subprocess.run(
            command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600
        )
        with open(os.path.join(work, "second.log"), "w") as f:
            f.write(second.stdout + second.stderr)
        if not result.check(second.returncode == 0, f"the rerun failed: {second.stderr[-500:]}"):
            return result
        raw_lines = [line for line in second.stdout.splitlines() if "[eval] raw:" in line]
        result.check(
            any(f"(cached seeds {stored['raw']})" in line for line in raw_lines),
            f"the rerun did not report raw's cached seeds {stored['raw']}: {raw_lines}",
        )
        with open(os.path.join(run, "report.json")) as f:
            report = json.load(f)["results"]
        for baseline, seeds in stored.items():
            got = report[baseline]["cached_seeds"]
            result.check(got == seeds, f"report: {baseline} cached_seeds {got}, not {seeds}")
        message = last.replace(work + os.sep, "")
        result.observed = (
            f"exit {status}, stderr's last line '{message}', no trace-back; the rerun printed "
            f"'[eval] raw: ... (cached seeds {stored['raw']})' and finished (report.json: raw "
            f"cached_seeds {report['raw']['cached_seeds']}, down4 "
            f"{report['down4']['cached_seeds']}; attempt {attempt + 1})"
        )
    return result


FAULTS: dict[str, Callable[..., Result]] = {
    "server_restart": server_restart,
    "truncated_checkpoint": truncated_checkpoint,
    "export_disk_full": export_disk_full,
    "eval_sigterm": eval_sigterm,
}


def run_fault(name: str, work_dir: str, **kwargs) -> Result:
    """FAULTS[name] on work_dir; a scenario that raises is a FAIL naming the exception."""
    start = time.perf_counter()
    try:
        return FAULTS[name](work_dir, **kwargs)
    except Exception as e:  # the script reports every fault, whatever one of them does
        first = (str(e).strip().splitlines() or [""])[0][:300]
        return Result(
            name,
            "(see the module doc)",
            observed="the scenario itself raised",
            problems=[f"{type(e).__name__}: {first}"],
            seconds=time.perf_counter() - start,
        )


# The command line's flags, in this module's own FlagValues (see tfprivacy.runtime.run_cli).
FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "faults", list(FAULTS), f"Faults to inject, of {', '.join(FAULTS)}.", flag_values=FLAGS
)
flags.DEFINE_string(
    "work_dir", "", "Scratch folder, kept; default: a temporary one.", flag_values=FLAGS
)
flags.DEFINE_integer("retries", 8, "server_restart: the client's --retries.", flag_values=FLAGS)
flags.DEFINE_float(
    "retry_seconds", 0.5, "server_restart: the client's --retry_seconds.", flag_values=FLAGS
)


@flags.validator("faults", flag_values=FLAGS)
def _check_faults(faults) -> bool:
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise flags.ValidationError(f"unknown {unknown}; known: {', '.join(FAULTS)}")
    return True


def main(argv):
    """Injects each of --faults, one line each; exit status 1 on any FAIL. argv: the program
    name alone (run_cli)."""
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # TF's INFO lines would bury the report
    # Absolute: the subprocesses run in REPO (the checkout, or site-packages once installed),
    # so a relative --work_dir would name another folder there than here.
    work_dir = os.path.abspath(FLAGS.work_dir or tempfile.mkdtemp(prefix="fault_injection_"))
    os.makedirs(work_dir, exist_ok=True)
    # Never the user's ~/.cache: the tiny benchmark is generated next to the scratch files.
    os.environ.setdefault("TFPRIVACY_DATA", os.path.join(work_dir, "data"))
    start = time.perf_counter()
    results = []
    try:
        for name in FLAGS.faults:
            kwargs = {}
            if name == "server_restart":
                kwargs = {"retries": FLAGS.retries, "retry_seconds": FLAGS.retry_seconds}
            results.append(run_fault(name, work_dir, **kwargs))
            print(results[-1].line(), flush=True)
    finally:
        if not FLAGS.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    failed = [r.fault for r in results if not r.passed]
    total = time.perf_counter() - start
    verdict = f"FAIL: {', '.join(failed)}" if failed else "all PASS"
    print(f"{len(results)} faults in {total:.1f} s: {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    runtime.run_cli(main, FLAGS)
