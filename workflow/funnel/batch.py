"""One resumable, interruptible batch loop: a crashing or killed task costs only itself.

A job of the workflow compiles a model once and runs several tasks with it:
the seeds of a fit batch, the simulations of an SBC batch, the levels and
seeds of a sweep, the reference run, a dataset's MAP points. :class:`Batch`
runs such a list of tasks the same way for all of them:

* **Resumable.** A finished task's result is kept in a store beside the
  outputs (funnel.store: keyed by everything that determines it, verified
  before reuse). A task first looks there: a rerun after a crash, a kill or a
  deleted output computes only the tasks that never finished, and the outputs
  equal an uninterrupted run's.
* **Interrupts stop it.** SIGINT and SIGTERM (Ctrl-C, a SLURM time limit)
  stop the batch at once; the running task is discarded, never written.
* **Failures.** ``on_error="stop"`` (the default) finishes and keeps the
  batch's other tasks, then fails the job naming the failed ones;
  ``on_error="record"`` writes a failed task's record (status, error) and the
  job succeeds.
* **Lazy compile.** The shared tool (a compiled sampler) is built only when
  some task must be computed, so a fully stored batch imports nothing heavy.

:func:`run_batch` (a fit job's seeds) and :func:`write_maps` (a dataset's MAP
points) are the fit job's two batches; funnel.sbc, funnel.experiments and the
reference script define theirs the same way.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fitting import IncompleteFit, check_complete, check_trace_storage, write_trace
from .forms import rule_key
from .records import failed_checks
from .store import STORE, Store, check_attrs, copy_out, fit_key, library_versions

__all__ = [
    "STORE",
    "Batch",
    "BatchFailed",
    "BatchReport",
    "CompileCacheError",
    "Faults",
    "IncompleteFit",
    "Interrupted",
    "check_complete",
    "compile_cache_guard",
    "failed_record",
    "fit_key",
    "map_key_parts",
    "run_batch",
    "stop_on_signals",
    "write_maps",
]

ON_ERROR = ("stop", "record")
# Test-only fault hooks, read from the environment by the fit script.
FAIL_SEEDS_ENV = "FUNNEL_TEST_FAIL_SEEDS"

Log = Callable[[str], None]


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: stop the batch, write nothing for the running task.

    A BaseException, so that samplers that swallow KeyboardInterrupt (PyMC
    returns the chains drawn so far) cannot turn it into a short trace.
    """


class CompileCacheError(RuntimeError):
    """The shared compile cache holds a damaged file."""


class BatchFailed(RuntimeError):
    """Tasks of the batch raised (with ``on_error="stop"``); the others are kept."""


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


# ------------------------------------------------------------------ compile cache


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


