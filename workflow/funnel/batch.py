"""Run a batch of seeds so that an interrupted, crashing or killed fit costs only itself.

A fit job samples several seeds with one compiled model. This module makes
that loop safe:

* **Resumable.** Every finished seed's trace is kept in a per-folder store
  (``<fits folder>/.store/seed<N>-<key>.nc``), keyed by everything that
  determines its draws (the data's bytes, sampler, form, chains, tune, draws,
  target_accept, priors, backend, seed and library versions). A job first looks
  there: a rerun after a crash, a kill or a deleted output samples only the
  seeds that never finished, and the outputs equal an uninterrupted run's.
  Outputs are hard links to the store entries, so the store costs no space.
* **Interrupts stop it.** SIGINT and SIGTERM (Ctrl-C, a SLURM time limit)
  stop the batch at once; the seed being sampled is discarded, never written.
* **A fit must be complete.** A posterior without the configured chains and
  draws is an error, never an output.
* **Failures.** ``on_error="stop"`` (the default) finishes and keeps the
  batch's other seeds, then fails the job naming the failed seeds;
  ``on_error="record"`` writes a failed seed's record (status, error) and a
  placeholder trace, and the job succeeds.
* **MAP points.** One fit job per dataset also writes the dataset's MAP
  points (``write_maps``), kept in a store of their own (``map/.store/``), so
  a rerun of that job links them instead of computing them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ON_ERROR = ("stop", "record")
STORE = ".store"
# Test-only fault hooks, read from the environment by the fit script.
FAIL_SEEDS_ENV = "FUNNEL_TEST_FAIL_SEEDS"

Log = Callable[[str], None]


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: stop the batch, write nothing for the running seed.

    A BaseException, so that samplers that swallow KeyboardInterrupt (PyMC
    returns the chains drawn so far) cannot turn it into a short trace.
    """


class IncompleteFit(RuntimeError):
    """A posterior without the configured number of chains or draws."""


class CompileCacheError(RuntimeError):
    """The shared compile cache holds a damaged file."""


class BatchFailed(RuntimeError):
    """Seeds of the batch raised (with ``on_error="stop"``); the others are kept."""


# ------------------------------------------------------------------ signals


@dataclass
class SignalGuard:
    """Turns SIGINT/SIGTERM into :class:`Interrupted` and remembers that one came."""

    received: str | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name
        raise Interrupted(f"received {self.received}")

    def check(self, error: BaseException | None = None) -> None:
        """Raise :class:`Interrupted` if a signal came (even if a library wrapped it in another error)."""
        if self.received is not None:
            raise Interrupted(f"received {self.received}") from error


