"""What to try next: remedies for the failures a verdict records, ranked by this run's evidence.

Pure functions over the typed verdict (:class:`funnel.verdict.Verdict`), a few facts about the data
(:func:`x_facts`) and, when the target_accept sweep ran, its summary table. Each failure mode maps to
the remedies the Bayesian-workflow literature gives for it (Betancourt & Girolami 2015, "Hamiltonian
Monte Carlo for hierarchical models"; Papaspiliopoulos, Roberts & Sköld 2007 on partial centering;
Gelman et al. 2020, "Bayesian workflow"):

=====================  =====================================================================
failure                remedies, strongest first
=====================  =====================================================================
divergences            a higher target_accept (smaller steps); the other form; a partially
                       centered form
low E-BFMI             the other form (the sampler's energy cannot cross the funnel's levels)
too few seeds pass     more tuning (tune, draws): R-hat and ESS failing without divergences
(R-hat, ESS)
x far from zero        center x (a modelling change: the intercepts then sit at the data's
                       centre, and their correlation with the slopes falls)
=====================  =====================================================================

A remedy's ``score`` is the share of the seeds that show its failure (for centering x, how far
x's mean lies from zero in standard deviations, capped at 1); the target_accept sweep, where it
ran for the sampler and form concerned, confirms the remedy (moved to the top) or rejects it
(moved down). The words are :mod:`funnel.verdict_text`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from . import verdict_text as words
from .verdict_rule import CONFIRMED, FORMS, REJECTED

if TYPE_CHECKING:
    from .verdict import FormStats, Verdict

#: The remedies, by kind.
TARGET_ACCEPT, OTHER_FORM, PARTIAL, MORE_TUNING, CENTER_X = (
    "raise target_accept",
    "the other form",
    "partial centering",
    "more tuning",
    "center x",
)
REMEDIES = (TARGET_ACCEPT, OTHER_FORM, PARTIAL, MORE_TUNING, CENTER_X)
#: x is "far from zero" when |mean(x)| exceeds this many standard deviations of x.
X_OFFSET = 2.0
#: The target_accept a remedy proposes when the run used less.
HIGHER_TARGET_ACCEPT = 0.95


@dataclass(frozen=True)
class Remedy:
    """One thing to try, for one sampler × form's failure (``sampler`` and ``model`` empty: for every fit)."""

    kind: str  # one of REMEDIES
    sampler: str
    model: str
    problem: str  # the failure it answers, in words ("diverges on 6 of 8 seeds")
    score: float  # the evidence from this run, for ranking (larger first)
    modelling: bool  # a change to the model, not to the sampler's settings
    sweep: str  # CONFIRMED, REJECTED, or "" (the sweep did not run for this sampler × form)
    text: str  # the remedy in words
    evidence: str  # why, from this run's numbers (and the sweep's)


@dataclass(frozen=True)
class XFacts:
    """What the advice needs to know of the predictor x."""

    name: str
    mean: float
    sd: float

    @property
    def offset(self) -> float:
        """|mean(x)| in standard deviations of x (inf for a constant x off zero)."""
        if not math.isfinite(self.mean) or not math.isfinite(self.sd):
            return math.nan
        if self.sd == 0:
            return 0.0 if self.mean == 0 else math.inf
        return abs(self.mean) / self.sd

    @property
    def far_from_zero(self) -> bool:
        return bool(self.offset > X_OFFSET)


def x_facts(table: pd.DataFrame, x: str) -> XFacts:
    """The mean and standard deviation of the column ``x`` of the model's table."""
    values = pd.to_numeric(table[x], errors="coerce").dropna()
    return XFacts(str(x), float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan)


# ------------------------------------------------------------------ the failure modes
def _ran(f: FormStats) -> int:
    return f.seeds - f.failed


def _share(f: FormStats, check: str) -> float:
    ran = _ran(f)
    return f.failed_checks.get(check, 0) / ran if ran else 0.0


def _sweep_outcome(summary: pd.DataFrame | None, sampler: str, model: str) -> tuple[str, str]:
    """Whether the target_accept sweep removed the divergences of ``sampler`` × ``model``: (outcome, words)."""
    if summary is None or not len(summary) or "divergences_median" not in summary.columns:
        return "", ""
    rows = summary[summary["sampler"].astype(str).eq(sampler) & summary["model"].astype(str).eq(model)]
    if len(rows) < 2:
        return "", ""
    rows = rows.sort_values("target_accept")
    low, high = rows.iloc[0], rows.iloc[-1]
    before, after = float(low["divergences_median"]), float(high["divergences_median"])
    works = after == 0 or (before > 0 and after <= before / 2)
    outcome = CONFIRMED if works else REJECTED
    return outcome, words.sweep_evidence(
        outcome, float(low["target_accept"]), float(high["target_accept"]), before, after
    )


def _setting(fits: pd.DataFrame | None, sampler: str, model: str, column: str) -> float:
    """The value of a sampler setting (target_accept, tune) the fits of ``sampler`` × ``model`` used."""
    if fits is None or column not in fits.columns:
        return math.nan
    rows = fits[fits["sampler"].astype(str).eq(sampler) & fits["model"].astype(str).eq(model)]
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.max()) if len(values) else math.nan


