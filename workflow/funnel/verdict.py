"""The verdict: which parameterization to use on a dataset, decided from its fits.

It reads the per-seed table ``results/<dataset>/tables/fits.csv`` (one row per
sampler × form × seed, the record of :mod:`funnel.records`) and, when the reference
experiment ran, the reference run's summary (``results/<dataset>/reference/reference.json``:
``estimands`` → name → ``{mean, mcse}``, and the run's own ``diagnostics``). Nothing in it is written by hand.

The rule is stated once, in :mod:`funnel.verdict_rule` (its parameters and outcomes), and worded in
:mod:`funnel.verdict_text` (:func:`~funnel.verdict_text.rule_markdown`); this module applies it:
the statistical tests, the decision, and the typed result (:class:`Verdict`), whose JSON round trip
(:meth:`Verdict.to_dict`, :meth:`Verdict.from_dict`) is generated from its dataclass fields.

The tests, once:

- **Checks.** A seed is clean when it passes every check (:data:`funnel.records.CHECKS`). A form fails its
  checks when its clean seeds are significantly fewer than ``pass_share`` of its seeds (one-sided exact
  binomial test, p < ``checks_alpha``), or none is clean. A sound form's occasional unclean seed (a per-seed
  pass probability of 0.75 gives 3 of 8 failing seeds often enough) does not fail it; a funnel's does.
- **Bias against the reference** (when it ran and passes its own checks: R-hat, ESS, divergences, E-BFMI as
  ArviZ computed them for its record). For every group-level scale σ (σ_b and σ_a) and each of E[σ],
  E[log σ] and P(σ < neck) the fits table carries, two tests over the seeds that ran (unclean seeds
  included: a biased seed is most often an unclean one):

  * the **t test** of the seeds' mean, t = (mean − ref) / √(s²/n + MCSE_ref²) on n − 1 degrees of
    freedom: sees a bias that every seed shares, smaller than one fit's noise;
  * the **χ² test** of the seeds' z-scores, z_i = (est_i − ref) / √(MCSE_i² + MCSE_ref²),
    Σ z_i² against χ²_n: sees a minority of seeds that are far off, which the t test cannot (with k of n
    seeds off by any amount, t ≤ √(k(n−1)/(n−k))). Σz² rather than max |z| with Bonferroni: it adds up
    evidence from every off seed (3 seeds at z = 3 give Σz² = 27, p < 0.001 on 8, where max |z| = 3 is
    not significant at 0.01/8), and is as sensitive to one seed far off. Both use each fit's MCSE as
    honest; an MCSE that understates the error (a sampler stuck in a funnel) inflates z, and the test
    then flags what the fit's own diagnostics also doubt.

  A form fails when any of its m tests, over every sampler, has p < ``alpha`` / m (Bonferroni; equivalently
  Holm's procedure, whose first step decides whether anything is rejected): the family-wise false-alarm rate
  of a form's bias tests is at most ``alpha``, the family being the form's tests with every sampler because a
  form is recommended only when it passes with each. A reference failing its checks makes these tests **unavailable**
  (worded so, never "passed"), and the verdict falls back to the test between the forms.
- **Without a (usable) reference**: Welch's t test of E[σ_b] between the two forms, per sampler, at
  ``alpha``; a difference is charged to the form that fails its checks, and when both pass them neither
  passes (the reference run would say which is off).
- **Speed.** Each seed's bulk ESS per second of sampling of its slowest-mixing group-level scale (the smaller
  of σ_a's and σ_b's: a form is as slow as its worst-mixing scale), its median over each form's *clean* seeds
  (an unclean seed's ESS is not to be trusted, and a form is not faster for its failures), the ratio of the
  fastest passing form to the runner-up (with the two whole forms: non-centered ÷ centered), and a
  percentile bootstrap interval of it (``bootstrap`` resamples of each form's clean seeds with replacement,
  from the fixed ``bootstrap_seed``: the same table gives the same interval). One form is preferred only
  when the whole interval lies beyond the ``ess_factor`` band; an interval that reaches into the band is
  "either".

Why seeds: each seed's posterior mean of σ_b is one draw from the sampling distribution of that
sampler × form's estimator, so the mean of n seeds is √n times less noisy than one fit, and a bias
smaller than one fit's noise, which per-fit z-scores miss, shows across seeds; while a few seeds far
off, which the mean dilutes, show in the z-scores.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import records as R
from . import verdict_text as words
from .advice import Remedy
from .bias import z_score
from .io import null_for_non_finite
from .verdict_rule import ALPHA, CHECKS_ALPHA, EITHER, ESS_FACTOR, FORMS, NEITHER, PAIR, PASS_SHARE, RULE, SPEED, Rule


# ------------------------------------------------------------------ the pieces
@dataclass(frozen=True)
class BiasTest:
    """A t test of the seeds' estimates of one estimand: against the reference ('reference') or between the
    forms ('between forms', E[σ_b] only)."""

    kind: str
    t: float
    p: float
    df: float
    n: int  # seeds in the test (between forms: both forms' together)
    estimate: float  # mean of the seed estimates (between forms: centered minus non-centered)
    target: float  # the reference mean (between forms: 0)
    se: float
    estimand: str = R.SIGMA_B

    def significant(self, alpha: float = ALPHA) -> bool:
        return bool(self.p < alpha)


@dataclass(frozen=True)
class ZTest:
    """The seeds' per-fit z-scores of one estimand against the reference, combined: Σz² against χ²_n."""

    estimand: str
    n: int  # seeds with a defined z
    chi2: float  # Σ z²
    p: float
    max_abs_z: float
    off: int  # seeds with |z| ≥ 3

    def significant(self, alpha: float = ALPHA) -> bool:
        return bool(self.p < alpha)


