"""The verdict in words: its grounds, its headline, its table, its HTML page and fragment, its Markdown.

Nothing here decides: :mod:`funnel.verdict` applies the rule (:mod:`funnel.verdict_rule`) and keeps
the typed result; this module says it. The grounds a verdict records (why each form passes or not,
the one-sentence reason, the caveats) are worded here from numbers the decision hands over.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .escape import html_text, md_cell
from .forms import form as registered_form
from .models import FORM_NAMES
from .notebook import num
from .prose import plural
from .records import CHECKS, SIGMA_B, ran_ok, z_column
from .verdict_rule import EITHER, FORMS, NEITHER, PAIR, REJECTED, RULE, SPEED_NAME, SPEED_TEXT, Rule

if TYPE_CHECKING:
    from .advice import Remedy
    from .verdict import BiasTest, FormStats, ReferenceChecks, SamplerVerdict, Verdict, ZTest

#: A check's name in the verdict's words, by its column.
CHECK_NAMES = {check.column: check.name for check in CHECKS}


# ------------------------------------------------------------------ the rule
def share_words(pass_share: float) -> str:
    """'half' (0.5), else '75%'."""
    return "half" if pass_share == 0.5 else f"{pass_share:.0%}"


def rule_text(rule: Rule = RULE, formula: bool = False) -> str:
    """The rule in three sentences, for the page and the Markdown (``formula``: as it reads for a formula model, whose
    group-level scales are its terms' and which has no reference run yet)."""
    if formula:
        return (
            f"A form passes with a sampler unless its seeds pass every check significantly less often than "
            f"{share_words(rule.pass_share)} of the time (binomial p below {rule.checks_alpha:g}, or no seed clean), "
            f"and unless Welch's t test of the posterior mean of a group-level scale between the forms rejects at "
            f"{rule.alpha:g} (family-wise, Bonferroni over the scales) while both pass their checks. The form that "
            f"passes with every sampler is recommended; if several do, the fastest by the median {SPEED_NAME} "
            f"(whichever of the model's group-level scales mixes worst) over clean seeds when its ratio to the "
            f"runner-up has a {rule.interval:.0%} bootstrap interval beyond {rule.ess_factor:g}×, else either; if none "
            "does, the form that passes with some sampler, named with it."
        )
    return (
        f"A form passes with a sampler unless its seeds pass every check significantly less often than "
        f"{share_words(rule.pass_share)} of the time (binomial p below {rule.checks_alpha:g}, or no seed clean), and "
        f"unless a bias test rejects at {rule.alpha:g} (family-wise): against the reference run, the t test of the "
        f"seeds' mean and the χ² test of their z-scores for E[σ], E[log σ] and P(σ in the neck) of σ_b and σ_a; "
        f"without one, Welch's t test of E[σ_b] between the forms. The form that passes with every sampler is "
        f"recommended; if several do, the fastest by the median {SPEED_NAME} (σ_a or σ_b, whichever mixes worse) "
        f"over clean seeds when its ratio to the runner-up has a {rule.interval:.0%} bootstrap interval beyond "
        f"{rule.ess_factor:g}×, else either; if none "
        "does, the form that passes with some sampler, named with it."
    )


def _fewest_clean(rule: Rule, seeds: int) -> int:
    """The fewest clean seeds of ``seeds`` with which a form passes its checks."""
    from scipy import stats

    return next(k for k in range(1, seeds + 1) if stats.binom.cdf(k, seeds, rule.pass_share) >= rule.checks_alpha)


def _fail_chance(rule: Rule, seeds: int, clean_p: float) -> float:
    """The chance that a form whose seeds are clean with probability ``clean_p`` fails its checks."""
    from scipy import stats

    return float(stats.binom.cdf(_fewest_clean(rule, seeds) - 1, seeds, clean_p))


def rule_markdown(rule: Rule = RULE) -> str:
    """The rule in full, as Markdown (for the docs): the pass conditions, the choice, the bias tests."""
    checks = ", ".join(check.name for check in CHECKS)
    return "\n".join(
        [
            "With one sampler, a form **passes** when",
            "",
            f"1. its seeds pass every check ({checks}) not significantly less often than "
            f"{share_words(rule.pass_share)} of the time: a one-sided exact binomial test of its clean seeds "
            f"against {rule.pass_share:g} gives p ≥ {rule.checks_alpha:g}, and at least one seed is clean (a seed "
            f"whose fit failed is not). With 8 seeds a form fails with {_fewest_clean(rule, 8) - 1} or fewer clean "
            f"seeds and passes with {_fewest_clean(rule, 8)} or more: a funnel fails nearly every seed (radon's "
            "centered form: 0 of 8), while a sound form's occasional unclean seed is the sampler's ordinary failure "
            "rate (a form whose seeds are clean 3 times in 4 fails this test with probability "
            f"{_fail_chance(rule, 8, 0.75):.3f}), reported as a caveat of the verdict;",
            f"2. no bias test rejects, at a family-wise level of {rule.alpha:g} (each of the form's m tests, with "
            f"every sampler, at {rule.alpha:g}/m: Bonferroni). With a reference run that passes its own checks: for each of E[σ], "
            "E[log σ] and P(σ < neck) of σ_b and σ_a, the t test of the seeds' mean and the χ² test of their "
            "per-fit z-scores (below). Without a usable one: Welch's t test of E[σ_b] between the forms. With "
            "fewer than two seeds only the checks count.",
            "",
            "If exactly one form passes, use it; if two or more pass, compare their speed: the "
            f"{SPEED_TEXT}. A form is as slow as its worst-mixing scale (σ_b is the funnel's neck on some data, "
            "σ_a on others). The fastest form is recommended only when its ratio to the runner-up has its "
            f"{rule.interval:.0%} bootstrap interval over seeds ({rule.bootstrap} resamples, fixed seed "
            f"{rule.bootstrap_seed}) wholly beyond {rule.ess_factor:g}×; otherwise **either**. If none passes, "
            "**neither passes**, and the verdict says what failed.",
            "",
            'Across samplers the same applies to "passes with every sampler", and the speed comparison uses the '
            "geometric mean over samplers of the per-sampler ratios (its interval from the same resamples). When "
            'no form passes with every sampler, it applies to "passes with at least one sampler": the headline '
            "then names the sampler(s) the form works with and the advice what to try with the others; **neither "
            "passes** only when no form passes with any sampler.",
            "",
            "**The bias tests.** Each seed's posterior mean is one draw from its sampler × form's estimator. "
            "With a reference run, over the seeds that ran (unclean ones included):",
            "",
            "- the *t test* of the seeds' mean against the reference mean, the reference's MCSE folded into the "
            "standard error, t = (mean − ref) / √(s²/n + MCSE_ref²) on n − 1 degrees of freedom: it sees a bias "
            "every seed shares, even one smaller than a single fit's noise;",
            "- the *χ² test* of the seeds' z-scores, z = (est − ref) / √(MCSE_fit² + MCSE_ref²), Σz² against "
            "χ²_n: it sees a minority of seeds far off, which the t test cannot (k of n seeds off by any amount "
            "give at most t = √(k(n−1)/(n−k))). Σz² rather than max |z| with Bonferroni, because it adds up "
            "every off seed's evidence and is about as sensitive to a single one.",
            "",
            "A reference that fails its own checks (R-hat, ESS, divergences, E-BFMI) makes these tests "
            "**unavailable**, said so in the verdict, and the test between the forms applies instead: Welch's t "
            "test between the two forms' seeds, per sampler; a significant difference is charged to the form "
            "that fails its checks, and when both pass them both fail (the verdict then asks for the reference "
            "run, experiments.reference).",
        ]
    )


# ------------------------------------------------------------------ the grounds the verdict records
def checks_reason(
    passing: int, seeds: int, ran: int, failed_checks: Mapping[str, int], pass_share: float, why: str = ""
) -> str:
    """Why a form's seeds are too few: 'p of n seeds pass every check (why); seeds failing ...'."""
    failing = ", ".join(f"{name} on {n}" for name, n in failed_checks.items() if n)
    text = f"{passing} of {seeds} seeds pass every check{why}"
    if failing:
        text += f"; seeds failing {failing}"
    if seeds - ran:
        text += f"; {seeds - ran} fits failed to run"
    return text


def checks_test_clause(passing: int, p: float, rule: Rule) -> str:
    """Why that is too few: ' (none clean)' or ' (significantly fewer than half: binomial p = 0.035)'."""
    if passing == 0:
        return " (none clean)"
    return f" (significantly fewer than {share_words(rule.pass_share)}: binomial {p_text(p)} < {rule.checks_alpha:g})"


ESTIMAND_LABELS = {
    "sigma_b": "E[σ_b]",
    "log_sigma_b": "E[log σ_b]",
    "p_sigma_b_small": "P(σ_b < neck)",
    "sigma_a": "E[σ_a]",
    "log_sigma_a": "E[log σ_a]",
    "p_sigma_a_small": "P(σ_a < neck)",
}


def scale_label(scale: str) -> str:
    """A group-level scale in prose: the shorthand's σ_a and σ_b, a formula model's by its name ('sigma_1|herd')."""
    return {"sigma_b": "σ_b", "sigma_a": "σ_a"}.get(scale, scale)


def estimand_label(name: str) -> str:
    """An estimand's name in prose: 'E[log σ_b]'; a slope's 'E[b[<group>]]'."""
    return ESTIMAND_LABELS.get(name, f"E[{name}]")


def _one_test(test: BiasTest | ZTest) -> str:
    if hasattr(test, "chi2"):
        return (
            f"{estimand_label(test.estimand)} per-seed z: Σz² = {test.chi2:.1f} on {test.n} seeds "
            f"(max |z| {test.max_abs_z:.1f}, {test.off} with |z| ≥ 3), {p_text(test.p)}"
        )
    return (
        f"{estimand_label(test.estimand)} mean of {test.n} seeds {num(test.estimate)} against the reference "
        f"{num(test.target)}, t = {test.t:.1f}, {p_text(test.p)}"
    )


def bias_tests_reason(significant: Sequence[BiasTest | ZTest], m: int, alpha: float) -> str:
    """Why a form is biased: the tests that reject at alpha/m, e.g. 'biased against the reference (...)'."""
    shown = sorted(significant, key=lambda test: test.p)[:3]
    more = f"; and {len(significant) - 3} more" if len(significant) > 3 else ""
    return (
        f"biased against the reference ({len(significant)} of the form's {m} tests reject at {alpha:g}/{m}): "
        + "; ".join(_one_test(test) for test in shown)
        + more
    )


def interval_clause(
    pick: str, interval: Sequence[float], rule: Rule, *, sentence: bool = False, pair: Sequence[str] = PAIR
) -> str:
    """The ESS/s ratio's bootstrap interval where the speed decided (two forms or more pass): a clause, or a
    sentence. ``interval`` is of ``pair[1]`` ÷ ``pair[0]``."""
    if len(interval) != 2 or not all(np.isfinite(interval)) or pick == NEITHER:
        return ""
    lo, hi = interval
    first, second = FORM_NAMES[pair[0]], FORM_NAMES[pair[1]]
    leader = f"{second} ÷ {first}" if lo * hi >= 1 else f"{first} ÷ {second}"
    if lo * hi < 1:
        lo, hi = 1 / hi, 1 / lo
    span = f"{num(lo, 2)}–{num(hi, 2)} ({leader}; the band of 'either' is up to {rule.ess_factor:g})"
    if sentence:
        return f" The {rule.interval:.0%} bootstrap interval over seeds of the ratio of the {SPEED_NAME}: {span}."
    return f"; {rule.interval:.0%} bootstrap interval {span}"


def reference_line(verdict: Verdict) -> str:
    """The reference run's own checks, in one sentence (empty without a reference)."""
    checks: ReferenceChecks | None = verdict.reference_checks
    if verdict.bias_against_reference == "no reference":
        return ""
    if checks is None:
        return "The reference's own diagnostics were not given with it."
    what = "the collapsed model, PyMC's NUTS" if checks.model == "collapsed" else f"{checks.sampler} {checks.model}"
    said = (
        f"The reference ({what}, {checks.chains} chains × {checks.draws} draws): {checks.divergences:g} divergences, "
        f"R-hat max {checks.rhat_max:.4f}, ESS bulk/tail min {checks.ess_bulk_min:.0f}/{checks.ess_tail_min:.0f}, "
        f"E-BFMI min {checks.bfmi_min:.2f}"
    )
    if checks.passes:
        return said + ": it passes its checks."
    return (
        said + f": it fails {', '.join(checks.failed)}, so the bias tests against it are **unavailable** (not "
        "passed); the forms are compared with each other instead."
    )


def bias_reason(bias: BiasTest) -> str:
    return (
        f"E[σ_b] biased: mean of {bias.n} seeds {num(bias.estimate)} against the reference {num(bias.target)}, "
        f"t = {bias.t:.1f}, {p_text(bias.p)}"
    )


def disagreement_reason(between: BiasTest) -> str:
    """Without a reference, two forms that pass their checks but disagree on a scale's mean (E[σ_b])."""
    return (
        f"the forms disagree on {estimand_label(between.estimand)} (centered − non-centered {num(between.estimate)}, "
        f"Welch t = {between.t:.1f}, "
        f"{p_text(between.p)}) and both pass their checks: without a reference run "
        + (
            "(experiments.reference) the workflow cannot tell which is biased"
            if between.estimand == SIGMA_B
            else "(a formula model has none yet) the workflow cannot tell which is biased"
        )
    )


def caveat_lines(forms: Sequence[FormStats], recommended: Sequence[str]) -> list[str]:
    """The recommended form(s)' seeds that fail a check, one line per sampler × form."""
    return [
        f"with {f.sampler}, {f.seeds - f.passing} of {f.seeds} {FORM_NAMES[f.model]} seeds fail a check"
        + (f" ({checks})" if (checks := ", ".join(f"{k} on {n}" for k, n in f.failed_checks.items() if n)) else "")
        for f in forms
        if f.model in recommended and f.passes and f.passing < f.seeds
    ]


# ------------------------------------------------------------------ advice (funnel.advice's words)
#: A sampler's name in a sentence.
SAMPLER_NAMES = {"pymc": "PyMC's NUTS", "nutpie": "nutpie"}


def sampler_name(sampler: str) -> str:
    return SAMPLER_NAMES.get(sampler, sampler)


def seeds_text(k: int, n: int) -> str:
    """'1 of 8 seeds', '6 of 8 seeds', '1 seed' (n == 1)."""
    return f"{k} of {n} seeds" if n != 1 else f"{k} of 1 seed"


def diverging_problem(diverging: int, ran: int) -> str:
    return f"diverges on {seeds_text(diverging, ran)}"


def bfmi_problem(low: int, ran: int) -> str:
    return f"has a low E-BFMI on {seeds_text(low, ran)}"


def slow_problem(f: FormStats) -> str:
    ran = f.seeds - f.failed
    failing = [f"{name} on {n}" for name, n in f.failed_checks.items() if n and name in ("R-hat", "ESS")]
    return f"passes {seeds_text(f.passing, f.seeds)} (failing {', '.join(failing)} of {ran})"


def x_problem(name: str, mean: float, sd: float) -> str:
    return f"x ({name}) lies far from zero: mean {num(mean)}, sd {num(sd)}"


def target_accept_remedy(current: float, higher: float) -> str:
    if np.isfinite(current) and current >= higher:
        return f"raise target_accept above {current:g} (e.g. 0.99): smaller steps reach into the funnel's neck"
    now = f" from {current:g}" if np.isfinite(current) else ""
    return f"raise target_accept{now} to {higher:g} or more: smaller steps reach into the funnel's neck"


def divergence_evidence(f: FormStats) -> str:
    ran = f.seeds - f.failed
    return (
        f"{FORM_NAMES[f.model]} with {sampler_name(f.sampler)}: median {num(f.median_divergences, 2)} divergences "
        f"per seed, {f.failed_checks.get('divergences', 0)} of {ran} seeds with any"
    )


def sweep_evidence(outcome: str, low: float, high: float, before: float, after: float) -> str:
    said = "confirms it" if outcome == "confirmed" else "does not confirm it"
    return f"the target_accept sweep {said}: median divergences {before:g} at {low:g} and {after:g} at {high:g}"


def other_form_remedy(model: str) -> str:
    other = [m for m in FORMS if m != model]
    return f"use the {FORM_NAMES[other[0]]} form" if other else "use the other form"


def other_form_evidence(other: FormStats) -> str:
    return (
        f"the {FORM_NAMES[other.model]} form with {sampler_name(other.sampler)}: median "
        f"{num(other.median_divergences, 2)} divergences, {seeds_text(other.passing, other.seeds)} passing"
    )


def partial_remedy(fitted: bool) -> str:
    """The partial-centering remedy: the registered per-group form when the run did not fit it, else the
    continuous one (a weight between the two whole forms), which this workflow does not fit."""
    if not fitted:
        return (
            f"fit the {FORM_NAMES['partial']} form: add partial to fit.models (it centers a group's intercept or "
            "slope only where that group's data pin it down)"
        )
    return (
        "try a continuously partially centered form: b = μ_b + σ_b^(1−w)·η with η ~ Normal(0, σ_b^w), w between 0 "
        "(non-centered) and 1 (centered) (Papaspiliopoulos, Roberts & Sköld 2007; not fitted by this workflow)"
    )


def partial_evidence() -> str:
    return "neither extreme is clean on this data, so the best centering may lie between them"


def tuning_remedy(tune: float) -> str:
    now = f" (the run used tune = {tune:.0f})" if np.isfinite(tune) else ""
    return f"tune longer and draw more: raise fit.tune and fit.draws{now}"


def tuning_evidence(f: FormStats) -> str:
    return (
        f"{FORM_NAMES[f.model]} with {sampler_name(f.sampler)}: median ESS_bulk({scale_label(f.scale)}) "
        f"{_cell(f.median_ess_bulk_sigma_b, '.0f')}, R-hat or ESS failing without a divergence to blame"
    )


def center_x_remedy(name: str, mean: float) -> str:
    return (
        f"center x: fit on {name} − {num(mean)} (a modelling change: the intercepts then mean the value at the "
        "data's centre, and report slopes unchanged)"
    )


def center_x_evidence(name: str, mean: float, sd: float, offset: float) -> str:
    return (
        f"mean({name}) = {num(mean)} is {num(offset, 2)} standard deviations ({num(sd)}) from zero, so each group's "
        "intercept is an extrapolation to x = 0, strongly correlated with its slope: a narrow ridge that the "
        "sampler crosses slowly in either form"
    )


def remedy_line(remedy: Remedy) -> str:
    """One remedy as a line of advice: what to do, for what, and why."""
    who = (
        f"{FORM_NAMES[remedy.model]} with {sampler_name(remedy.sampler)} {remedy.problem}"
        if remedy.sampler
        else remedy.problem
    )
    kind = " (a modelling change)" if remedy.modelling else ""
    sweep = {"confirmed": " [confirmed by the sweep]", "rejected": " [the sweep did not confirm it]"}.get(
        remedy.sweep, ""
    )
    return f"{who}: **{remedy.text}**{kind}{sweep}. Evidence: {remedy.evidence}."


def _passes_text(f: FormStats) -> str:
    return f"{seeds_text(f.passing, f.seeds)} with {sampler_name(f.sampler)}"


def _fails_text(f: FormStats) -> str:
    """How a form fails with a sampler, by its commonest failed check: 'still diverges on 6 of 8 seeds'."""
    ran = f.seeds - f.failed
    if f.failed_checks.get("divergences", 0):
        return f"it still diverges on {seeds_text(f.failed_checks['divergences'], ran)}"
    checks = [(n, name) for name, n in f.failed_checks.items() if n]
    if checks:
        n, name = max(checks)
        return f"it fails {name} on {seeds_text(n, ran)}"
    if f.reasons:
        return f"it fails ({f.reasons[0]})"
    return f"it passes only {seeds_text(f.passing, f.seeds)}"


def first_remedy(remedies: Sequence[Remedy], sampler: str) -> Remedy | None:
    """The strongest remedy for one sampler (a sampler setting before a change of the model or the form)."""
    mine = [r for r in remedies if r.sampler == sampler and r.sweep != REJECTED]
    return mine[0] if mine else None


def headline_sentence(verdict: Verdict) -> str:
    """The verdict's headline in one sentence: the form, the sampler(s) it works with, what to do where it does not.

    'Use the non-centered form: it passes 8 of 8 seeds with nutpie; with PyMC's NUTS it still diverges on
    6 of 8 seeds: raise target_accept from 0.8 to 0.95 or more.'
    """
    v = verdict
    head = headline(v.recommendation, _fitted(v))
    if v.recommendation in FORMS:
        forms = [f for f in v.forms if f.model == v.recommendation]
        passing = [f for f in forms if f.passes]
        failing = [f for f in forms if not f.passes]
        text = f"{head}: it passes " + " and ".join(_passes_text(f) for f in passing)
        for f in failing:
            text += f"; with {sampler_name(f.sampler)} {_fails_text(f)}"
            remedy = first_remedy(v.advice, f.sampler)
            if remedy is not None:
                text += f": {remedy.text.split(':')[0]}"
        return text + "."
    if v.recommendation == NEITHER:
        top = [r for r in v.advice if r.sweep != "rejected"]
        first = f": first try to {top[0].text.split(':')[0]}" if top else ""
        every = (
            "with any sampler"
            if len(v.samplers) > 1
            else "with " + ", ".join(map(sampler_name, [s.sampler for s in v.samplers]))
        )
        return f"{head} {every}{first}."
    if all(f.passes for f in v.forms):
        return f"{head}: both pass with every sampler, at speeds within {v.rule['ess_factor']:g}× of each other."
    per = "; ".join(
        f"with {sampler_name(s.sampler)}, {headline(s.recommendation, _fitted(v)).lower()}" for s in v.samplers
    )
    return f"{head}: no form passes with every sampler, but each passes with some: {per}."


# ------------------------------------------------------------------ words
def p_text(p: float) -> str:
    """A p-value for prose: 'p = ' and two significant figures, 'p < 0.001' below that."""
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def ratio_text(ratio: float, pair: Sequence[str] = PAIR) -> str:
    """A non-centered ÷ centered ratio as the leading form's multiple: '2.8× centered', '31× non-centered'."""
    if not np.isfinite(ratio):
        return "n/a"
    if ratio >= 1:
        return f"{num(ratio, 2)}× {FORM_NAMES[pair[1]]}"
    return f"{num(1 / ratio, 2)}× {FORM_NAMES[pair[0]]}"


def ratio_interval_text(interval: Sequence[float], ratio: float) -> str:
    """The interval of a ratio in the orientation :func:`ratio_text` names it: ' [1.9–3.3]' after '2.8× centered'
    (the interval of centered ÷ non-centered), or '' without an interval."""
    if len(interval) != 2 or not all(np.isfinite(interval)) or not np.isfinite(ratio) or min(interval) <= 0:
        return ""
    lo, hi = interval if ratio >= 1 else (1 / interval[1], 1 / interval[0])
    return f" [{num(lo, 2)}–{num(hi, 2)}]"


def lead(ratio: float) -> str:
    """How many times the leading form's value is the other's, for prose ('2.8')."""
    return num(max(ratio, 1 / ratio), 2) if np.isfinite(ratio) and ratio > 0 else "n/a"


def headline(recommendation: str, forms: int = 2) -> str:
    """The verdict's headline; ``forms``: how many forms were fitted ("Neither" of two, "No form" of more)."""
    if recommendation in FORMS:
        return registered_form(recommendation).headline
    return {EITHER: "Either form", NEITHER: "Neither form passes" if forms <= 2 else "No form passes"}[recommendation]


def _fitted(v: Verdict) -> int:
    return len({f.model for f in v.forms})


def _failures(forms: Sequence[FormStats], model: str) -> str:
    parts = [f"{f.sampler}: {'; '.join(f.reasons)}" for f in forms if f.model == model and not f.passes]
    return f"{FORM_NAMES[model]} fails with " + " / ".join(parts) if parts else ""


def _both(count: int) -> str:
    return "both forms" if count == 2 else f"{count} forms"


def sampler_reason(
    pick: str, forms: Mapping[str, FormStats], ratio: float, ess_factor: float, pair: Sequence[str] = PAIR
) -> str:
    """Why a sampler's verdict is what it is, in words."""
    failing = [_failures(list(forms.values()), m) for m in forms if not forms[m].passes]
    failing = [text for text in failing if text]
    if pick == NEITHER:
        return "; ".join(failing) or "no form was fitted"
    if len([f for f in forms.values() if f.passes]) == 1:
        if not failing:
            return f"only the {FORM_NAMES[pick]} form was fitted, and it passes"
        return f"only the {FORM_NAMES[pick]} form passes ({'; '.join(failing)})"
    both = _both(len([f for f in forms.values() if f.passes]))
    if pick == EITHER:
        return f"{both} pass; median {SPEED_NAME} within {ess_factor:g}× ({ratio_text(ratio, pair)})"
    other = "the other's" if both == "both forms" else f"the runner-up's ({FORM_NAMES[_other(pair, pick)]})"
    return f"{both} pass; the {FORM_NAMES[pick]} form's median {SPEED_NAME} is {lead(ratio)}× {other}"


def _other(pair: Sequence[str], pick: str) -> str:
    return pair[0] if pick == pair[1] else pair[1]


def failure_lines(forms: Sequence[FormStats]) -> list[str]:
    """What failed, one line per sampler × form that does not pass: 'centered with pymc: ...'."""
    return [
        f"{FORM_NAMES[f.model]} with {f.sampler}: {'; '.join(f.reasons)}"
        for model in FORMS
        for f in forms
        if f.model == model and not f.passes
    ]


def overall_reason(
    pick: str,
    everywhere: Sequence[str],
    samplers: Sequence[SamplerVerdict],
    ratio: float,
    ess_factor: float,
    *,
    forms: Sequence[FormStats] = (),
    pair: Sequence[str] = PAIR,
) -> str:
    """The overall verdict's reason in one sentence (what failed is listed by :func:`failure_lines`); ``ratio`` is
    ``pair[1]`` ÷ ``pair[0]``, the fastest passing form and its runner-up."""
    names = ", ".join(s.sampler for s in samplers)
    every = "with every sampler" if len(samplers) > 1 else f"with {names}"
    mean = " (geometric mean over samplers)" if len(samplers) > 1 else ""
    if pick == NEITHER:
        return f"No form passes {every}."
    if pick in FORMS and pick not in everywhere:
        works = [sampler_name(f.sampler) for f in forms if f.model == pick and f.passes]
        others = [sampler_name(f.sampler) for f in forms if f.model == pick and not f.passes]
        return (
            f"No form passes with every sampler; the {FORM_NAMES[pick]} form passes with {', '.join(works)} "
            f"but not with {', '.join(others)}: use it with {', '.join(works)}, or see the advice for the others."
        )
    if pick == EITHER and not everywhere:
        return (
            "No form passes with every sampler, but each passes with some: choose the sampler first "
            "(per sampler, below)."
        )
    both = _both(len(everywhere)).capitalize()
    if pick == EITHER and len(everywhere) > 2:
        return (
            f"{both} pass {every}; the two fastest, the {FORM_NAMES[pair[0]]} and the {FORM_NAMES[pair[1]]} form, "
            f"have median {SPEED_NAME} within {ess_factor:g}× of each other ({ratio_text(ratio, pair)}{mean})."
        )
    if pick == EITHER:
        return (
            f"{both} pass {every}, and their median {SPEED_NAME} are within {ess_factor:g}× of each other "
            f"({ratio_text(ratio, pair)}{mean})."
        )
    if len(everywhere) == 1:
        return f"Only the {FORM_NAMES[pick]} form passes {every}."
    other = "the other" if len(everywhere) == 2 else f"the runner-up, the {FORM_NAMES[_other(pair, pick)]} form"
    return (
        f"{both} pass {every}; the {FORM_NAMES[pick]} form gives {lead(ratio)}× the median "
        f"{SPEED_NAME} of {other}{mean}, beyond the {ess_factor:g}× of 'either'."
    )


def _test_line(
    label: str, test: BiasTest | None, alpha: float, untested: str, flags: tuple[str, str], said: str
) -> str:
    """'<label>: <said>: <flag>.' with the flag chosen by the test's significance; '... not tested.' without it."""
    if test is None:
        return f"{label}: {untested}, not tested."
    return f"{label}: {said}: {flags[0] if test.significant(alpha) else flags[1]}."


def _form_bias_line(f: FormStats, alpha: float) -> str:
    """One sampler × form against the reference: the E[σ_b] t test, then the worst of its other tests."""
    label = f"{f.sampler} / {FORM_NAMES[f.model]}"
    tests = [test for pair in f.bias_tests for test in (pair.t, pair.z) if test is not None]
    if not tests:
        return f"{label}: fewer than 2 seeds, not tested."
    level = f.bias_level
    flag = "**biased**" if any(test.significant(level) for test in tests) else "no bias detected"
    parts = []
    if f.bias is not None:
        parts.append(
            f"mean of {f.bias.n} seeds {num(f.bias.estimate)} (sd {num(f.sd_sigma_b, 2)}), "
            f"t = {f.bias.t:.2f}, {p_text(f.bias.p)}"
            + (f", per-fit median |z| {f.median_abs_z:.1f}" if np.isfinite(f.median_abs_z) else "")
        )
    z = next((pair.z for pair in f.bias_tests if pair.estimand == SIGMA_B and pair.z is not None), None)
    if z is not None:
        parts.append(f"per-seed z: Σz² = {z.chi2:.1f} on {z.n}, {p_text(z.p)}")
    worst = min(tests, key=lambda test: test.p)
    if worst is not f.bias and worst is not z:
        parts.append(f"smallest p of the {len(tests)} tests: {_one_test(worst)}")
    else:
        parts.append(f"{len(tests)} tests, each at {alpha:g}/{f.bias_family}")
    return f"{label}: {'; '.join(parts)}: {flag}."


def bias_lines(verdict: Verdict) -> list[str]:
    """The bias-across-seeds sentences: the tests used (and the reference's own checks), then one per sampler (× form)."""
    alpha = verdict.rule["alpha"]
    reference = reference_line(verdict)
    if verdict.bias_against_reference == "tested" and verdict.reference is not None:
        ref = verdict.reference
        intro = (
            f"**Bias across seeds.** Against the reference run (E[σ_b] {num(ref['mean'])}, MCSE "
            f"{num(ref['mcse'], 2)}): for E[σ], E[log σ] and P(σ < neck) of σ_b and σ_a, the t test of the seeds' "
            "mean (the reference's MCSE in the standard error) and the χ² test of the seeds' z-scores (both MCSEs), "
            f"{alpha:g} family-wise per form over every sampler (Bonferroni)." + (f" {reference}" if reference else "")
        )
        return [intro] + [_form_bias_line(f, alpha) for f in verdict.forms]
    tests = max(s.between_tests for s in verdict.samplers) if verdict.samplers else 1
    what = (
        estimand_label(verdict.scale)
        if tests == 1
        else f"every group-level scale's posterior mean ({tests} scales, each at {alpha:g}/{tests}, Bonferroni; "
        "the smallest p is shown)"
    )
    if verdict.bias_against_reference == "unavailable":
        intro = f"**Bias across seeds.** {reference} The two forms' seed estimates of {what} are compared with Welch's t test instead."
    elif verdict.scale == SIGMA_B:
        intro = (
            f"**Bias across seeds.** No reference run, so the two forms' seed estimates of {what} are compared with "
            "Welch's t test (experiments.reference adds a reference run that says which form is off)."
        )
    else:
        intro = (
            f"**Bias across seeds.** No reference run (a formula model has none yet), so the two forms' seed "
            f"estimates of {what} are compared with Welch's t test."
        )
    return [intro] + [
        _test_line(
            s.sampler,
            s.between,
            alpha / s.between_tests,
            "fewer than 2 seeds of a form",
            ("the forms **disagree**", "no difference detected"),
            ""
            if s.between is None
            else ("" if s.between.estimand == SIGMA_B else f"{estimand_label(s.between.estimand)}: ")
            + f"centered − non-centered {num(s.between.estimate)}, t = {s.between.t:.2f} (df {s.between.df:.1f}), "
            f"{p_text(s.between.p)}, {s.between.n} seeds",
        )
        for s in verdict.samplers
    ]


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
    label = scale_label(verdict.scale)
    for f in verdict.forms:
        s = verdict.sampler(f.sampler)
        if f.bias_tests:
            tests = [test for pair in f.bias_tests for test in (pair.t, pair.z) if test is not None]
            worst = min((test.p for test in tests), default=float("nan"))
            bias = f"{len(tests)} tests, smallest {p_text(worst)}" + (
                f"; E[σ_b] t = {f.bias.t:.2f}" if f.bias is not None else ""
            )
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
                f"median ESS_bulk({label})": _cell(f.median_ess_bulk_sigma_b, ".0f"),
                "median ESS/s of the slowest scale, clean seeds": _cell(f.median_ess_per_s),
                "ESS ratio": ratio_text(s.ratio_ess, s.compared),
                "ESS/s ratio": ratio_text(s.ratio_ess_per_s, s.compared)
                + ratio_interval_text(s.ratio_interval, s.ratio_ess_per_s),
                f"E[{label}] over seeds, mean ± sd": f"{_cell(f.mean_sigma_b)} ± {num(f.sd_sigma_b, 2)}",
                "bias tests": bias,
                "passes": "yes" if f.passes else "no",
            }
        )
    return rows


