"""Small I/O helpers shared by the library: hashing, atomic writes, script logging."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def seed_of(path: str | os.PathLike[str]) -> int:
    """The seed in a per-seed fit file's name (``.../seed<N>.nc`` or ``.json``)."""
    match = re.search(r"seed(\d+)\.(?:nc|json)$", str(path))
    if match is None:
        raise ValueError(f"{path} is not a per-seed fit file (seed<N>.nc or seed<N>.json)")
    return int(match.group(1))


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


@contextlib.contextmanager
def script_log(log_path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Send a Snakemake script's stdout and stderr (and warnings) to its log file.

    An exception raised inside the block is written to the log with its
    traceback and then re-raised, so the rule fails and the log says why.
    """
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
