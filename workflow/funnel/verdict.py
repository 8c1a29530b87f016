"""The verdict: which parameterization to use on a dataset, computed from its fits.

It reads the per-seed table ``results/<dataset>/tables/fits.csv`` (one row per
sampler × form × seed) and, when the reference experiment ran, the reference
run's estimate of E[σ_b] (``results/<dataset>/reference/reference.json``:
``estimands`` → ``sigma_b`` → ``{mean, mcse}``). Nothing in it is written by hand.

The rule
--------
With one sampler, a form **passes** when

1. more than :data:`PASS_SHARE` (half) of its seeds pass every check (the pass
   marks of ``diagnostics.thresholds``: R-hat, bulk and tail ESS, zero
   divergences, E-BFMI; a seed whose fit failed, ``status`` other than ``ok``,
   counts as not passing): the form's typical run, the median seed, is clean.
   Every check is a check of one run, what a user fitting the form once would
   see; a funnel fails nearly every seed (radon's centered form: 0 of 8), while
   a sound form's occasional seed with a divergence or two is the sampler's
   ordinary failure rate, and is reported as a caveat of the verdict; and
2. its seed estimates of E[σ_b] show no bias: the two-sided p-value of the bias
   test below is at least :data:`ALPHA` (0.01). With fewer than two seeds the
   test cannot be made and only the checks count.

Then: if exactly one form passes, use it; if both pass, use the one with the higher
median ESS(σ_b) per second of sampling, unless the two are within a factor
:data:`ESS_FACTOR` (1.5) of each other: then **either**; if none passes,
**neither passes**, and the verdict says what failed.

Across samplers (the overall verdict) the same rule is applied to "passes with
every sampler", and the speed comparison uses the geometric mean over samplers of
the per-sampler ratios of median ESS(σ_b)/s (so one sampler's 2× for the centered
form and another's 2× for the non-centered form cancel to "either"). A form
recommended overall therefore works with every sampler that was run.

The bias test
-------------
Each seed's posterior mean of σ_b is one draw from the sampling distribution of
that sampler × form's estimator; the seeds are independent, so their mean has a
standard error ``s/√n`` (s the standard deviation across seeds). That is why many
seeds find a bias that per-fit z-scores miss: a z-score weighs one fit against its
own MCSE, and a bias smaller than one fit's noise goes unseen, while the mean of n
seeds is √n times less noisy.

* With a reference run: a one-sample t test of the seed estimates against the
  reference mean, with the reference's own MCSE folded into the standard error,
  ``t = (mean − ref) / sqrt(s²/n + mcse_ref²)``, on ``n − 1`` degrees of freedom
  (conservative: the reference's variance is known far better than the seeds').
  The reference is a long, careful run, so this tells *which* form is off, not
  just that the two disagree.
* Without one: Welch's t test (unequal variances) between the two forms' seed
  estimates, per sampler. A significant difference is charged to the form that
  fails its checks; when both pass their checks it cannot be attributed, and both
  fail (the verdict then asks for the reference run, ``experiments.reference``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .diagnostics import ran_ok
from .notebook import num

FORMS = ("centered", "noncentered")
#: A form passes when more than this share of its seeds pass every check (a majority).
PASS_SHARE = 0.5
#: Significance level of the bias test (two-sided).
ALPHA = 0.01
#: ESS(σ_b)/s within this factor of each other: "either".
ESS_FACTOR = 1.5
EITHER = "either"
NEITHER = "neither passes"
RECOMMENDATIONS = (*FORMS, EITHER, NEITHER)
# The per-check pass columns of fits.csv, as the reader knows them.
CHECKS = {"pass_rhat": "R-hat", "pass_ess": "ESS", "pass_divergences": "divergences", "pass_bfmi": "E-BFMI"}
FORM_NAMES = {"centered": "centered", "noncentered": "non-centered"}


def share_words(pass_share: float) -> str:
    """'more than half' (0.5), else 'more than 75%'."""
    return "more than half" if pass_share == 0.5 else f"more than {pass_share:.0%}"


def rule_text(pass_share: float = PASS_SHARE, alpha: float = ALPHA, ess_factor: float = ESS_FACTOR) -> str:
    """The rule in two sentences, for the page and the Markdown."""
    return (
        f"A form passes with a sampler when {share_words(pass_share)} of its seeds pass every check and the "
        f"mean of its seeds' E[σ_b] shows no bias (bias test p ≥ {alpha:g}). The form that passes with every "
        f"sampler is recommended; if both do, the one with the higher median ESS(σ_b) per second, or either "
        f"when they are within {ess_factor:g}× of each other."
    )


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
    rule: dict[str, Any]
    reference: dict[str, float] | None
    forms: list[FormStats]
    samplers: list[SamplerVerdict]
    ratio_ess_per_s: float  # geometric mean over samplers of the per-sampler ratios
    caveats: list[str] = field(default_factory=list)  # seeds of the recommended form(s) that fail a check
    experiments: list[str] = field(default_factory=list)

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
        """A JSON-safe dict (NaN and infinities as None)."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        def test(value: Mapping[str, Any] | None) -> BiasTest | None:
            return None if value is None else BiasTest(**_floats(value))

        forms = [FormStats(**{**_floats(f), "bias": test(f["bias"])}) for f in data["forms"]]
        samplers = [SamplerVerdict(**{**_floats(s), "between": test(s["between"])}) for s in data["samplers"]]
        return cls(
            **{
                **{k: v for k, v in data.items() if k not in ("forms", "samplers")},
                "ratio_ess_per_s": _nan(data["ratio_ess_per_s"]),
                "forms": forms,
                "samplers": samplers,
            }
        )


