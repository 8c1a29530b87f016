"""The SLURM profile, end to end on a real one-node SLURM cluster on localhost.

Installs Debian's slurm-wlm and munge with apt-get when SLURM is missing (skips
only when that is impossible), starts munged, slurmctld and slurmd by hand with
no accounting daemon (tests/slurm/minicluster.py), runs the workflow through
profiles/slurm and compares its outputs with a local run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import COMPILE_CACHE, ROOT, SNAKEMAKE, copy_config, run_snakemake

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import minicluster  # noqa: E402

PROFILE = ROOT / "profiles" / "slurm"
# Files built through SLURM and compared byte for byte with a local run. Extend
# as rules are added (their jobs must then appear under SLURM_RULES too).
SLURM_TARGETS = [
    "results/radon/data/table.csv",
    "results/radon/fits/nutpie/noncentered/seed1.nc",
    "results/radon/sbc/records.csv",
    "results/radon/sbc/calibration.csv",
]
# A small SBC campaign: 16 simulations, 8 per job, one form: 2 sbatch jobs.
SLURM_SBC = {
    "enabled": True,
    "samplers": ["nutpie"],
    "models": ["noncentered"],
    "simulations": 16,
    "batch_size": 8,
    "chains": 2,
    "tune": 100,
    "draws": 100,
    "rank_draws": 50,
}
SBC_RULES = {f"sbc_batch{b}_radon_nutpie_noncentered" for b in (0, 1)}
# Rules whose jobs must have gone through sbatch; LOCAL_RULES must not have.
SLURM_RULES = {"clean", "fit_batch0_radon_nutpie_noncentered", *SBC_RULES, "sbc_table"}
# One short real fit, so that a PyMC job runs on the "compute node".
SLURM_FIT = {
    "seeds": [1],
    "batch_size": 1,
    "samplers": ["nutpie"],
    "models": ["noncentered"],
    "chains": 2,
    "tune": 200,
    "draws": 200,
    "compile_cache": str(COMPILE_CACHE),
}
LOCAL_RULES = {"download"}
# Seconds before a hung Snakemake is interrupted (SIGINT, so it cancels its jobs).
SLURM_RUN_TIMEOUT = 300

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node cluster; its daemons are stopped by PID at the end of the session."""
    reason = minicluster.ensure_installed()
    if reason:
        pytest.skip(f"no SLURM: {reason}")
    cluster = minicluster.MiniCluster()  # in a fresh /tmp/minicluster-* folder, removed by stop()
    try:
        cluster.start(timeout=60)
        yield cluster
    finally:
        cluster.stop()


