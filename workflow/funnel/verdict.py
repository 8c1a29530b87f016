"""The verdict: which parameterization to use on a dataset, decided from its fits.

It reads the per-seed table ``results/<dataset>/tables/fits.csv`` (one row per
sampler × form × seed, the record of :mod:`funnel.records`) and, when the reference
experiment ran, the reference run's estimate of E[σ_b] (``results/<dataset>/reference/reference.json``:
``estimands`` → ``sigma_b`` → ``{mean, mcse}``). Nothing in it is written by hand.

The rule is stated once, in :mod:`funnel.verdict_rule` (its parameters and outcomes), and worded in
:mod:`funnel.verdict_text` (:func:`~funnel.verdict_text.rule_markdown`); this module applies it:
the statistical tests, the decision, and the typed result (:class:`Verdict`), whose JSON round trip
(:meth:`Verdict.to_dict`, :meth:`Verdict.from_dict`) is generated from its dataclass fields.

Why seeds: each seed's posterior mean of σ_b is one draw from the sampling distribution of that
sampler × form's estimator, so the mean of n seeds is √n times less noisy than one fit, and a bias
smaller than one fit's noise, which per-fit z-scores miss, shows across seeds.
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
from .verdict_rule import ALPHA, EITHER, ESS_FACTOR, FORMS, NEITHER, PASS_SHARE, Rule


# ------------------------------------------------------------------ the pieces
@dataclass(frozen=True)
class BiasTest:
    """A t test of the seeds' E[σ_b]: against the reference ('reference') or between the forms ('between forms')."""

    kind: str
    t: float
    p: float
    df: float
    n: int  # seeds in the test (between forms: both forms' together)
    estimate: float  # mean of the seed estimates (between forms: centered minus non-centered)
    target: float  # the reference mean (between forms: 0)
    se: float

    def significant(self, alpha: float = ALPHA) -> bool:
        return bool(self.p < alpha)


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
    median_ess_per_s: float
    mean_sigma_b: float  # mean over seeds of E[σ_b]
    sd_sigma_b: float  # standard deviation over seeds of E[σ_b]
    failed_checks: dict[str, int]  # check -> seeds (that ran) failing it
    median_abs_z: float  # median over seeds of the per-fit |z| against the reference (nan without one)
    bias: BiasTest | None
    passes: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SamplerVerdict:
    sampler: str
    recommendation: str
    reason: str
    ratio_ess: float  # median ESS_bulk(σ_b), non-centered ÷ centered
    ratio_ess_per_s: float  # median ESS(σ_b)/s, non-centered ÷ centered
    between: BiasTest | None  # Welch's test between the forms (no reference run)


@dataclass(frozen=True)
class Verdict:
    dataset: str
    recommendation: str
    reason: str  # one sentence
    failures: list[str]  # what failed, one line per sampler × form that does not pass
    rule: dict[str, Any]  # the rule's parameters (verdict_rule.Rule) and its text
    reference: dict[str, float] | None
    forms: list[FormStats]
    samplers: list[SamplerVerdict]
    ratio_ess_per_s: float  # geometric mean over samplers of the per-sampler ratios
    caveats: list[str] = field(default_factory=list)  # seeds of the recommended form(s) that fail a check
    experiments: list[str] = field(default_factory=list)
    advice: list[Remedy] = field(default_factory=list)  # what to try next (funnel.advice), strongest first

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
        """A JSON-safe dict of every field (NaN and infinities as None)."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The verdict again from :meth:`to_dict`'s output (JSON's None back to NaN where a field is a float)."""
        return _from_json(cls, data)


# ------------------------------------------------------------------ JSON, generated from the fields
def _json_safe(value: Any) -> Any:
    """NaN and infinities as None, NumPy scalars as Python ones, tuples as lists."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _from_json(kind: Any, value: Any) -> Any:
    """``value`` (read from JSON) as the annotated type ``kind``: None back to NaN for floats, dataclasses rebuilt."""
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
        return kind(**{f.name: _from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_from_json(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: _from_json(item, v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ reading
def read_reference(path: str | Path | None) -> dict[str, float] | None:
    """The reference run's E[σ_b] and its MCSE ({'mean', 'mcse'}), or None without a reference."""
    if not path:
        return None
    import json

    sigma_b = json.loads(Path(path).read_text())["estimands"][R.SIGMA_B]
    return {"mean": float(sigma_b["mean"]), "mcse": float(sigma_b["mcse"])}


