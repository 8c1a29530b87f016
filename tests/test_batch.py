"""The batch loop of a fit job (funnel.batch): resume, interrupts, incomplete fits, failures.

These drive ``run_batch`` with a small stand-in sampler that returns
constructed traces, so each control-flow path is checked in milliseconds; the
real samplers, Snakemake and real signals are exercised in test_resilience.py.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from funnel.batch import (  # noqa: E402
    STORE,
    BatchFailed,
    CompileCacheError,
    Faults,
    IncompleteFit,
    Interrupted,
    check_complete,
    compile_cache_guard,
    fit_key,
    map_key_parts,
    run_batch,
    write_maps,
)
from funnel.diagnostics import SUMMARY_METRICS, fits_table, readable_summary, split_failed, summarize  # noqa: E402
from funnel.store import Store, prune  # noqa: E402
from funnel.traces import funnel_draws, ok_traces, open_trace  # noqa: E402

CHAINS, DRAWS = 2, 50


def trace(seed: int, chains: int = CHAINS, draws: int = DRAWS):
    """A small InferenceData whose values depend on the seed."""
    import arviz as az

    rng = np.random.default_rng(seed)
    post = {
        "sigma_b": np.abs(rng.normal(size=(chains, draws))),
        "b": rng.normal(size=(chains, draws, 3)),
    }
    stats = {"diverging": np.zeros((chains, draws), dtype=bool)}
    idata = az.from_dict(posterior=post, sample_stats=stats, dims={"b": ["g"]}, coords={"g": ["x", "y", "z"]})
    # The attributes a real sampler records (funnel.fitting.BatchSampler), for the store's checks.
    idata.posterior.attrs = {"seed": seed, "sampling_seconds": 0.5, "sampler": "s", "model": "m"}
    idata.posterior.attrs |= {"chains": chains, "draws": draws}
    return idata


class StandIn:
    """Counts builds and samples; can raise, shorten a trace, or send itself a signal."""

    builds = 0

    def __init__(self, short: set[int] = frozenset(), signal_on: int | None = None, raise_on: set[int] = frozenset()):
        StandIn.builds += 1
        self.sampled: list[int] = []
        self.short, self.signal_on, self.raise_on = short, signal_on, raise_on

    def sample(self, seed: int):
        self.sampled.append(seed)
        if seed == self.signal_on:
            os.kill(os.getpid(), signal.SIGINT)
        if seed in self.raise_on:
            raise FloatingPointError(f"boom on {seed}")
        return trace(seed, chains=CHAINS - 1 if seed in self.short else CHAINS)


def diagnose(idata) -> dict:
    post = idata.posterior
    return {
        "seed": int(post.attrs["seed"]),
        "sigma_b_mean": float(post["sigma_b"].mean()),
        "sampling_seconds": float(post.attrs["sampling_seconds"]),
        "divergences": 0,
        "rhat_max": 1.0,
        "ess_bulk_sigma_b": 100.0,
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
    }


def outputs(folder: Path, seeds):
    return [folder / f"seed{s}.nc" for s in seeds], [folder / f"seed{s}.json" for s in seeds]


def batch(folder: Path, seeds, sampler: StandIn | None = None, parts=None, lines=None, make=None, **kwargs):
    """run_batch over ``seeds`` in ``folder`` with ``sampler`` (or a fresh StandIn, or ``make()``)."""
    traces, records = outputs(folder, seeds)
    made: list[StandIn] = []

    def build():
        made.append(make() if make is not None else sampler or StandIn())
        return made[-1]

    kwargs.setdefault("diagnose", diagnose)
    report = run_batch(
        seeds=seeds,
        traces=traces,
        records=records,
        key_parts=parts or {"dataset": "d", "sampler": "s", "model": "m", "draws": DRAWS},
        make_sampler=build,
        chains=CHAINS,
        draws=DRAWS,
        log=(lines.append if lines is not None else (lambda _: None)),
        **kwargs,
    )
    return report, made


def test_a_rerun_takes_finished_seeds_from_the_store_and_never_builds_the_sampler(tmp_path):
    first, made = batch(tmp_path, [1, 2, 3])
    assert first.sampled == [1, 2, 3] and len(made) == 1
    before = {p.name: p.read_bytes() for p in tmp_path.glob("seed*")}
    for path in tmp_path.glob("seed*"):
        path.unlink()  # Snakemake removes a rerun job's outputs first
    again, made_again = batch(tmp_path, [1, 2, 3])
    assert again.resumed == [1, 2, 3] and again.sampled == [] and made_again == []
    assert {p.name: p.read_bytes() for p in tmp_path.glob("seed*")} == before
    # The outputs are copies of the store entries, never hard links: damage to one never reaches the other.
    assert os.stat(tmp_path / "seed2.nc").st_nlink == 1
    (entry,) = (tmp_path / STORE).glob("seed2-*.nc")
    assert entry.read_bytes() == before["seed2.nc"]


def test_a_stored_seed_is_used_whatever_the_batch(tmp_path):
    batch(tmp_path, [1, 2])
    report, made = batch(tmp_path, [2, 3])
    assert report.resumed == [2] and report.sampled == [3] and made[0].sampled == [3]


def test_the_store_key_covers_every_setting_that_changes_the_draws(tmp_path):
    base = {"dataset": "d", "sampler": "s", "model": "m", "draws": DRAWS, "table_sha256": "aa", "seed": 1}
    keys = {fit_key(base)}
    for key, value in [("draws", 51), ("table_sha256", "ab"), ("seed", 2), ("model", "n"), ("versions", {"x": 1})]:
        keys.add(fit_key({**base, key: value}))
    assert len(keys) == 6
    # Changing a setting resamples (the entries of the other setting are kept: see test_old_settings_...).
    batch(tmp_path, [1], parts={"draws": DRAWS, "tune": 10})
    report, _ = batch(tmp_path, [1], parts={"draws": DRAWS, "tune": 11})
    assert report.sampled == [1]


def test_stale_temporaries_of_the_batch_are_removed_and_other_seeds_left_alone(tmp_path):
    store = tmp_path / STORE
    store.mkdir()
    mine = [tmp_path / ".seed1.nc.abc123.tmp", store / ".seed1-0123456789abcdef.nc.x.tmp"]
    theirs = [tmp_path / ".seed9.nc.abc123.tmp", store / "seed9-0123456789abcdef.nc"]
    for path in mine + theirs:
        path.write_text("partial")
    lines: list[str] = []
    batch(tmp_path, [1], lines=lines)
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in theirs)
    assert any("removed stale" in line and ".seed1.nc.abc123.tmp" in line for line in lines)


def test_a_short_trace_is_never_an_output():
    with pytest.raises(IncompleteFit, match=r"1 chains x 50 draws, not the configured 2 x 50"):
        check_complete(trace(1, chains=1), CHAINS, DRAWS)
    check_complete(trace(1), CHAINS, DRAWS)


def test_on_error_stop_keeps_the_other_seeds_then_fails_naming_the_seed(tmp_path):
    sampler = StandIn(short={2})
    with pytest.raises(BatchFailed, match=r"seed 2: IncompleteFit.*fit.on_error: record"):
        batch(tmp_path, [1, 2, 3], sampler=sampler)
    assert sampler.sampled == [1, 2, 3]
    stored = sorted(p.name.split("-")[0] for p in (tmp_path / STORE).glob("*.nc"))
    assert stored == ["seed1", "seed3"]
    assert not (tmp_path / "seed2.nc").exists()
    # The rerun (fault gone) samples only the failed seed.
    report, made = batch(tmp_path, [1, 2, 3])
    assert report.sampled == [2] and report.resumed == [1, 3]


def test_on_error_record_writes_the_failure_and_goes_on(tmp_path):
    report, _ = batch(tmp_path, [1, 2, 3], sampler=StandIn(raise_on={2}), on_error="record")
    assert report.failed == {2: "FloatingPointError: boom on 2"} and report.sampled == [1, 3]
    record = json.loads((tmp_path / "seed2.json").read_text())
    assert record["status"] == "failed" and record["error"] == "FloatingPointError: boom on 2"
    assert record["pass_all"] is False and record["chains"] == 0
    assert json.loads((tmp_path / "seed1.json").read_text())["status"] == "ok"
    # The placeholder trace reads as "no draws" and is skipped by the report's readers.
    paths = [tmp_path / f"seed{s}.nc" for s in (1, 2, 3)]
    assert open_trace(paths[1]) is None
    assert ok_traces(paths) == [str(paths[0]), str(paths[2])]
    assert sorted(funnel_draws(paths, "y")["seed"].unique()) == [1, 3]


def test_failed_fits_are_counted_in_the_tables():
    ok = {"dataset": "d", "sampler": "pymc", "model": "centered", "divergences": 0, "pass_all": True}
    records = [
        {**ok, "seed": 1, "mean_sigma_b": 0.3, "bfmi_per_chain": [0.5, 0.6]},
        {**ok, "seed": 2, "status": "failed", "error": "RuntimeError: x", "pass_all": False, "divergences": None},
        {**ok, "seed": 3, "mean_sigma_b": 0.5, "bfmi_per_chain": [0.7, 0.8]},
    ]
    for r in records:
        for key in ("pass_rhat", "pass_ess", "pass_divergences", "pass_bfmi"):
            r.setdefault(key, r["pass_all"])
        for key in SUMMARY_METRICS:  # the summary's other columns: any value will do
            r.setdefault(key, 1.0 if r.get("status") != "failed" else None)
    fits = fits_table(records)
    assert list(fits["status"]) == ["ok", "failed", "ok"]
    assert fits.loc[1, "bfmi_per_chain"] == "" and fits.loc[0, "bfmi_per_chain"] == "0.5 0.6"
    summary = summarize(fits).iloc[0]
    assert summary["seeds"] == 3 and summary["failed"] == 1
    assert summary["share_pass_all"] == pytest.approx(2 / 3)  # a failed fit does not pass
    assert summary["mean_sigma_b_median"] == pytest.approx(0.4)  # medians over the fits that ran
    assert "failed" in readable_summary(summarize(fits)).columns
    ran, failed = split_failed(fits)
    assert list(ran["seed"]) == [1, 3] and list(failed["seed"]) == [2]


def test_a_signal_stops_the_batch_and_discards_the_running_seed(tmp_path):
    lines: list[str] = []
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="SIGINT"):
        batch(tmp_path, [1, 2, 3], sampler=StandIn(signal_on=2), lines=lines)
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored
    assert sorted(p.name for p in tmp_path.glob("seed*")) == ["seed1.json", "seed1.nc"]
    assert [p.name.split("-")[0] for p in (tmp_path / STORE).glob("*.nc")] == ["seed1"]
    assert any("seed 2: received SIGINT; stopping" in line and "[1]" in line for line in lines)


def test_a_damaged_compile_cache_names_the_folder(tmp_path):
    with pytest.raises(CompileCacheError, match=rf"{tmp_path}.*rm -rf {tmp_path}"):
        with compile_cache_guard(tmp_path):
            pickle.loads(pickle.dumps({"a": 1})[:5])


def test_the_compile_cache_is_the_configs_unless_the_environment_names_one(tmp_path, monkeypatch):
    from funnel.fitting import use_compile_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float64")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")  # empty: not a choice
    use_compile_cache(cache)
    assert os.environ["PYTENSOR_FLAGS"] == f"floatX=float64,base_compiledir={cache / 'pytensor'}"
    assert os.environ["NUMBA_CACHE_DIR"] == str(cache / "numba")
    assert (cache / "pytensor").is_dir() and (cache / "numba").is_dir()
    # A cache the environment names wins (the tests share one so), and the config's folder is not made.
    chosen = {"PYTENSOR_FLAGS": "base_compiledir=/elsewhere/pytensor", "NUMBA_CACHE_DIR": "/elsewhere/numba"}
    for name, value in chosen.items():
        monkeypatch.setenv(name, value)
    use_compile_cache(tmp_path / "other")
    assert {name: os.environ[name] for name in chosen} == chosen and not (tmp_path / "other").exists()


def test_faults_come_from_the_environment_only_when_set():
    assert Faults.from_env({}) == Faults()
    assert Faults.from_env({"FUNNEL_TEST_FAIL_SEEDS": "3, 5"}).fail_seeds == {3, 5}


def test_store_paths_live_beside_the_outputs(tmp_path):
    store = Store.beside(tmp_path / "fits" / "seed1.nc")
    assert store.folder == tmp_path / "fits" / STORE
    assert store.path("seed4", "k", ".nc").name == "seed4-k.nc"


def test_run_batch_names_a_damaged_compile_cache(tmp_path):
    """A truncated pickle while the sampler compiles or samples: the error names the cache folder."""

    def damaged():
        raise pickle.UnpicklingError("pickle data was truncated")

    cache = tmp_path / "cache"
    traces, records = outputs(tmp_path, [1])
    with pytest.raises(CompileCacheError, match=rf"the compile cache {cache} holds a damaged file.*rm -rf {cache}"):
        # on_error="record": a damaged cache is not a seed's failure, never recorded as one.
        batch(tmp_path, [1], make=damaged, cache_dir=cache, on_error="record")
    assert not traces[0].exists() and not records[0].exists()


def test_a_lean_store_keeps_offsets_only_and_the_diagnostics_still_see_a_and_b(tmp_path):
    import arviz as az

    def noncentered(seed: int):
        rng = np.random.default_rng(seed)
        draws = {k: rng.normal(size=(CHAINS, DRAWS)) for k in ("mu_a", "mu_b")}
        draws |= {k: np.abs(rng.normal(size=(CHAINS, DRAWS))) for k in ("sigma_a", "sigma_b")}
        draws |= {k: rng.normal(size=(CHAINS, DRAWS, 3)) for k in ("a_offset", "b_offset")}
        for v in ("a", "b"):
            draws[v] = draws[f"mu_{v}"][..., None] + draws[f"{v}_offset"] * draws[f"sigma_{v}"][..., None]
        dims = {k: ["g"] for k in ("a", "b", "a_offset", "b_offset")}
        idata = az.from_dict(
            posterior=draws,
            sample_stats={"diverging": np.zeros((CHAINS, DRAWS), bool)},
            dims=dims,
            coords={"g": list("xyz")},
        )
        idata.posterior.attrs = {**trace(seed).posterior.attrs}
        return idata

    class Lean(StandIn):
        def sample(self, seed):
            self.sampled.append(seed)
            return noncentered(seed)

    seen = []

    def check(idata):
        seen.append(idata.posterior["b"].values.copy())
        return diagnose(idata)

    traces, _ = outputs(tmp_path, [1])
    batch(tmp_path, [1], sampler=Lean(), diagnose=check, trace_dtype="float32", store_deterministics=False)
    stored = az.from_netcdf(str(traces[0])).posterior
    assert "b" not in stored and stored["b_offset"].dtype == np.float32
    np.testing.assert_allclose(seen[0], noncentered(1).posterior["b"].values, rtol=1e-5, atol=1e-6)


def _deflated(path: Path) -> set[bool]:
    """Whether each posterior variable of the NetCDF file at ``path`` is zlib-compressed."""
    import arviz as az

    post = az.from_netcdf(str(path)).posterior
    return {bool(post[v].encoding.get("zlib", False)) for v in post.data_vars}


def test_trace_compression_changes_the_file_not_the_draws_nor_the_store_key(tmp_path):
    import arviz as az

    plain, deflated = tmp_path / "plain", tmp_path / "deflated"
    batch(plain, [1])  # the default: none
    batch(deflated, [1], trace_compression="zlib")
    assert _deflated(plain / "seed1.nc") == {False} and _deflated(deflated / "seed1.nc") == {True}
    np.testing.assert_array_equal(
        az.from_netcdf(str(plain / "seed1.nc")).posterior["b"].values,
        az.from_netcdf(str(deflated / "seed1.nc")).posterior["b"].values,
    )
    # Switching it keeps what is stored (same draws): no resampling, the file stays as it was.
    (plain / "seed1.nc").unlink()
    report, made = batch(plain, [1], trace_compression="zlib")
    assert report.resumed == [1] and made == [] and _deflated(plain / "seed1.nc") == {False}
    # A bad value stops the job before anything is sampled.
    for setting, value, allowed in [
        ("trace_compression", "lzma", "none, zlib"),
        ("trace_dtype", "f16", "float64, float32"),
    ]:
        with pytest.raises(ValueError, match=f"fit.{setting} must be one of {allowed}, got '{value}'"):
            batch(tmp_path / "bad", [1], sampler=(never := StandIn()), **{setting: value})
        assert never.sampled == [] and not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- the store: verified before reuse, pruned on request


def _entry(folder: Path, seed: int) -> Path:
    (entry,) = (folder / STORE).glob(f"seed{seed}-*.nc")
    return entry


def _draws(path: Path) -> np.ndarray:
    import arviz as az

    return az.from_netcdf(str(path)).posterior["sigma_b"].values


def test_another_seeds_entry_under_a_seeds_key_is_detected_and_refit(tmp_path):
    """Seed 6's file (and its checksum file) under seed 5's name: its own attributes say seed 6."""
    batch(tmp_path, [5, 6])
    original = _draws(tmp_path / "seed5.nc")
    five, six = _entry(tmp_path, 5), _entry(tmp_path, 6)
    for suffix in ("", ".sha256"):
        source, target = Path(f"{six}{suffix}"), Path(f"{five}{suffix}")
        if source.exists() or target.exists():
            target.write_bytes(source.read_bytes())
    for path in tmp_path.glob("seed*"):
        path.unlink()
    lines: list[str] = []
    report, made = batch(tmp_path, [5, 6], lines=lines)
    assert report.sampled == [5] and report.resumed == [6] and made[0].sampled == [5]
    np.testing.assert_array_equal(_draws(tmp_path / "seed5.nc"), original)
    assert any("WARNING" in line and "discarded" in line and str(five) in line for line in lines), lines


def test_a_trace_whose_own_attributes_name_another_seed_is_refit_even_with_a_matching_checksum(tmp_path):
    """Seed 6's trace stored as seed 5's with a checksum file made for it: the trace's attributes still tell."""
    import shutil

    batch(tmp_path, [5, 6])
    original = _draws(tmp_path / "seed5.nc")
    five, six = _entry(tmp_path, 5), _entry(tmp_path, 6)
    key = five.stem.split("-")[1]
    Store(tmp_path / STORE).put("seed5", key, ".nc", lambda path: shutil.copyfile(six, path))
    (tmp_path / "seed5.nc").unlink()
    lines: list[str] = []
    report, _ = batch(tmp_path, [5, 6], lines=lines)
    assert report.sampled == [5] and report.resumed == [6]
    np.testing.assert_array_equal(_draws(tmp_path / "seed5.nc"), original)
    assert any("seed 6, not 5" in line and "funnel_key" in line for line in lines), lines


