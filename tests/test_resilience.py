"""Interrupted, crashing or killed fits, end to end: real Snakemake, real PyMC, real signals.

Each test runs the fit jobs of a tiny radon configuration (embedded source,
PyMC's NUTS, non-centered, 4 seeds in one batch) and compares with one
uninterrupted run of the same configuration, array for array.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COMPILE_CACHE, OWN_COMPILE_CACHE, ROOT, SNAKEMAKE, copy_config, radon, run_snakemake

pytestmark = pytest.mark.slow

SEEDS = [1, 2, 3, 4]
FITS = "results/radon/fits/pymc/noncentered"
LOG = "results/logs/radon/fit/pymc/noncentered/batch0.log"
TARGETS = [f"{FITS}/seed{s}.{ext}" for s in SEEDS for ext in ("nc", "json")]


def tiny(dest: Path, **fit) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    settings = {
        "seeds": SEEDS,
        "batch_size": 4,
        "chains": 2,
        "tune": 150,
        "draws": 150,
        "samplers": ["pymc"],
        "models": ["noncentered"],
        **fit,
    }
    copy_config(dest, datasets=radon(source="embedded"), fit=settings)
    return dest


def popen(workdir: Path, *targets: str, env: dict | None = None) -> subprocess.Popen:
    """Snakemake in a process group of its own, as a terminal runs it (Ctrl-C reaches the whole group)."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
    )


def wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before {text!r} appeared in {path}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def sampled_and_resumed(log: Path) -> tuple[list[int], list[int]]:
    lines = log.read_text().splitlines()
    sampled = [int(x.split()[1].rstrip(":")) for x in lines if x.endswith(": sampling...")]
    resumed = [int(x.split()[1].rstrip(":")) for x in lines if ": resumed from " in x]
    return sampled, resumed


def stored_seeds(workdir: Path) -> list[int]:
    return sorted(int(p.name[4:].split("-")[0]) for p in (workdir / FITS / ".store").glob("seed*.nc"))


