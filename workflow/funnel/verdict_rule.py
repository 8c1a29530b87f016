"""The verdict's rule, stated once: its parameters and its outcomes.

:mod:`funnel.verdict` applies it to a dataset's fits; :mod:`funnel.verdict_text` words it
(:func:`~funnel.verdict_text.rule_text` on every verdict page, :func:`~funnel.verdict_text.rule_markdown`
for the docs). In short, with one sampler a form **passes** when

1. its seeds pass every check of :data:`funnel.records.CHECKS` (a seed whose fit failed does not) not
   significantly less often than ``pass_share``: a one-sided exact binomial test of its clean seeds
   against ``pass_share`` gives p ≥ ``checks_alpha``, and at least one seed is clean;
2. the bias tests find none. Against a reference run that passes its own checks: for each group-level
   scale's E[σ], E[log σ] and P(σ < neck), the t test of the seeds' mean and the χ² test of the seeds'
   per-fit z-scores (Σz² against χ²_n, each z with both MCSEs), every one at ``alpha / m`` (Bonferroni over
   the form's m tests with every sampler: its family-wise false-alarm rate is at most ``alpha``). Without a usable
   reference: Welch's t test of E[σ_b] between the two forms at ``alpha``. With fewer than two seeds only the
   checks count;

then one passing form is recommended; two or more are compared by their speed, the median over the seeds
that pass their checks of the bulk ESS per second of sampling of the slowest-mixing group-level scale (each
seed's smaller of σ_a's and σ_b's, :data:`SPEED`): the fastest against the runner-up, with a bootstrap interval
over seeds (level ``interval``, ``bootstrap``
resamples from the fixed ``bootstrap_seed``): a form is preferred only when the whole interval lies
beyond the ``ess_factor`` band, else "either"; none: "neither passes". Across samplers the same applies to
"passes with every sampler", the speed compared by the geometric mean over samplers of the per-sampler
ratios (its interval from the same resamples).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import MODELS
from .records import SLOWEST_SCALE_PER_S

#: The forms the verdict compares (every registered one, funnel.forms), and its two other outcomes.
FORMS = MODELS
#: The two whole forms: what the ratios compare when no other form is fitted (non-centered ÷ centered).
PAIR = ("centered", "noncentered")
#: The speed criterion, stated once: each seed's bulk ESS per second of sampling of its slowest-mixing group-level
#: scale (records column: the smaller of σ_a's and σ_b's), its median over a form's clean seeds; among passing forms
#: the fastest on it wins, by the ratio to the runner-up. A form is as slow as its worst-mixing scale: σ_b is the
#: funnel's neck on some data, σ_a (the intercepts' scale) on others.
SPEED = SLOWEST_SCALE_PER_S
#: Its name in a sentence, and in full.
SPEED_NAME = "ESS per second of the slowest group-level scale"
SPEED_TEXT = (
    "median, over the seeds that pass every check, of the bulk ESS per second of sampling of the slowest-mixing "
    "group-level scale (each seed's smaller of σ_a's and σ_b's)"
)
EITHER = "either"
NEITHER = "neither passes"
RECOMMENDATIONS = (*FORMS, EITHER, NEITHER)
#: What a target_accept sweep says of the remedy "raise target_accept" (funnel.advice).
CONFIRMED, REJECTED = "confirmed", "rejected"


@dataclass(frozen=True)
class Rule:
    """The rule's parameters (the module's docstring states the rule):

    ``pass_share``     the share of clean seeds a sound form is expected to reach (a majority);
    ``checks_alpha``   a form fails its checks when its clean seeds fall significantly below ``pass_share``
                       (one-sided exact binomial test at this level), or none is clean;
    ``alpha``          the family-wise level of a form's bias tests (Bonferroni over them);
    ``ess_factor``     two passing forms whose speeds (:data:`SPEED`) are within this factor of each other: "either";
    ``interval``       the level of the bootstrap interval of the ESS/s ratio;
    ``bootstrap``      its resamples over seeds; ``bootstrap_seed`` its fixed random seed.
    """

    pass_share: float = 0.5
    alpha: float = 0.01
    ess_factor: float = 1.5
    checks_alpha: float = 0.2
    interval: float = 0.95
    bootstrap: int = 2000
    bootstrap_seed: int = 23


RULE = Rule()
PASS_SHARE, ALPHA, ESS_FACTOR = RULE.pass_share, RULE.alpha, RULE.ess_factor
CHECKS_ALPHA, INTERVAL = RULE.checks_alpha, RULE.interval
