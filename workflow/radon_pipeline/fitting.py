"""Sample the radon models with PyMC's NUTS or nutpie, a batch of seeds per process.

Fixed costs (importing PyMC, compiling the model) dominate a fit of this size,
so one process compiles a model once and samples a whole batch of seeds. Each
seed's draws depend on the seed alone, never on which batch it is in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

SAMPLERS = ("pymc", "nutpie")

# nutpie's sample-stat names -> PyMC's, so every trace reads the same way.
NUTPIE_STATS = {"depth": "tree_depth", "maxdepth_reached": "reached_max_treedepth", "logp": "lp"}
KEEP_STATS = ("diverging", "energy", "step_size", "tree_depth", "reached_max_treedepth", "n_steps", "lp")


@dataclass(frozen=True)
class FitSettings:
    sampler: str
    model: str
    chains: int = 4
    tune: int = 1000
    draws: int = 1000
    target_accept: float = 0.8
    priors: str = "blog"
    threads: int = 1


def settings_from(params: Any, sampler: str, model: str, threads: int) -> FitSettings:
    """FitSettings from a rule's params (chains, tune, draws, target_accept, priors)."""
    return FitSettings(
        sampler=sampler,
        model=model,
        chains=int(params.chains),
        tune=int(params.tune),
        draws=int(params.draws),
        target_accept=float(params.target_accept),
        priors=str(params.priors),
        threads=int(threads),
    )


def limit_blas_threads() -> None:
    """One BLAS thread per process: the chains are the parallelism, not BLAS."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"


def use_compile_cache(cache_dir: str | Path) -> None:
    """Share PyTensor's and numba's compile caches between jobs (both lock safely)."""
    cache = Path(cache_dir).resolve()
    (cache / "pytensor").mkdir(parents=True, exist_ok=True)
    (cache / "numba").mkdir(parents=True, exist_ok=True)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={cache / 'pytensor'}"]))
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache / "numba"))


class BatchSampler:
    """Compile one (sampler, model) once; sample any number of seeds with it."""

    def __init__(self, table: Any, settings: FitSettings, log: Callable[[str], None] = print) -> None:
        if settings.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {settings.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        self.settings = settings
        self.log = log
        start = time.perf_counter()
        import arviz  # noqa: F401  (timed with PyMC: the fixed cost of a job)
        import pymc  # noqa: F401

        if settings.sampler == "nutpie":
            import nutpie  # noqa: F401
        self.import_seconds = time.perf_counter() - start
        log(f"imported PyMC{' and nutpie' if settings.sampler == 'nutpie' else ''} in {self.import_seconds:.1f} s")

        from .models import build_model

        start = time.perf_counter()
        self.model = build_model(table, settings.model, settings.priors)
        self._compiled = None
        if settings.sampler == "nutpie":
            import nutpie

            self._compiled = nutpie.compile_pymc_model(self.model)
        else:
            # PyMC compiles inside pm.sample; compile the logp/gradient here once so
            # that the C modules land in the shared cache before the first seed.
            self.model.logp_dlogp_function(ravel_inputs=True)
        self.compile_seconds = time.perf_counter() - start
        log(f"compiled {settings.model} for {settings.sampler} in {self.compile_seconds:.1f} s")

    def sample(self, seed: int, target_accept: float | None = None) -> Any:
        """Return an InferenceData (posterior + sample_stats) for ``seed``.

        ``target_accept`` overrides the settings' value without recompiling.
        """
        s = self.settings
        if target_accept is not None:
            s = replace(s, target_accept=float(target_accept))
        start = time.perf_counter()
        if s.sampler == "nutpie":
            import nutpie

            idata = nutpie.sample(
                self._compiled,
                chains=s.chains,
                tune=s.tune,
                draws=s.draws,
                seed=seed,
                cores=s.threads,
                target_accept=s.target_accept,
                save_warmup=False,
                progress_bar=False,
            )
        else:
            import pymc as pm

            idata = pm.sample(
                model=self.model,
                chains=s.chains,
                tune=s.tune,
                draws=s.draws,
                cores=s.threads,
                random_seed=seed,
                target_accept=s.target_accept,
                progressbar=False,
                compute_convergence_checks=False,
                return_inferencedata=True,
                idata_kwargs={"log_likelihood": False},
            )
        elapsed = time.perf_counter() - start
        return self._tidy(idata, seed, elapsed, s)

    def _tidy(self, idata: Any, seed: int, sampling_seconds: float, settings: FitSettings) -> Any:
        import arviz as az

        posterior = idata.posterior
        posterior = posterior.drop_vars([v for v in posterior.data_vars if str(v).endswith("__")])
        stats = idata.sample_stats.rename({k: v for k, v in NUTPIE_STATS.items() if k in idata.sample_stats})
        stats = stats[[v for v in KEEP_STATS if v in stats]]
        attrs = {
            **asdict(settings),
            "seed": int(seed),
            "sampling_seconds": float(sampling_seconds),
            "compile_seconds": float(self.compile_seconds),
            "import_seconds": float(self.import_seconds),
        }
        posterior.attrs = {**attrs}
        stats.attrs = {**attrs}
        return az.InferenceData(posterior=posterior, sample_stats=stats)


def write_trace(idata: Any, path: str | Path) -> None:
    """Write InferenceData to NetCDF atomically."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")


def map_estimate(table: Any, model: str, priors: str, seed: int = 0) -> dict[str, Any]:
    """``pm.find_MAP`` for one parameterization: the mode the blog warns about."""
    import numpy as np
    import pymc as pm

    from .models import build_model

    pm_model = build_model(table, model, priors)
    point = pm.find_MAP(model=pm_model, progressbar=False, seed=seed)
    b = np.asarray(point["b"], dtype=float)
    return {
        "model": model,
        "priors": priors,
        "map_sigma_b": float(point["sigma_b"]),
        "map_sigma_a": float(point["sigma_a"]),
        "map_mu_b": float(point["mu_b"]),
        "map_b_spread": float(b.std()),
        "map_b_min": float(b.min()),
        "map_b_max": float(b.max()),
        "map_logp": float(pm_model.compile_logp()({v.name: point[v.name] for v in pm_model.value_vars})),
    }
