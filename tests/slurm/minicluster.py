"""A throwaway one-node SLURM cluster on localhost, for tests.

No systemd and no accounting daemon (slurmdbd): munged, slurmctld and slurmd are
started by hand in the foreground, as children of this process, with every file
(munge key and socket, slurm.conf, state, spool, logs) in one private folder.
Clients and daemons find the cluster through the SLURM_CONF environment variable
(see ``MiniCluster.client_env``), so a system-wide SLURM or munge installation,
if any, is neither used nor disturbed. Every daemon is stopped by its PID.

One catch: inside a job, snakemake-executor-plugin-slurm-jobstep removes every
SLURM_* variable but a few job ids (SLURM_CONF included) before it calls
`srun`, so that srun would look for /etc/slurm/slurm.conf. ``client_env`` thus
also puts first on PATH a folder with an `srun` wrapper that sets SLURM_CONF
again. A real cluster keeps its config in the default place and needs no such
thing.

Used by tests/test_slurm.py; also runnable by hand for debugging:

    python tests/slurm/minicluster.py [FOLDER]   # start, print SLURM_CONF, wait for Ctrl-C
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared apt helper
from apt import apt_install, tail  # noqa: E402

PACKAGES = ["slurm-wlm", "munge"]
# Debian puts the daemons in /usr/sbin, which a non-login PATH may lack.
SBIN_PATH = os.pathsep.join(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
PARTITION = "debug"
# Seconds finished jobs stay visible in squeue/scontrol; the executor plugin's
# squeue status command relies on it (it wants at least 3 status-check intervals).
MIN_JOB_AGE = 300


def which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), SBIN_PATH]))


def ensure_installed(timeout: float = 600) -> str | None:
    """Install Debian's slurm-wlm and munge if needed. None when usable, else why not."""
    needed = ["slurmctld", "slurmd", "munged", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel"]
    if all(which(n) for n in needed):
        return None
    reason = apt_install(
        PACKAGES, f"SLURM is not installed ({', '.join(n for n in needed if not which(n))} missing)", timeout
    )
    if reason:
        return reason
    missing = [n for n in needed if not which(n)]
    if missing:
        return f"installed {' '.join(PACKAGES)} but {', '.join(missing)} still missing"
    return None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the process that started us dies.

    So a test run killed without running its finalizers leaves no daemons behind.
    """
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # not Linux, or no prctl: the finalizer still stops them
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _available_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class MiniCluster:
    """munged + slurmctld + slurmd on 127.0.0.1, configured under ``root``."""

    def __init__(self, root: Path | None = None, partition: str = PARTITION) -> None:
        # munged insists that every directory above its socket be searchable by
        # all users, which pytest's 0700 tmp folders are not: by default use a
        # fresh folder right under the system temp dir, removed by stop().
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="minicluster-")) if root is None else Path(root)
        self.partition = partition
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge-socket" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------ environment
    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point SLURM clients (and jobs) at this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def client_env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF, the srun wrapper first on PATH and the sbin folders last."""
        env = {**os.environ, **self.env}
        env["PATH"] = os.pathsep.join([str(self.root / "bin"), env.get("PATH", ""), SBIN_PATH])
        return env

    def _write_srun_wrapper(self) -> None:
        srun = which("srun")
        wrapper = self.root / "bin" / "srun"
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {shlex.quote(srun)} "$@"\n')
        wrapper.chmod(0o755)

    def run(self, *cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command (sinfo, squeue, scontrol, ...) against this cluster."""
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, env=self.client_env(), stdin=subprocess.DEVNULL
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    # ------------------------------------------------------------ configuration
    def _hardware(self) -> dict[str, str]:
        """CPU layout and memory as slurmd itself sees them (`slurmd -C`)."""
        proc = subprocess.run(
            [which("slurmd"), "-C"], capture_output=True, text=True, timeout=30, env=self.client_env()
        )
        first = proc.stdout.splitlines()[0] if proc.stdout else ""
        found = dict(re.findall(r"(\w+)=(\S+)", first))
        if "CPUs" not in found:
            found = {"CPUs": str(os.cpu_count() or 1)}
        return found

    def write_config(self) -> None:
        self.root.chmod(0o755)
        for sub in ["state", "spool", "munge", "munge-socket", "log"]:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        (self.root / "munge-socket").chmod(0o755)
        hw = self._hardware()
        real_memory = int(hw.get("RealMemory", 10**9))
        # A bit below what is free now, so the node never drains for "Low RealMemory".
        memory = max(512, min(real_memory, _available_memory_mb()) - 1024)
        layout = " ".join(
            f"{key}={hw[key]}"
            for key in ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"]
            if key in hw
        )
        self.memory_mb = memory
        self.cpus = int(hw["CPUs"])
        r = self.root
        self.conf.write_text(
            f"""\
# Written by tests/slurm/minicluster.py: one node on localhost, no accounting.
ClusterName=minicluster
SlurmctldHost={self.hostname}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge={MIN_JOB_AGE}
ReturnToService=2
NodeName={self.hostname} NodeAddr=127.0.0.1 {layout} RealMemory={memory} State=UNKNOWN
PartitionName={self.partition} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _munge_key(self) -> Path:
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            mungekey = which("mungekey")
            if mungekey:
                subprocess.run([mungekey, "--create", f"--keyfile={key}"], check=True, capture_output=True, timeout=30)
            else:
                key.write_bytes(os.urandom(1024))
        os.chown(key, os.geteuid(), os.getegid())
        key.chmod(0o400)
        (self.root / "munge").chmod(0o700)
        return key

    # ------------------------------------------------------------ daemons
    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = self.root / "log" / f"{name}.out"
        with open(log, "wb") as out:
            self.procs[name] = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.client_env(),
                cwd=self.root,
                preexec_fn=_die_with_parent,
            )

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({proc.returncode}) while waiting for {what}\n{self.diagnostics()}"
                    )
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.diagnostics()}")

    def start(self, timeout: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self._write_srun_wrapper()
        key = self._munge_key()
        m = self.root / "munge"
        self._spawn(
            "munged",
            [
                which("munged"),
                "--foreground",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={m}/munged.pid",
                f"--seed-file={m}/munged.seed",
                f"--log-file={self.root}/log/munged.log",
            ],
        )
        self._wait("the munge socket", self.munge_socket.exists, timeout)
        self._spawn("slurmctld", [which("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._wait(
            "slurmctld",
            lambda: self.run("scontrol", "ping", check=False, timeout=10).stdout.count("is UP") > 0,
            timeout,
        )
        self._spawn("slurmd", [which("slurmd"), "-D", "-f", str(self.conf), "-N", self.hostname])
        self._wait(f"node {self.hostname} idle", self.node_idle, timeout)

    def node_idle(self) -> bool:
        proc = self.run("sinfo", "-h", "-N", "-n", self.hostname, "-o", "%t", check=False, timeout=10)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def diagnostics(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            try:
                parts.append(f"--- {path.name}\n{tail(path.read_text(errors='replace'))}")
            except OSError:
                pass
        return "\n".join(parts)

    def _stepd_pids(self) -> list[int]:
        """PIDs of slurmstepd processes started by this cluster's slurmd (they detach from it)."""
        pids = []
        marker = f"SLURM_CONF={self.conf}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if not (entry / "cmdline").read_bytes().startswith(b"slurmstepd"):
                    continue
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self, timeout: float = 20) -> None:
        """Cancel leftover jobs, then stop slurmd, slurmctld and munged by PID."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--user", str(os.geteuid()), check=False, timeout=15)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    out = self.run(
                        "squeue",
                        "-h",
                        "-t",
                        "PENDING,RUNNING,COMPLETING,SUSPENDED",
                        "-o",
                        "%i",
                        check=False,
                        timeout=10,
                    )
                    if out.returncode != 0 or not out.stdout.strip():
                        break
                    time.sleep(0.5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in ["slurmd", "slurmctld", "munged"]:
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        for pid in self._stepd_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


if __name__ == "__main__":
    import sys

    reason = ensure_installed()
    if reason:
        sys.exit(reason)
    cluster = MiniCluster(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on kill/timeout too
    try:
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}   # Ctrl-C stops the cluster", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