# ------------------------------------------------------------------ failures


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection: tasks whose computation raises (``FUNNEL_TEST_FAIL_SEEDS="3 5"``)."""

    fail_seeds: frozenset[int] = frozenset()
    variable: str = FAIL_SEEDS_ENV

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, variable: str = FAIL_SEEDS_ENV) -> Faults:
        """The numbers listed in ``variable`` (seeds, or SBC simulations), separated by spaces or commas."""
        numbers = frozenset(int(s) for s in environ.get(variable, "").replace(",", " ").split())
        return cls(fail_seeds=numbers, variable=variable)


def failed_record(base: Mapping[str, Any], error: BaseException) -> dict[str, Any]:
    """The record of a task that raised: what was asked (``base``), the error, no results."""
    return {**dict(base), "status": "failed", "error": f"{type(error).__name__}: {error}"[:2000]}


def write_failed_trace(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """A placeholder trace with no groups: its attributes say the fit failed and why."""
    import xarray as xr

    from .io import atomic_path

    attrs = {"funnel_status": "failed", "error": str(record.get("error", "")), "seed": int(record["seed"])}
    with atomic_path(path) as tmp:
        xr.Dataset(attrs=attrs).to_netcdf(str(tmp), engine="h5netcdf")


# ------------------------------------------------------------------ the loop


@dataclass
class BatchReport:
    """What a batch did: tasks taken from the store, computed (sampled, fitted), failed."""

    resumed: list[Any] = field(default_factory=list)
    sampled: list[Any] = field(default_factory=list)
    failed: dict[Any, str] = field(default_factory=dict)


class Batch:
    """A list of tasks run with one lazily built tool; subclasses say what a task is.

    Hooks: :meth:`build` (the shared tool, e.g. a compiled sampler), :meth:`resume`
    (the task's stored result, or None), :meth:`compute` (run and store it),
    :meth:`finish` (write its outputs from the result), :meth:`record_failure`
    (with ``on_error="record"``). :meth:`run` does the rest.
    """

    noun = "task"  # "seed 5", "simulation 3" in the log
    doing = "computing"  # "seed 5: sampling..."
    done = "computed"  # "batch done: 3 sampled, ..."
    # Where a stopped job's finished tasks are kept (None: not kept, the rerun starts over).
    kept_in: Path | None = None
    on_error_hint = "To record failures and go on instead, set fit.on_error: record."
    resumed_from = "the store"  # where resume() takes results from

    def __init__(
        self,
        *,
        on_error: str = "stop",
        cache_dir: str | os.PathLike[str] | None = None,
        faults: Faults = Faults(),
        log: Log = print,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"fit.on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.on_error, self.cache_dir, self.faults, self.log = on_error, cache_dir, faults, log

    # hooks
    def label(self, task: Any) -> str:
        return f"{self.noun} {task}"

    def build(self) -> Any:
        return None

    def resume(self, task: Any) -> Any | None:
        return None

    def compute(self, task: Any, tool: Any) -> Any:
        raise NotImplementedError

    def finish(self, task: Any, result: Any, resumed: bool) -> None:
        pass

    def record_failure(self, task: Any, error: BaseException) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot record failures")

    # the loop
    def run(self, tasks: Sequence[Any]) -> BatchReport:
        report = BatchReport()
        built: list[Any] = []  # the tool, once built
        with stop_on_signals() as guard:
            for task in tasks:
                try:
                    self._one(task, built, report, guard)
                except Interrupted as stop:
                    kept = sorted(report.sampled + report.resumed)
                    where = f"are kept in {self.kept_in}, so a rerun does only the rest" if self.kept_in else "are done"
                    self.log(
                        f"{self.label(task)}: {stop}; stopping. Its draws are discarded; "
                        f"{self.noun}s {kept or 'none'} {where}."
                    )
                    raise
        self.log(
            f"batch done: {len(report.sampled)} {self.done}, {len(report.resumed)} resumed from {self.resumed_from}, "
            f"{len(report.failed)} failed{' (recorded)' if report.failed and self.on_error == 'record' else ''}"
        )
        if report.failed and self.on_error == "stop":
            listing = "; ".join(f"{self.label(t)}: {e}" for t, e in report.failed.items())
            kept = (
                f" The batch's other {self.noun}s are kept: a rerun does only the failed ones." if self.kept_in else ""
            )
            raise BatchFailed(
                f"{len(report.failed)} {self.noun}(s) failed ({listing}).{kept} {self.on_error_hint}".rstrip()
            )
        return report

    def _one(self, task: Any, built: list[Any], report: BatchReport, guard: SignalGuard) -> None:
        label = self.label(task)
        result = self.resume(task)
        resumed = result is not None
        if not resumed and not built:
            # Outside the per-task handling: a model that does not build is no one task's fault.
            with compile_cache_guard(self.cache_dir):
                built.append(self.build())
        try:
            if not resumed:
                if self.doing:
                    self.log(f"{label}: {self.doing}...")
                with compile_cache_guard(self.cache_dir):
                    if task in self.faults.fail_seeds:
                        raise RuntimeError(f"injected fault for {label} ({self.faults.variable})")
                    result = self.compute(task, built[0])
                guard.check()
            self.finish(task, result, resumed)
        except (Interrupted, CompileCacheError):
            raise
        except Exception as error:  # noqa: BLE001 - a task's failure is recorded or raised after the batch
            guard.check(error)  # a signal that a library wrapped in another error
            self.log(f"{label}: FAILED: {type(error).__name__}: {error}")
            report.failed[task] = f"{type(error).__name__}: {error}"
            if self.on_error == "record":
                self.record_failure(task, error)
            return
        (report.resumed if resumed else report.sampled).append(task)


# ------------------------------------------------------------------ a fit job's seeds

# What a failed fit's record says about its draws and checks (the fits table counts it as failing).
FAILED_FIT = {"chains": 0, "draws": 0, **failed_checks()}
# The trace attribute that records its store key.
KEY_ATTR = "funnel_key"


def read_trace(path: Path, chains: int, draws: int, expected: Mapping[str, Any]) -> Any:
    """A stored trace, loaded, complete and with the expected attributes (else an error); a, b recomputed if lean."""
    import arviz as az

    from .models import with_deterministics

    idata = az.from_netcdf(str(path)).load()
    check_attrs(idata.posterior.attrs, expected)
    check_complete(idata, chains, draws)
    idata.posterior = with_deterministics(idata.posterior)
    return idata


def store_trace(store: Store, name: str, key: str, idata: Any, **storage: Any) -> Path:
    """Store a trace with its key recorded in its attributes (:data:`KEY_ATTR`)."""
    idata.posterior.attrs[KEY_ATTR] = key
    return store.put(name, key, ".nc", lambda path: write_trace(idata, path, **storage))


class FitBatch(Batch):
    """The seeds of a fit job: sample, store the trace, diagnose it, write trace and record."""

    noun, doing, done = "seed", "sampling", "sampled"

    def __init__(
        self,
        *,
        seeds: Sequence[int],
        traces: Sequence[str | os.PathLike[str]],
        records: Sequence[str | os.PathLike[str]],
        key_parts: Mapping[str, Any],
        make_sampler: Callable[[], Any],
        diagnose: Callable[[Any], dict[str, Any]],
        chains: int,
        draws: int,
        trace_dtype: str = "float64",
        store_deterministics: bool = True,
        trace_compression: str = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_trace_storage(trace_dtype, trace_compression)  # before any seed is sampled, not at its write
        if not (len(seeds) == len(traces) == len(records)):
            raise ValueError("seeds, traces and records must have the same length")
        self.outputs = {int(s): (Path(t), Path(r)) for s, t, r in zip(seeds, traces, records)}
        self.store = Store.beside(traces[0], self.log)
        self.kept_in = self.store.folder
        storage = {"trace_dtype": trace_dtype, "store_deterministics": bool(store_deterministics)}
        self.keys = {int(s): fit_key({**key_parts, **storage, "seed": int(s)}) for s in seeds}
        self.storage = {"dtype": trace_dtype, "deterministics": store_deterministics, "compression": trace_compression}
        self.identity = {k: key_parts[k] for k in ("sampler", "model", "chains", "draws") if k in key_parts}
        self.make_sampler, self.diagnose, self.chains, self.draws = make_sampler, diagnose, chains, draws
        self.base = {k: key_parts.get(k) for k in ("dataset", "sampler", "model", "tune", "target_accept", "priors")}
        self.store.clean([f"seed{s}" for s in seeds], Path(traces[0]).parent)

    def _read(self, seed: int) -> Any | None:
        expected = {"seed": seed, KEY_ATTR: self.keys[seed], **self.identity}
        return self.store.load(
            f"seed{seed}", self.keys[seed], ".nc", lambda path: read_trace(path, self.chains, self.draws, expected)
        )

    def resume(self, seed: int) -> Any | None:
        idata = self._read(seed)
        if idata is not None:
            self.log(f"seed {seed}: resumed from {self.store.path(f'seed{seed}', self.keys[seed], '.nc')}")
        return idata

    def build(self) -> Any:
        return self.make_sampler()

    def compute(self, seed: int, sampler: Any) -> Any:
        fresh = sampler.sample(seed)
        check_complete(fresh, self.chains, self.draws)
        path = store_trace(self.store, f"seed{seed}", self.keys[seed], fresh, **self.storage)
        # Diagnose what was stored, so a resumed seed's record is the same.
        idata = self._read(seed)
        if idata is None:
            raise OSError(f"could not read back {path}")
        return idata

    def finish(self, seed: int, idata: Any, resumed: bool) -> None:
        from .io import write_json

        record = {**self.diagnose(idata), "status": "ok", "error": ""}
        trace_path, record_path = self.outputs[seed]
        copy_out(self.store.path(f"seed{seed}", self.keys[seed], ".nc"), trace_path)
        write_json(record_path, record, undefined_as_null=True)
        # The shorthand's σ_b, else (a formula model) the smallest bulk ESS of the tracked scalars.
        ess = (
            ("sigma_b", record["ess_bulk_sigma_b"]) if "ess_bulk_sigma_b" in record else ("min", record["ess_bulk_min"])
        )
        self.log(
            f"seed {seed}: {record['sampling_seconds']:.1f} s, {record['divergences']} divergences, "
            f"R-hat max {record['rhat_max']:.3f}, ESS bulk {ess[0]} {ess[1]:.0f}"
        )

    def record_failure(self, seed: int, error: BaseException) -> None:
        from .io import write_json

        record = {**failed_record({**self.base, "seed": int(seed)}, error), **FAILED_FIT}
        trace_path, record_path = self.outputs[seed]
        write_failed_trace(trace_path, record)
        write_json(record_path, record, undefined_as_null=True)


def run_batch(*, seeds: Sequence[int], **kwargs: Any) -> BatchReport:
    """Sample (or resume) every seed and write its trace and record (:class:`FitBatch`).

    ``make_sampler()`` builds the compiled sampler (an object with
    ``sample(seed)``); it is called only if some seed must be sampled.
    ``trace_compression`` is not part of the store key: it changes the file's
    bytes, never the draws, so traces already stored are kept as they are.
    """
    return FitBatch(seeds=seeds, **kwargs).run([int(s) for s in seeds])


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


class MapBatch(Batch):
    """A dataset's MAP points, one task per model: stored as ``map/.store/<model>-<key>.json``."""

    noun, doing, done = "MAP", "", "computed"
    on_error_hint = ""

    def __init__(
        self,
        *,
        outputs: Mapping[str, str | os.PathLike[str]],
        key_parts: Mapping[str, Any],
        compute: Callable[[str], dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.outputs = {model: Path(path) for model, path in outputs.items()}
        self.stores = {model: Store.beside(path, self.log) for model, path in self.outputs.items()}
        # A form with a rule (partial) keys its MAP by it too (funnel.forms.rule_key): its model depends on it.
        self.keys = {model: fit_key({**key_parts, "model": model, **rule_key(model)}) for model in outputs}
        self._compute = compute
        self.seconds: dict[str, float] = {}
        for model, path in self.outputs.items():
            self.stores[model].clean([model], path.parent)

    def label(self, model: str) -> str:
        return f"MAP of {model}"

    def resume(self, model: str) -> dict[str, Any] | None:
        from .io import read_json

        def read(path: Path) -> dict[str, Any]:
            record = read_json(path)
            if not isinstance(record, dict) or record.get("model") != model:
                raise ValueError(f"not a MAP record of {model}")
            return record

        record = self.stores[model].load(model, self.keys[model], ".json", read)
        if record is not None:
            self.log(
                f"MAP of {model}: taken from the store ({self.stores[model].path(model, self.keys[model], '.json')}), not computed again"
            )
        return record

    def compute(self, model: str, tool: Any) -> dict[str, Any]:
        import time

        from .io import write_json

        start = time.perf_counter()
        record = self._compute(model)
        path = self.stores[model].put(
            model, self.keys[model], ".json", lambda p: write_json(p, record, undefined_as_null=True)
        )
        self.log(
            f"MAP of {model}: computed in {time.perf_counter() - start:.1f} s "
            f"(map_sigma_b {record['map_sigma_b']:.3g}, map_logp {record['map_logp']:.2f}); stored as {path}"
        )
        return record

    def finish(self, model: str, record: dict[str, Any], resumed: bool) -> None:
        copy_out(self.stores[model].path(model, self.keys[model], ".json"), self.outputs[model])


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
    ``key_parts`` and the model), and the output is a copy of it. A job that
    finds the record there (a rerun after a failed seed, a deleted trace or MAP
    file) copies it and never calls ``compute(model)``, so it imports and
    compiles nothing for it.
    """
    report = MapBatch(outputs=outputs, key_parts=key_parts, compute=compute, cache_dir=cache_dir, log=log).run(
        list(outputs)
    )
    return {model: ("stored" if model in report.resumed else "computed") for model in outputs}
