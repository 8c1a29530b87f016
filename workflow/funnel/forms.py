"""The registry of model forms: one entry per parameterization of the group-specific effects.

Following numpyro's ``LocScaleReparam``, a form is the *centeredness* of each group-specific effect
(intercept ``a``, slope ``b``) per group: 1 = centered (``a_g ~ Normal(mu_a, sigma_a)`` sampled
directly), 0 = non-centered (``a_g = mu_a + sigma_a · a_offset_g``, ``a_offset_g ~ Normal(0, 1)``).
:func:`funnel.models.build_model` builds any such mix the same way (Betancourt's mixed
parameterisation: index arrays of centered and non-centered groups), keeping ``a`` and ``b`` under
the same names and dimensions in every form, so that the diagnostics, tables and report read every
form alike.

Every reader of the forms (the fit and SBC jobs, the config schema's enums, the verdict, the report's
colours, figure lists and prose) takes them from :data:`FORMS`. Adding a form is one :class:`Form`
here (its ``centering`` function, its words and colour) and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .datasets import ModelData

#: The group-specific effects, each with its group-level mean and scale (``mu_a``, ``sigma_a``, ...).
EFFECTS = ("a", "b")


@dataclass(frozen=True)
class Centering:
    """Which groups' effects a form samples centered: effect -> one bool per group (True = centered), and
    what the choice was made from (``record``: flat fields that go into each fit's record)."""

    centered: Mapping[str, np.ndarray]
    record: Mapping[str, Any] = field(default_factory=dict)

    def mask(self, effect: str, n_groups: int) -> np.ndarray:
        mask = np.asarray(self.centered[effect], dtype=bool)
        if mask.shape != (n_groups,):
            raise ValueError(f"the centering of {effect} has shape {mask.shape}; expected ({n_groups},)")
        return mask


def _uniform(value: bool) -> Callable[[ModelData, str], Centering]:
    def centering(data: ModelData, priors: str) -> Centering:
        return Centering({e: np.full(data.n_groups, value) for e in EFFECTS})

    return centering


@dataclass(frozen=True)
class Form:
    """One parameterization.

    ``name``        its name in the config, paths and tables;
    ``prose``       its name in sentences ("non-centered");
    ``color``       its colour in every figure;
    ``centering``   (data, priors) -> :class:`Centering`: which groups' effects are centered;
    ``record_fields`` the extra fields its fits' records carry (name -> meaning), from ``Centering.record``;
    ``description`` one line for the docs;
    ``split_text``  a fit's record -> a sentence on its split for the report ('' for a whole form);
    ``rule``        () -> the constants its centering depends on besides the data (part of a fit's store key).
    """

    name: str
    prose: str
    color: str
    centering: Callable[[ModelData, str], Centering]
    description: str
    record_fields: Mapping[str, str] = field(default_factory=dict)
    split_text: Callable[[Mapping[str, Any]], str] = lambda record: ""
    rule: Callable[[], Mapping[str, Any]] = dict  # what its centering depends on besides the data (store keys)

    @property
    def headline(self) -> str:
        return f"Use the {self.prose} form"

    @property
    def plain_description(self) -> str:
        """The description for readers of the report: without its pointer to the library module (for developers)."""
        return self.description.split(" (funnel.")[0]


def _partial(data: ModelData, priors: str) -> Centering:
    from .partial import partial_centering

    return Centering(*partial_centering(data, priors))


def _partial_text(record: Mapping[str, Any]) -> str:
    from .partial import split_text

    return split_text(record)


def _partial_rule() -> dict[str, Any]:
    from . import partial

    return {"intercept": partial.INTERCEPT_THRESHOLD, "slope": partial.SLOPE_THRESHOLD, "pilot": partial.PILOT}


def _registry(*forms: Form) -> dict[str, Form]:
    return {form.name: form for form in forms}


#: Every form, in a fixed order (the order of tables, figures and the verdict's ratios).
FORMS: dict[str, Form] = _registry(
    Form(
        "centered",
        "centered",
        "#c0392b",
        _uniform(True),
        "every group's intercept and slope sampled directly",
    ),
    Form(
        "noncentered",
        "non-centered",
        "#2471a3",
        _uniform(False),
        "every group's intercept and slope as mean + scale × a standard-normal offset",
    ),
    Form(
        "partial",
        "partially centered",
        "#27ae60",
        _partial,
        "per group and effect, centered where the group's data pin the effect down (funnel.partial)",
        record_fields={
            "centered_a": "groups whose intercept is sampled centered (partial form)",
            "centered_b": "groups whose slope is sampled centered (partial form)",
            "pilot_eps": "the pilot's residual scale eps (partial form)",
            "pilot_sigma_a": "the pilot's sigma_a (partial form)",
            "pilot_sigma_b": "the pilot's sigma_b (partial form)",
            "pilot_seconds": "the pilot's time in seconds (partial form)",
        },
        split_text=_partial_text,
        rule=_partial_rule,
    ),
)
NAMES: tuple[str, ...] = tuple(FORMS)


def form(name: str) -> Form:
    """The registered form ``name``; a clear error naming the registered ones otherwise."""
    try:
        return FORMS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(NAMES)}") from None


def rule_key(model: str) -> dict[str, Any]:
    """The store-key part of a form's rule (:attr:`Form.rule`): ``{'form_rule': <its constants>}`` for a form whose
    centering follows a rule (partial: a changed threshold recomputes its fits, MAP points and SBC records), ``{}``
    for a whole form or an unregistered name (so their keys are what they were before forms had rules). Every store
    key of a form-specific entry adds it (funnel.fitting.settings_key, funnel.sbc.SBCSettings.key_parts,
    funnel.batch.MapBatch)."""
    registered = FORMS.get(model)
    rule = dict(registered.rule()) if registered is not None else {}
    return {"form_rule": rule} if rule else {}


def split_text(record: Mapping[str, Any]) -> str:
    """A fit's split in a sentence (a leading space), from its record: '' for a whole form or a record without it."""
    registered = FORMS.get(str(record.get("model", "")))
    if registered is None or not all(name in record for name in registered.record_fields):
        return ""
    return registered.split_text(record)
