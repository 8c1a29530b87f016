"""Small I/O helpers shared by the library: hashing, atomic writes, script logging."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception the temporary file is removed, so a failed step never
    leaves a half-written output behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: fill a temp dir, then rename it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def non_finite(payload: Any, where: str = "") -> str | None:
    """Where in ``payload`` the first NaN or infinity is (e.g. ``priors.mu_a.sigma``); None if nowhere."""
    if isinstance(payload, float) and not math.isfinite(payload):
        return where or "(the value itself)"
    if isinstance(payload, dict):
        items: Any = payload.items()
    elif isinstance(payload, list | tuple):
        items = enumerate(payload)
    else:
        return None
    for key, value in items:
        found = non_finite(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def null_for_non_finite(payload: Any) -> Any:
    """``payload`` ready for strict JSON: every NaN or infinite float as None (JSON's ``null``), NumPy
    scalars as Python ones, tuples as lists."""
    if isinstance(payload, float | np.floating):
        return float(payload) if math.isfinite(payload) else None
    if isinstance(payload, np.integer):
        return int(payload)
    if isinstance(payload, np.bool_):
        return bool(payload)
    if isinstance(payload, Mapping):
        return {key: null_for_non_finite(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [null_for_non_finite(value) for value in payload]
    return payload


def write_json(path: str | os.PathLike[str], payload: Any, *, undefined_as_null: bool = False) -> None:
    """``payload`` as strict JSON (never a NaN or Infinity, which JSON does not have), atomically.

    By default a non-finite number is refused, naming where it is: in a data record it means the
    input needs fixing. Records of measurements (a fit's diagnostics, a verdict) pass
    ``undefined_as_null=True``: a statistic that is undefined there (an ESS of a chain that never
    moved, a test that could not be made) is written as ``null``.
    """
    if undefined_as_null:
        payload = null_for_non_finite(payload)
    try:
        text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        where = non_finite(payload)
        raise ValueError(
            f"{path}: refusing to write {where or 'a value'} = {_value_at(payload, where)} (not a finite number; "
            "JSON has no NaN or infinity). The input that produced it needs fixing."
        ) from None
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def _value_at(payload: Any, where: str | None) -> Any:
    if not where or where == "(the value itself)":
        return payload if isinstance(payload, float) else "NaN"
    try:
        for key in where.split("."):
            payload = payload[int(key)] if isinstance(payload, list | tuple) else payload[key]
    except (KeyError, IndexError, ValueError, TypeError):
        return "NaN or infinity"
    return payload


def seed_of(path: str | os.PathLike[str]) -> int:
    """The seed in a per-seed fit file's name (``.../seed<N>.nc`` or ``.json``)."""
    match = re.search(r"seed(\d+)\.(?:nc|json)$", str(path))
    if match is None:
        raise ValueError(f"{path} is not a per-seed fit file (seed<N>.nc or seed<N>.json)")
    return int(match.group(1))


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- orphans
ORPHAN_POLL = 1.0  # seconds between two looks at the Snakemake process that started this job
ORPHAN_GRACE = 5.0  # seconds SIGTERM gets before the process exits hard
SCRIPT_MARK = "/.snakemake/scripts/"  # where Snakemake writes the scripts it runs as jobs
HARD_STOP = 15.0  # seconds a job may take to stop after SIGINT or SIGTERM before it exits hard
_guard: threading.Thread | None = None
_stopper: threading.Thread | None = None


def stop_within(seconds: float | None = None) -> bool:
    """After SIGINT or SIGTERM, exit within ``seconds`` (default HARD_STOP) whatever the job is doing.

    The scripts turn the signals into an exception (funnel.batch), which stops a job cleanly
    when Python gets control; a job stuck in a long C call, swapping while it allocates, or
    inside a library that swallows KeyboardInterrupt may not. Here the signal also wakes a
    thread (through signal.set_wakeup_fd, written by the C-level handler) that arms
    faulthandler's timer, a C thread that dumps every thread's traceback to stderr (the
    job's log) and exits the process when the time is up. Main thread only; False elsewhere.
    """
    global _stopper
    import faulthandler
    import signal

    if _stopper is not None:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    limit = HARD_STOP if seconds is None else seconds
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # pragma: no cover - not the main thread of the main interpreter
        os.close(read_end)
        os.close(write_end)
        return False
    stops = {int(signal.SIGINT), int(signal.SIGTERM)}

    def wait() -> None:
        while True:
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data:
                return
            received = [signal.Signals(b).name for b in data if b in stops]
            if received:
                out = sys.stderr
                print(
                    f"received {received[0]}: stopping; if still running in {limit:g} s, the job exits hard",
                    file=out,
                    flush=True,
                )
                faulthandler.dump_traceback_later(limit, exit=True, file=out)
                return

    _stopper = threading.Thread(target=wait, name="stop-within", daemon=True)
    _stopper.start()
    return True


def _start_time(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/<pid>/stat): with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def snakemake_ancestors(pid: int | None = None) -> list[tuple[int, str]]:
    """The (pid, start time) of every ancestor of ``pid`` (default: this process) that is a Snakemake
    process: the local scheduler that started this job. None on a cluster node, where no ancestor is."""
    found = []
    ancestor = _parent(os.getpid() if pid is None else pid)
    while ancestor > 1:
        try:
            cmdline = Path(f"/proc/{ancestor}/cmdline").read_bytes()
        except OSError:
            break
        start = _start_time(ancestor)
        if b"snakemake" in cmdline and start is not None:
            found.append((ancestor, start))
        ancestor = _parent(ancestor)
    return found


def die_with_snakemake(poll: float = ORPHAN_POLL, grace: float = ORPHAN_GRACE) -> list[tuple[int, str]]:
    """Stop this job when the Snakemake process that started it dies (even by kill -9).

    A daemon thread looks every ``poll`` seconds whether each Snakemake ancestor still
    exists (same pid, same start time); when one is gone it says so on stderr, sends this
    process SIGTERM and, if that did not end it within ``grace`` seconds, exits hard.
    A watchdog rather than prctl(PR_SET_PDEATHSIG): that signal follows the parent *thread*,
    and Snakemake starts jobs from worker threads. Without /proc, or with no Snakemake
    ancestor (a cluster job), it does nothing. Idempotent: one watchdog per process.
    """
    global _guard
    if _guard is not None or not Path("/proc/self/stat").exists():
        return []
    watched = snakemake_ancestors()
    if not watched:
        if SCRIPT_MARK in (sys.argv[0] if sys.argv else "").replace(os.sep, "/"):
            # A Snakemake job script whose Snakemake is already gone (killed while this job imported).
            raise SystemExit("the Snakemake process that started this job is gone: not starting (no orphan jobs)")
        return []

    def watch() -> None:
        import signal
        import time

        while True:
            time.sleep(poll)
            for pid, start in watched:
                if _start_time(pid) != start:
                    message = f"the Snakemake process {pid} that started this job is gone: stopping (no orphan jobs)"
                    for stream in {id(s): s for s in (sys.stderr, sys.__stderr__) if s is not None}.values():
                        with contextlib.suppress(Exception):
                            print(message, file=stream, flush=True)  # the job's log and the terminal
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(grace)
                    os._exit(143)

    _guard = threading.Thread(target=watch, name="die-with-snakemake", daemon=True)
    _guard.start()
    return watched


@contextlib.contextmanager
def script_log(log_path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Send a Snakemake script's stdout and stderr (and warnings) to its log file.

    An exception raised inside the block is written to the log with its
    traceback and then re-raised, so the rule fails and the log says why.
    Every script passes through here, so this is also where a local job starts
    watching the Snakemake process that started it (:func:`die_with_snakemake`).
    """
    die_with_snakemake()
    stop_within()
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as handle:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = handle
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc(file=handle)
            from .errors import end_on_message  # an expected error: its message, no traceback

            end_on_message(sys.exc_info()[1], handle)
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def warn_user(message: str) -> None:
    """Print a warning both to the (possibly redirected) log and to the terminal."""
    text = f"WARNING: {message}"
    print(text, file=sys.stderr, flush=True)
    if sys.stderr is not sys.__stderr__ and sys.__stderr__ is not None:
        print(text, file=sys.__stderr__, flush=True)