def profile_default_resources(partition: str) -> list[str]:
    """The profile's default-resources, with the partition placeholder replaced."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    resources = {**profile["default-resources"], "slurm_partition": partition}
    return [f"{key}={value}" for key, value in resources.items()]


def _slurm_logs(workdir: Path) -> str:
    """The ends of the jobs' SLURM logs, for failure messages."""
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "".join(f"\n--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)


def run_snakemake_interruptible(
    workdir: Path, *args: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Like conftest.run_snakemake, but a run past ``timeout`` gets SIGINT (it then
    cancels its SLURM jobs) before it is killed, and the test fails with its output."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env, cwd=workdir
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
        raise AssertionError(
            f"snakemake on SLURM still running after {timeout} s, interrupted:\n{out[-4000:]}\n{err[-8000:]}{_slurm_logs(workdir)}"
        ) from None
    if proc.returncode != 0:
        raise AssertionError(
            f"snakemake on SLURM failed ({proc.returncode}):\n{out[-4000:]}\n{err[-8000:]}{_slurm_logs(workdir)}"
        )
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_profile_names_only_settings_the_plugin_knows():
    # Profile keys are the CLI flags without dashes; a misspelt one would be a CLI error.
    from snakemake_executor_plugin_slurm import ExecutorSettings

    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    plugin_keys = {key for key in profile if key.startswith("slurm-")}
    known = {"slurm-" + name.replace("_", "-") for name in ExecutorSettings.__dataclass_fields__}
    assert plugin_keys <= known, plugin_keys - known
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert {"slurm_partition", "runtime", "mem_mb"} <= set(profile["default-resources"])
    assert "download" not in profile.get("set-resources", {})


@pytest.mark.slow
def test_workflow_runs_through_slurm_profile(slurm_cluster, tmp_path):
    # The embedded source: no network and no ../shared needed, so anyone can run this test.
    data = {"source": "embedded"}
    on_slurm = tmp_path / "slurm"
    local = tmp_path / "local"
    for folder in (on_slurm, local):
        folder.mkdir()
        copy_config(folder, datasets={"radon": data}, fit=SLURM_FIT, sbc=SLURM_SBC)

    env = {
        **slurm_cluster.client_env(),
        "PYTHONHASHSEED": "0",
        # Jobs run `python -m snakemake` from this venv on the "compute node".
        "PATH": os.pathsep.join([str(Path(SNAKEMAKE).parent), slurm_cluster.client_env()["PATH"]]),
    }
    proc = run_snakemake_interruptible(
        on_slurm,
        "--profile",
        str(PROFILE),
        "--workflow-profile",
        "none",
        "--default-resources",
        *profile_default_resources(slurm_cluster.partition),
        # Test-only: keep the logs of successful jobs to inspect them, and poll
        # sooner than the plugin's 40 s default so the test stays short.
        "--slurm-keep-successful-logs",
        "--slurm-init-seconds-before-status-checks",
        "5",
        *SLURM_TARGETS,
        env=env,
        timeout=SLURM_RUN_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    # The status came from squeue (MinJobAge is high enough), not from sacct.
    assert "Falling back to 'sacct'" not in output

    # Every SLURM_RULES job went through sbatch, with its log under this workdir.
    submitted = {int(slurm_id): Path(log) for _, slurm_id, log in SUBMITTED.findall(output)}
    assert submitted, f"no job was submitted to SLURM:\n{output[-4000:]}"
    logdir = on_slurm / ".snakemake" / "slurm_logs"
    rules_seen = set()
    for slurm_id, log in submitted.items():
        assert log.is_relative_to(logdir), log
        rule = log.relative_to(logdir).parts[0].removeprefix("rule_")
        rules_seen.add(rule)
        assert log.is_file(), f"no SLURM log {log}"
        # MinJobAge keeps finished jobs in the controller: it ran, on our partition.
        job = slurm_cluster.run("scontrol", "show", "job", str(slurm_id)).stdout
        assert "JobState=COMPLETED" in job, job
        assert f"Partition={slurm_cluster.partition}" in job, job
        assert f"Comment=rule_{rule}" in job, job
    assert rules_seen == SLURM_RULES, output[-4000:]
    # The local rule ran on this machine: no SLURM log, reported as a localrule.
    for rule in LOCAL_RULES:
        assert not (logdir / f"rule_{rule}").exists()
        assert f"localrule {rule}:" in output
    # Nothing of the SLURM run leaked into the repository.
    assert not list(ROOT.glob("slurm-*.out"))

    # Same bytes as a local run of the same config.
    run_snakemake(local, "--workflow-profile", "none", *SLURM_TARGETS)
    for target in SLURM_TARGETS:
        if target.endswith(".nc"):
            # Traces carry timings in their attributes: compare the draws themselves.
            import arviz as az

            ours, theirs = az.from_netcdf(on_slurm / target), az.from_netcdf(local / target)
            for group in ("posterior", "sample_stats"):
                assert ours[group].drop_attrs().identical(theirs[group].drop_attrs()), (target, group)
        elif target.endswith("records.csv"):
            # SBC records: the same ranks, truths and diagnostics; only the timings differ.
            import pandas as pd

            ours, theirs = (
                pd.read_csv(folder / target).drop(columns="sampling_seconds") for folder in (on_slurm, local)
            )
            assert len(ours) == 16 and (ours["status"] == "ok").all()
            pd.testing.assert_frame_equal(ours, theirs)
        else:
            assert (on_slurm / target).read_bytes() == (local / target).read_bytes(), target