# ------------------------------------------------------------------ the bias tests
def t_against_reference(estimates: Sequence[float], reference: Mapping[str, float]) -> BiasTest | None:
    """One-sample t of the seed estimates against the reference mean, its MCSE folded into the standard error.

    ``t = (mean − ref) / sqrt(s²/n + mcse_ref²)`` on ``n − 1`` degrees of freedom;
    None with fewer than two estimates.
    """
    from scipy import stats

    x = np.asarray([v for v in estimates if np.isfinite(v)], dtype=float)
    n = len(x)
    if n < 2:
        return None
    ref, mcse = float(reference["mean"]), float(reference.get("mcse", 0.0) or 0.0)
    mean = float(x.mean())
    se = math.sqrt(float(x.var(ddof=1)) / n + mcse**2)
    diff = mean - ref
    if se == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        t = diff / se
    df = n - 1
    p = float(2 * stats.t.sf(abs(t), df))
    return BiasTest("reference", float(t), p, float(df), n, mean, ref, se)


def welch_between_forms(centered: Sequence[float], noncentered: Sequence[float]) -> BiasTest | None:
    """Welch's t test (unequal variances) of centered against non-centered seed estimates; None if either has < 2."""
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
    return BiasTest("between forms", t, p, float(df), len(c) + len(nc), diff, 0.0, se)