def _nan(value: Any) -> Any:
    return math.nan if value is None else value


def _floats(record: Mapping[str, Any]) -> dict[str, Any]:
    """JSON's None back to NaN for the numeric fields of a record."""
    numeric = {
        "t",
        "p",
        "df",
        "estimate",
        "target",
        "se",
        "share_pass",
        "median_divergences",
        "median_ess_bulk_sigma_b",
        "median_ess_per_s",
        "mean_sigma_b",
        "sd_sigma_b",
        "median_abs_z",
        "ratio_ess",
        "ratio_ess_per_s",
    }
    return {k: (_nan(v) if k in numeric else v) for k, v in record.items()}


def _json_safe(value: Any) -> Any:
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


# ------------------------------------------------------------------ reading
def read_reference(path: str | Path | None) -> dict[str, float] | None:
    """The reference run's E[σ_b] and its MCSE ({'mean', 'mcse'}), or None without a reference."""
    if not path:
        return None
    import json

    sigma_b = json.loads(Path(path).read_text())["estimands"]["sigma_b"]
    return {"mean": float(sigma_b["mean"]), "mcse": float(sigma_b["mcse"])}


def _truthy(values: pd.Series) -> pd.Series:
    """A pass column as booleans: True/'True' are True; False, missing and anything else are not."""
    return values.astype(str).str.strip().str.lower().isin({"true", "1", "1.0"})


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
    return {CHECKS[c]: int((~_truthy(group[c])).sum()) for c in CHECKS if c in group.columns}