def assert_same_draws(a: Path, b: Path) -> None:
    """Every posterior and sample-stat array of two traces is identical."""
    import arviz as az

    x, y = az.from_netcdf(str(a)), az.from_netcdf(str(b))
    for group in ("posterior", "sample_stats"):
        dx, dy = getattr(x, group), getattr(y, group)
        assert sorted(dx.data_vars) == sorted(dy.data_vars)
        for name in dx.data_vars:
            np.testing.assert_array_equal(dx[name].values, dy[name].values, err_msg=f"{a.name} {group}.{name}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tiny(tmp_path_factory.mktemp("uninterrupted"))
    run_snakemake(workdir, *TARGETS)
    return workdir


def test_sigkill_after_some_seeds_costs_only_the_rest(uninterrupted, tmp_path):
    """A hard kill of Snakemake and its job (node loss, OOM killer) mid-batch."""
    workdir = tiny(tmp_path / "killed")
    proc = popen(workdir, *TARGETS)
    wait_for(workdir / LOG, "seed 2: sampling...", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    kept = stored_seeds(workdir)
    assert kept and kept == SEEDS[: len(kept)] and len(kept) < len(SEEDS), kept

    # The lock of the killed run is left behind; --unlock (README, "When things go wrong") clears it.
    locked = run_snakemake(workdir, *TARGETS, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run_snakemake(workdir, "--unlock", *TARGETS)
    run_snakemake(workdir, *TARGETS)
    sampled, resumed = sampled_and_resumed(workdir / LOG)
    assert resumed == kept and sampled == [s for s in SEEDS if s not in kept]
    for seed in SEEDS:
        assert_same_draws(workdir / FITS / f"seed{seed}.nc", uninterrupted / FITS / f"seed{seed}.nc")
    assert not list((workdir / FITS).rglob("*.tmp"))


def test_ctrl_c_stops_within_seconds_and_keeps_no_short_trace(tmp_path):
    """Ctrl-C during a seed: PyMC would return the chains drawn so far; nothing of that seed is kept."""
    workdir = tiny(tmp_path / "ctrl_c", tune=500, draws=4000)
    proc = popen(workdir, *TARGETS)
    wait_for(workdir / LOG, "seed 2: sampling...", proc)
    time.sleep(1.5)  # well inside seed 2's sampling
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    stopped = time.monotonic() - start
    assert proc.returncode != 0
    assert stopped < 20, f"Snakemake took {stopped:.1f} s to stop"
    log = (workdir / LOG).read_text()
    assert "seed 2: received SIGINT; stopping" in log
    assert "seed 3: sampling" not in log
    # Only complete traces survive: seed 1 in the store, no output or store entry of seed 2.
    assert stored_seeds(workdir) == [1]
    import arviz as az

    for path in (workdir / FITS).rglob("*.nc"):
        post = az.from_netcdf(str(path)).posterior
        assert (post.sizes["chain"], post.sizes["draw"]) == (2, 4000), path
    assert not (workdir / FITS / "seed2.nc").exists() and not (workdir / FITS / "seed2.json").exists()
    assert not list((workdir / FITS).rglob("*.tmp"))


def test_a_crashing_seed_with_on_error_stop_costs_only_itself(uninterrupted, tmp_path):
    workdir = tiny(tmp_path / "stop")
    failed = run_snakemake(workdir, *TARGETS, check=False, env={"FUNNEL_TEST_FAIL_SEEDS": "3"})
    assert failed.returncode != 0
    log = (workdir / LOG).read_text()
    assert "seed 3: FAILED: RuntimeError: injected fault for seed 3" in log
    assert "1 seed(s) failed" in log and "set fit.on_error: record" in log
    assert stored_seeds(workdir) == [1, 2, 4]  # the batch went on past the failure

    run_snakemake(workdir, *TARGETS)  # the fault is gone
    sampled, resumed = sampled_and_resumed(workdir / LOG)
    assert sampled == [3] and resumed == [1, 2, 4]
    for seed in SEEDS:
        assert_same_draws(workdir / FITS / f"seed{seed}.nc", uninterrupted / FITS / f"seed{seed}.nc")


def test_a_crashing_seed_with_on_error_record_shows_in_the_tables(tmp_path):
    workdir = tiny(tmp_path / "record", on_error="record")
    run_snakemake(workdir, "results/radon/tables/fits.csv", env={"FUNNEL_TEST_FAIL_SEEDS": "3"})
    fits = pd.read_csv(workdir / "results/radon/tables/fits.csv", keep_default_na=False)
    assert list(fits["status"]) == ["ok", "ok", "failed", "ok"]
    assert fits.loc[2, "error"] == "RuntimeError: injected fault for seed 3 (FUNNEL_TEST_FAIL_SEEDS)"
    assert (fits.loc[[0, 1, 3], "draws"] == 150).all() and fits.loc[2, "draws"] == 0
    summary = pd.read_csv(workdir / "results/radon/tables/summary.csv").iloc[0]
    assert summary["seeds"] == 4 and summary["failed"] == 1
    header = (workdir / "results/radon/tables/summary.md").read_text().splitlines()[4]
    assert re.search(r"\|\s+failed\s+\|", header), header


def test_a_damaged_compile_cache_is_named_with_the_fix(tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(COMPILE_CACHE, cache)
    # A first run makes sure this model's compiled code is in the cache copy (the jobs use the config's
    # compile_cache, not the session's: OWN_COMPILE_CACHE).
    fill = tiny(tmp_path / "fill", compile_cache=str(cache), seeds=[1], batch_size=1)
    run_snakemake(fill, f"{FITS}/seed1.nc", env=OWN_COMPILE_CACHE)
    damaged = 0
    for path in [*cache.rglob("*.nbi"), *cache.rglob("*.nbc")]:
        path.write_bytes(path.read_bytes()[:20])  # writes cut short
        damaged += 1
    assert damaged
    workdir = tiny(tmp_path / "cache_run", compile_cache=str(cache), seeds=[1], batch_size=1)
    proc = run_snakemake(workdir, f"{FITS}/seed1.nc", check=False, env=OWN_COMPILE_CACHE)
    if proc.returncode == 0:
        # Whether numba reads a damaged index or skips it depends on the cache's history (seen
        # both ways); when it skips it, the fit must still be whole. The message itself is
        # checked in test_batch.py (test_run_batch_names_a_damaged_compile_cache).
        import arviz as az

        post = az.from_netcdf(str(workdir / FITS / "seed1.nc")).posterior
        assert (post.sizes["chain"], post.sizes["draw"]) == (2, 150)
        return
    log = (workdir / LOG).read_text()
    assert f"the compile cache {cache} holds a damaged file" in log and f"rm -rf {cache}" in log


def test_a_deleted_trace_is_rebuilt_by_a_plain_run(small_run, tmp_path):
    """A plain `snakemake` (target `all`) plans the fit job of a deleted trace, and refills it from the store."""
    workdir = tmp_path / "copy"
    shutil.copytree(small_run, workdir, symlinks=True)
    assert "fit_batch" not in run_snakemake(workdir, "-n").stdout
    trace = workdir / "results/radon/fits/nutpie/centered/seed2.nc"
    before = trace.read_bytes()
    trace.unlink()
    plan = run_snakemake(workdir, "-n").stdout
    assert "fit_batch0_radon_nutpie_centered" in plan and "results/radon/fits/nutpie/centered/seed2.nc" in plan
    run_snakemake(workdir, "results/radon/fits/nutpie/centered/seed2.nc")
    assert trace.read_bytes() == before
    sampled, resumed = sampled_and_resumed(workdir / "results/logs/radon/fit/nutpie/centered/batch0.log")
    assert sampled == [] and resumed == [1, 2]


def test_a_store_entry_of_another_seed_is_refit_not_resumed(uninterrupted, tmp_path):
    """Seed 3's trace (and its checksum file) under seed 2's name in the store, seed 2's output deleted:
    a plain rerun notices (its recorded key and its own attributes are seed 3's), warns and samples seed 2 again."""
    workdir = tmp_path / "swapped"
    shutil.copytree(uninterrupted, workdir, symlinks=True)
    store = workdir / FITS / ".store"
    (two,) = store.glob("seed2-*.nc")
    (three,) = store.glob("seed3-*.nc")
    for suffix in ("", ".sha256"):
        Path(f"{two}{suffix}").write_bytes(Path(f"{three}{suffix}").read_bytes())
    (workdir / FITS / "seed2.nc").unlink()
    run_snakemake(workdir, *TARGETS)
    sampled, resumed = sampled_and_resumed(workdir / LOG)
    assert sampled == [2] and resumed == [1, 3, 4]
    log = (workdir / LOG).read_text()
    assert f"WARNING: stored {two.relative_to(workdir)} unreadable or not what its name says" in log
    for seed in SEEDS:
        assert_same_draws(workdir / FITS / f"seed{seed}.nc", uninterrupted / FITS / f"seed{seed}.nc")
    assert not list((workdir / FITS).rglob("*.tmp"))