def test_a_damaged_entry_is_detected_by_its_checksum_and_refit(tmp_path):
    """Bytes of the draws changed in place (the file still reads): the checksum differs, the seed is refit."""
    batch(tmp_path, [1])
    original = _draws(tmp_path / "seed1.nc")
    entry = _entry(tmp_path, 1)
    data = entry.read_bytes()
    at = data.index(original.tobytes()[:64])
    entry.write_bytes(data[:at] + bytes(64) + data[at + 64 :])
    assert not np.array_equal(_draws(entry), original)  # readable, but other draws
    for path in tmp_path.glob("seed*"):
        path.unlink()
    lines: list[str] = []
    report, _ = batch(tmp_path, [1], lines=lines)
    assert report.sampled == [1] and report.resumed == []
    np.testing.assert_array_equal(_draws(tmp_path / "seed1.nc"), original)
    assert any("SHA-256" in line and "discarded" in line for line in lines), lines


def test_an_entry_without_its_checksum_is_refit(tmp_path):
    """A job killed between writing the entry and its checksum: the entry is not trusted."""
    batch(tmp_path, [1])
    Path(f"{_entry(tmp_path, 1)}.sha256").unlink(missing_ok=True)
    (tmp_path / "seed1.nc").unlink()
    report, _ = batch(tmp_path, [1])
    assert report.sampled == [1]


