"""Simulation-based calibration (SBC) of a parameterization and sampler on a dataset's design.

Talts et al. (2018), Modrák et al. (2023). For simulation i of dataset d:

1. theta ~ prior and y ~ model(theta) on d's design (its groups, group sizes and
   x values), drawn from the very model that is fitted (:func:`simulate`), with
   a seed that depends on (d, i) alone (:func:`simulation_seed`), never on how
   simulations are batched into jobs;
2. the model is fitted to y; the draws are thinned by the fit's ESS so that the
   kept ones are close to independent (:func:`thinning`, as the SBC package
   does), and the rank of each true value among the kept draws is recorded
   (:func:`ranks`) for the hyperparameters, a and b of the tracked group, and
   the log-likelihood of the simulated data (a data-dependent test quantity);
3. if the computation is right, every quantity's ranks are uniform across
   simulations (:func:`uniformity`: a chi-square test on bins and the ECDF of
   the scaled ranks against the 95% simultaneous band of Säilynoja, Bürkner
   and Vehtari (2022), computed by ArviZ).

The campaign's rules (``workflow/rules/sbc.smk``) run :func:`run_sbc_batch`
for each batch of simulations and :func:`calibration` over their records.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batch import Batch, BatchReport, Faults, failed_record, write_failed_trace
from .datasets import ModelData
from .fitting import FitSettings
from .models import HYPERPARAMETERS
from .store import Store, check_attrs, copy_out, fit_key

# The ranked quantities: the hyperparameters, a and b of the tracked group and the
# log-likelihood of the simulated data (rank_<quantity> in a record).
QUANTITIES = (*HYPERPARAMETERS, "a_track", "b_track", "loglik")
# Subsets of the fits the calibration is computed on (split by divergences).
SUBSETS = ("all", "diverged", "not_diverged")
# Simulations whose fit raises are recorded as failed (never dropped); test-only hook.
FAIL_SIMULATIONS_ENV = "FUNNEL_TEST_FAIL_SIMULATIONS"
# Where the ECDF of the scaled ranks is compared with its simultaneous band (tables and plots).
ECDF_POINTS = np.linspace(0.0, 1.0, 101)[1:-1]
# Prior sets that generate plausible data; the blog's Normal(0, 100^2) does not.
PLAUSIBLE_PRIORS = ("auto", "weakly_informative")
# Part of every stored record's key: raise it when the code changes what a record holds
# or how ranks are computed, so that stored records of the old code are not reused.
RECORD_VERSION = 1


def simulation_seed(dataset: str, index: int, stream: int = 0) -> int:
    """The seed of simulation ``index`` of ``dataset``: a function of the two alone.

    ``stream`` 0 draws the truth and the data, 1 seeds the fit's sampler: two
    independent streams of the same (dataset, index).
    """
    if index < 0:
        raise ValueError(f"simulation index must be >= 0, got {index}")
    name = int.from_bytes(hashlib.sha256(dataset.encode()).digest()[:8], "little")
    key = [name, int(index)] if stream == 0 else [name, int(index), int(stream)]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0] >> 33)


def fit_seed(dataset: str, index: int) -> int:
    """The sampler's seed for simulation ``index`` of ``dataset`` (independent of the data's)."""
    return simulation_seed(dataset, index, stream=1)


def simulate(data: ModelData, priors: str, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One draw of (theta, y) from the prior predictive of the model on ``data``'s design.

    The draw comes from the fitted model itself (PyMC's ``pm.draw`` of its
    random variables), so the simulation and the fit can never disagree on the
    model. Returns the true values (hyperparameters, ``a`` and ``b`` per group)
    and the simulated outcome, one value per row of the design.
    """
    return Simulator(data, priors).draw(seed)