@contextlib.contextmanager
def stop_on_signals() -> Iterator[SignalGuard]:
    """Install the guard for SIGINT and SIGTERM in this (main) thread, restore on exit."""
    guard = SignalGuard()
    previous = {sig: signal.signal(sig, guard) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ------------------------------------------------------------------ checks


def check_complete(idata: Any, chains: int, draws: int) -> None:
    """Raise :class:`IncompleteFit` unless the posterior has ``chains`` x ``draws`` draws."""
    post = getattr(idata, "posterior", None)
    if post is None:
        raise IncompleteFit("the sampler returned no posterior")
    got = (int(post.sizes.get("chain", 0)), int(post.sizes.get("draw", 0)))
    if got != (chains, draws):
        raise IncompleteFit(
            f"the sampler returned {got[0]} chains x {got[1]} draws, not the configured {chains} x {draws}; "
            "a fit is kept only when complete"
        )


@contextlib.contextmanager
def compile_cache_guard(cache_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Turn a damaged compile-cache file (a truncated pickle) into an error that names the folder."""
    try:
        yield
    except (pickle.UnpicklingError, EOFError) as error:
        folder = Path(cache_dir).resolve() if cache_dir else "PyTensor's and numba's cache folders"
        raise CompileCacheError(
            f"the compile cache {folder} holds a damaged file ({type(error).__name__}: {error}), e.g. after a job "
            f"was killed while writing it. Delete the folder (rm -rf {folder}) and rerun: it is rebuilt on the "
            "next run (README.md, 'When things go wrong')."
        ) from error


# ------------------------------------------------------------------ the store


def fit_key(parts: Mapping[str, Any]) -> str:
    """A short hash of everything that determines a seed's draws."""
    text = json.dumps(dict(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the packages whose code makes the draws."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pymc", "pytensor", "nutpie", "numpy", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are installed
            out[name] = "absent"
    return out


@dataclass(frozen=True)
class SeedStore:
    """Finished seeds' traces of one (dataset, sampler, model) fits folder, by seed and key."""

    folder: Path

    @classmethod
    def beside(cls, output: str | os.PathLike[str]) -> SeedStore:
        return cls(Path(output).parent / STORE)

    def path(self, seed: int, key: str) -> Path:
        return self.folder / f"seed{seed}-{key}.nc"

    def get(self, seed: int, key: str) -> Path | None:
        path = self.path(seed, key)
        return path if path.is_file() else None

    def put(
        self,
        seed: int,
        key: str,
        idata: Any,
        dtype: str = "float64",
        deterministics: bool = True,
        compression: str = "none",
    ) -> Path:
        from .fitting import write_trace

        path = self.path(seed, key)
        write_trace(idata, path, dtype=dtype, deterministics=deterministics, compression=compression)
        return path

    def clean(self, seeds: Sequence[int], keys: Mapping[int, str], log: Log = print) -> list[Path]:
        """Remove this batch's stale entries (another key) and temporaries (a killed write).

        Only the given seeds are touched, so jobs sharing the folder never
        remove each other's files.
        """
        removed = []
        for seed in seeds:
            for folder in (self.folder, self.folder.parent):
                if not folder.is_dir():
                    continue
                for path in folder.glob(f".seed{seed}[.-]*.tmp"):
                    removed.append(path)
                for path in folder.glob(f"seed{seed}-*.nc") if folder == self.folder else ():
                    if path.name != self.path(seed, keys[seed]).name:
                        removed.append(path)
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            log(f"removed stale {path}")
        return removed


def link_or_copy(source: Path, target: str | os.PathLike[str]) -> None:
    """Place ``source`` at ``target`` atomically: a hard link where possible, else a copy.

    The target's mtime is set to now, so Snakemake sees an output newer than
    its inputs even when the stored trace is older.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    os.utime(tmp)
    os.replace(tmp, target)


# ------------------------------------------------------------------ MAP points


def map_key_parts(dataset: str, table_sha256: str, priors: str, seed: int) -> dict[str, Any]:
    """The key parts of a dataset's MAP points (with the model added per point).

    Everything ``funnel.fitting.map_estimate`` depends on: the data's bytes,
    priors, the optimizer's start seed and method, and the library versions
    (SciPy's too: its L-BFGS-B). Not the sampler, nor the batch: the MAP is the
    same whichever fit job computes it.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        scipy = version("scipy")
    except PackageNotFoundError:  # pragma: no cover - PyMC needs it
        scipy = "absent"
    return {
        "kind": "map",
        "dataset": dataset,
        "table_sha256": table_sha256,
        "priors": priors,
        "seed": int(seed),
        "method": "L-BFGS-B",
        "versions": {**library_versions(), "scipy": scipy},
    }


def write_maps(
    *,
    outputs: Mapping[str, str | os.PathLike[str]],
    key_parts: Mapping[str, Any],
    compute: Callable[[str], dict[str, Any]],
    cache_dir: str | os.PathLike[str] | None = None,
    log: Log = print,
) -> dict[str, str]:
    """Write each model's MAP record to ``outputs[model]``; return model -> "computed" or "stored".

    A record is kept in ``<map folder>/.store/<model>-<key>.json`` (the key hashes
    ``key_parts`` and the model), and the output is a hard link to it. A job that
    finds the record there (a rerun after a failed seed, a deleted trace or MAP
    file) links it and never calls ``compute(model)``, so it imports and
    compiles nothing for it. Stale entries of the model (another key) and the
    temporaries of a killed write are removed first.
    """
    import time

    from .io import read_json, write_json

    done = {}
    for model, output in outputs.items():
        output = Path(output)
        store = output.parent / STORE
        entry = store / f"{model}-{fit_key({**key_parts, 'model': model})}.json"
        stale = [
            *(p for p in store.glob(f"{model}-*.json") if p != entry),
            *store.glob(f".{model}-*.tmp"),
            *output.parent.glob(f".{output.name}.*tmp"),
        ]
        for path in stale:
            path.unlink(missing_ok=True)
            log(f"removed stale {path}")
        record = None
        if entry.is_file():
            try:
                record = read_json(entry)
                if not isinstance(record, dict) or record.get("model") != model:
                    raise ValueError(f"not a MAP record of {model}")
            except (OSError, ValueError) as error:
                log(f"MAP of {model}: stored record {entry} unreadable ({error}); computing it again")
                entry.unlink(missing_ok=True)
                record = None
        if record is not None:
            log(f"MAP of {model}: taken from the store ({entry}), not computed again")
            done[model] = "stored"
        else:
            start = time.perf_counter()
            with compile_cache_guard(cache_dir):
                record = compute(model)
            write_json(entry, record)
            log(
                f"MAP of {model}: computed in {time.perf_counter() - start:.1f} s "
                f"(map_sigma_b {record['map_sigma_b']:.3g}, map_logp {record['map_logp']:.2f}); stored as {entry}"
            )
            done[model] = "computed"
        link_or_copy(entry, output)
    return done


# ------------------------------------------------------------------ failed fits


def failed_record(base: Mapping[str, Any], seed: int, error: BaseException) -> dict[str, Any]:
    """The record of a seed that raised: what was asked, the error, no draws."""
    return {
        **dict(base),
        "seed": int(seed),
        "status": "failed",
        "error": f"{type(error).__name__}: {error}"[:2000],
        "chains": 0,
        "draws": 0,
        "pass_rhat": False,
        "pass_ess": False,
        "pass_divergences": False,
        "pass_bfmi": False,
        "pass_all": False,
    }


def write_failed_trace(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """A placeholder trace with no groups: its attributes say the fit failed and why."""
    import xarray as xr

    from .io import atomic_path

    attrs = {"funnel_status": "failed", "error": str(record.get("error", "")), "seed": int(record["seed"])}
    with atomic_path(path) as tmp:
        xr.Dataset(attrs=attrs).to_netcdf(str(tmp), engine="h5netcdf")


# ------------------------------------------------------------------ the batch


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection: seeds whose sampling raises (``FUNNEL_TEST_FAIL_SEEDS="3 5"``)."""

    fail_seeds: frozenset[int] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, variable: str = FAIL_SEEDS_ENV) -> Faults:
        """The numbers listed in ``variable`` (seeds, or SBC simulations), separated by spaces or commas."""
        return cls(fail_seeds=frozenset(int(s) for s in environ.get(variable, "").replace(",", " ").split()))


@dataclass
class BatchReport:
    """What a batch did: seeds taken from the store, sampled, failed."""

    resumed: list[int] = field(default_factory=list)
    sampled: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def run_batch(
    *,
    seeds: Sequence[int],
    traces: Sequence[str | os.PathLike[str]],
    records: Sequence[str | os.PathLike[str]],
    key_parts: Mapping[str, Any],
    make_sampler: Callable[[], Any],
    diagnose: Callable[[Any], dict[str, Any]],
    chains: int,
    draws: int,
    on_error: str = "stop",
    cache_dir: str | os.PathLike[str] | None = None,
    faults: Faults = Faults(),
    trace_dtype: str = "float64",
    store_deterministics: bool = True,
    trace_compression: str = "none",
    log: Log = print,
) -> BatchReport:
    """Sample (or resume) every seed and write its trace and record; see the module docstring.

    ``make_sampler()`` builds the compiled sampler (an object with
    ``sample(seed)``); it is called only if some seed must be sampled, so a
    fully stored batch never imports or compiles anything heavy.
    ``trace_compression`` is not part of the store key: it changes the file's
    bytes, never the draws, so traces already stored are kept as they are.
    """
    import arviz as az

    from .fitting import check_trace_storage
    from .io import write_json

    if on_error not in ON_ERROR:
        raise ValueError(f"fit.on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    check_trace_storage(trace_dtype, trace_compression)  # before any seed is sampled, not at its write
    if not (len(seeds) == len(traces) == len(records)):
        raise ValueError("seeds, traces and records must have the same length")
    from .models import with_deterministics

    store = SeedStore.beside(traces[0])
    storage = {"trace_dtype": trace_dtype, "store_deterministics": bool(store_deterministics)}
    keys = {seed: fit_key({**key_parts, **storage, "seed": int(seed)}) for seed in seeds}
    store.clean(seeds, keys, log)
    report = BatchReport()
    sampler = None
    base = {k: key_parts.get(k) for k in ("dataset", "sampler", "model", "tune", "target_accept", "priors")}

    def from_store(seed: int) -> Any | None:
        """The stored trace of ``seed``, or None; a damaged entry is removed and resampled."""
        stored = store.get(seed, keys[seed])
        if stored is None:
            return None
        try:
            idata = az.from_netcdf(str(stored)).load()
            check_complete(idata, chains, draws)
            idata.posterior = with_deterministics(idata.posterior)  # a lean trace: a, b recomputed
        except (OSError, ValueError, KeyError, IncompleteFit) as error:
            log(f"seed {seed}: stored trace {stored} unreadable ({error}); sampling it again")
            stored.unlink(missing_ok=True)
            return None
        return idata

    def one_seed(seed: int, trace_path: Any, record_path: Any, guard: SignalGuard) -> None:
        nonlocal sampler
        idata = from_store(seed)
        if idata is None and sampler is None:
            # Outside the per-seed handling: a model that does not build is no one seed's fault.
            with compile_cache_guard(cache_dir):
                sampler = make_sampler()
        try:
            if idata is not None:
                log(f"seed {seed}: resumed from {store.path(seed, keys[seed])}")
            else:
                log(f"seed {seed}: sampling...")
                with compile_cache_guard(cache_dir):
                    if seed in faults.fail_seeds:
                        raise RuntimeError(f"injected fault for seed {seed} ({FAIL_SEEDS_ENV})")
                    fresh = sampler.sample(seed)
                guard.check()
                check_complete(fresh, chains, draws)
                store.put(
                    seed,
                    keys[seed],
                    fresh,
                    dtype=trace_dtype,
                    deterministics=store_deterministics,
                    compression=trace_compression,
                )
                # Diagnose what was stored, so a resumed seed's record is the same.
                idata = from_store(seed)
                if idata is None:
                    raise OSError(f"could not read back {store.path(seed, keys[seed])}")
                report.sampled.append(seed)
            record = {**diagnose(idata), "status": "ok", "error": ""}
        except (Interrupted, CompileCacheError):
            raise
        except Exception as error:  # noqa: BLE001 - a seed's failure is recorded or re-raised by the caller
            guard.check(error)  # a signal that a library wrapped in another error
            log(f"seed {seed}: FAILED: {type(error).__name__}: {error}")
            report.failed[seed] = f"{type(error).__name__}: {error}"
            if on_error == "record":
                record = failed_record(base, seed, error)
                write_failed_trace(trace_path, record)
                write_json(record_path, record)
            return
        if seed not in report.sampled:
            report.resumed.append(seed)
        link_or_copy(store.path(seed, keys[seed]), trace_path)
        write_json(record_path, record)
        log(
            f"seed {seed}: {record['sampling_seconds']:.1f} s, {record['divergences']} divergences, "
            f"R-hat max {record['rhat_max']:.3f}, ESS bulk sigma_b {record['ess_bulk_sigma_b']:.0f}"
        )

    with stop_on_signals() as guard:
        for seed, trace_path, record_path in zip(seeds, traces, records):
            try:
                one_seed(seed, trace_path, record_path, guard)
            except Interrupted as stop:
                kept = sorted(report.sampled + report.resumed)
                log(
                    f"seed {seed}: {stop}; stopping. Its draws are discarded; seeds {kept or 'none'} are kept "
                    f"in {store.folder}, so a rerun samples only the rest."
                )
                raise
    log(
        f"batch done: {len(report.sampled)} sampled, {len(report.resumed)} resumed from the store, "
        f"{len(report.failed)} failed"
    )
    if report.failed and on_error == "stop":
        listing = "; ".join(f"seed {s}: {e}" for s, e in report.failed.items())
        raise BatchFailed(
            f"{len(report.failed)} seed(s) failed ({listing}). The batch's other seeds are kept: a rerun samples "
            "only the failed ones. To record failures and go on instead, set fit.on_error: record."
        )
    return report


def settings_key(settings: Any, dataset: str, table_sha256: str) -> dict[str, Any]:
    """The key parts of a fit: the data's bytes, every setting but threads, library versions."""
    parts = {k: v for k, v in asdict(settings).items() if k != "threads"}
    return {"dataset": dataset, "table_sha256": table_sha256, **parts, "versions": library_versions()}