@dataclass(frozen=True)
class EstimandTests:
    """Both bias tests of one estimand (either may be None: too few seeds with a value)."""

    estimand: str
    t: BiasTest | None
    z: ZTest | None


@dataclass(frozen=True)
class ReferenceChecks:
    """The reference run's own checks (its record's R-hat, ESS, divergences and E-BFMI, computed by ArviZ)."""

    sampler: str
    model: str
    chains: int
    draws: int
    divergences: float
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    bfmi_min: float
    ess_bulk_sigma_b: float
    failed: list[str]  # the names of the checks it fails; [] when it passes
    passes: bool


@dataclass(frozen=True)
class FormStats:
    """One sampler × form over its seeds, and whether it passes."""

    sampler: str
    model: str
    seeds: int
    failed: int  # seeds whose fit failed (status other than 'ok')
    passing: int  # seeds passing every check
    share_pass: float
    median_divergences: float
    median_ess_bulk_sigma_b: float
    median_ess_per_s: float  # the speed (SPEED: the slowest scale's ESS/s) over the clean seeds (nan when none is)
    mean_sigma_b: float  # mean over seeds of E[σ_b]
    sd_sigma_b: float  # standard deviation over seeds of E[σ_b]
    failed_checks: dict[str, int]  # check -> seeds (that ran) failing it
    median_abs_z: float  # median over seeds of the per-fit |z| against the reference (nan without one)
    bias: BiasTest | None  # the t test of E[σ_b] against the reference (None without a usable one)
    passes: bool
    reasons: list[str] = field(default_factory=list)
    checks_p: float = math.nan  # one-sided binomial p of this few clean seeds at pass_share
    bias_tests: list[EstimandTests] = field(default_factory=list)  # every estimand's tests (with a reference)
    bias_level: float = math.nan  # the level of each of them: alpha / bias_family (Bonferroni)
    bias_family: int = 0  # the form's bias tests over every sampler: its family-wise false-alarm rate is ≤ alpha
    median_ess_per_s_ran: float = math.nan  # over every seed that ran (for reading; the rule uses clean seeds)
    scale: str = R.SIGMA_B  # the group-level scale the *_sigma_b fields describe (Verdict.scale)


@dataclass(frozen=True)
class SamplerVerdict:
    sampler: str
    recommendation: str
    reason: str
    ratio_ess: float  # median ESS_bulk(σ_b), non-centered ÷ centered
    ratio_ess_per_s: float  # median speed (SPEED) over clean seeds, compared[1] ÷ compared[0] (a form without any:
    # over the seeds that ran, for reading only)
    between: BiasTest | None  # Welch's test between the forms (no usable reference run)
    ratio_interval: list[float] = field(default_factory=lambda: [math.nan, math.nan])  # bootstrap, rule.interval
    # The two forms the ratios compare (second ÷ first, in the registry's order): the fastest passing form and
    # its runner-up. Left out of the JSON when it is the two whole forms (the verdict of two forms is unchanged).
    compared: list[str] = field(default_factory=lambda: list(PAIR))
    between_tests: int = 1  # the scales Welch's test compared, each at alpha / between_tests; `between` the smallest p


