"""A dataset's model, ready to build in any form: its design, family, priors, names and tracked levels.

The fit jobs, SBC and the diagnostics read a :class:`ModelSpec` instead of the columns shorthand's
:class:`~funnel.datasets.ModelData` alone:

- :func:`shorthand_spec` is the varying-intercept, varying-slope model ``y ~ 1 + x + (1 + x | group)`` of a
  ``columns`` dataset (radon's), with the blog's names and a named prior set: :meth:`ModelSpec.build` is
  :func:`funnel.models.build_model`, draw for draw, in every registered form;
- :func:`formula_spec` is a formula dataset's (``datasets.<name>.formula``), read from its cleaned table and
  record (:func:`funnel.datasets.clean_formula`): the grouping factors keep their column names as the traces'
  dimensions, the priors are ``auto`` with the user's replacing theirs. Its forms are the whole ones
  (``centered``, ``noncentered``: every group-specific term centered, or none); the ``partial`` form's pilot
  is the Gaussian shorthand's marginal likelihood, so it is refused here with that reason.

Nothing here imports PyMC until a model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import ModelData, read_formula_table
from .errors import DataError
from .formula import Design, parse_formula
from .glm import Naming, Structure, build_glm, structure, term_names
from .io import read_json

#: The forms a formula model is built in: each group-specific term centered or not, all alike.
WHOLE_FORMS = {"centered": True, "noncentered": False}


@dataclass(frozen=True)
class ModelSpec:
    """One dataset's model: build it in a form with :meth:`build`; :attr:`structure` names its variables by role
    and :attr:`track_levels` the level of each grouping dimension whose effects the diagnostics track."""

    dataset: str
    design: Design
    family: str
    priors: Any  # a named set (str, the shorthand's), "auto", or a mapping of parameters to priors
    naming: Naming
    track_levels: Mapping[str, str]  # dimension -> tracked level
    data: ModelData | None = field(default=None, compare=False)  # the shorthand's arrays (its own model builder)

    @property
    def structure(self) -> Structure:
        return structure(self.design, self.family, self.naming)

    @property
    def effect_dims(self) -> dict[str, str]:
        """Each one-column effect's level dimension (the effects :attr:`structure` names)."""
        dims = {term_names(t, self.naming).effect: term_names(t, self.naming).level_dim for t in self.design.group}
        return {effect: dims[effect] for effect in self.structure.effects}

    @property
    def n_groups(self) -> int:
        """The size the memory estimate (:func:`funnel.limits.estimate`) counts in groups of the shorthand (two
        coefficients each, an intercept and a slope): the shorthand's groups, else the model's group-level
        coefficients, two to a group, rounded up."""
        if self.data is not None:
            return self.data.n_groups
        coefficients = sum(len(term.levels) * len(term.columns) for term in self.design.group)
        return -(-coefficients // 2)

    def build(self, form: str, mutable_y: bool = False) -> Any:
        """The ``pm.Model`` in ``form`` (``mutable_y``: the outcome in a ``pm.Data`` container, for SBC)."""
        if self.data is not None:
            from .models import build_model

            return build_model(self.data, form, self.priors, mutable_y=mutable_y)
        if form not in WHOLE_FORMS:
            raise DataError(
                f"dataset {self.dataset!r}: the {form!r} form is not available for a formula model (its pilot is the "
                f"Gaussian varying-slope model's marginal likelihood); use {' or '.join(WHOLE_FORMS)}"
            )
        from .forms import Centering

        model = build_glm(self.design, self.family, WHOLE_FORMS[form], self.priors, mutable_y, self.naming)
        model.centering = Centering(model.centering)  # per effect, its levels' centering; a whole form records no split
        return model


def shorthand_spec(data: ModelData, priors: str) -> ModelSpec:
    """The columns shorthand's model of ``data`` (see the module's docstring)."""
    from .models import shorthand_design, shorthand_naming

    track = data.track_group if data.track_group is not None else data.groups[0]
    return ModelSpec(
        dataset=data.dataset,
        design=shorthand_design(data),
        family="gaussian",
        priors=priors,
        naming=shorthand_naming(data),
        track_levels={data.group_dim: str(track)},
        data=data,
    )


def formula_spec(table: Any, record: Mapping[str, Any]) -> ModelSpec:
    """A formula dataset's model from its cleaned table and record (what the clean step wrote)."""
    design = parse_formula(record["formula"], table, record["dataset"], record.get("se"))
    naming = Naming(dims={factor: factor for factor in {t.factor for t in design.group}})
    return ModelSpec(
        dataset=record["dataset"],
        design=design,
        family=record["family"],
        priors=record.get("priors", "auto"),
        naming=naming,
        track_levels={naming.dims[factor]: str(level) for factor, level in record["track_levels"].items()},
    )


def load_spec(table_path: str | Path, provenance_path: str | Path, priors: Any = "auto") -> ModelSpec:
    """What a fit job reads: the cleaned table with its provenance, as a :class:`ModelSpec` (``priors``: the
    dataset's configured ones)."""
    from .datasets import load

    record = read_json(provenance_path)
    if "formula" in record:
        return formula_spec(read_formula_table(table_path, record), {**record, "priors": priors})
    return shorthand_spec(load(table_path, provenance_path), priors)