class Simulator:
    """Draws (theta, y) from the prior predictive on a design, compiled once for any number of seeds.

    ``draw(seed)`` gives exactly what ``pm.draw(..., random_seed=seed)`` gives
    (the same reseeding of the same random generators), without compiling a
    function per simulation.
    """

    NAMES = (*HYPERPARAMETERS, "a", "b", "y")

    def __init__(self, data: ModelData, priors: str) -> None:
        from pymc.pytensorf import collect_default_updates, compile

        from .models import build_model

        model = build_model(data, "centered", priors)
        outputs = [model[name] for name in self.NAMES]
        self._rngs = list(collect_default_updates(inputs=[], outputs=outputs))
        self._fn = compile(inputs=[], outputs=outputs)

    def draw(self, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        from pymc.pytensorf import reseed_rngs
        from pymc.util import _get_seeds_per_chain

        (sub_seed,) = _get_seeds_per_chain(int(seed), 1)
        reseed_rngs(self._rngs, sub_seed)
        values = self._fn()
        truth = {name: np.asarray(value, dtype=float) for name, value in zip(self.NAMES[:-1], values[:-1])}
        return truth, np.asarray(values[-1], dtype=float)


def thinning(n_draws: int, ess: float) -> int:
    """Keep every k-th draw, k = ceil(draws / ESS): about one kept draw per effective draw.

    The kept draws are then close to independent, as the ranks' uniformity
    assumes (autocorrelated draws pile ranks up at the ends even when the
    posterior is right).
    """
    if n_draws < 1:
        raise ValueError("no draws to thin")
    ess = float(ess)
    if not math.isfinite(ess):  # a chain that never moved: ArviZ gives NaN; one kept draw
        ess = 1.0
    return max(1, math.ceil(n_draws / max(ess, 1.0)))


def kept_draws(n_draws: int, thin: int, rank_draws: int) -> np.ndarray:
    """Indices of the kept draws: every ``thin``-th, then at most ``rank_draws`` of them, evenly spread."""
    kept = np.arange(0, n_draws, max(int(thin), 1))
    if kept.size > rank_draws:
        kept = kept[np.unique(np.linspace(0, kept.size - 1, int(rank_draws)).round().astype(int))]
    return kept


def rank_of(draws: np.ndarray, truth: float) -> int:
    """The rank of ``truth`` among ``draws``: how many draws are below it (0..len(draws))."""
    return int((np.asarray(draws) < truth).sum())


def scaled_ranks(rank_values: Sequence[int] | np.ndarray, n: Sequence[int] | np.ndarray | int) -> np.ndarray:
    """Ranks in 0..n mapped to (0, 1) as (rank + 0.5) / (n + 1): uniform if the ranks are,
    whatever the number of kept draws, so fits that kept different numbers pool."""
    r = np.asarray(rank_values, dtype=float)
    return (r + 0.5) / (np.broadcast_to(np.asarray(n, dtype=float), r.shape) + 1.0)


def log_likelihood(data: ModelData, a: np.ndarray, b: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """log p(y | a, b, eps) of ``data`` for each draw (leading axis of a, b: draws; eps: draws)."""
    from scipy.stats import norm

    mu = a[:, data.group_idx] + b[:, data.group_idx] * data.x[None, :]
    return norm.logpdf(data.y[None, :], loc=mu, scale=np.asarray(eps)[:, None]).sum(axis=1)


def ranks(
    posterior: Any,
    truth: Mapping[str, np.ndarray],
    data: ModelData,
    thin: int,
    rank_draws: int,
) -> dict[str, Any]:
    """Ranks of the true values among ``rank_draws`` draws kept every ``thin``-th (chains pooled).

    Quantities: the hyperparameters, ``a`` and ``b`` of the tracked group and
    the log-likelihood of the simulated data (``data.y``). A rank counts the
    kept draws below the truth (0..n, n the draws kept; :func:`kept_draws`).
    Returns ``{"rank_<q>": int, ..., "rank_n": n, "thin": thin}``.
    """
    from .models import with_deterministics

    posterior = with_deterministics(posterior)
    track = data.groups.index(str(data.track_group))
    flat = {
        name: posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        for name in [*HYPERPARAMETERS, "a", "b"]
    }
    kept = kept_draws(next(iter(flat.values())).shape[0], thin, rank_draws)
    out: dict[str, Any] = {}
    for name in HYPERPARAMETERS:
        out[f"rank_{name}"] = rank_of(flat[name][kept], float(truth[name]))
    for name in ("a", "b"):
        out[f"rank_{name}_track"] = rank_of(flat[name][kept, track], float(truth[name][track]))
    draws_ll = log_likelihood(data, flat["a"][kept], flat["b"][kept], flat["eps"][kept])
    true_ll = log_likelihood(data, truth["a"][None, :], truth["b"][None, :], np.atleast_1d(truth["eps"]))[0]
    out["rank_loglik"] = rank_of(draws_ll, float(true_ll))
    out["rank_n"] = int(kept.size)
    out["thin"] = int(thin)
    return out


@functools.lru_cache(maxsize=64)
def uniform_band(n: int, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``prob`` simultaneous band of the ECDF of ``n`` uniform values at :data:`ECDF_POINTS`
    (ArviZ, Säilynoja et al. 2022). Cached: a campaign's table and plots ask for the same
    (n, prob) for every quantity, and each costs about 0.2 s at n = 1,000."""
    from arviz.stats.ecdf_utils import ecdf_confidence_band

    lower, upper = ecdf_confidence_band(int(n), ECDF_POINTS, ECDF_POINTS, prob=float(prob), method="optimized")
    lower, upper = np.array(lower), np.array(upper)
    lower.flags.writeable = upper.flags.writeable = False  # shared by every caller
    return lower, upper


def band_outside(u: np.ndarray, prob: float) -> int:
    """At how many of :data:`ECDF_POINTS` the ECDF of ``u`` (values in (0, 1)) leaves the ``prob`` band."""
    from arviz.stats.ecdf_utils import compute_ecdf

    u = np.asarray(u, dtype=float)
    ecdf = compute_ecdf(np.sort(u), ECDF_POINTS)
    lower, upper = uniform_band(u.size, float(prob))
    return int(((ecdf < lower) | (ecdf > upper)).sum())


def uniformity(
    rank_values: Sequence[int], n: Sequence[int] | int, bins: int = 10, prob: float = 0.95
) -> dict[str, Any]:
    """Are the ranks uniform? A chi-square test on ``bins`` equal bins of the scaled ranks, and the
    ECDF of the scaled ranks against the ``prob`` simultaneous band for uniform values (ArviZ).

    Ranks are scaled to (rank + 0.5) / (n + 1), so fits that kept different
    numbers of draws can be pooled. The chi-square test is the one in Talts et
    al.; the band (Säilynoja et al. 2022) does not depend on a choice of bins
    and is the one the ECDF-difference plots show.
    """
    from scipy.stats import chisquare

    r = np.asarray(rank_values, dtype=float)
    if r.size < bins:
        raise ValueError(f"{r.size} ranks are too few for {bins} bins")
    u = scaled_ranks(r, n)
    counts = np.histogram(u, bins=bins, range=(0.0, 1.0))[0]
    chi2 = chisquare(counts)
    outside = band_outside(u, prob)
    return {
        "simulations": int(r.size),
        "chi2": float(chi2.statistic),
        "chi2_p": float(chi2.pvalue),
        "bins": int(bins),
        "ecdf_points_outside_band": outside,
        "band_prob": float(prob),
        "uniform": bool(outside == 0),
    }


# --------------------------------------------------------------------------- one simulation, fitted


@dataclass(frozen=True)
class SBCSettings:
    """What decides a campaign's records (config ``sbc:``) for one (dataset, sampler, model)."""

    dataset: str
    fit: FitSettings  # sampler, form, chains, tune, draws, target_accept, priors, backend (threads: 1)
    rank_draws: int = 100
    # "ess": thin by the fit's ESS (:func:`thinning`); an integer k: keep every k-th draw
    # whatever the ESS (to show what autocorrelated draws do to the ranks).
    thin: str | int = "ess"

    def key_parts(self) -> dict[str, Any]:
        """Every setting that decides a record (not the threads) for the store's key."""
        fit = {k: v for k, v in asdict(self.fit).items() if k != "threads"}
        return {"dataset": self.dataset, **fit, "rank_draws": self.rank_draws, "thin": self.thin}


def prior_warning(priors: str) -> str | None:
    """A warning for prior sets that make SBC simulate implausible data (None for the others)."""
    if priors in PLAUSIBLE_PRIORS:
        return None
    return (
        f"sbc.priors is {priors!r}: SBC draws its data from the priors, and the blog's Normal(0, 100^2) "
        "locations and HalfCauchy(5) scales generate outcomes thousands of units wide, nothing like the data; "
        "the campaign then tests a model no one fits. Use auto (scaled to the data) or weakly_informative."
    )


def sbc_diagnostics(idata: Any, track_group: str) -> dict[str, Any]:
    """Divergences, and R-hat max and bulk ESS of the ranked parameters (hyperparameters, a and b of
    the tracked group) of one SBC fit, all from ArviZ; the smallest ESS sets the thinning."""
    import arviz as az
    import xarray as xr

    from .diagnostics import tracked_variables

    post = idata.posterior
    diverging = idata.sample_stats["diverging"].values.astype(bool)
    tracked = tracked_variables(idata, track_group)
    scalars = xr.Dataset({label: post[spec["var"]].sel(spec["sel"]) for label, spec in tracked.items()})
    # R-hat and ESS of the ranked parameters only: R-hat of every group's a and b
    # would cost more than a radon fit's sampling.
    rhat = az.rhat(scalars, method="rank")
    ess = az.ess(scalars, method="bulk")
    rhat_max = max(float(rhat[v].max()) for v in rhat.data_vars)
    return {
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "divergences": int(diverging.sum()),
        "diverged": bool(diverging.any()),
        "rhat_max": rhat_max if math.isfinite(rhat_max) else None,
        "ess_bulk_sigma_b": float(ess["sigma_b"]),
        "ess_bulk_min": float(min(float(ess[v]) for v in ess.data_vars)),
        "sampling_seconds": float(post.attrs.get("sampling_seconds", float("nan"))),
    }


def truth_record(truth: Mapping[str, np.ndarray], data: ModelData) -> dict[str, float]:
    """The true values of the ranked parameters (``true_<quantity>``)."""
    track = data.groups.index(str(data.track_group))
    out = {f"true_{name}": float(truth[name]) for name in HYPERPARAMETERS}
    out["true_a_track"] = float(truth["a"][track])
    out["true_b_track"] = float(truth["b"][track])
    return out


def fit_simulation(
    sampler: Any, simulator: Simulator, data: ModelData, settings: SBCSettings, index: int
) -> tuple[dict[str, Any], Any]:
    """Simulate data set ``index``, fit it with ``sampler`` (a BatchSampler built with mutable y), rank.

    Returns the record (ranks, thinning, diagnostics, truth) and the InferenceData.
    """
    sim_seed = simulation_seed(settings.dataset, index)
    truth, y = simulator.draw(sim_seed)
    if not np.all(np.isfinite(y)):
        raise FloatingPointError(f"simulation {index} drew non-finite y (seed {sim_seed})")
    sampler.set_y(y)
    idata = sampler.sample(fit_seed(settings.dataset, index))
    record = sbc_diagnostics(idata, str(data.track_group))
    n = record["chains"] * record["draws"]
    thin = thinning(n, record["ess_bulk_min"]) if settings.thin == "ess" else int(settings.thin)
    record |= ranks(idata.posterior, truth, data.with_y(y), thin, settings.rank_draws)
    return {**base_record(settings, index), "status": "ok", "error": "", **truth_record(truth, data), **record}, idata


def base_record(settings: SBCSettings, index: int) -> dict[str, Any]:
    return {
        "dataset": settings.dataset,
        "sampler": settings.fit.sampler,
        "model": settings.fit.model,
        "priors": settings.fit.priors,
        "simulation": int(index),
        "sim_seed": simulation_seed(settings.dataset, index),
        "fit_seed": fit_seed(settings.dataset, index),
    }


# --------------------------------------------------------------------------- a batch of simulations


def simulation_of(path: str | os.PathLike[str]) -> int:
    """The index in a per-simulation file's name (``.../sim<N>.json`` or ``.nc``)."""
    import re

    match = re.search(r"sim(\d+)\.(?:json|nc)$", str(path))
    if match is None:
        raise ValueError(f"{path} is not a per-simulation file (sim<N>.json or sim<N>.nc)")
    return int(match.group(1))


class SBCBatch(Batch):
    """The simulations of an SBC job: simulate, fit and rank each (:func:`fit_simulation`).

    Finished simulations are kept in a store beside the records
    (``.store/sim<N>-<key>.json``, and ``.nc`` if traces are kept, keyed by the
    settings and ``key_parts``), so a rerun after a kill or Ctrl-C fits only the
    rest. A fit that raises is recorded as failed, with its error, and the batch
    goes on: SBC must never drop a fit.
    """

    noun, doing, done = "simulation", "fitting", "fitted"

    def __init__(
        self,
        *,
        indices: Sequence[int],
        records: Sequence[str | os.PathLike[str]],
        traces: Sequence[str | os.PathLike[str]] = (),
        key_parts: Mapping[str, Any],
        settings: SBCSettings,
        make_fitter: Callable[[], tuple[Any, Simulator]],
        data: ModelData,
        **kwargs: Any,
    ) -> None:
        super().__init__(on_error="record", **kwargs)
        if len(indices) != len(records) or (traces and len(traces) != len(records)):
            raise ValueError("indices, records (and traces, if kept) must have the same length")
        self.records = {int(i): Path(r) for i, r in zip(indices, records)}
        self.traces = {int(i): Path(t) for i, t in zip(indices, traces)}
        self.settings, self.make_fitter, self.data = settings, make_fitter, data
        self.store = Store.beside(records[0], self.log)
        self.kept_in = self.store.folder
        parts = {**key_parts, **settings.key_parts(), "record_version": RECORD_VERSION}
        self.keys = {int(i): fit_key({**parts, "simulation": int(i)}) for i in indices}
        self.store.clean([f"sim{i}" for i in indices], Path(records[0]).parent)

    def resume(self, i: int) -> dict[str, Any] | None:
        from .io import read_json

        expected = base_record(self.settings, i)  # the record must be of this simulation and fit

        def read(path: Path) -> dict[str, Any]:
            record = read_json(path)
            check_attrs(record, expected)
            return record

        record = self.store.load(f"sim{i}", self.keys[i], ".json", read)
        if record is not None and i in self.traces:
            trace = self.store.load(f"sim{i}", self.keys[i], ".nc", lambda path: path)
            if trace is None:
                return None
        return record

    def build(self) -> tuple[Any, Simulator]:
        return self.make_fitter()

    def compute(self, i: int, fitter: tuple[Any, Simulator]) -> dict[str, Any]:
        from .fitting import write_trace
        from .io import write_json

        record, idata = fit_simulation(fitter[0], fitter[1], self.data, self.settings, i)
        if i in self.traces:
            self.store.put(f"sim{i}", self.keys[i], ".nc", lambda path: write_trace(idata, path))
        self.store.put(f"sim{i}", self.keys[i], ".json", lambda path: write_json(path, record))
        return record

    def finish(self, i: int, record: dict[str, Any], resumed: bool) -> None:
        copy_out(self.store.path(f"sim{i}", self.keys[i], ".json"), self.records[i])
        if i in self.traces:
            copy_out(self.store.path(f"sim{i}", self.keys[i], ".nc"), self.traces[i])
        self.log(
            f"simulation {i}: {'resumed' if resumed else 'fitted'}: {record['divergences']} divergences, "
            f"thin {record['thin']}, {record['rank_n']} draws ranked, {record['sampling_seconds']:.2f} s sampling"
        )

    def record_failure(self, i: int, error: BaseException) -> None:
        from .io import write_json

        record = failed_record(base_record(self.settings, i), error)
        write_json(self.records[i], record)
        if i in self.traces:
            write_failed_trace(self.traces[i], {**record, "seed": i})


def run_sbc_batch(
    *, indices: Sequence[int], fail_simulations: frozenset[int] = frozenset(), **kwargs: Any
) -> BatchReport:
    """Fit (or resume) every simulation of a batch and write its record (and trace, if asked): :class:`SBCBatch`."""
    faults = Faults(fail_seeds=frozenset(fail_simulations), variable=FAIL_SIMULATIONS_ENV)
    return SBCBatch(indices=indices, faults=faults, **kwargs).run([int(i) for i in indices])


# --------------------------------------------------------------------------- the campaign's analysis


def records_table(records: Sequence[Mapping[str, Any]]) -> Any:
    """One row per (sampler, model, simulation), failed fits included, sorted."""
    import pandas as pd

    frame = pd.DataFrame(list(records))
    if frame.empty:
        raise ValueError("no SBC records")
    return frame.sort_values(["sampler", "model", "simulation"]).reset_index(drop=True)


def family_prob(quantities: int = len(QUANTITIES), level: float = 0.05) -> float:
    """The band probability per quantity so that a calibrated fit passes all ``quantities`` bands with
    probability >= 1 - ``level`` (Bonferroni)."""
    return 1.0 - level / max(int(quantities), 1)


def calibration(records: Any, bins: int = 10, prob: float | None = None) -> Any:
    """Per (dataset, sampler, model, quantity, subset): the uniformity of the ranks (:func:`uniformity`).

    Subsets: every fit that ran (``all``), the fits that diverged and those that
    did not. A subset with fewer fits than ``bins`` gets a row without a test.
    ``prob`` (default :func:`family_prob`) is the simultaneous band's probability.
    """
    import pandas as pd

    prob = family_prob() if prob is None else prob
    rows = []
    for (dataset, sampler, model), group in records.groupby(["dataset", "sampler", "model"], sort=True):
        ok = group[group["status"] == "ok"]
        diverged = ok["diverged"].astype(bool)
        subsets = {"all": ok, "diverged": ok[diverged], "not_diverged": ok[~diverged]}
        for quantity in QUANTITIES:
            for subset, part in subsets.items():
                row: dict[str, Any] = {
                    "dataset": dataset,
                    "sampler": sampler,
                    "model": model,
                    "quantity": quantity,
                    "subset": subset,
                    "simulations": int(len(part)),
                    "failed": int((group["status"] != "ok").sum()),
                    "total": int(len(group)),
                }
                if len(part) >= bins:
                    row |= uniformity(part[f"rank_{quantity}"].to_numpy(), part["rank_n"].to_numpy(), bins, prob)
                rows.append(row)
    return pd.DataFrame(rows)


FORM_NAMES = {"centered": "centered", "noncentered": "non-centered"}


def conclusion(records: Any, table: Any) -> dict[str, Any]:
    """The campaign's outcome per (sampler, model) and a one-line conclusion for the report's index."""
    if "uniform" not in table:  # no subset had enough fits to test
        table = table.assign(uniform=np.nan)
    groups = []
    for (sampler, model), part in table[table["subset"] == "all"].groupby(["sampler", "model"], sort=True):
        recs = records[(records["sampler"] == sampler) & (records["model"] == model)]
        ok = recs[recs["status"] == "ok"]
        tested = part[part["uniform"].notna()]
        bad = [str(q) for q in tested.loc[~tested["uniform"].astype(bool), "quantity"]]
        clean = table[(table["sampler"] == sampler) & (table["model"] == model) & (table["subset"] == "not_diverged")]
        clean_tested = clean[clean["uniform"].notna()]
        clean_bad = [str(q) for q in clean_tested.loc[~clean_tested["uniform"].astype(bool), "quantity"]]
        groups.append(
            {
                "sampler": str(sampler),
                "model": str(model),
                "simulations": int(len(recs)),
                "failed": int((recs["status"] != "ok").sum()),
                "diverged_share": float(ok["diverged"].astype(bool).mean()) if len(ok) else float("nan"),
                "tested": bool(len(tested) > 0),
                "calibrated": bool(len(tested) > 0 and not bad),
                "miscalibrated": bad,
                "miscalibrated_without_divergent_fits": clean_bad if len(clean_tested) else None,
                "median_sampling_seconds": float(ok["sampling_seconds"].median()) if len(ok) else float("nan"),
            }
        )
    parts = []
    for g in groups:
        form = f"{FORM_NAMES.get(g['model'], g['model'])} ({g['sampler']})"
        if not g["tested"]:
            text = f"{form}: too few fits to test"
        elif g["calibrated"]:
            text = f"{form} calibrated in all {len(QUANTITIES)} quantities"
        else:
            text = f"{form} miscalibrated in {', '.join(g['miscalibrated'])}"
            if g["miscalibrated_without_divergent_fits"] == []:
                text += " (calibrated once the fits that diverged are set aside: the divergences are where it fails)"
        text += f"; {g['diverged_share']:.0%} of fits diverged"
        if g["failed"]:
            text += f", {g['failed']} failed"
        parts.append(text)
    dataset = str(records["dataset"].iloc[0])
    simulations = max((g["simulations"] for g in groups), default=0)
    line = f"SBC, {simulations} simulations on {dataset}'s design: " + "; ".join(parts) + "."
    return {"dataset": dataset, "simulations": simulations, "groups": groups, "line": line}


def calibration_markdown(table: Any, outcome: Mapping[str, Any]) -> str:
    """The campaign's tables as Markdown: the conclusion, then the tests of every quantity."""
    lines = [f"# Simulation-based calibration: {outcome['dataset']}", "", outcome["line"], ""]
    probs = table["band_prob"].dropna() if "band_prob" in table else []
    prob = float(probs.iloc[0]) if len(probs) else family_prob()
    lines += [
        "Ranks are tested for uniformity by the ECDF of the scaled ranks against a simultaneous band "
        f"(Säilynoja et al. 2022, computed by ArviZ) at {prob:.4f} per quantity "
        f"(a family-wise 95% over {len(QUANTITIES)} quantities), and by a chi-square test on equal bins.",
        "",
        "| sampler | model | quantity | subset | fits | chi2 p | ECDF points outside band | uniform |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        tested = isinstance(getattr(row, "uniform", None), bool | np.bool_)
        lines.append(
            f"| {row.sampler} | {row.model} | {row.quantity} | {row.subset} | {row.simulations} | "
            + (
                f"{row.chi2_p:.3g} | {int(row.ecdf_points_outside_band)} | {'yes' if row.uniform else 'NO'} |"
                if tested
                else "- | - | too few fits |"
            )
        )
    return "\n".join(lines) + "\n"
