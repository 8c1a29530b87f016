"""Sample the varying-slope models with PyMC's NUTS or nutpie, a batch of seeds per process.

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
# PyTensor backends for PyMC's NUTS (config fit.backend) -> PyTensor mode
# (None: PyTensor's default mode, its C backend).
BACKENDS: dict[str, str | None] = {"numba": "NUMBA", "c": None}

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
    backend: str = "numba"
    threads: int = 1


class IncompleteFit(RuntimeError):
    """A posterior without the configured number of chains or draws."""


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


def settings_key(settings: FitSettings, dataset: str, table_sha256: str) -> dict[str, Any]:
    """The store-key parts of a fit: the data's bytes, every setting but threads, library versions."""
    from .forms import rule_key
    from .store import library_versions

    parts = {k: v for k, v in asdict(settings).items() if k != "threads"}
    # A form whose centering follows a rule (partial) keys its entries by the rule too: a changed threshold refits.
    extra = rule_key(settings.model)
    return {"dataset": dataset, "table_sha256": table_sha256, **parts, **extra, "versions": library_versions()}


def settings_from(params: Any, sampler: str, model: str, threads: int) -> FitSettings:
    """FitSettings from a rule's params (chains, tune, draws, target_accept, priors, backend)."""
    return FitSettings(
        sampler=sampler,
        model=model,
        chains=int(params.chains),
        tune=int(params.tune),
        draws=int(params.draws),
        target_accept=float(params.target_accept),
        priors=priors_text(params.priors),
        # Rules that only run nutpie (the reference) have no backend param.
        backend=str(getattr(params, "backend", "numba")),
        threads=int(threads),
    )


def priors_text(priors: Any) -> str:
    """A dataset's priors as the fit's settings, store keys and trace attributes carry them: a named set as its
    name, a formula dataset's mapping of parameters to priors as canonical JSON (sorted keys: the same priors
    give the same text)."""
    if isinstance(priors, str):
        return priors
    import json

    return json.dumps(_plain_mapping(priors), sort_keys=True, separators=(",", ":"))