def test_damage_to_an_output_never_reaches_the_store(tmp_path):
    batch(tmp_path, [1])
    entry = _entry(tmp_path, 1)
    before = entry.read_bytes()
    with open(tmp_path / "seed1.nc", "r+b") as handle:  # written in place, as a careless tool would
        handle.seek(len(before) // 2)
        handle.write(b"damage")
    assert entry.read_bytes() == before


def test_old_settings_entries_survive_a_settings_change_and_prune_removes_them(tmp_path):
    from funnel.store import main

    first, _ = batch(tmp_path, [1, 2], parts={"draws": DRAWS, "tune": 10})
    changed, _ = batch(tmp_path, [1, 2], parts={"draws": DRAWS, "tune": 11})
    assert first.sampled == [1, 2] and changed.sampled == [1, 2]
    # Going back to the first setting reuses its entries.
    back, made = batch(tmp_path, [1, 2], parts={"draws": DRAWS, "tune": 10})
    assert back.resumed == [1, 2] and made == []
    store = tmp_path / STORE
    assert len(list(store.glob("seed1-*.nc"))) == 2
    current = {p.name for p in store.iterdir()}
    # Prune keeps the entries the outputs are copies of (tune 10), removes the others (tune 11).
    (store / ".seed1-0123456789abcdef.nc.x.tmp").write_text("partial")
    listed = prune(tmp_path, dry_run=True, log=lambda _: None)
    assert {p.name for p in store.iterdir()} == current | {".seed1-0123456789abcdef.nc.x.tmp"}  # a dry run
    assert main(["prune", str(tmp_path)]) == 0
    assert len(listed) == 5  # 2 entries of tune 11, their 2 checksum files, 1 temporary
    left = sorted(p.name for p in store.iterdir())
    assert len(left) == 4 and all(name.startswith(("seed1-", "seed2-")) for name in left), left
    for seed in (1, 2):
        entry = _entry(tmp_path, seed)
        assert entry.read_bytes() == (tmp_path / f"seed{seed}.nc").read_bytes()
    # The next run of the current setting still resumes everything.
    again, made = batch(tmp_path, [1, 2], parts={"draws": DRAWS, "tune": 10})
    assert again.resumed == [1, 2] and made == []


def test_every_funnel_module_imports_alone_and_none_imports_another_that_imports_it_back():
    """No import circle: each module imports by itself in a fresh interpreter, and the graph of the
    library's imports (at the top or inside functions) has no cycle."""
    import ast
    import subprocess

    folder = ROOT / "workflow" / "funnel"
    names = {
        ".".join(p.relative_to(folder).with_suffix("").parts): p for p in folder.rglob("*.py") if p.stem != "__init__"
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name.split(".")[:-1]
        found = set()
        tree = ast.parse(path.read_text())
        # Imports for type annotations only (`if TYPE_CHECKING:`) never run: they make no circle.
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
                found |= {stem} if stem in names else {f"{stem}.{a.name}".lstrip(".") for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("funnel."):
                found.add(node.module.removeprefix("funnel."))
        graph[name] = {m for m in found if m in names and m != name}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m})) for m in graph[start])

    circles = sorted(name for name in names if reaches(name, name, set()))
    assert not circles, f"modules in an import circle: {circles}"
    # Each module in a fresh process of its own: forked from one that has imported the third-party
    # libraries (seconds each) but no module of the library.
    script = """
import importlib, os, sys, traceback
for lib in ("numpy", "pandas", "scipy.stats", "xarray", "matplotlib.pyplot", "arviz"):
    importlib.import_module(lib)
assert not [m for m in sys.modules if m.startswith("funnel")]
failed = 0
for module in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            print(module, traceback.format_exc().strip().splitlines()[-1], flush=True)
            os._exit(1)
        os._exit(0)
    failed += os.waitpid(pid, 0)[1] != 0
sys.exit(min(failed, 1))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "MPLBACKEND": "Agg"}
    modules = [f"funnel.{name}" for name in sorted(names)]
    proc = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_name_imported_from_the_library_exists_including_imports_inside_functions():
    """A renamed or removed library name breaks its importers at once, even those that import it only
    inside a function (which run only deep in a fit job): every ``from funnel.<m> import <name>`` and
    ``from .<m> import <name>`` in the library, the scripts, the benches and the tests names something
    <m> defines or a submodule of it."""
    import ast
    import importlib

    files = [p for d in ("workflow", "bench", "tests") for p in (ROOT / d).rglob("*.py")]
    missing = []
    for path in files:
        inside = path.relative_to(ROOT / "workflow").parts[:-1] if path.is_relative_to(ROOT / "workflow") else ()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = list(inside[: len(inside) - (node.level - 1)])
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            if not (module == "funnel" or module.startswith("funnel.")):
                continue
            imported = importlib.import_module(module)
            for alias in node.names:
                if alias.name != "*" and not hasattr(imported, alias.name):
                    try:
                        importlib.import_module(f"{module}.{alias.name}")
                    except ModuleNotFoundError:
                        missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}.{alias.name}")
    assert not missing, "imported names that do not exist:\n" + "\n".join(missing)


# ---------------------------------------------------------------- MAP points (write_maps)


class MapStandIn:
    """Counts MAP computations; returns a record shaped like funnel.fitting.map_estimate's."""

    def __init__(self) -> None:
        self.computed: list[str] = []

    def __call__(self, model: str) -> dict:
        self.computed.append(model)
        return {"model": model, "map_sigma_b": 1e-8 if model == "centered" else 5.5, "map_logp": -209.7}