def _form_stats(
    group: pd.DataFrame,
    sampler: str,
    model: str,
    reference: Mapping[str, float] | None,
    pass_share: float,
    alpha: float,
) -> FormStats:
    ok = ran_ok(group)
    ran = group[ok]
    passing = int((ok & _truthy(group["pass_all"])).sum())
    seeds = len(group)
    estimates = pd.to_numeric(ran["mean_sigma_b"], errors="coerce").dropna()
    abs_z = math.nan
    bias = None
    if reference is not None:
        bias = t_against_reference(list(estimates), reference)
        if "mcse_mean_sigma_b" in ran.columns and len(estimates):
            mcse = pd.to_numeric(ran["mcse_mean_sigma_b"], errors="coerce")
            z = (pd.to_numeric(ran["mean_sigma_b"], errors="coerce") - reference["mean"]) / np.hypot(
                mcse, reference["mcse"]
            )
            abs_z = _median(z.abs())
    share = passing / seeds if seeds else 0.0
    reasons = []
    if not share > pass_share:
        failing = ", ".join(f"{name} on {n}" for name, n in _checks_failed(ran).items() if n)
        text = f"{passing} of {seeds} seeds pass every check (needs {share_words(pass_share)})"
        if failing:
            text += f"; seeds failing {failing}"
        if seeds - len(ran):
            text += f"; {seeds - len(ran)} fits failed to run"
        reasons.append(text)
    if bias is not None and bias.significant(alpha):
        reasons.append(
            f"E[σ_b] biased: mean of {bias.n} seeds {num(bias.estimate)} against the reference {num(bias.target)}, "
            f"t = {bias.t:.1f}, {p_text(bias.p)}"
        )
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
        failed_checks=_checks_failed(ran),
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
    reason = (
        f"the forms disagree on E[σ_b] (centered − non-centered {num(between.estimate)}, Welch t = {between.t:.1f}, "
        f"{p_text(between.p)}) and both pass their checks: without a reference run "
        "(experiments.reference) the workflow cannot tell which is biased"
    )
    return {m: replace(f, passes=False, reasons=[*f.reasons, reason]) for m, f in forms.items()}


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
            ok = rows[ran_ok(rows)]
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
            SamplerVerdict(sampler, pick, _reason(pick, by_model, ratio, ess_factor), ratio_ess, ratio, between)
        )
        forms.extend(by_model.values())

    fitted = sorted({f.model for f in forms}, key=FORMS.index)
    everywhere = [m for m in fitted if all(f.passes for f in forms if f.model == m)]
    ratios = [s.ratio_ess_per_s for s in samplers if np.isfinite(s.ratio_ess_per_s)]
    overall_ratio = float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan
    pick = _pick(everywhere, overall_ratio, ess_factor)
    recommended = [pick] if pick in FORMS else list(fitted) if pick == EITHER else []
    caveats = [
        f"with {f.sampler}, {f.seeds - f.passing} of {f.seeds} {FORM_NAMES[f.model]} seeds fail a check"
        + (f" ({checks})" if (checks := ", ".join(f"{k} on {n}" for k, n in f.failed_checks.items() if n)) else "")
        for f in forms
        if f.model in recommended and f.passing < f.seeds
    ]
    return Verdict(
        dataset=str(dataset),
        recommendation=pick,
        reason=_overall_summary(pick, everywhere, samplers, overall_ratio, ess_factor),
        failures=failure_lines(forms),
        rule={
            "pass_share": pass_share,
            "alpha": alpha,
            "ess_factor": ess_factor,
            "text": rule_text(pass_share, alpha, ess_factor),
        },
        reference=None if reference is None else {"mean": float(reference["mean"]), "mcse": float(reference["mcse"])},
        forms=forms,
        samplers=samplers,
        ratio_ess_per_s=overall_ratio,
        caveats=caveats,
    )


# ------------------------------------------------------------------ words
def p_text(p: float) -> str:
    """A p-value for prose: 'p = ' and two significant figures, 'p < 0.001' below that."""
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def ratio_text(ratio: float) -> str:
    """A non-centered ÷ centered ratio as the leading form's multiple: '2.8× centered', '31× non-centered'."""
    if not np.isfinite(ratio):
        return "n/a"
    if ratio >= 1:
        return f"{num(ratio, 2)}× non-centered"
    return f"{num(1 / ratio, 2)}× centered"


def lead(ratio: float) -> str:
    """How many times the leading form's value is the other's, for prose ('2.8')."""
    return num(max(ratio, 1 / ratio), 2) if np.isfinite(ratio) and ratio > 0 else "n/a"


def headline(recommendation: str) -> str:
    return {
        "noncentered": "Use the non-centered form",
        "centered": "Use the centered form",
        EITHER: "Either form",
        NEITHER: "Neither form passes",
    }[recommendation]


def _failures(forms: Sequence[FormStats], model: str) -> str:
    parts = [f"{f.sampler}: {'; '.join(f.reasons)}" for f in forms if f.model == model and not f.passes]
    return f"{FORM_NAMES[model]} fails with " + " / ".join(parts) if parts else ""


def _reason(pick: str, forms: Mapping[str, FormStats], ratio: float, ess_factor: float) -> str:
    """Why a sampler's verdict is what it is, in words."""
    failing = [_failures(list(forms.values()), m) for m in forms if not forms[m].passes]
    failing = [text for text in failing if text]
    if pick == NEITHER:
        return "; ".join(failing) or "no form was fitted"
    if len([f for f in forms.values() if f.passes]) == 1:
        if not failing:
            return f"only the {FORM_NAMES[pick]} form was fitted, and it passes"
        return f"only the {FORM_NAMES[pick]} form passes ({'; '.join(failing)})"
    if pick == EITHER:
        return f"both forms pass; median ESS(σ_b)/s within {ess_factor:g}× ({ratio_text(ratio)})"
    return f"both forms pass; the {FORM_NAMES[pick]} form's median ESS(σ_b)/s is {lead(ratio)}× the other's"