def _md_inline(text: str) -> str:
    """**bold** to <strong> in escaped HTML (funnel.escape)."""
    parts = html_text(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def advice_html(verdict: Verdict) -> str:
    """The advice as an ordered list, strongest evidence first ('' without advice)."""
    if not verdict.advice:
        return ""
    items = "".join(f"<li>{_md_inline(remedy_line(r))}</li>" for r in verdict.advice)
    return (
        "<div class='advice'><p><strong>What to try</strong>, strongest evidence from this run first:</p>"
        f"<ol>{items}</ol></div>"
    )


def evidence_summary(verdict: Verdict) -> str:
    """The line that opens the folded evidence: what is inside."""
    forms = len(verdict.forms)
    failing = len(verdict.failures)
    return (
        f"The evidence: {plural(forms, 'sampler × form')} over their seeds"
        + (f", {failing} failing" if failing else ", all passing")
        + "; the rule; the bias tests"
    )


def verdict_html(
    verdict: Verdict,
    *,
    figures: Sequence[tuple[str, str, str]] = (),
    figure_caption: str = "",
    heading_level: int = 3,
    open_evidence: bool = False,
) -> str:
    """The verdict as an HTML fragment: the headline sentence and its reason, what to try, the figures, then
    the evidence folded (<details>: what failed, caveats, the rule, the table, the bias tests), the experiments.

    ``figures`` are (image src, link href, alt text), shown full width, each linking to its page, above
    ``figure_caption`` (a sentence saying what to see). Every string goes through funnel.escape.
    """
    h = f"h{heading_level}"
    v = verdict
    parts = [
        f"<div class='verdict verdict-{html_text(v.recommendation.replace(' ', '-'))}'>",
        f"<{h} class='recommend'>Verdict: {html_text(headline_sentence(v))}</{h}>",
        f"<p class='reason'>{_md_inline(v.reason)}</p>",
    ]
    if v.advice:
        parts.append(advice_html(v))
    if figures:
        parts.append("<div class='figures'>")
        for src, href, alt in figures:
            parts.append(
                f"<a href='{html_text(href)}'><img src='{html_text(src)}' alt='{html_text(alt)}' "
                f"title='{html_text(alt)}'></a>"
            )
        parts.append("</div>")
        if figure_caption:
            parts.append(f"<p class='caption'>{html_text(figure_caption)}</p>")
    parts.append(f"<details class='evidence'{' open' if open_evidence else ''}>")
    parts.append(f"<summary>{html_text(evidence_summary(v))}</summary>")
    if v.failures:
        parts.append("<ul class='failures'>" + "".join(f"<li>{_md_inline(line)}</li>" for line in v.failures) + "</ul>")
    if v.caveats:
        parts.append(f"<p class='caveat'><em>Caveat:</em> {html_text(caveat_text(v))}</p>")
    # The rule's fixed words (no data in them) in a text node: only <, > and & need escaping.
    parts.append(f"<p class='rule'><em>The rule.</em> {html.escape(v.rule['text'], quote=False)}</p>")
    if len(v.samplers) > 1:
        per = "; ".join(f"{s.sampler}: {headline(s.recommendation, _fitted(v)).lower()}" for s in v.samplers)
        parts.append(f"<p>Per sampler: {html_text(per)}.</p>")
    rows = table_rows(v)
    if rows:
        columns = list(rows[0])
        parts.append("<table class='verdict-table'><thead><tr>")
        parts += [f"<th>{html_text(c)}</th>" for c in columns]
        parts.append("</tr></thead><tbody>")
        for index, row in enumerate(rows):
            first = index == 0 or rows[index - 1]["sampler"] != row["sampler"]
            span = sum(r["sampler"] == row["sampler"] for r in rows)
            parts.append("<tr>")
            for c in columns:
                if c in ("sampler", "ESS ratio", "ESS/s ratio"):
                    if first:
                        parts.append(f"<td rowspan='{span}'>{html_text(row[c])}</td>")
                    continue
                parts.append(f"<td>{html_text(row[c])}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
        parts.append(
            "<p class='note'>Medians over the seeds whose fit ran (the ESS per second of the slowest group-level "
            "scale, σ_a or σ_b per seed: over the seeds that pass every check); the ratios compare the two forms' "
            "medians, named after the form that leads, the ESS/s ratio with its bootstrap interval over seeds.</p>"
        )
    intro, *per_group = bias_lines(v)
    parts.append(f"<p class='bias'>{_md_inline(intro)}</p>")
    parts.append("<ul class='bias'>" + "".join(f"<li>{_md_inline(line)}</li>" for line in per_group) + "</ul>")
    parts.append(f"<p class='why'>{html_text(WHY_SEEDS)}</p>")
    parts.append("</details>")
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
    ".verdict .advice ol{margin:.2em 0 .6em}.verdict .advice li{margin:.3em 0}"
    ".verdict details.evidence{margin:.6em 0}.verdict details.evidence>summary{cursor:pointer;color:#2b6cb0}"
    ".verdict .figures a{display:block;margin:.5em 0}"
    ".verdict .figures img{width:100%;max-width:64em;height:auto;border:1px solid #ddd}"
)


def verdict_page(verdict: Verdict, title: str | None = None) -> str:
    """A self-contained HTML page of the verdict (for snakemake --report and the index's link)."""
    title = title or f"{verdict.dataset}: the verdict"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html_text(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:72em;margin:2em auto;line-height:1.45}"
        f"{VERDICT_CSS}</style></head><body>\n<h1>{html_text(title)}</h1>\n"
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
        f"# {v.dataset}: {headline(v.recommendation, _fitted(v))}",
        "",
        f"**{headline_sentence(v)}**",
        "",
        v.reason,
        "",
        *(
            ["## What to try", "", *(f"{i}. {remedy_line(r)}" for i, r in enumerate(v.advice, 1)), ""]
            if v.advice
            else []
        ),
        *([f"- {line}" for line in v.failures] + [""] if v.failures else []),
        *([f"*Caveat:* {caveat_text(v)}", ""] if v.caveats else []),
        f"*The rule.* {v.rule['text']}",
        "",
    ]
    if len(v.samplers) > 1:
        lines += [
            "Per sampler: "
            + "; ".join(f"{s.sampler}: {headline(s.recommendation, _fitted(v)).lower()}" for s in v.samplers)
            + ".",
            "",
        ]
    rows = table_rows(v)
    if rows:
        columns = list(rows[0])
        lines.append("| " + " | ".join(md_cell(c) for c in columns) + " |")
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(md_cell(row[c]) for c in columns) + " |" for row in rows]
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
    z = z_column(SIGMA_B)
    if z in fits.columns and fits[z].notna().any():
        lines.append("Reference run, per-fit z-scores of E[σ_b]: " + bias_sentence(fits[ran_ok(fits)]))
    if target_accept_summary is not None and len(target_accept_summary):
        lines.append("target_accept sweep: " + target_accept_sentence(target_accept_summary))
    if rows_summary is not None and len(rows_summary):
        lines.append("Rows per group: " + crossover_sentence(rows_summary))
    return lines
