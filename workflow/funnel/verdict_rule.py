"""The verdict's rule, stated once: its parameters and its outcomes.

:mod:`funnel.verdict` applies it to a dataset's fits; :mod:`funnel.verdict_text` words it
(:func:`~funnel.verdict_text.rule_text` on every verdict page, :func:`~funnel.verdict_text.rule_markdown`
for the docs). In short, with one sampler a form **passes** when

1. more than ``pass_share`` of its seeds pass every check of :data:`funnel.records.CHECKS` (a seed whose
   fit failed does not), and
2. the bias test of its seeds' E[σ_b] finds none at level ``alpha`` (with fewer than two seeds only the
   checks count);

then one passing form is recommended; two are compared by their median ESS(σ_b) per second, "either"
within a factor ``ess_factor``; none: "neither passes". Across samplers the same applies to "passes with
every sampler", the speed compared by the geometric mean over samplers of the per-sampler ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import MODELS

#: The forms the verdict compares, and its two other outcomes.
FORMS = MODELS
EITHER = "either"
NEITHER = "neither passes"
RECOMMENDATIONS = (*FORMS, EITHER, NEITHER)
#: What a target_accept sweep says of the remedy "raise target_accept" (funnel.advice).
CONFIRMED, REJECTED = "confirmed", "rejected"


@dataclass(frozen=True)
class Rule:
    """The rule's parameters (the module's docstring states the rule):

    ``pass_share``  a form passes when more than this share of its seeds pass every check (a majority);
    ``alpha``       the significance level of the bias test (two-sided);
    ``ess_factor``  two passing forms whose ESS(σ_b)/s are within this factor of each other: "either".
    """

    pass_share: float = 0.5
    alpha: float = 0.01
    ess_factor: float = 1.5


RULE = Rule()
PASS_SHARE, ALPHA, ESS_FACTOR = RULE.pass_share, RULE.alpha, RULE.ess_factor