def failure_lines(forms: Sequence[FormStats]) -> list[str]:
    """What failed, one line per sampler × form that does not pass: 'centered with pymc: ...'."""
    return [
        f"{FORM_NAMES[f.model]} with {f.sampler}: {'; '.join(f.reasons)}"
        for model in FORMS
        for f in forms
        if f.model == model and not f.passes
    ]


def _overall_summary(
    pick: str, everywhere: Sequence[str], samplers: Sequence[SamplerVerdict], ratio: float, ess_factor: float
) -> str:
    """The overall verdict's reason in one sentence (what failed is listed by :func:`failure_lines`)."""
    names = ", ".join(s.sampler for s in samplers)
    every = "with every sampler" if len(samplers) > 1 else f"with {names}"
    mean = " (geometric mean over samplers)" if len(samplers) > 1 else ""
    if pick == NEITHER:
        return f"No form passes {every}."
    if pick == EITHER:
        return (
            f"Both forms pass {every}, and their median ESS(σ_b) per second are within {ess_factor:g}× of each other "
            f"({ratio_text(ratio)}{mean})."
        )
    if len(everywhere) == 1:
        return f"Only the {FORM_NAMES[pick]} form passes {every}."
    return (
        f"Both forms pass {every}; the {FORM_NAMES[pick]} form gives {lead(ratio)}× the median "
        f"ESS(σ_b) per second of the other{mean}, beyond the {ess_factor:g}× of 'either'."
    )


def bias_lines(verdict: Verdict) -> list[str]:
    """The bias-across-seeds sentences: the test used, then one per sampler (× form)."""
    lines = []
    if verdict.reference is not None:
        ref = verdict.reference
        lines.append(
            f"**Bias across seeds.** The seeds' E[σ_b] against the reference run's {num(ref['mean'])} "
            f"(MCSE {num(ref['mcse'], 2)}), one-sample t test with the reference's MCSE in the standard error."
        )
        for f in verdict.forms:
            if f.bias is None:
                lines.append(f"{f.sampler} / {FORM_NAMES[f.model]}: fewer than 2 seeds, not tested.")
                continue
            b = f.bias
            flag = "**biased**" if b.significant(verdict.rule["alpha"]) else "no bias detected"
            z = f", per-fit median |z| {f.median_abs_z:.1f}" if np.isfinite(f.median_abs_z) else ""
            lines.append(
                f"{f.sampler} / {FORM_NAMES[f.model]}: mean of {b.n} seeds {num(b.estimate)} (sd {num(f.sd_sigma_b, 2)}), "
                f"t = {b.t:.2f}, {p_text(b.p)}{z}: {flag}."
            )
    else:
        lines.append(
            "**Bias across seeds.** No reference run, so the two forms' seed estimates of E[σ_b] are compared with "
            "Welch's t test (experiments.reference adds a reference run that says which form is off)."
        )
        for s in verdict.samplers:
            if s.between is None:
                lines.append(f"{s.sampler}: fewer than 2 seeds of a form, not tested.")
                continue
            b = s.between
            flag = "the forms **disagree**" if b.significant(verdict.rule["alpha"]) else "no difference detected"
            lines.append(
                f"{s.sampler}: centered − non-centered {num(b.estimate)}, t = {b.t:.2f} (df {b.df:.1f}), "
                f"{p_text(b.p)}, {b.n} seeds: {flag}."
            )
    return lines


WHY_SEEDS = (
    "Per-fit z-scores miss what many seeds reveal: one fit's z weighs its estimate against its own MCSE, so a bias "
    "smaller than one fit's noise passes unseen, while the mean of n seeds is √n times less noisy. "
    "This is what running many seeds buys."
)


def _cell(value: float, spec: str = "num") -> str:
    if not np.isfinite(value):
        return "n/a"
    return num(value) if spec == "num" else format(value, spec)