def maps(folder: Path, models=("centered", "noncentered"), compute=None, lines=None, priors="blog"):
    compute = compute or MapStandIn()
    done = write_maps(
        outputs={m: folder / "map" / f"{m}.json" for m in models},
        key_parts=map_key_parts("d", "sha", priors, 0),
        compute=compute,
        log=(lines.append if lines is not None else (lambda _: None)),
    )
    return done, compute


def test_map_points_are_stored_and_a_rerun_never_computes_them_again(tmp_path):
    lines: list[str] = []
    done, first = maps(tmp_path, lines=lines)
    assert done == {"centered": "computed", "noncentered": "computed"} and first.computed == ["centered", "noncentered"]
    assert any(line.startswith("MAP of centered: computed in ") for line in lines), lines
    output = tmp_path / "map" / "centered.json"
    before = output.read_bytes()
    assert json.loads(before) == first("centered")
    assert os.stat(output).st_nlink == 1  # a copy of the store entry, not a hard link
    output.unlink()  # Snakemake removes a rerun job's outputs first
    lines.clear()
    done, again = maps(tmp_path, lines=lines)
    assert done == {"centered": "stored", "noncentered": "stored"} and again.computed == []
    assert output.read_bytes() == before
    # Not the seeds' "resumed from" wording, which the resilience tests count.
    assert lines and not [line for line in lines if ": resumed from " in line], lines
    # A rerun over outputs that are still there (as after `--unlock`), even hard links to the store
    # left by an older version, leaves no temporary file behind and makes the output a copy.
    (entry,) = (tmp_path / "map" / STORE).glob("centered-*.json")
    output.unlink()
    os.link(entry, output)
    maps(tmp_path)
    assert not [p.name for p in (tmp_path / "map").iterdir() if p.name.endswith("tmp")]
    assert os.stat(output).st_nlink == 1 and output.read_bytes() == before


