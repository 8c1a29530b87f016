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
   the log-likelihood of the simulated data (a data-dependent test quantity),
   with the posterior mean and sd of each parameter;
3. if the computation is right, every quantity's ranks are uniform across
   simulations (:func:`uniformity`: a chi-square test on bins and the ECDF
   against the simultaneous band of Säilynoja, Bürkner and Vehtari (2022),
   computed by ArviZ), central posterior intervals cover the truth at their
   nominal rate (:func:`coverage`), and the data-averaged posterior equals the
   prior (:func:`data_averaged`, Modrák et al. 2023).

Why the ranks are randomized. A rank r among n kept draws is uniform on the
n + 1 values 0..n under the null (Talts et al. 2018), and n differs between fits
(it is the fit's ESS, capped at ``rank_draws``). Discrete ranks with different n
cannot be pooled exactly by a deterministic scaling: (r + 0.5)/(n + 1) puts mass
on a lattice that changes with n, and a band built for continuous uniform values
(or a chi-square on bins whose edges fall between lattice points) then rejects
exactly uniform ranks far above its level (measured: a 10-bin chi-square
rejected 97% and the band 89% of exactly uniform campaigns at 10,000
simulations of 77 ranked draws). Säilynoja et al. (2022) evaluate the ECDF of
discrete ranks only at the points where they live, i/(n + 1), which needs one n
for every fit; forcing one n would throw away fits with a small ESS or thin
them less than their autocorrelation needs. So each rank is randomized within its
tie: u = (r + U)/(n + 1) with U ~ Uniform(0, 1), the randomized probability
integral transform. If r is uniform on 0..n, u is exactly Uniform(0, 1) whatever
n, so fits with any thinning pool, and the continuous band and the chi-square
are exact at their stated levels. U is a fixed function of (dataset, quantity,
simulation) alone (:func:`rank_jitter`), so tables and plots are reproducible
and agree. The cost is a little power: the within-tie noise is at most
1/(n + 1), small beside the miscalibrations SBC looks for.

Failed fits. A fit that raises is recorded, never dropped; its ranks are
missing, and leaving it out conditions the ranks on the sampler's behaviour.
The quantities are tested among the fits that ran, and a form is called
calibrated only when at most :data:`MAX_FAILED_SHARE` of its fits failed;
otherwise it is "inconclusive", with the failed share. Fits that ran but did not
converge (R-hat above :data:`RHAT_MAX`) keep their ranks (they are part of
the computation under test) and are counted in the table and the conclusion.

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
from .glm import Structure
from .models import FORM_NAMES, HYPERPARAMETERS, STRUCTURE
from .store import Store, check_attrs, copy_out, fit_key

# The ranked quantities: the hyperparameters, a and b of the tracked group and the
# log-likelihood of the simulated data (rank_<quantity> in a record).
QUANTITIES = (*HYPERPARAMETERS, "a_track", "b_track", "loglik")
# Subsets of the fits the calibration is computed on (split by divergences).
SUBSETS = ("all", "diverged", "not_diverged")
# Simulations whose fit raises are recorded as failed (never dropped); test-only hook.
FAIL_SIMULATIONS_ENV = "FUNNEL_TEST_FAIL_SIMULATIONS"
# Where the ECDF of the randomized ranks is compared with its simultaneous band (tables and plots).
ECDF_POINTS = np.linspace(0.0, 1.0, 101)[1:-1]
# A form is called calibrated only if at most this share of its fits failed (raised): the missing
# ranks could otherwise hide a miscalibration (5% of ranks moved anywhere shifts the ECDF by at
# most 0.05, about the half-width of the band at a few hundred simulations).
MAX_FAILED_SHARE = 0.05
# A fit that ran with R-hat (rank-normalized, ArviZ) above this did not converge (Vehtari et al. 2021).
RHAT_MAX = 1.01
# Central posterior intervals whose coverage of the truth is reported (nominal levels).
COVERAGE_LEVELS = (0.5, 0.8, 0.95)
# The parameters whose posterior mean and sd each record keeps (the data-averaged posterior check).
PARAMETERS = (*HYPERPARAMETERS, "a_track", "b_track")
# Prior sets that generate plausible data; the blog's Normal(0, 100^2) does not.
PLAUSIBLE_PRIORS = ("auto", "weakly_informative")
# Part of every stored record's key: raise it when the code changes what a record holds
# or how ranks are computed, so that stored records of the old code are not reused.
RECORD_VERSION = 2


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
    return Simulator.for_data(data, priors).draw(seed)


class LogLikelihood:
    """log p(y | theta) of a model's outcome at any values of its variables: the model's own density of its
    observed variable (PyMC's logp, no Jacobian), so every family (gaussian, bernoulli, binomial, poisson, a
    known se) is ranked by the likelihood it is fitted with. Compiled once; ``model`` is built with
    ``mutable_y=True`` (:data:`~funnel.glm.Y_DATA`), in the form whose sampled variables a posterior reports
    for every form (the centered one: hyperparameters and effects)."""

    def __init__(self, model: Any) -> None:
        from pymc.model.transform.conditioning import remove_value_transforms

        from .glm import OUTCOME

        self._model = remove_value_transforms(model)  # its values are the variables themselves (sigma, not log sigma)
        self.names = tuple(v.name for v in self._model.value_vars)
        logp = self._model.logp(vars=[self._model[OUTCOME]], jacobian=False)
        self._fn = self._model.compile_fn(logp, inputs=self._model.value_vars, on_unused_input="ignore")

    def __call__(self, values: Mapping[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        """One log-likelihood of ``y`` per draw; ``values`` maps each of :attr:`names` to its draws (leading axis)."""
        from .glm import Y_DATA

        container = self._model[Y_DATA]
        self._model.set_data(Y_DATA, np.asarray(y).astype(container.type.dtype))  # counts arrive as floats
        draws = {name: np.asarray(values[name]) for name in self.names}
        n = len(next(iter(draws.values())))
        return np.array([float(self._fn({name: v[i] for name, v in draws.items()})) for i in range(n)])


class Simulator:
    """Draws (theta, y) from the prior predictive of a model, compiled once for any number of seeds, and
    the model's :class:`LogLikelihood` (:attr:`loglik`).

    ``draw(seed)`` gives exactly what ``pm.draw(..., random_seed=seed)`` gives
    (the same reseeding of the same random generators), without compiling a
    function per simulation. ``model`` is built with ``mutable_y=True``;
    ``names`` are the variables drawn besides the outcome.
    """

    #: What :meth:`for_data`'s simulator draws: the shorthand model's parameters and effects, then y.
    NAMES = (*STRUCTURE.hyperparameters, *STRUCTURE.effects, "y")

    def __init__(self, model: Any, names: Sequence[str]) -> None:
        from pymc.pytensorf import collect_default_updates, compile

        from .glm import OUTCOME

        self.names = (*names, OUTCOME)
        outputs = [model[name] for name in self.names]
        self._rngs = list(collect_default_updates(inputs=[], outputs=outputs))
        self._fn = compile(inputs=[], outputs=outputs)
        self.loglik = LogLikelihood(model)

    @classmethod
    def for_data(cls, data: ModelData, priors: str) -> Simulator:
        """The simulator of the varying-intercept, varying-slope model on ``data``'s design."""
        from .models import build_model

        return cls(build_model(data, "centered", priors, mutable_y=True), cls.NAMES[:-1])

    def draw(self, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        from pymc.pytensorf import reseed_rngs
        from pymc.util import _get_seeds_per_chain

        (sub_seed,) = _get_seeds_per_chain(int(seed), 1)
        reseed_rngs(self._rngs, sub_seed)
        values = self._fn()
        truth = {name: np.asarray(value, dtype=float) for name, value in zip(self.names[:-1], values[:-1])}
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
    """Ranks in 0..n mapped to (0, 1) as (rank + 0.5) / (n + 1), tie midpoints: for display only.
    Pooled over fits with different n they are not uniform even when the ranks are (the module
    docstring); the tests use :func:`randomized_ranks`."""
    r = np.asarray(rank_values, dtype=float)
    return (r + 0.5) / (np.broadcast_to(np.asarray(n, dtype=float), r.shape) + 1.0)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 values (a well-mixed hash, vectorized)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def rank_jitter(dataset: str, quantity: str, simulations: Sequence[int] | np.ndarray) -> np.ndarray:
    """The U ~ Uniform(0, 1) that randomizes a rank within its tie: a function of (dataset, quantity,
    simulation) alone, independent of the fit, so the same record always gets the same value."""
    key = int.from_bytes(hashlib.sha256(f"sbc-rank-jitter/{dataset}/{quantity}".encode()).digest()[:8], "little")
    sims = np.asarray(simulations, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        bits = _splitmix64(_splitmix64(sims ^ np.uint64(key)))
    return (bits >> np.uint64(11)).astype(float) * 2.0**-53


def randomized_ranks(
    rank_values: Sequence[int] | np.ndarray, n: Sequence[int] | np.ndarray | int, jitter: np.ndarray
) -> np.ndarray:
    """Ranks in 0..n randomized within their tie, (rank + U) / (n + 1): exactly Uniform(0, 1) when the
    ranks are uniform on 0..n, whatever n, so fits with different numbers of ranked draws pool."""
    r = np.asarray(rank_values, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), r.shape)
    if np.any((r < 0) | (r > n)):
        raise ValueError("a rank is outside 0..n (n the number of ranked draws)")
    return (r + np.broadcast_to(np.asarray(jitter, dtype=float), r.shape)) / (n + 1.0)


def record_ranks(fits: Any, quantity: str) -> np.ndarray:
    """The randomized ranks of ``quantity`` over a records table's fits that ran (NaN rows dropped)."""
    ranks_ = fits[f"rank_{quantity}"].to_numpy(dtype=float)
    n = fits["rank_n"].to_numpy(dtype=float)
    keep = np.isfinite(ranks_) & np.isfinite(n)
    sims = fits["simulation"].to_numpy()[keep]
    datasets = fits["dataset"].astype(str).to_numpy()[keep] if "dataset" in fits else np.full(sims.size, "")
    jitter = np.empty(sims.size)
    for name in np.unique(datasets):
        at = datasets == name
        jitter[at] = rank_jitter(str(name), quantity, sims[at])
    return randomized_ranks(ranks_[keep], n[keep], jitter)


def ranks(
    posterior: Any,
    truth: Mapping[str, np.ndarray],
    y: np.ndarray,
    track: int,
    thin: int,
    rank_draws: int,
    loglik: LogLikelihood,
    structure: Structure = STRUCTURE,
) -> dict[str, Any]:
    """Ranks of the true values among ``rank_draws`` draws kept every ``thin``-th (chains pooled).

    Quantities: the model's hyperparameters (``structure``), each effect of the tracked level (position
    ``track`` of its factor: ``a_track``, ``b_track``) and the log-likelihood (``loglik``, the model's own) of
    the simulated data ``y``. A rank counts the kept draws below the truth (0..n, n the draws kept;
    :func:`kept_draws`). Returns ``{"rank_<q>": int, ..., "rank_n": n, "thin": thin}`` and the posterior mean
    and sd of each ranked parameter over all draws (``post_mean_<p>``, ``post_sd_<p>``).
    """
    from .models import with_deterministics

    posterior = with_deterministics(posterior)
    names = [*structure.hyperparameters, *structure.effects]
    flat = {name: posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).values for name in names}
    kept = kept_draws(next(iter(flat.values())).shape[0], thin, rank_draws)
    every = {name: flat[name] for name in structure.hyperparameters}
    every |= {f"{effect}_track": flat[effect][:, track] for effect in structure.effects}
    true = {name: float(truth[name]) for name in structure.hyperparameters}
    true |= {f"{effect}_track": float(truth[effect][track]) for effect in structure.effects}
    out: dict[str, Any] = {f"rank_{name}": rank_of(every[name][kept], true[name]) for name in every}
    out["rank_loglik"] = loglik_rank(loglik, {name: v[kept] for name, v in flat.items()}, truth, y)
    out["rank_n"] = int(kept.size)
    out["thin"] = int(thin)
    # Posterior mean and sd over all draws (not only the kept ones): the data-averaged posterior check.
    for name, values in every.items():
        out[f"post_mean_{name}"] = float(np.mean(values))
        out[f"post_sd_{name}"] = float(np.std(values, ddof=1)) if values.size > 1 else float("nan")
    return out


def loglik_rank(
    loglik: LogLikelihood, draws: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], y: np.ndarray
) -> int:
    """The rank of the true values' log-likelihood of ``y`` among the kept draws' (``draws``: one leading axis)."""
    true_ll = loglik({name: np.asarray(truth[name])[None] for name in loglik.names}, y)[0]
    return rank_of(loglik(draws, y), float(true_ll))


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


def ecdf_at_points(u: np.ndarray) -> np.ndarray:
    """The ECDF of each row of ``u`` (campaigns x values in (0, 1)) at :data:`ECDF_POINTS`, as ArviZ's
    ``compute_ecdf`` computes it (the share of values <= the point); vectorized over rows."""
    u = np.atleast_2d(np.asarray(u, dtype=float))
    rows, size = u.shape
    points = ECDF_POINTS.size
    # A value counts at every point at or above it: at point indices >= searchsorted(points, u, "left").
    first = np.searchsorted(ECDF_POINTS, u, side="left")
    counts = np.bincount((first + np.arange(rows)[:, None] * (points + 1)).ravel(), minlength=rows * (points + 1))
    return np.cumsum(counts.reshape(rows, points + 1), axis=1)[:, :points] / size


def uniformity_tests(u: np.ndarray, bins: int = 10, prob: float = 0.95) -> dict[str, np.ndarray]:
    """The two tests of :func:`uniformity` on each row of ``u`` (campaigns x values in (0, 1)) at once:
    chi-square statistic and p-value on ``bins`` equal bins, and the number of :data:`ECDF_POINTS` where
    the ECDF leaves the ``prob`` simultaneous band."""
    from scipy.stats import chi2 as chi2_dist

    u = np.atleast_2d(np.asarray(u, dtype=float))
    rows, size = u.shape
    which = np.minimum((u * bins).astype(np.int64), bins - 1)
    counts = np.bincount((which + np.arange(rows)[:, None] * bins).ravel(), minlength=rows * bins)
    counts = counts.reshape(rows, bins)
    expected = size / bins
    statistic = ((counts - expected) ** 2 / expected).sum(axis=1)
    lower, upper = uniform_band(size, float(prob))
    ecdf = ecdf_at_points(u)
    outside = ((ecdf < lower) | (ecdf > upper)).sum(axis=1)
    return {"chi2": statistic, "chi2_p": chi2_dist.sf(statistic, bins - 1), "outside": outside}


def band_outside(u: np.ndarray, prob: float) -> int:
    """At how many of :data:`ECDF_POINTS` the ECDF of ``u`` (values in (0, 1)) leaves the ``prob`` band."""
    u = np.asarray(u, dtype=float)
    lower, upper = uniform_band(u.size, float(prob))
    ecdf = ecdf_at_points(u)[0]
    return int(((ecdf < lower) | (ecdf > upper)).sum())


def uniformity(
    rank_values: Sequence[int],
    n: Sequence[int] | int,
    bins: int = 10,
    prob: float = 0.95,
    jitter: np.ndarray | None = None,
) -> dict[str, Any]:
    """Are the ranks uniform? A chi-square test on ``bins`` equal bins of the randomized ranks, and their
    ECDF against the ``prob`` simultaneous band for uniform values (ArviZ).

    Ranks r on 0..n are randomized within their tie, (r + U)/(n + 1) (:func:`randomized_ranks`; the
    module docstring says why), with ``jitter`` the U of each rank (:func:`rank_jitter` for records;
    default: a fixed stream, so that a call is reproducible). The chi-square test is the one in Talts
    et al.; the band (Säilynoja et al. 2022) does not depend on a choice of bins and is the one the
    ECDF-difference plots show. ``uniform`` is the band's verdict.
    """
    r = np.asarray(rank_values, dtype=float)
    if r.size < bins:
        raise ValueError(f"{r.size} ranks are too few for {bins} bins")
    if jitter is None:
        jitter = np.random.default_rng(20180607).random(r.size)
    return {"simulations": int(r.size), **uniformity_row(randomized_ranks(r, n, jitter), bins, prob)}


def uniformity_row(u: np.ndarray, bins: int, prob: float) -> dict[str, Any]:
    """The uniformity columns of one (quantity, subset) row: chi-square and the simultaneous ECDF band."""
    tests = uniformity_tests(u, bins, prob)
    outside = int(tests["outside"][0])
    return {
        "chi2": float(tests["chi2"][0]),
        "chi2_p": float(tests["chi2_p"][0]),
        "bins": int(bins),
        "ecdf_points_outside_band": outside,
        "band_prob": float(prob),
        "uniform": bool(outside == 0),
    }


def coverage(u: np.ndarray, levels: Sequence[float] = COVERAGE_LEVELS) -> dict[str, float]:
    """How often the central posterior interval of each level covers the truth, from the randomized
    ranks ``u``: the truth is inside the central ``level`` interval when |u - 1/2| < level/2, which
    happens with probability exactly ``level`` under the null. Each share comes with its 95%
    Clopper-Pearson interval (``coverage_<pct>``, ``coverage_<pct>_lo``, ``coverage_<pct>_hi``)."""
    from scipy.stats import beta

    u = np.asarray(u, dtype=float)
    out: dict[str, float] = {}
    for level in levels:
        key = f"coverage_{round(100 * level)}"
        hits, size = int((np.abs(u - 0.5) < level / 2).sum()), int(u.size)
        out[key] = hits / size if size else float("nan")
        out[f"{key}_lo"] = float(beta.ppf(0.025, hits, size - hits + 1)) if hits > 0 else 0.0
        out[f"{key}_hi"] = float(beta.ppf(0.975, hits + 1, size - hits)) if hits < size else 1.0
    return out


def data_averaged(fits: Any, parameter: str) -> dict[str, float]:
    """The data-averaged posterior against the prior (Modrák et al. 2023) for one parameter.

    If the computation is right, averaging the posterior over data simulated from the prior gives the
    prior back. Its mean is tested paired with the truths: d_i = E[theta | y_i] - theta_i has mean 0
    for every simulation (and within any subset of fits chosen by the data or the sampler), so
    ``dap_z`` = mean(d) / (sd(d) / sqrt(N)) is approximately standard normal. The data-averaged sd,
    sqrt(mean(posterior variance) + variance(posterior means)), is shown beside the truths' sd
    (``dap_sd_ratio``, about 1 over all fits). NaN where the records hold no posterior means
    (records of an older version, or the log-likelihood, which has no prior).
    """
    names = (f"post_mean_{parameter}", f"post_sd_{parameter}", f"true_{parameter}")
    nan = {"prior_mean": math.nan, "dap_mean": math.nan, "dap_z": math.nan, "prior_sd": math.nan}
    nan |= {"dap_sd": math.nan, "dap_sd_ratio": math.nan}
    if not all(name in fits for name in names):
        return nan
    frame = fits[list(names)].astype(float).dropna()
    if len(frame) < 3:
        return nan
    mean, sd, truth = (frame[name].to_numpy() for name in names)
    d = mean - truth
    spread = float(np.std(d, ddof=1))
    dap_sd = float(np.sqrt(np.mean(sd**2) + np.var(mean, ddof=1)))
    prior_sd = float(np.std(truth, ddof=1))
    return {
        "prior_mean": float(np.mean(truth)),
        "dap_mean": float(np.mean(mean)),
        "dap_z": float(np.mean(d) / (spread / math.sqrt(d.size))) if spread > 0 else math.nan,
        "prior_sd": prior_sd,
        "dap_sd": dap_sd,
        "dap_sd_ratio": dap_sd / prior_sd if prior_sd > 0 else math.nan,
    }


def dap_threshold(parameters: int = len(PARAMETERS), level: float = 0.05) -> float:
    """|dap_z| above which a data-averaged mean departs from the prior's: two-sided, Bonferroni over
    ``parameters``, family-wise ``level``."""
    from scipy.stats import norm

    return float(norm.isf(level / (2 * max(int(parameters), 1))))


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
        """Every setting that decides a record (not the threads) for the store's key; a form with a rule
        (partial) adds it (:func:`funnel.forms.rule_key`)."""
        from .forms import rule_key

        fit = {k: v for k, v in asdict(self.fit).items() if k != "threads"}
        return {
            "dataset": self.dataset,
            **fit,
            **rule_key(self.fit.model),
            "rank_draws": self.rank_draws,
            "thin": self.thin,
        }


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
    track = data.groups.index(str(data.track_group))
    record |= ranks(idata.posterior, truth, y, track, thin, settings.rank_draws, simulator.loglik)
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
        self.store.put(f"sim{i}", self.keys[i], ".json", lambda path: write_json(path, record, undefined_as_null=True))
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
        write_json(self.records[i], record, undefined_as_null=True)
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


def nonconverged(fits: Any) -> Any:
    """Which fits that ran did not converge: R-hat above :data:`RHAT_MAX` (or not computable)."""
    import pandas as pd

    if "rhat_max" not in fits:
        return pd.Series(False, index=fits.index)
    rhat = pd.to_numeric(fits["rhat_max"], errors="coerce")
    return rhat.isna() | (rhat > RHAT_MAX)


def calibration(records: Any, bins: int = 10, prob: float | None = None) -> Any:
    """Per (dataset, sampler, model, quantity, subset): the uniformity of the randomized ranks
    (:func:`uniformity`), the coverage of central intervals (:func:`coverage`) and the data-averaged
    posterior against the prior (:func:`data_averaged`).

    Subsets: every fit that ran (``all``), the fits that diverged and those that
    did not. A subset with fewer fits than ``bins`` gets a row without a test.
    ``prob`` (default :func:`family_prob`) is the simultaneous band's probability.
    Each row also counts the group's failed fits (``failed``, ``failed_share`` of ``total``)
    and the subset's fits that did not converge (``nonconverged``).
    """
    import pandas as pd

    prob = family_prob() if prob is None else prob
    rows = []
    for (dataset, sampler, model), group in records.groupby(["dataset", "sampler", "model"], sort=True):
        ok = group[group["status"] == "ok"]
        diverged = ok["diverged"].astype(bool)
        subsets = {"all": ok, "diverged": ok[diverged], "not_diverged": ok[~diverged]}
        failed = int((group["status"] != "ok").sum())
        for quantity in QUANTITIES:
            for subset, part in subsets.items():
                row: dict[str, Any] = {
                    "dataset": dataset,
                    "sampler": sampler,
                    "model": model,
                    "quantity": quantity,
                    "subset": subset,
                    "simulations": int(len(part)),
                    "failed": failed,
                    "total": int(len(group)),
                    "failed_share": failed / len(group) if len(group) else math.nan,
                    "nonconverged": int(nonconverged(part).sum()),
                }
                if len(part) >= bins:
                    u = record_ranks(part, quantity)
                    row |= uniformity_row(u, bins, prob)
                    row |= coverage(u)
                    row |= data_averaged(part, quantity) if quantity in PARAMETERS else data_averaged(part[:0], "")
                rows.append(row)
    return pd.DataFrame(rows)


def _flagged(rows: Any, column: str, bad: Callable[[Any], Any]) -> list[str]:
    if column not in rows:
        return []
    tested = rows[rows[column].notna()]
    return [str(q) for q in tested.loc[bad(tested[column]), "quantity"]]


def conclusion(records: Any, table: Any, max_failed_share: float = MAX_FAILED_SHARE) -> dict[str, Any]:
    """The campaign's outcome per (sampler, model) and a one-line conclusion for the report's index.

    A form is "calibrated" when every quantity's ranks are uniform among the fits that ran and at
    most ``max_failed_share`` of its fits failed; with more failures it is "inconclusive", whatever
    the ranks of the fits that ran say (and they are reported beside it). The share of fits that did
    not converge and the data-averaged posterior's departures from the prior are reported too.
    """
    if "uniform" not in table:  # no subset had enough fits to test
        table = table.assign(uniform=np.nan)
    threshold = dap_threshold()
    groups = []
    for (sampler, model), part in table[table["subset"] == "all"].groupby(["sampler", "model"], sort=True):
        recs = records[(records["sampler"] == sampler) & (records["model"] == model)]
        ok = recs[recs["status"] == "ok"]
        tested = part[part["uniform"].notna()]
        bad = [str(q) for q in tested.loc[~tested["uniform"].astype(bool), "quantity"]]
        clean = table[(table["sampler"] == sampler) & (table["model"] == model) & (table["subset"] == "not_diverged")]
        clean_tested = clean[clean["uniform"].notna()]
        clean_bad = [str(q) for q in clean_tested.loc[~clean_tested["uniform"].astype(bool), "quantity"]]
        failed = int((recs["status"] != "ok").sum())
        failed_share = failed / len(recs) if len(recs) else math.nan
        inconclusive = bool(len(tested) > 0 and failed_share > max_failed_share)
        coverage_rows = part.set_index("quantity") if "coverage_50" in part else None
        groups.append(
            {
                "sampler": str(sampler),
                "model": str(model),
                "simulations": int(len(recs)),
                "failed": failed,
                "failed_share": failed_share,
                "max_failed_share": float(max_failed_share),
                "nonconverged": int(nonconverged(ok).sum()),
                "nonconverged_share": float(nonconverged(ok).mean()) if len(ok) else float("nan"),
                "diverged_share": float(ok["diverged"].astype(bool).mean()) if len(ok) else float("nan"),
                "tested": bool(len(tested) > 0),
                "inconclusive": inconclusive,
                "calibrated": bool(len(tested) > 0 and not bad and not inconclusive),
                "miscalibrated": bad,
                "miscalibrated_without_divergent_fits": clean_bad if len(clean_tested) else None,
                "data_averaged_departs": _flagged(part, "dap_z", lambda z: z.abs() > threshold),
                "coverage_sigma_b": (
                    {
                        f"{round(100 * lv)}%": float(coverage_rows.loc["sigma_b", f"coverage_{round(100 * lv)}"])
                        for lv in COVERAGE_LEVELS
                    }
                    if coverage_rows is not None
                    and "sigma_b" in coverage_rows.index
                    and np.isfinite(coverage_rows.loc["sigma_b", "coverage_50"])
                    else None
                ),
                "median_sampling_seconds": float(ok["sampling_seconds"].median()) if len(ok) else float("nan"),
            }
        )
    parts = []
    for g in groups:
        form = f"{FORM_NAMES.get(g['model'], g['model'])} ({g['sampler']})"
        if not g["tested"]:
            text = f"{form}: too few fits to test"
        else:
            if g["inconclusive"]:
                text = (
                    f"{form} inconclusive: {g['failed_share']:.0%} failed ({g['failed']} failed of "
                    f"{g['simulations']}, more than the {g['max_failed_share']:.0%} allowed); among the fits that ran, "
                )
                lead = ""
            else:
                text, lead = "", f"{form} "
            if not g["miscalibrated"]:
                text += f"{lead}calibrated in all {len(QUANTITIES)} quantities"
            else:
                text += f"{lead}miscalibrated in {', '.join(g['miscalibrated'])}"
                if g["miscalibrated_without_divergent_fits"] == []:
                    text += (
                        " (calibrated once the fits that diverged are set aside: the divergences are where it fails)"
                    )
            if g["data_averaged_departs"]:
                text += f"; data-averaged posterior departs from the prior in {', '.join(g['data_averaged_departs'])}"
        text += f"; {g['diverged_share']:.0%} of fits diverged"
        if g["nonconverged"]:
            text += f", {g['nonconverged_share']:.0%} did not converge (R-hat > {RHAT_MAX})"
        if g["failed"] and not g["inconclusive"]:
            text += f", {g['failed']} failed ({g['failed_share']:.1%})"
        parts.append(text)
    dataset = str(records["dataset"].iloc[0])
    simulations = max((g["simulations"] for g in groups), default=0)
    line = f"SBC, {simulations} simulations on {dataset}'s design: " + "; ".join(parts) + "."
    return {"dataset": dataset, "simulations": simulations, "groups": groups, "line": line}


def _cell(value: Any, fmt: str) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(value) else format(value, fmt)


def calibration_markdown(table: Any, outcome: Mapping[str, Any]) -> str:
    """The campaign's tables as Markdown: the conclusion, the fits that failed or did not converge,
    then the tests of every quantity, the coverage of central intervals and the data-averaged posterior."""
    lines = [f"# Simulation-based calibration: {outcome['dataset']}", "", outcome["line"], ""]
    probs = table["band_prob"].dropna() if "band_prob" in table else []
    prob = float(probs.iloc[0]) if len(probs) else family_prob()
    lines += [
        "| sampler | model | simulations | failed | fits that ran without converging (R-hat > "
        f"{RHAT_MAX}) | diverged | conclusion |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in outcome["groups"]:
        verdict = (
            "too few fits"
            if not g["tested"]
            else "inconclusive"
            if g["inconclusive"]
            else "calibrated"
            if g["calibrated"]
            else "miscalibrated"
        )
        lines.append(
            f"| {g['sampler']} | {g['model']} | {g['simulations']} | {g['failed']} ({_cell(g['failed_share'], '.1%')}) | "
            f"{g['nonconverged']} ({_cell(g['nonconverged_share'], '.1%')}) | {_cell(g['diverged_share'], '.1%')} | "
            f"{verdict} |"
        )
    lines += [
        "",
        f"A form is called calibrated only when at most {MAX_FAILED_SHARE:.0%} of its fits failed; the quantities "
        "are tested among the fits that ran. Ranks are randomized within their ties, (r + U)/(n + 1), which is "
        "exactly uniform under the null whatever the number n of ranked draws (Talts et al. 2018), and tested by "
        "their ECDF against a simultaneous band "
        f"(Säilynoja et al. 2022, computed by ArviZ) at {prob:.4f} per quantity "
        f"(a family-wise 95% over {len(QUANTITIES)} quantities), and by a chi-square test on equal bins. "
        "Coverage: the share of fits whose central 50/80/95% posterior interval holds the truth "
        "(95% Clopper-Pearson interval in brackets). Data-averaged posterior (Modrák et al. 2023): z of the "
        "mean of E[θ | y] − θ (|z| above "
        f"{dap_threshold():.2f} departs from the prior, Bonferroni over {len(PARAMETERS)} parameters) and the "
        "data-averaged posterior sd over the prior's.",
        "",
        "| sampler | model | quantity | subset | fits | chi2 p | ECDF points outside band | uniform "
        "| 50% | 80% | 95% | data-averaged z | sd ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        tested = isinstance(getattr(row, "uniform", None), bool | np.bool_)
        cells = f"| {row.sampler} | {row.model} | {row.quantity} | {row.subset} | {row.simulations} | "
        if not tested:
            lines.append(cells + "- | - | too few fits | - | - | - | - | - |")
            continue
        cover = []
        for level in COVERAGE_LEVELS:
            key = f"coverage_{round(100 * level)}"
            cover.append(
                f"{_cell(getattr(row, key), '.2f')} [{_cell(getattr(row, key + '_lo'), '.2f')}, "
                f"{_cell(getattr(row, key + '_hi'), '.2f')}]"
            )
        lines.append(
            cells
            + f"{row.chi2_p:.3g} | {int(row.ecdf_points_outside_band)} | {'yes' if row.uniform else 'NO'} | "
            + " | ".join(cover)
            + f" | {_cell(getattr(row, 'dap_z', None), '.2f')} | {_cell(getattr(row, 'dap_sd_ratio', None), '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def null_rejection_rates(
    simulations: int,
    rank_n: int | Sequence[int],
    campaigns: int = 200,
    bins: int = 10,
    prob: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """How often the tests reject exactly uniform ranks: ``campaigns`` synthetic campaigns of
    ``simulations`` fits, each rank uniform on 0..n with n = ``rank_n`` (an int) or drawn per fit
    from ``rank_n`` (a sequence: fits that kept different numbers of draws), randomized and tested as
    :func:`calibration` does. Returns the band's and the chi-square's (p < 1 - ``prob``) rejection
    rates, to compare with 1 - ``prob``."""
    rng = np.random.default_rng(seed)
    shape = (int(campaigns), int(simulations))
    if isinstance(rank_n, int | np.integer):
        n = np.full(shape, int(rank_n))
    else:
        n = rng.choice(np.asarray(rank_n, dtype=int), size=shape)
    r = np.floor(rng.random(shape) * (n + 1))
    u = randomized_ranks(r, n, rng.random(shape))
    tests = uniformity_tests(u, bins, prob)
    return {
        "band": float(np.mean(tests["outside"] > 0)),
        "chi2": float(np.mean(tests["chi2_p"] < 1.0 - prob)),
        "nominal": 1.0 - float(prob),
        "campaigns": int(campaigns),
    }
