"""Expected errors end a run on their message, without a traceback.

An *expected* error is a problem the user can fix from its message alone: a
configuration error, a data check that refuses a table, a batch of fits with
failed seeds, a damaged compile cache. The workflow prints such a message as the
last lines of Snakemake's output, wherever it arises:

* before any job (the checks of ``workflow/rules/common.smk``): :func:`stop`
  prints it and exits;
* in a job's script: :func:`end_on_message`, called by ``funnel.io.script_log``,
  writes the traceback (the details) and then the message, each line prefixed by
  :data:`MARKER`, to the job's log and exits with status 1 without a traceback;
  when the run is over, Snakemake's ``onerror`` hook calls :func:`end_on_failures`,
  which collects the marked messages of the logs written during the run and
  prints them last.

Any other exception (a bug) keeps Snakemake's full report with its traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO


class DataError(RuntimeError):
    """Bad or unexpected input data or dataset spec; the message names the problem and the fix.

    The library's one base error for bad input: every data and spec check raises it or a subclass
    (radon's ChecksumError and NetworkUnavailable among them)."""


# Prefix of the lines of a job's log that hold an expected error's message.
MARKER = "FUNNEL-ERROR: "

# The library's exceptions whose message names the problem and its fix (matched by
# name and module, so that this module imports nothing heavy).
EXPECTED = frozenset(
    {
        "funnel.errors.DataError",  # and its subclasses: radon's ChecksumError, NetworkUnavailable, ...
        "funnel.config.ConfigError",
        "funnel.batch.BatchFailed",
        "funnel.batch.CompileCacheError",
    }
)


def is_expected(error: BaseException | None) -> bool:
    """Whether ``error`` is one of the :data:`EXPECTED` errors (or a subclass of one)."""
    if error is None:
        return False
    return any(f"{cls.__module__}.{cls.__qualname__}" in EXPECTED for cls in type(error).__mro__)


def format_message(message: str) -> str:
    """The lines the user reads last: ``Error: <message>``."""
    return f"Error: {message.strip()}"


def stop(message: str, stream: TextIO | None = None) -> NoReturn:
    """Print ``message`` as the last lines of the output and exit with status 1 (no traceback).

    For the checks that run while Snakemake reads the workflow, before any job: a
    ``WorkflowError`` raised there is printed with the Snakefile's file and line
    after the message, so the output would not end on it.
    """
    print(format_message(message), file=stream or sys.stderr, flush=True)
    raise SystemExit(1)


def end_on_message(error: BaseException | None, log: TextIO) -> None:
    """In a job's script: for an expected ``error``, write its message to the job's log
    (each line prefixed by :data:`MARKER`) and exit with status 1, without a traceback
    on the terminal. Returns (the caller re-raises) for any other error."""
    if not is_expected(error):
        return
    for line in str(error).strip().splitlines() or [type(error).__name__]:
        log.write(f"{MARKER}{line}\n")
    log.flush()
    raise SystemExit(1)


def marked_messages(log_dir: str | os.PathLike[str], since: float) -> list[tuple[Path, str]]:
    """The expected errors in the logs under ``log_dir`` written at or after ``since``
    (a time.time()): (log path, message), oldest log first."""
    found = []
    for path in Path(log_dir).rglob("*.log"):
        try:
            if path.stat().st_mtime < since:
                continue
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        message = [line[len(MARKER) :] for line in lines if line.startswith(MARKER)]
        if message:
            found.append((path.stat().st_mtime, path, "\n".join(message)))
    return [(path, message) for _, path, message in sorted(found)]


def failed_jobs(snakemake_logs: Any) -> int:
    """How many jobs failed, from Snakemake's own log file(s) of the run (the ``log`` of its
    ``onerror`` hook: a path or a list of them; 0 if none can be read)."""
    if isinstance(snakemake_logs, (str, os.PathLike)):
        snakemake_logs = [snakemake_logs]
    count = 0
    for path in snakemake_logs or []:
        try:
            count += Path(path).read_text(errors="replace").count("\nError in rule ")
        except (OSError, TypeError):
            continue
    return count


def end_on_failures(
    log_dir: str | os.PathLike[str],
    since: float,
    snakemake_log: Any = None,
    stream: TextIO | None = None,
) -> None:
    """Snakemake's ``onerror`` hook: print the message of every job that failed on an
    expected error during this run (their logs under ``log_dir`` written since
    ``since``) as the last lines of the output, and exit with status 1. Jobs that
    failed otherwise (counted in ``snakemake_log``) are mentioned before them.

    Returns without printing when no failed job left such a message (a bug: Snakemake
    ends with its own report, whose traceback is needed then).
    """
    try:
        failures = marked_messages(log_dir, since)
        others = failed_jobs(snakemake_log) - len(failures)
    except Exception:  # noqa: BLE001 - the hook must never hide the run's own report behind its own error
        return
    if not failures:
        return
    out = stream or sys.stderr
    if others > 0:
        print(f"\n{others} other job(s) failed: see their errors above.", file=out)
    count = f"{len(failures)} problems" if len(failures) > 1 else "a problem"
    print(f"\nThe run stopped on {count} to fix (the job's log has the details):", file=out)
    for path, message in failures:
        print(f"{path}:", file=out)
        print(format_message(message), file=out)
    out.flush()
    raise SystemExit(1)


@contextlib.contextmanager
def removed_on_refusal(*paths: str | os.PathLike[str]) -> Iterator[None]:
    """Remove ``paths`` (files or folders) when the block raises an expected error, so
    that a refused dataset leaves nothing behind but its log (e.g. its fetched copy)."""
    try:
        yield
    except BaseException as error:
        if is_expected(error):
            for path in map(Path, paths):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