@dataclass(frozen=True)
class Verdict:
    dataset: str
    recommendation: str
    reason: str  # one sentence
    failures: list[str]  # what failed, one line per sampler × form that does not pass
    rule: dict[str, Any]  # the rule's parameters (verdict_rule.Rule) and its text
    reference: dict[str, float] | None  # the reference's E[σ_b] {mean, mcse}
    forms: list[FormStats]
    samplers: list[SamplerVerdict]
    ratio_ess_per_s: float  # geometric mean over samplers of the per-sampler ratios
    caveats: list[str] = field(default_factory=list)  # seeds of the recommended form(s) that fail a check
    experiments: list[str] = field(default_factory=list)
    advice: list[Remedy] = field(default_factory=list)  # what to try next (funnel.advice), strongest first
    ratio_interval: list[float] = field(default_factory=lambda: [math.nan, math.nan])  # of ratio_ess_per_s
    reference_checks: ReferenceChecks | None = None  # None: no reference, or one without its diagnostics
    bias_against_reference: str = "no reference"  # 'tested', 'unavailable' (reference fails its checks), 'no reference'
    compared: list[str] = field(default_factory=lambda: list(PAIR))  # the overall ratio's forms (SamplerVerdict)
    # The group-level scale whose ESS and mean the forms' *_sigma_b fields hold: σ_b for the shorthand, for a formula
    # model its slowest-mixing scale (headline_scale); the speed and the checks cover every scale either way.
    scale: str = R.SIGMA_B

    def form(self, sampler: str, model: str) -> FormStats:
        for stats in self.forms:
            if (stats.sampler, stats.model) == (sampler, model):
                return stats
        raise KeyError((sampler, model))

    def sampler(self, name: str) -> SamplerVerdict:
        for verdict in self.samplers:
            if verdict.sampler == name:
                return verdict
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (NaN and infinities as None); the fields added for more forms and for
        formula models (:data:`_OMITTED`) only where they differ from the shorthand's two whole forms' (so that such
        a verdict reads as it always did)."""
        out = null_for_non_finite(asdict(self))
        for part in (out, *out["samplers"], *out["forms"]):
            for key, default in _OMITTED.items():
                if key in part and part[key] == default:
                    del part[key]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The verdict again from :meth:`to_dict`'s output (JSON's None back to NaN where a field is a float)."""
        return _from_json(cls, data)


#: Fields left out of the JSON at these values (Verdict.to_dict).
_OMITTED = {"compared": list(PAIR), "scale": R.SIGMA_B, "between_tests": 1}