def table_rows(verdict: Verdict) -> list[dict[str, str]]:
    """The per sampler × form table, formatted (one dict per row, columns in display order)."""
    rows = []
    for f in verdict.forms:
        s = verdict.sampler(f.sampler)
        if f.bias is not None:
            bias = f"t = {f.bias.t:.2f}, {p_text(f.bias.p)}"
        elif s.between is not None:
            bias = f"between forms: t = {s.between.t:.2f}, {p_text(s.between.p)}"
        else:
            bias = "not tested"
        rows.append(
            {
                "sampler": f.sampler,
                "form": FORM_NAMES[f.model],
                "seeds passing every check": f"{f.passing}/{f.seeds} ({f.share_pass:.0%})",
                "median divergences": _cell(f.median_divergences, "g"),
                "median ESS_bulk(σ_b)": _cell(f.median_ess_bulk_sigma_b, ".0f"),
                "median ESS(σ_b)/s": _cell(f.median_ess_per_s),
                "ESS ratio": ratio_text(s.ratio_ess),
                "ESS/s ratio": ratio_text(s.ratio_ess_per_s),
                "E[σ_b] over seeds, mean ± sd": f"{_cell(f.mean_sigma_b)} ± {num(f.sd_sigma_b, 2)}",
                "bias test of E[σ_b]": bias,
                "passes": "yes" if f.passes else "no",
            }
        )
    return rows


def _md_inline(text: str) -> str:
    """**bold** to <strong> in escaped HTML."""
    parts = html.escape(text, quote=False).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def verdict_html(
    verdict: Verdict,
    *,
    figures: Sequence[tuple[str, str, str]] = (),
    figure_caption: str = "",
    heading_level: int = 3,
) -> str:
    """The verdict as an HTML fragment: recommendation, rule, table, bias lines, figures, experiments.

    ``figures`` are (image src, link href, alt text), shown as small images that link to their
    page, above ``figure_caption`` (a sentence saying what to see).
    """
    h = f"h{heading_level}"
    v = verdict
    parts = [
        f"<div class='verdict verdict-{v.recommendation.replace(' ', '-')}'>",
        f"<{h} class='recommend'>Verdict: {html.escape(headline(v.recommendation), quote=False)}</{h}>",
        f"<p class='reason'>{_md_inline(v.reason)}</p>",
        *(
            ["<ul class='failures'>" + "".join(f"<li>{_md_inline(line)}</li>" for line in v.failures) + "</ul>"]
            if v.failures
            else []
        ),
        *([f"<p class='caveat'><em>Caveat:</em> {html.escape(caveat_text(v), quote=False)}</p>"] if v.caveats else []),
        f"<p class='rule'><em>The rule.</em> {html.escape(v.rule['text'], quote=False)}</p>",
    ]
    if len(v.samplers) > 1:
        per = "; ".join(f"{s.sampler}: {headline(s.recommendation).lower()}" for s in v.samplers)
        parts.append(f"<p>Per sampler: {html.escape(per, quote=False)}.</p>")
    rows = table_rows(v)
    if rows:
        columns = list(rows[0])
        parts.append("<table class='verdict-table'><thead><tr>")
        parts += [f"<th>{html.escape(c, quote=False)}</th>" for c in columns]
        parts.append("</tr></thead><tbody>")
        for index, row in enumerate(rows):
            first = index == 0 or rows[index - 1]["sampler"] != row["sampler"]
            span = sum(r["sampler"] == row["sampler"] for r in rows)
            parts.append("<tr>")
            for c in columns:
                if c in ("sampler", "ESS ratio", "ESS/s ratio"):
                    if first:
                        parts.append(f"<td rowspan='{span}'>{html.escape(row[c], quote=False)}</td>")
                    continue
                parts.append(f"<td>{html.escape(row[c], quote=False)}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
        parts.append(
            "<p class='note'>Medians over the seeds whose fit ran; the ratios compare the two forms' medians "
            "(ESS_bulk of σ_b, and ESS of σ_b per second of sampling), named after the form that leads.</p>"
        )
    intro, *per_group = bias_lines(v)
    parts.append(f"<p class='bias'>{_md_inline(intro)}</p>")
    parts.append("<ul class='bias'>" + "".join(f"<li>{_md_inline(line)}</li>" for line in per_group) + "</ul>")
    parts.append(f"<p class='why'>{html.escape(WHY_SEEDS, quote=False)}</p>")
    if figures:
        parts.append("<div class='figures'>")
        for src, href, alt in figures:
            parts.append(
                f"<a href='{html.escape(href, quote=True)}'><img src='{html.escape(src, quote=True)}' "
                f"alt='{html.escape(alt, quote=True)}' title='{html.escape(alt, quote=True)}'></a>"
            )
        parts.append("</div>")
        if figure_caption:
            parts.append(f"<p class='caption'>{html.escape(figure_caption, quote=False)}</p>")
    if v.experiments:
        parts.append("<p>The experiments:</p><ul class='experiments'>")
        parts += [f"<li>{_md_inline(line)}</li>" for line in v.experiments]
        parts.append("</ul>")
    parts.append("</div>")
    return "\n".join(parts)


VERDICT_CSS = (
    ".verdict{border-left:4px solid #2b6cb0;padding:.2em 1em;margin:1em 0;background:#f7fafc}"
    ".verdict-neither-passes{border-color:#c53030}.verdict .recommend{margin:.3em 0}"
    ".verdict-table{border-collapse:collapse;font-size:.88em;margin:.6em 0}"
    ".verdict-table th,.verdict-table td{border:1px solid #cbd5e0;padding:.2em .45em;text-align:left;vertical-align:top}"
    ".verdict .note,.verdict .why,.verdict .rule,.verdict .caption,.verdict .caveat{color:#444;font-size:.92em}"
    ".verdict .figures img{height:13em;margin:.3em .6em .3em 0;border:1px solid #ddd}"
)


def verdict_page(verdict: Verdict, title: str | None = None) -> str:
    """A self-contained HTML page of the verdict (for snakemake --report and the index's link)."""
    title = title or f"{verdict.dataset}: the verdict"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title, quote=False)}</title>"
        "<style>body{font-family:sans-serif;max-width:72em;margin:2em auto;line-height:1.45}"
        f"{VERDICT_CSS}</style></head><body>\n<h1>{html.escape(title, quote=False)}</h1>\n"
        f"{verdict_html(verdict, heading_level=2)}\n</body></html>\n"
    )