def remedies_for(
    f: FormStats,
    other: FormStats | None,
    *,
    fits: pd.DataFrame | None = None,
    target_accept_summary: pd.DataFrame | None = None,
    partial: bool = True,
) -> list[Remedy]:
    """The remedies for one sampler × form that does not pass, each scored by how many seeds show its failure
    (``partial``: whether partial centering is a remedy the workflow can fit for this model; not for a formula's)."""
    out: list[Remedy] = []
    ran = _ran(f)
    diverging = f.failed_checks.get("divergences", 0)
    if diverging:
        share = _share(f, "divergences")
        problem = words.diverging_problem(diverging, ran)
        current = _setting(fits, f.sampler, f.model, "target_accept")
        sweep, sweep_words = _sweep_outcome(target_accept_summary, f.sampler, f.model)
        score = share + 1.0 if sweep == CONFIRMED else share * 0.25 if sweep == REJECTED else share
        out.append(
            Remedy(
                TARGET_ACCEPT,
                f.sampler,
                f.model,
                problem,
                score,
                False,
                sweep,
                words.target_accept_remedy(current, HIGHER_TARGET_ACCEPT),
                words.divergence_evidence(f) + (f"; {sweep_words}" if sweep_words else ""),
            )
        )
        if other is not None and other.median_divergences < f.median_divergences:
            out.append(
                Remedy(
                    OTHER_FORM,
                    f.sampler,
                    f.model,
                    problem,
                    share * (0.9 if other.passes else 0.6),
                    False,
                    "",
                    words.other_form_remedy(f.model),
                    words.other_form_evidence(other),
                )
            )
        if partial:
            out.append(
                Remedy(
                    PARTIAL,
                    f.sampler,
                    f.model,
                    problem,
                    share * 0.5,
                    False,
                    "",
                    words.partial_remedy(fits is not None and "partial" in set(fits["model"].astype(str))),
                    words.partial_evidence(),
                )
            )
    low_energy = f.failed_checks.get("E-BFMI", 0)
    if low_energy and other is not None:
        out.append(
            Remedy(
                OTHER_FORM,
                f.sampler,
                f.model,
                words.bfmi_problem(low_energy, ran),
                _share(f, "E-BFMI") * (1.0 if other.passes else 0.7),
                False,
                "",
                words.other_form_remedy(f.model),
                words.other_form_evidence(other),
            )
        )
    slow = max(f.failed_checks.get("R-hat", 0), f.failed_checks.get("ESS", 0))
    if slow:
        tune = _setting(fits, f.sampler, f.model, "tune")
        out.append(
            Remedy(
                MORE_TUNING,
                f.sampler,
                f.model,
                words.slow_problem(f),
                slow / ran if ran else 0.0,
                False,
                "",
                words.tuning_remedy(tune),
                words.tuning_evidence(f),
            )
        )
    # One remedy of each kind per sampler × form: the better-scored one.
    best: dict[str, Remedy] = {}
    for remedy in out:
        if remedy.kind not in best or remedy.score > best[remedy.kind].score:
            best[remedy.kind] = remedy
    return sorted(best.values(), key=lambda r: -r.score)


def concerned(verdict: Verdict) -> list[FormStats]:
    """The sampler × forms the advice is for: the recommended form where it does not pass, or every failing form."""
    if verdict.recommendation in FORMS:
        return [f for f in verdict.forms if f.model == verdict.recommendation and not f.passes]
    return [f for f in verdict.forms if not f.passes]


def advise(
    verdict: Verdict,
    *,
    x: XFacts | None = None,
    fits: pd.DataFrame | None = None,
    target_accept_summary: pd.DataFrame | None = None,
    partial: bool = True,
) -> list[Remedy]:
    """The remedies for what failed in ``verdict``, strongest evidence first ([] when nothing needs one).

    ``x``: the predictor's mean and sd (:func:`x_facts`), for the centering remedy; ``fits``: the per-seed
    table, for the settings the run used; ``target_accept_summary``: the sweep's summary, which confirms
    or rejects raising target_accept; ``partial``: whether partial centering can be offered (the workflow fits it for
    the columns shorthand's model only).
    """
    failing = concerned(verdict)
    out: list[Remedy] = []
    for f in failing:
        others = [o for o in verdict.forms if o.sampler == f.sampler and o.model != f.model]
        out += remedies_for(
            f, others[0] if others else None, fits=fits, target_accept_summary=target_accept_summary, partial=partial
        )
    troubled = failing or [f for f in verdict.forms if f.passing < f.seeds]
    if x is not None and x.far_from_zero and troubled:
        out.append(
            Remedy(
                CENTER_X,
                "",
                "",
                words.x_problem(x.name, x.mean, x.sd),
                min(1.0, x.offset / (2 * X_OFFSET)),
                True,
                "",
                words.center_x_remedy(x.name, x.mean),
                words.center_x_evidence(x.name, x.mean, x.sd, x.offset),
            )
        )
    return rank(out)


def rank(remedies: Sequence[Remedy]) -> list[Remedy]:
    """Strongest evidence first; ties: sampler settings before model changes, then the table's order of kinds."""
    return sorted(remedies, key=lambda r: (-r.score, r.modelling, REMEDIES.index(r.kind)))


def by_sampler(remedies: Sequence[Remedy]) -> Mapping[str, list[Remedy]]:
    out: dict[str, list[Remedy]] = {}
    for remedy in remedies:
        out.setdefault(remedy.sampler, []).append(remedy)
    return out