# ------------------------------------------------------------------ the verdict
def _median(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _ratio(noncentered: float, centered: float) -> float:
    if not (np.isfinite(noncentered) and np.isfinite(centered)) or centered <= 0 or noncentered <= 0:
        return math.nan
    return noncentered / centered


def _pick(passing: Sequence[str], ratio: float, ess_factor: float) -> str:
    """The rule's last step: which of the passing forms, given ESS/s non-centered ÷ centered."""
    if not passing:
        return NEITHER
    if len(passing) == 1:
        return passing[0]
    if not np.isfinite(ratio) or 1 / ess_factor <= ratio <= ess_factor:
        return EITHER
    return "noncentered" if ratio > 1 else "centered"


def _checks_failed(group: pd.DataFrame) -> dict[str, int]:
    """Check name -> seeds failing it (of those in ``group``)."""
    return {c.name: int((~R.truthy(group[c.column])).sum()) for c in R.CHECKS if c.column in group.columns}


def _abs_z(ran: pd.DataFrame, reference: Mapping[str, float]) -> float:
    """The median over seeds of each fit's |z| of E[σ_b] against the reference (funnel.bias.z_score)."""
    if "mcse_mean_sigma_b" not in ran.columns:
        return math.nan
    means = pd.to_numeric(ran["mean_sigma_b"], errors="coerce")
    mcses = pd.to_numeric(ran["mcse_mean_sigma_b"], errors="coerce")
    z = [abs(z_score({"mean": m, "mcse": s}, reference)) for m, s in zip(means, mcses)]
    return _median(pd.Series(z, dtype=float))


def _form_stats(
    group: pd.DataFrame,
    sampler: str,
    model: str,
    reference: Mapping[str, float] | None,
    pass_share: float,
    alpha: float,
) -> FormStats:
    ran = group[R.ran_ok(group)]
    passing = int(R.passing(group).sum())
    seeds = len(group)
    estimates = pd.to_numeric(ran["mean_sigma_b"], errors="coerce").dropna()
    abs_z = math.nan
    bias = None
    if reference is not None:
        bias = t_against_reference(list(estimates), reference)
        if len(estimates):
            abs_z = _abs_z(ran, reference)
    share = passing / seeds if seeds else 0.0
    failed_checks = _checks_failed(ran)
    reasons = []
    if not share > pass_share:
        reasons.append(words.checks_reason(passing, seeds, len(ran), failed_checks, pass_share))
    if bias is not None and bias.significant(alpha):
        reasons.append(words.bias_reason(bias))
    return FormStats(
        sampler=sampler,
        model=model,
        seeds=seeds,
        failed=int(seeds - len(ran)),
        passing=passing,
        share_pass=share,
        median_divergences=_median(ran["divergences"]),
        median_ess_bulk_sigma_b=_median(ran["ess_bulk_sigma_b"]),
        median_ess_per_s=_median(ran["ess_bulk_sigma_b_per_s"]),
        mean_sigma_b=float(estimates.mean()) if len(estimates) else math.nan,
        sd_sigma_b=float(estimates.std(ddof=1)) if len(estimates) > 1 else math.nan,
        failed_checks=failed_checks,
        median_abs_z=abs_z,
        bias=bias,
        passes=not reasons,
        reasons=reasons,
    )


def _with_between_test(
    forms: dict[str, FormStats], between: BiasTest | None, alpha: float, pass_share: float
) -> dict[str, FormStats]:
    """Without a reference: a significant difference between forms that both pass their checks fails both."""
    if between is None or not between.significant(alpha) or set(forms) != set(FORMS):
        return forms
    if not all(f.share_pass > pass_share for f in forms.values()):
        return forms  # charged to the form that fails its checks, which fails already
    reason = words.disagreement_reason(between)
    return {m: replace(f, passes=False, reasons=[*f.reasons, reason]) for m, f in forms.items()}


def overall_pick(forms: Sequence[FormStats], ratio: float, ess_factor: float = ESS_FACTOR) -> str:
    """The overall recommendation: among the forms that pass with every sampler; if none does, among the
    forms that pass with at least one sampler (the verdict then names the sampler, and the advice what to
    do with the others); "neither passes" only when no form passes with any sampler."""
    fitted = [m for m in FORMS if any(f.model == m for f in forms)]
    everywhere = [m for m in fitted if all(f.passes for f in forms if f.model == m)]
    somewhere = [m for m in fitted if any(f.passes for f in forms if f.model == m)]
    return _pick(everywhere or somewhere, ratio, ess_factor)


def compute_verdict(
    fits: pd.DataFrame,
    reference: Mapping[str, float] | None = None,
    *,
    dataset: str | None = None,
    pass_share: float = PASS_SHARE,
    alpha: float = ALPHA,
    ess_factor: float = ESS_FACTOR,
) -> Verdict:
    """The verdict on one dataset from its per-seed table (and the reference's E[σ_b] when it exists)."""
    if dataset is None:
        names = sorted(set(fits["dataset"].astype(str))) if "dataset" in fits.columns else []
        dataset = names[0] if len(names) == 1 else "dataset"
    forms: list[FormStats] = []
    samplers: list[SamplerVerdict] = []
    for sampler in sorted(set(fits["sampler"].astype(str))):
        rows = fits[fits["sampler"].astype(str).eq(sampler)]
        models = [m for m in FORMS if m in set(rows["model"].astype(str))]
        by_model = {
            m: _form_stats(rows[rows["model"].astype(str).eq(m)], sampler, m, reference, pass_share, alpha)
            for m in models
        }
        between = None
        if reference is None and len(models) == 2:
            ok = rows[R.ran_ok(rows)]
            between = welch_between_forms(
                pd.to_numeric(ok.loc[ok["model"].eq("centered"), "mean_sigma_b"], errors="coerce").tolist(),
                pd.to_numeric(ok.loc[ok["model"].eq("noncentered"), "mean_sigma_b"], errors="coerce").tolist(),
            )
            by_model = _with_between_test(by_model, between, alpha, pass_share)
        c, nc = by_model.get("centered"), by_model.get("noncentered")
        ratio_ess = _ratio(nc.median_ess_bulk_sigma_b, c.median_ess_bulk_sigma_b) if c and nc else math.nan
        ratio = _ratio(nc.median_ess_per_s, c.median_ess_per_s) if c and nc else math.nan
        passing = [m for m, f in by_model.items() if f.passes]
        pick = _pick(passing, ratio, ess_factor)
        samplers.append(
            SamplerVerdict(
                sampler, pick, words.sampler_reason(pick, by_model, ratio, ess_factor), ratio_ess, ratio, between
            )
        )
        forms.extend(by_model.values())

    fitted = sorted({f.model for f in forms}, key=FORMS.index)
    everywhere = [m for m in fitted if all(f.passes for f in forms if f.model == m)]
    ratios = [s.ratio_ess_per_s for s in samplers if np.isfinite(s.ratio_ess_per_s)]
    overall_ratio = float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan
    pick = overall_pick(forms, overall_ratio, ess_factor)
    recommended = [pick] if pick in FORMS else list(fitted) if pick == EITHER else []
    rule = Rule(pass_share=pass_share, alpha=alpha, ess_factor=ess_factor)
    return Verdict(
        dataset=str(dataset),
        recommendation=pick,
        reason=words.overall_reason(pick, everywhere, samplers, overall_ratio, ess_factor, forms=forms),
        failures=words.failure_lines(forms),
        rule={**asdict(rule), "text": words.rule_text(rule)},
        reference=None if reference is None else {"mean": float(reference["mean"]), "mcse": float(reference["mcse"])},
        forms=forms,
        samplers=samplers,
        ratio_ess_per_s=overall_ratio,
        caveats=words.caveat_lines(forms, recommended),
    )