def caveat_text(verdict: Verdict) -> str:
    """The recommended form's seeds that failed a check, in one sentence."""
    text = "; ".join(verdict.caveats)
    return text[0].upper() + text[1:] + ": a single run of it should still be checked." if text else ""


def verdict_markdown(verdict: Verdict) -> str:
    """The verdict as Markdown: the same content as the page."""
    v = verdict
    lines = [
        f"# {v.dataset}: {headline(v.recommendation)}",
        "",
        v.reason,
        "",
        *([f"- {line}" for line in v.failures] + [""] if v.failures else []),
        *([f"*Caveat:* {caveat_text(v)}", ""] if v.caveats else []),
        f"*The rule.* {v.rule['text']}",
        "",
    ]
    if len(v.samplers) > 1:
        lines += [
            "Per sampler: " + "; ".join(f"{s.sampler}: {headline(s.recommendation).lower()}" for s in v.samplers) + ".",
            "",
        ]
    rows = table_rows(v)
    if rows:
        columns = list(rows[0])
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
        lines.append("")
    lines += [f"- {line}" for line in bias_lines(v)]
    lines += ["", WHY_SEEDS, ""]
    if v.experiments:
        lines += ["The experiments:", ""] + [f"- {line}" for line in v.experiments] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------ the experiments' one-liners
def experiment_lines(
    fits: pd.DataFrame,
    *,
    target_accept_summary: pd.DataFrame | None = None,
    rows_summary: pd.DataFrame | None = None,
) -> list[str]:
    """One line per experiment that ran: bias z-scores (reference run), target_accept sweep, rows per group."""
    from .prose import bias_sentence, crossover_sentence, target_accept_sentence

    lines = []
    if "z_sigma_b" in fits.columns and fits["z_sigma_b"].notna().any():
        lines.append("Reference run, per-fit z-scores of E[σ_b]: " + bias_sentence(fits[ran_ok(fits)]))
    if target_accept_summary is not None and len(target_accept_summary):
        lines.append("target_accept sweep: " + target_accept_sentence(target_accept_summary))
    if rows_summary is not None and len(rows_summary):
        lines.append("Rows per group: " + crossover_sentence(rows_summary))
    return lines