# ------------------------------------------------------------------ JSON, generated from the fields
def _from_json(kind: Any, value: Any) -> Any:
    """``value`` (read from JSON) as the annotated type ``kind``: None back to NaN for floats, dataclasses rebuilt
    (a field missing from an older verdict takes its default)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (kind,) = [option for option in options if option is not type(None)]
        return _from_json(kind, value)
    if kind is float:
        return math.nan if value is None else float(value)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(
            **{f.name: _from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(kind) if f.name in value}
        )
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_from_json(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: _from_json(item, v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ reading
def read_reference(path: str | Path | None) -> dict[str, Any] | None:
    """The reference run's summary ({'estimands': name -> {'mean', 'mcse'}, 'diagnostics': its record}),
    or None without a reference."""
    if not path:
        return None
    import json

    summary = json.loads(Path(path).read_text())
    estimands = {
        name: {"mean": float(v["mean"]), "mcse": math.nan if v.get("mcse") is None else float(v["mcse"])}
        for name, v in summary["estimands"].items()
        if v.get("mean") is not None
    }
    return {"estimands": estimands, "diagnostics": summary.get("diagnostics")}


def _reference_parts(
    reference: Mapping[str, Any] | None,
) -> tuple[dict[str, dict[str, float]] | None, Mapping[str, Any] | None]:
    """A reference as (estimands, diagnostics): a summary as :func:`read_reference` gives it, or a bare
    ``{'mean', 'mcse'}`` of E[σ_b] (no diagnostics: its checks are the caller's word)."""
    if reference is None:
        return None, None
    if "estimands" in reference:
        return {k: dict(v) for k, v in reference["estimands"].items()}, reference.get("diagnostics")
    return {R.SIGMA_B: {"mean": float(reference["mean"]), "mcse": float(reference.get("mcse", 0.0) or 0.0)}}, None


def reference_checks(diagnostics: Mapping[str, Any] | None) -> ReferenceChecks | None:
    """The reference run's checks from its record (the usual pass marks, :data:`funnel.records.DEFAULT_THRESHOLDS`);
    None without a record. A record missing a diagnostic fails that check."""
    if diagnostics is None:
        return None

    def number(key: str) -> float:
        value = diagnostics.get(key)
        try:
            return float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            return math.nan

    values = {k: number(k) for k in ("divergences", "rhat_max", "ess_bulk_min", "ess_tail_min", "bfmi_min")}
    failed = []
    for check in R.CHECKS:
        try:
            ok = all(math.isfinite(v) for v in values.values()) and check.passes(values, R.DEFAULT_THRESHOLDS)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            failed.append(check.name)
    return ReferenceChecks(
        sampler=str(diagnostics.get("sampler", "")),
        model=str(diagnostics.get("model", "")),
        chains=int(number("chains")) if math.isfinite(number("chains")) else 0,
        draws=int(number("draws")) if math.isfinite(number("draws")) else 0,
        ess_bulk_sigma_b=number("ess_bulk_sigma_b"),
        failed=failed,
        passes=not failed,
        **values,
    )


# ------------------------------------------------------------------ the bias tests
def t_against_reference(
    estimates: Sequence[float], reference: Mapping[str, float], estimand: str = R.SIGMA_B
) -> BiasTest | None:
    """One-sample t of the seed estimates against the reference mean, its MCSE folded into the standard error.

    ``t = (mean − ref) / sqrt(s²/n + mcse_ref²)`` on ``n − 1`` degrees of freedom;
    None with fewer than two estimates. An undefined reference MCSE (constant draws) counts as 0.
    """
    from scipy import stats

    x = np.asarray([v for v in estimates if np.isfinite(v)], dtype=float)
    n = len(x)
    if n < 2:
        return None
    mcse = float(reference.get("mcse", 0.0) or 0.0)
    ref, mcse = float(reference["mean"]), mcse if math.isfinite(mcse) else 0.0
    mean = float(x.mean())
    se = math.sqrt(float(x.var(ddof=1)) / n + mcse**2)
    diff = mean - ref
    if se == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        t = diff / se
    df = n - 1
    p = float(2 * stats.t.sf(abs(t), df))
    return BiasTest("reference", float(t), p, float(df), n, mean, ref, se, estimand)


def z_against_reference(
    estimates: Sequence[float], mcses: Sequence[float], reference: Mapping[str, float], estimand: str = R.SIGMA_B
) -> ZTest | None:
    """Σ z_i² of the seeds' z-scores (:func:`funnel.bias.z_score`, both MCSEs) against χ²_n; None with fewer
    than two seeds whose z is defined (an estimate or MCSE missing or undefined leaves its seed out)."""
    from scipy import stats

    ref = {"mean": float(reference["mean"]), "mcse": float(reference.get("mcse", 0.0) or 0.0)}
    if not math.isfinite(ref["mcse"]):
        ref["mcse"] = 0.0
    z = []
    for est, mcse in zip(estimates, mcses):
        if est is None or mcse is None or not (np.isfinite(est) and np.isfinite(mcse)):
            continue
        value = z_score({"mean": float(est), "mcse": float(mcse)}, ref)
        if not math.isnan(value):
            z.append(value)
    if len(z) < 2:
        return None
    z_arr = np.asarray(z, dtype=float)
    chi2 = float(np.sum(z_arr**2))
    p = float(stats.chi2.sf(chi2, len(z))) if math.isfinite(chi2) else 0.0
    return ZTest(estimand, len(z), chi2, p, float(np.max(np.abs(z_arr))), int(np.sum(np.abs(z_arr) >= 3)))


def welch_between_forms(
    centered: Sequence[float], noncentered: Sequence[float], estimand: str = R.SIGMA_B
) -> BiasTest | None:
    """Welch's t test (unequal variances) of centered against non-centered seed estimates of ``estimand``; None if
    either has < 2."""
    from scipy import stats

    c = np.asarray([v for v in centered if np.isfinite(v)], dtype=float)
    nc = np.asarray([v for v in noncentered if np.isfinite(v)], dtype=float)
    if len(c) < 2 or len(nc) < 2:
        return None
    vc, vnc = float(c.var(ddof=1)) / len(c), float(nc.var(ddof=1)) / len(nc)
    se = math.sqrt(vc + vnc)
    diff = float(c.mean() - nc.mean())
    if se == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        df, p = float(len(c) + len(nc) - 2), (1.0 if diff == 0 else 0.0)
    else:
        result = stats.ttest_ind(c, nc, equal_var=False)
        t, p = float(result.statistic), float(result.pvalue)
        df = (vc + vnc) ** 2 / (vc**2 / (len(c) - 1) + vnc**2 / (len(nc) - 1))
    return BiasTest("between forms", t, p, float(df), len(c) + len(nc), diff, 0.0, se, estimand)


def _estimate_columns(fits: pd.DataFrame, estimand: str) -> tuple[str, str] | None:
    """The fits table's (estimate, MCSE) columns of an estimand; E[σ_b]'s familiar names when the est_ ones are absent."""
    est, mcse = R.est_column(estimand), R.mcse_column(estimand)
    if est in fits.columns and mcse in fits.columns:
        return est, mcse
    if estimand == R.SIGMA_B and "mean_sigma_b" in fits.columns and "mcse_mean_sigma_b" in fits.columns:
        return "mean_sigma_b", "mcse_mean_sigma_b"
    return None


def bias_tests(ran: pd.DataFrame, estimands: Mapping[str, Mapping[str, float]]) -> list[EstimandTests]:
    """Both tests of every group-level scale estimand (:data:`funnel.records.ESTIMANDS`) that the reference and
    the table both have, over the seeds that ran."""
    out = []
    for name in R.ESTIMANDS:
        columns = _estimate_columns(ran, name)
        if name not in estimands or columns is None:
            continue
        est = pd.to_numeric(ran[columns[0]], errors="coerce").to_numpy(dtype=float)
        mcse = pd.to_numeric(ran[columns[1]], errors="coerce").to_numpy(dtype=float)
        ref = estimands[name]
        out.append(
            EstimandTests(name, t_against_reference(list(est), ref, name), z_against_reference(est, mcse, ref, name))
        )
    return out


def _tests_of(tests: Sequence[EstimandTests]) -> list[BiasTest | ZTest]:
    return [test for pair in tests for test in (pair.t, pair.z) if test is not None]


# ------------------------------------------------------------------ the ESS/s ratio and its interval
def _clean_rates(group: pd.DataFrame) -> np.ndarray:
    """The speed (:data:`SPEED`) of the seeds that pass every check (finite and positive)."""
    rates = group.loc[group[_CLEAN], SPEED].to_numpy(float)
    return rates[np.isfinite(rates) & (rates > 0)]


def bootstrap_ratio(pairs: Sequence[tuple[np.ndarray, np.ndarray]], rule: Rule = RULE) -> list[float]:
    """Percentile bootstrap interval (level ``rule.interval``) of the geometric mean over ``pairs`` of
    median(non-centered) ÷ median(centered), each form's seeds resampled with replacement, ``rule.bootstrap``
    times from ``rule.bootstrap_seed``. One pair: the interval of that sampler's ratio. [nan, nan] when a
    pair has no value."""
    if not pairs or any(len(c) == 0 or len(nc) == 0 for c, nc in pairs):
        return [math.nan, math.nan]
    rng = np.random.default_rng(rule.bootstrap_seed)
    log_ratio = np.zeros(rule.bootstrap)
    for c, nc in pairs:
        med_c = np.median(rng.choice(c, size=(rule.bootstrap, len(c))), axis=1)
        med_nc = np.median(rng.choice(nc, size=(rule.bootstrap, len(nc))), axis=1)
        log_ratio += np.log(med_nc) - np.log(med_c)
    tail = (1 - rule.interval) / 2
    lo, hi = np.quantile(np.exp(log_ratio / len(pairs)), [tail, 1 - tail])
    return [float(lo), float(hi)]


# ------------------------------------------------------------------ the verdict
def _median(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _ratio(noncentered: float, centered: float) -> float:
    if not (np.isfinite(noncentered) and np.isfinite(centered)) or centered <= 0 or noncentered <= 0:
        return math.nan
    return noncentered / centered


def _pick(
    passing: Sequence[str],
    ratio: float,
    ess_factor: float,
    interval: Sequence[float] = (),
    pair: Sequence[str] = PAIR,
) -> str:
    """The rule's last step: which of the passing forms, given the ESS/s ratio ``pair[1]`` ÷ ``pair[0]`` of the
    fastest passing form and its runner-up (:func:`compared_pair`) and its interval (a form only when the whole
    interval lies beyond the band; the point ratio when there is no interval)."""
    if not passing:
        return NEITHER
    if len(passing) == 1:
        return passing[0]
    lo, hi = (interval[0], interval[1]) if len(interval) == 2 else (math.nan, math.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo = hi = ratio
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return EITHER
    if lo > ess_factor:
        return pair[1]
    if hi < 1 / ess_factor:
        return pair[0]
    return EITHER


def compared_pair(speeds: Mapping[str, float], candidates: Sequence[str]) -> tuple[str, str]:
    """The two forms the speed compares, in the registry's order: among ``candidates`` (the passing forms) the
    fastest and the runner-up by ``speeds`` (:data:`SPEED`; NaN last). With one candidate, it and the fastest other
    form of ``speeds`` (for reading: the speed decides nothing then); with none, the two fastest. With the two whole
    forms alone this is always (centered, noncentered)."""

    def ranked(names: Sequence[str]) -> list[str]:
        return sorted(names, key=lambda m: -speeds[m] if np.isfinite(speeds.get(m, math.nan)) else math.inf)

    top = [*ranked(candidates)[:2], *ranked([m for m in speeds if m not in candidates])][:2]
    top = [*top, *[m for m in PAIR if m not in top]][:2]
    return tuple(sorted(top, key=FORMS.index))  # type: ignore[return-value]


_RAN, _CLEAN = "_ran", "_clean"
_NUMBERS = ("divergences", "ess_bulk_sigma_b", SPEED, "mean_sigma_b", "mcse_mean_sigma_b")


def headline_scale(fits: pd.DataFrame, scales: Sequence[str]) -> str:
    """The scale a verdict's per-scale statistics describe: the one scale, else the slowest-mixing of ``scales``,
    the lowest median bulk ESS per second (``ess_bulk_<scale>_per_s``) over the fits that ran (the first scale when
    none has a value)."""
    if len(scales) == 1:
        return scales[0]
    ran = fits[R.ran_ok(fits)]
    medians = {s: _median(ran[R.per_s_column(s)]) for s in scales if R.per_s_column(s) in ran.columns}
    finite = {s: v for s, v in medians.items() if np.isfinite(v)}
    return min(finite, key=finite.__getitem__) if finite else scales[0]


def _between_forms(ok: pd.DataFrame, models: Sequence[str], scales: Sequence[str]) -> tuple[BiasTest | None, int]:
    """Welch's test between the two forms of the seeds' posterior means (``mean_<scale>``) of every scale the
    table has: the test with the smallest p, and how many scales were tested (each at alpha / that many)."""
    tests = []
    for scale in scales:
        column = f"mean_{scale}"
        if column in ok.columns:
            values = (pd.to_numeric(ok.loc[ok["model"].eq(m), column], errors="coerce").tolist() for m in models)
            tests.append(welch_between_forms(*values, estimand=scale))
    ran = [test for test in tests if test is not None]
    return (min(ran, key=lambda test: test.p) if ran else None), max(len(tests), 1)


def _prepared(fits: pd.DataFrame, scales: Sequence[str] = (R.SIGMA_B,)) -> pd.DataFrame:
    """The table read once: pass columns as booleans (:func:`funnel.records.truthy`), whether each fit ran and is
    clean, sampler and model as text, the numbers as numbers (anything else as NaN); the speed (:data:`SPEED`)
    computed from the scales' ESS and the sampling time when the table predates its column
    (:func:`funnel.records.with_scale_speeds`)."""
    out = R.with_scale_speeds(fits.copy())
    out["sampler"], out["model"] = out["sampler"].astype(str), out["model"].astype(str)
    for column in R.PASS_COLUMNS:
        if column in out.columns:
            out[column] = R.truthy(out[column])
    out[_RAN] = R.ran_ok(fits)
    out[_CLEAN] = out[_RAN] & out[R.PASS_ALL]
    numbers = [*_NUMBERS, *(c for name in R.ESTIMANDS for c in (R.est_column(name), R.mcse_column(name)))]
    numbers += [c for scale in scales for c in (R.ess_column("bulk", scale), f"mean_{scale}", R.per_s_column(scale))]
    for column in numbers:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce")
    return out


def _checks_failed(group: pd.DataFrame) -> dict[str, int]:
    """Check name -> seeds failing it (of those in ``group``)."""
    return {c.name: int((~group[c.column]).sum()) for c in R.CHECKS if c.column in group.columns}


def checks_p(passing: int, seeds: int, pass_share: float) -> float:
    """One-sided exact binomial p: the chance of at most ``passing`` clean seeds of ``seeds`` if each is clean
    with probability ``pass_share``."""
    from scipy import stats

    return float(stats.binom.cdf(passing, seeds, pass_share)) if seeds else 0.0


def _abs_z(ran: pd.DataFrame, reference: Mapping[str, float]) -> float:
    """The median over seeds of each fit's |z| of E[σ_b] against the reference (funnel.bias.z_score)."""
    columns = _estimate_columns(ran, R.SIGMA_B)
    if columns is None:
        return math.nan
    means = pd.to_numeric(ran[columns[0]], errors="coerce")
    mcses = pd.to_numeric(ran[columns[1]], errors="coerce")
    z = [abs(z_score({"mean": m, "mcse": s}, reference)) for m, s in zip(means, mcses)]
    return _median(pd.Series(z, dtype=float))


def _form_stats(
    group: pd.DataFrame,
    sampler: str,
    model: str,
    estimands: Mapping[str, Mapping[str, float]] | None,
    tests: list[EstimandTests],
    family: int,
    rule: Rule,
    scale: str = R.SIGMA_B,
) -> FormStats:
    """One sampler × form's statistics and grounds; ``tests`` its bias tests (:func:`bias_tests`), each made at
    ``rule.alpha / family``, ``family`` being the number of the form's tests over every sampler."""
    ran = group[group[_RAN]]
    passing = int(group[_CLEAN].sum())
    seeds = len(group)
    estimates = pd.to_numeric(ran[f"mean_{scale}"], errors="coerce").dropna()
    abs_z = math.nan
    if estimands is not None and len(estimates) and R.SIGMA_B in estimands:
        abs_z = _abs_z(ran, estimands[R.SIGMA_B])
    flat = _tests_of(tests)
    level = rule.alpha / family if flat and family else math.nan
    p_checks = checks_p(passing, seeds, rule.pass_share)
    failed_checks = _checks_failed(ran)
    reasons = []
    if passing == 0 or p_checks < rule.checks_alpha:
        reasons.append(
            words.checks_reason(
                passing,
                seeds,
                len(ran),
                failed_checks,
                rule.pass_share,
                words.checks_test_clause(passing, p_checks, rule),
            )
        )
    significant = [test for test in flat if test.significant(level)]
    if significant:
        reasons.append(words.bias_tests_reason(significant, family, rule.alpha))
    sigma_b = next((pair.t for pair in tests if pair.estimand == R.SIGMA_B), None)
    return FormStats(
        sampler=sampler,
        model=model,
        seeds=seeds,
        failed=int(seeds - len(ran)),
        passing=passing,
        share_pass=passing / seeds if seeds else 0.0,
        median_divergences=_median(ran["divergences"]),
        median_ess_bulk_sigma_b=_median(ran[R.ess_column("bulk", scale)]),
        median_ess_per_s=float(np.median(rates)) if len(rates := _clean_rates(group)) else math.nan,
        mean_sigma_b=float(estimates.mean()) if len(estimates) else math.nan,
        sd_sigma_b=float(estimates.std(ddof=1)) if len(estimates) > 1 else math.nan,
        failed_checks=failed_checks,
        median_abs_z=abs_z,
        bias=sigma_b,
        passes=not reasons,
        reasons=reasons,
        checks_p=p_checks,
        median_ess_per_s_ran=_median(ran[SPEED]),
        bias_tests=tests,
        bias_level=level,
        bias_family=family if flat else 0,
        scale=scale,
    )


def _passes_checks(form: FormStats, rule: Rule) -> bool:
    return form.passing > 0 and form.checks_p >= rule.checks_alpha


def _with_between_test(
    forms: dict[str, FormStats], between: BiasTest | None, rule: Rule, tests: int = 1
) -> dict[str, FormStats]:
    """Without a reference: a significant difference between forms that both pass their checks fails both (the
    smallest p of ``tests`` scales' tests, each at alpha / ``tests``)."""
    if between is None or not between.significant(rule.alpha / tests) or len(forms) != 2:
        return forms
    if not all(_passes_checks(f, rule) for f in forms.values()):
        return forms  # charged to the form that fails its checks, which fails already
    reason = words.disagreement_reason(between)
    return {m: replace(f, passes=False, reasons=[*f.reasons, reason]) for m, f in forms.items()}


def _candidates(forms: Sequence[FormStats]) -> list[str]:
    """The forms the overall verdict chooses among: those that pass with every sampler, else with some."""
    fitted = [m for m in FORMS if any(f.model == m for f in forms)]
    everywhere = [m for m in fitted if all(f.passes for f in forms if f.model == m)]
    return everywhere or [m for m in fitted if any(f.passes for f in forms if f.model == m)]


def overall_pick(
    forms: Sequence[FormStats],
    ratio: float,
    ess_factor: float = ESS_FACTOR,
    interval: Sequence[float] = (),
    pair: Sequence[str] = PAIR,
) -> str:
    """The overall recommendation: among the forms that pass with every sampler; if none does, among the
    forms that pass with at least one sampler (the verdict then names the sampler, and the advice what to
    do with the others); "neither passes" only when no form passes with any sampler. ``ratio`` and
    ``interval`` are ``pair[1]`` ÷ ``pair[0]``, the fastest of those forms and its runner-up."""
    return _pick(_candidates(forms), ratio, ess_factor, interval, pair)


def _speed(form: FormStats) -> float:
    """A form's speed on the criterion (:data:`SPEED`): over its clean seeds, else (for reading) every seed."""
    return form.median_ess_per_s if np.isfinite(form.median_ess_per_s) else form.median_ess_per_s_ran


def _comparison(
    by_model: Mapping[str, FormStats], by_rows: Mapping[str, pd.DataFrame], pair: Sequence[str]
) -> tuple[float, float, tuple[np.ndarray, np.ndarray] | None]:
    """ESS ratio, ESS/s ratio (``pair[1]`` ÷ ``pair[0]``) and the clean seeds' rates its interval is drawn from
    (None when a form of the pair was not fitted)."""
    first, second = by_model.get(pair[0]), by_model.get(pair[1])
    if not (first and second):
        return math.nan, math.nan, None
    ratio_ess = _ratio(second.median_ess_bulk_sigma_b, first.median_ess_bulk_sigma_b)
    ratio = _ratio(second.median_ess_per_s, first.median_ess_per_s)
    if not np.isfinite(ratio):
        # A form without a clean seed fails, so the speed decides nothing: the ratio over the seeds that ran
        # is for reading only (no interval).
        ratio = _ratio(second.median_ess_per_s_ran, first.median_ess_per_s_ran)
    rates = (_clean_rates(by_rows[pair[0]]), _clean_rates(by_rows[pair[1]]))
    return ratio_ess, ratio, rates


def compute_verdict(
    fits: pd.DataFrame,
    reference: Mapping[str, Any] | None = None,
    *,
    dataset: str | None = None,
    scales: Sequence[str] = (R.SIGMA_B,),
    pass_share: float = PASS_SHARE,
    alpha: float = ALPHA,
    ess_factor: float = ESS_FACTOR,
    checks_alpha: float = CHECKS_ALPHA,
) -> Verdict:
    """The verdict on one dataset from its per-seed table and, when it ran, the reference run's summary
    (:func:`read_reference`; a bare ``{'mean', 'mcse'}`` of E[σ_b] is taken as a reference that passes its checks).
    ``scales``: the group-level scales the table's ``mean_<scale>`` columns hold and Welch's test between the forms
    compares (the shorthand's σ_b; a formula model's every scale, the forms' statistics of its slowest-mixing one,
    :func:`headline_scale`)."""
    if dataset is None:
        names = sorted(set(fits["dataset"].astype(str))) if "dataset" in fits.columns else []
        dataset = names[0] if len(names) == 1 else "dataset"
    fits = _prepared(fits, scales)
    scale = headline_scale(fits, scales)
    rule = replace(RULE, pass_share=pass_share, alpha=alpha, ess_factor=ess_factor, checks_alpha=checks_alpha)
    estimands, diagnostics = _reference_parts(reference)
    checks = reference_checks(diagnostics)
    usable = estimands if estimands is not None and (checks is None or checks.passes) else None
    status = "no reference" if estimands is None else "tested" if usable is not None else "unavailable"
    forms: list[FormStats] = []
    samplers: list[SamplerVerdict] = []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    per_sampler: dict[str, tuple[dict[str, FormStats], dict[str, pd.DataFrame]]] = {}
    samplers_run = sorted(set(fits["sampler"]))
    groups = {
        (sampler, m): fits[fits["sampler"].eq(sampler) & fits["model"].eq(m)] for sampler in samplers_run for m in FORMS
    }
    groups = {key: group for key, group in groups.items() if len(group)}
    # A form's bias tests over every sampler are one family (a form is recommended only if it passes with each).
    tests = {key: bias_tests(group[group[_RAN]], usable) if usable else [] for key, group in groups.items()}
    family = {m: sum(len(_tests_of(t)) for (_, model), t in tests.items() if model == m) for m in FORMS}
    for sampler in samplers_run:
        rows = fits[fits["sampler"].eq(sampler)]
        models = [m for m in FORMS if (sampler, m) in groups]
        by_rows = {m: groups[(sampler, m)] for m in models}
        by_model = {
            m: _form_stats(by_rows[m], sampler, m, usable, tests[(sampler, m)], family[m], rule, scale) for m in models
        }
        between, between_tests = None, 1
        if usable is None and len(models) == 2:
            between, between_tests = _between_forms(rows[rows[_RAN]], models, scales)
            by_model = _with_between_test(by_model, between, rule, between_tests)
        passing = [m for m, f in by_model.items() if f.passes]
        speeds = {m: _speed(f) for m, f in by_model.items()}
        pair = compared_pair(speeds, passing)
        ratio_ess, ratio, rates = _comparison(by_model, by_rows, pair)
        interval = bootstrap_ratio([rates], rule) if rates is not None else [math.nan, math.nan]
        pick = _pick(passing, ratio, ess_factor, interval, pair)
        reason = words.sampler_reason(pick, by_model, ratio, ess_factor, pair)
        if len(passing) >= 2:  # the speed decided: its interval is part of the reason
            reason += words.interval_clause(pick, interval, rule, pair=pair)
        samplers.append(
            SamplerVerdict(sampler, pick, reason, ratio_ess, ratio, between, interval, list(pair), between_tests)
        )
        forms.extend(by_model.values())
        per_sampler[sampler] = (by_model, by_rows)

    fitted = sorted({f.model for f in forms}, key=FORMS.index)
    everywhere = [m for m in fitted if all(f.passes for f in forms if f.model == m)]
    candidates = _candidates(forms)
    # The overall pair: the fastest of the candidate forms and its runner-up by the geometric mean over samplers.
    speeds = {m: _geometric_mean([_speed(f) for f in forms if f.model == m]) for m in fitted}
    pair = compared_pair(speeds, candidates)
    ratios: list[float] = []
    for by_model, by_rows in per_sampler.values():
        _, ratio, rates = _comparison(by_model, by_rows, pair)
        if np.isfinite(ratio):
            ratios.append(ratio)
            if rates is not None:
                pairs.append(rates)
    overall_ratio = float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan
    overall_interval = bootstrap_ratio(pairs, rule) if pairs else [math.nan, math.nan]
    pick = overall_pick(forms, overall_ratio, ess_factor, overall_interval, pair)
    recommended = [pick] if pick in FORMS else _within_band(fitted, pair, speeds, ess_factor) if pick == EITHER else []
    sigma_b_ref = None if estimands is None else estimands.get(R.SIGMA_B)
    return Verdict(
        dataset=str(dataset),
        recommendation=pick,
        reason=words.overall_reason(pick, everywhere, samplers, overall_ratio, ess_factor, forms=forms, pair=pair)
        + (
            words.interval_clause(pick, overall_interval, rule, sentence=True, pair=pair)
            if len(everywhere) >= 2
            else ""
        ),
        failures=words.failure_lines(forms),
        rule={**asdict(rule), "text": words.rule_text(rule, formula=tuple(scales) != (R.SIGMA_B,))},
        reference=None
        if sigma_b_ref is None
        else {"mean": float(sigma_b_ref["mean"]), "mcse": float(sigma_b_ref.get("mcse", math.nan))},
        forms=forms,
        samplers=samplers,
        ratio_ess_per_s=overall_ratio,
        caveats=words.caveat_lines(forms, recommended),
        ratio_interval=overall_interval,
        reference_checks=checks,
        bias_against_reference=status,
        compared=list(pair),
        scale=scale,
    )


def _geometric_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(finite)))) if finite else math.nan


def _within_band(
    fitted: Sequence[str], pair: Sequence[str], speeds: Mapping[str, float], ess_factor: float
) -> list[str]:
    """The forms of an "either": with two forms, both; with more, the compared pair and every other candidate whose
    speed is within ``ess_factor`` of the fastest's."""
    if len(fitted) <= 2:
        return list(fitted)
    best = max((v for v in speeds.values() if np.isfinite(v)), default=math.nan)
    near = [m for m, v in speeds.items() if np.isfinite(v) and np.isfinite(best) and v * ess_factor >= best]
    return [m for m in fitted if m in pair or m in near]