def test_the_map_key_ignores_the_sampler_and_batch_but_not_priors_or_data(tmp_path):
    assert "sampler" not in map_key_parts("d", "sha", "blog", 0)
    maps(tmp_path)
    done, again = maps(tmp_path, priors="auto")  # another key: computed again, the other entry kept
    assert done == {"centered": "computed", "noncentered": "computed"}
    assert len(list((tmp_path / "map" / STORE).glob("centered-*.json"))) == 2
    assert fit_key({**map_key_parts("d", "sha", "blog", 0), "model": "m"}) != fit_key(
        {**map_key_parts("d", "sha2", "blog", 0), "model": "m"}
    )


def test_a_damaged_map_entry_is_computed_again_and_temporaries_removed(tmp_path):
    maps(tmp_path, models=("centered",))
    (entry,) = (tmp_path / "map" / STORE).glob("centered-*.json")
    entry.write_text('{"model": "cent')  # cut short
    temporaries = [tmp_path / "map" / STORE / ".centered-k.json.x1.tmp", tmp_path / "map" / ".centered.json.x2.tmp"]
    for path in temporaries:
        path.write_text("partial")
    (tmp_path / "map" / "centered.json").unlink()
    lines: list[str] = []
    done, again = maps(tmp_path, models=("centered",), lines=lines)
    assert done == {"centered": "computed"} and again.computed == ["centered"]
    assert json.loads(entry.read_text())["model"] == "centered"
    assert not [p for p in temporaries if p.exists()]
    assert any("unreadable" in line for line in lines), lines


def test_a_failing_map_leaves_no_output(tmp_path):
    def fails(model):
        raise RuntimeError("optimizer failed")

    with pytest.raises(RuntimeError, match="optimizer failed"):
        maps(tmp_path, models=("centered",), compute=fails)
    assert not (tmp_path / "map" / "centered.json").exists()
    assert not list((tmp_path / "map").rglob("*.json"))