def _plain_mapping(value: Any) -> Any:
    """Mappings (Snakemake's Namedlist, a config's dicts) as dicts, all the way down."""
    if hasattr(value, "items"):
        return {str(k): _plain_mapping(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_mapping(v) for v in value]
    return value


def limit_blas_threads() -> None:
    """One BLAS thread per process: the chains are the parallelism, not BLAS."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"


def use_compile_cache(cache_dir: str | Path) -> None:
    """Share PyTensor's and numba's compile caches between jobs (both lock safely), in ``cache_dir``.

    A cache the environment already names wins: a ``PYTENSOR_FLAGS`` that sets ``base_compiledir``, a non-empty
    ``NUMBA_CACHE_DIR`` (the tests give every process of a session one cache this way)."""
    cache = Path(cache_dir).resolve()
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        (cache / "pytensor").mkdir(parents=True, exist_ok=True)
        os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={cache / 'pytensor'}"]))
    if not os.environ.get("NUMBA_CACHE_DIR"):
        (cache / "numba").mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(cache / "numba")


class BatchSampler:
    """Compile one (sampler, model) once; sample any number of seeds with it."""

    def __init__(
        self, data: Any, settings: FitSettings, log: Callable[[str], None] = print, mutable_y: bool = False
    ) -> None:
        if settings.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {settings.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if settings.backend not in BACKENDS:
            raise ValueError(f"unknown backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}")
        self.settings = settings
        self.data = data
        self.log = log
        start = time.perf_counter()
        import arviz  # noqa: F401  (timed with PyMC: the fixed cost of a job)
        import pymc  # noqa: F401

        if settings.sampler == "nutpie":
            import nutpie  # noqa: F401
        self.import_seconds = time.perf_counter() - start
        log(f"imported PyMC{' and nutpie' if settings.sampler == 'nutpie' else ''} in {self.import_seconds:.1f} s")

        from .models import build_model
        from .spec import ModelSpec

        start = time.perf_counter()
        if isinstance(data, ModelSpec):  # any dataset's model, its priors its own
            self.model = data.build(settings.model, mutable_y=mutable_y)
        else:  # the shorthand's arrays (ModelData), with the settings' prior set
            self.model = build_model(data, settings.model, settings.priors, mutable_y=mutable_y)
        self._compiled = None
        if settings.sampler == "nutpie":
            from .nutpie_compile import compile_model

            self._compiled = compile_model(self.model)
            self._compiled_base = self._compiled
        else:
            # pm.sample would compile the log density and gradient for every seed
            # (about 1.3 s each); compile them once here and give every seed's
            # NUTS step this one function. Evaluating it once puts the compiled
            # code (C modules or numba's) into the shared cache.
            from pymc.blocking import DictToArrayBijection

            self._logp_dlogp = self.model.logp_dlogp_function(ravel_inputs=True, mode=self._mode)
            # NUTS always passes one float64 vector: skip PyTensor's per-call input
            # checks (about a tenth of a PyMC fit's time here; the draws are the same).
            self._logp_dlogp._pytensor_function.trust_input = True
            self._logp_dlogp._pytensor_function(DictToArrayBijection.map(self.model.initial_point()).data)
        self.compile_seconds = time.perf_counter() - start
        log(f"compiled {settings.model} for {settings.sampler} in {self.compile_seconds:.1f} s")

    def set_y(self, y: Any) -> None:
        """Fit another outcome on the same design next, without recompiling (needs ``mutable_y=True``)."""
        import numpy as np

        from .models import Y_DATA

        if Y_DATA not in self.model.named_vars:
            raise ValueError("set_y needs a sampler built with mutable_y=True")
        y = np.asarray(y, dtype=float)
        if self._compiled is not None:
            self._compiled = self._compiled_base.with_data(**{Y_DATA: y})
        else:
            self.model.set_data(Y_DATA, y)

    @property
    def _mode(self) -> str | None:
        return BACKENDS[self.settings.backend]

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

            step, initial_points = self._pymc_step(seed, s.chains, s.target_accept)
            idata = pm.sample(
                model=self.model,
                step=step,
                initvals=initial_points,
                chains=s.chains,
                tune=s.tune,
                draws=s.draws,
                cores=s.threads,
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
                return_inferencedata=True,
                idata_kwargs={"log_likelihood": False},
                compile_kwargs={"mode": self._mode},
            )
        elapsed = time.perf_counter() - start
        # PyMC returns the chains drawn so far when interrupted: never pass a short trace on.
        check_complete(idata, s.chains, s.draws)
        return self._tidy(idata, seed, elapsed, s)

    def _pymc_step(self, seed: int, chains: int, target_accept: float) -> tuple[Any, list[dict[str, Any]]]:
        """PyMC's default NUTS set-up (init="jitter+adapt_diag"), around the compiled function.

        The same steps as ``pm.init_nuts`` with the same random numbers, so
        ``pm.sample(step=..., initvals=..., random_seed=seed)`` gives exactly the
        draws of ``pm.sample(random_seed=seed)`` (tested), without recompiling.
        """
        import numpy as np
        import pymc as pm
        from pymc.blocking import DictToArrayBijection
        from pymc.sampling.mcmc import _init_jitter
        from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt
        from pymc.util import get_random_generator

        # pm.sample's per-chain seeds: spawned from the seed, one draw each.
        chain_seeds = [rng.integers(2**30) for rng in get_random_generator(seed).spawn(chains)]

        def logp(point: dict[str, Any]) -> Any:
            return self._logp_dlogp([DictToArrayBijection.map(point).data], extra_vars={})[0]

        initial_points = _init_jitter(
            self.model, None, seeds=chain_seeds, jitter=True, jitter_max_retries=10, logp_fn=logp
        )
        mean = np.mean([DictToArrayBijection.map(point).data for point in initial_points], axis=0)
        potential = QuadPotentialDiagAdapt(len(mean), mean, np.ones_like(mean), 10, rng=chain_seeds[0])
        step = pm.NUTS(
            potential=potential,
            model=self.model,
            rng=chain_seeds[0],
            initial_point=initial_points[0],
            logp_dlogp_func=self._logp_dlogp,
            target_accept=target_accept,
        )
        return step, list(initial_points)

    def _tidy(self, idata: Any, seed: int, sampling_seconds: float, settings: FitSettings) -> Any:
        import arviz as az

        posterior = idata.posterior
        posterior = posterior.drop_vars([v for v in posterior.data_vars if str(v).endswith("__")])
        stats = idata.sample_stats.rename({k: v for k, v in NUTPIE_STATS.items() if k in idata.sample_stats})
        stats = stats[[v for v in KEEP_STATS if v in stats]]
        attrs = {
            "dataset": self.data.dataset,
            **asdict(settings),
            "seed": int(seed),
            "sampling_seconds": float(sampling_seconds),
            "compile_seconds": float(self.compile_seconds),
            "import_seconds": float(self.import_seconds),
            **dict(self.model.centering.record),  # a mixed form's split (funnel.forms.Centering)
        }
        posterior.attrs = {**attrs}
        stats.attrs = {**attrs}
        return az.InferenceData(posterior=posterior, sample_stats=stats)


TRACE_DTYPES = ("float64", "float32")
TRACE_COMPRESSIONS = ("none", "zlib")


def check_trace_storage(dtype: str, compression: str) -> None:
    """Raise a ValueError naming the setting (fit.trace_dtype, fit.trace_compression) and its choices."""
    for setting, value, choices in (
        ("trace_dtype", dtype, TRACE_DTYPES),
        ("trace_compression", compression, TRACE_COMPRESSIONS),
    ):
        if value not in choices:
            raise ValueError(f"fit.{setting} must be one of {', '.join(choices)}, got {value!r}")


def write_trace(
    idata: Any, path: str | Path, dtype: str = "float64", deterministics: bool = True, compression: str = "none"
) -> None:
    """Write InferenceData to NetCDF atomically.

    ``dtype="float32"`` stores the posterior's draws in single precision (half the
    size); ``deterministics=False`` leaves out the non-centered ``a``, ``b``, which
    :func:`funnel.models.with_deterministics` recomputes when the trace is read.
    ``compression="zlib"`` (ArviZ's default) deflates every variable: MCMC draws
    barely compress (radon: 5-13% smaller) and it makes writing about 4x and
    reading about 2x slower, so the default stores them as they are.
    """
    from .io import atomic_path

    check_trace_storage(dtype, compression)
    post = idata.posterior
    if not deterministics:  # an effect with a centered part (a mixed form) keeps its a or b: offsets alone lack it
        lean = [v for v in ("a", "b") if v in post and f"{v}_offset" in post and f"{v}_centered" not in post]
        post = post.drop_vars(lean) if lean else post
    if dtype != "float64":
        post = post.astype({v: dtype for v in post.data_vars if post[v].dtype.kind == "f"})
    if post is not idata.posterior:
        idata = idata.copy()
        attrs = dict(idata.posterior.attrs)
        idata.posterior = post
        idata.posterior.attrs = attrs
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf", compress=compression == "zlib")


# The seed given to pm.find_MAP (part of the MAP store's key, funnel.batch.map_key_parts).
MAP_SEED = 0


def map_estimate(data: Any, model: str, priors: str, seed: int = MAP_SEED) -> dict[str, Any]:
    """``pm.find_MAP`` for one parameterization: the mode the blog warns about.

    Its log density and gradient are compiled in PyTensor's default mode (the C
    backend), whatever ``fit.backend`` is: the centered MAP is where L-BFGS-B
    stops on an unbounded density (sigma_b -> 0), so another backend's last
    digits move it far (numba's: sigma_a 11.2 -> 0.9-1.3; measured 2026-11-26).
    """
    import numpy as np
    import pymc as pm

    from .models import build_model

    pm_model = build_model(data, model, priors)
    point = pm.find_MAP(model=pm_model, progressbar=False, seed=seed)
    b = np.asarray(point["b"], dtype=float)
    return {
        "dataset": data.dataset,
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
