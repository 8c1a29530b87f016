"""Install Debian packages a test needs (SLURM, Chromium), or say why that is impossible."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# One apt-get at a time: the test workers (pytest-xdist) may install SLURM and Chromium at once.
LOCK = Path(tempfile.gettempdir()) / "funnel-tests-apt.lock"


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def apt_install(packages: list[str], missing: str, timeout: float = 600) -> str | None:
    """``apt-get install`` ``packages``; None when it worked, else a skip reason naming ``missing``."""
    if not shutil.which("apt-get"):
        return f"{missing} and apt-get is unavailable to install {' '.join(packages)}"
    if os.geteuid() != 0:
        return f"{missing} and installing {' '.join(packages)} with apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ]
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _run_steps(steps, env, timeout)


def _run_steps(steps: list[list[str]], env: dict[str, str], timeout: float) -> str | None:
    for cmd in steps:
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out after {timeout:.0f} s"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{tail(proc.stdout + proc.stderr)}"
    return None
