"""The per-fit record, defined once: its fields and their types, the pass checks, the derived column names.

One record per fit: the fit job writes it as ``results/<dataset>/fits/<sampler>/<model>/seed<N>.json``
(:func:`funnel.diagnostics.fit_diagnostics` computes it, the batch loop adds ``status`` and ``error``)
and the aggregate makes it one row of ``tables/fits.csv`` (adding the bias z-scores ``z_*`` when the
reference run exists). Every module that reads or writes a record takes its names from here: the
diagnostics, the batch loop's failure records, the tables, the verdict, the facts and the report.

Some names depend on the dataset: the tracked group's intercept and slope (``ess_bulk_b_<group>``),
the neck of the funnel (``p_sigma_b_below_<x>``), the bias estimands (``est_b[<group>]``); the
functions below build them, never a caller by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .glm import Structure
from .models import STRUCTURE

# ------------------------------------------------------------------ status
STATUS = "status"
ERROR = "error"
#: ``status`` of a fit that ran (its record has every diagnostic) and of one that raised (it has none).
OK, FAILED = "ok", "failed"


# ------------------------------------------------------------------ the pass checks
@dataclass(frozen=True)
class Thresholds:
    """The usual pass marks (Vehtari et al. 2021; Betancourt 2016)."""

    rhat_max: float = 1.01
    ess_min: float = 400.0
    bfmi_min: float = 0.3


#: The pass marks when a caller gives none.
DEFAULT_THRESHOLDS = Thresholds()


def thresholds_from(params: Any) -> Thresholds:
    """Thresholds from a rule's params (rhat_max, ess_min, bfmi_min)."""
    return Thresholds(rhat_max=float(params.rhat_max), ess_min=float(params.ess_min), bfmi_min=float(params.bfmi_min))


@dataclass(frozen=True)
class Check:
    """One pass check of a fit: its column, its name in prose, its column in the readable summary, its test."""

    column: str
    name: str
    summary_label: str
    passes: Callable[[Mapping[str, Any], Thresholds], bool]


CHECKS = (
    Check("pass_rhat", "R-hat", "R-hat ok", lambda r, t: r["rhat_max"] < t.rhat_max),
    Check("pass_ess", "ESS", "ESS ok", lambda r, t: min(r["ess_bulk_min"], r["ess_tail_min"]) >= t.ess_min),
    Check("pass_divergences", "divergences", "no divergences", lambda r, t: r["divergences"] == 0),
    Check("pass_bfmi", "E-BFMI", "E-BFMI ok", lambda r, t: r["bfmi_min"] >= t.bfmi_min),
)
#: Every check passes.
PASS_ALL = "pass_all"
PASS_ALL_LABEL = "all ok"
PASS_COLUMNS = (*(c.column for c in CHECKS), PASS_ALL)


def pass_checks(record: Mapping[str, Any], thresholds: Thresholds) -> dict[str, bool]:
    """The pass columns of a fit's record (each check, then ``pass_all``), from its diagnostics."""
    out = {check.column: bool(check.passes(record, thresholds)) for check in CHECKS}
    out[PASS_ALL] = all(out.values())
    return out


def failed_checks() -> dict[str, bool]:
    """The pass columns of a fit that raised: it passes nothing."""
    return dict.fromkeys(PASS_COLUMNS, False)


def ran_ok(fits: pd.DataFrame) -> pd.Series:
    """Which rows are fits that ran: ``status == 'ok'``, or every row when there is no status column."""
    if STATUS not in fits.columns:
        return pd.Series(True, index=fits.index)
    return fits[STATUS].astype(str).str.strip().str.lower().eq(OK)


def truthy(values: pd.Series) -> pd.Series:
    """A pass column read from a table: True/'True' are True; False, missing and anything else are not."""
    return values.astype(str).str.strip().str.lower().isin({"true", "1", "1.0"})


def passing(fits: pd.DataFrame) -> pd.Series:
    """Which rows are fits that ran and pass every check."""
    return ran_ok(fits) & truthy(fits[PASS_ALL])


# ------------------------------------------------------------------ derived names
#: The bias estimands of every fit (besides the slopes of the tracked and the bias groups): E[σ], E[log σ]
#: and P(σ < the dataset's neck) of each group-level scale, σ_b then σ_a (the verdict's bias tests).
SIGMA_B, LOG_SIGMA_B, P_SIGMA_B_SMALL = "sigma_b", "log_sigma_b", "p_sigma_b_small"
SIGMA_A, LOG_SIGMA_A, P_SIGMA_A_SMALL = "sigma_a", "log_sigma_a", "p_sigma_a_small"
SCALE_ESTIMANDS = {
    "sigma_b": (SIGMA_B, LOG_SIGMA_B, P_SIGMA_B_SMALL),
    "sigma_a": (SIGMA_A, LOG_SIGMA_A, P_SIGMA_A_SMALL),
}
ESTIMANDS = tuple(name for names in SCALE_ESTIMANDS.values() for name in names)


def slope_estimand(group: str) -> str:
    """The bias estimand E[b] of one group: 'b[<group>]'."""
    return f"b[{group}]"


def estimand_names(groups: Sequence[str]) -> list[str]:
    """The bias estimands of a fit whose tracked and bias groups are ``groups``."""
    return [*ESTIMANDS, *(slope_estimand(g) for g in groups)]


def est_column(estimand: str) -> str:
    return f"est_{estimand}"


def mcse_column(estimand: str) -> str:
    return f"mcse_{estimand}"


def z_column(estimand: str) -> str:
    """The fits table's bias z-score of ``estimand`` against the reference run (:func:`funnel.bias.z_score`)."""
    return f"z_{estimand}"


#: The z-score columns the summary carries (when the reference ran).
Z_COLUMNS = tuple(z_column(e) for e in SCALE_ESTIMANDS["sigma_b"])


#: The shorthand model's group-level scales (the verdict's speed: the per-second bulk ESS of the slowest of them).
GROUP_SCALES = STRUCTURE.scales
#: Each fit's slowest group-level scale's bulk ESS per second of sampling (the verdict's speed criterion).
SLOWEST_SCALE_PER_S = "ess_bulk_scales_min_per_s"


def per_s_column(label: str) -> str:
    """A scalar's bulk ESS per second of sampling: 'ess_bulk_<label>_per_s'."""
    return f"ess_bulk_{label}_per_s"


def _rate(ess: Any, seconds: Any) -> float | None:
    """ESS per second; None when either is missing or not a positive finite number."""
    try:
        ess, seconds = float(ess), float(seconds)
    except (TypeError, ValueError):
        return None
    return ess / seconds if np.isfinite(ess) and np.isfinite(seconds) and seconds > 0 else None


def scale_speeds(record: Mapping[str, Any], scales: Sequence[str] = GROUP_SCALES) -> dict[str, float | None]:
    """A record's per-second bulk ESS of every group-level scale (``scales``: the model's) and of the slowest of
    them (:data:`SLOWEST_SCALE_PER_S`: None when any scale's is undefined), from ``ess_bulk_<scale>`` and
    ``sampling_seconds``."""
    rates = {per_s_column(s): _rate(record.get(ess_column("bulk", s)), record.get("sampling_seconds")) for s in scales}
    values = list(rates.values())
    return {**rates, SLOWEST_SCALE_PER_S: None if None in values else min(values)}


def with_scale_speeds(fits: pd.DataFrame) -> pd.DataFrame:
    """A fits table with :data:`SLOWEST_SCALE_PER_S`, as read from it or, for a table written before the column
    existed, computed: per scale its ``ess_bulk_<scale>_per_s`` column, else ``ess_bulk_<scale>`` ÷
    ``sampling_seconds``; the minimum over the scales the table has (a table with σ_b's alone: σ_b's)."""
    if SLOWEST_SCALE_PER_S in fits.columns:
        return fits
    rates = []
    seconds = pd.to_numeric(fits["sampling_seconds"], errors="coerce") if "sampling_seconds" in fits else None
    for scale in GROUP_SCALES:
        if per_s_column(scale) in fits.columns:
            rates.append(pd.to_numeric(fits[per_s_column(scale)], errors="coerce"))
        elif ess_column("bulk", scale) in fits.columns and seconds is not None:
            rate = pd.to_numeric(fits[ess_column("bulk", scale)], errors="coerce") / seconds.where(seconds > 0)
            rates.append(rate)
    if not rates:
        raise ValueError(
            f"the fits table has no ESS per second of any group-level scale ({', '.join(GROUP_SCALES)}): it needs "
            f"{SLOWEST_SCALE_PER_S}, or ess_bulk_<scale> and sampling_seconds; rerun the aggregate rule to rewrite it"
        )
    out = fits.copy()
    out[SLOWEST_SCALE_PER_S] = pd.concat(rates, axis=1).min(axis=1, skipna=False)
    return out


def below_column(sigma_b_small: float) -> str:
    """P(σ_b < sigma_b_small), the share of draws in the funnel's neck: 'p_sigma_b_below_0.1'."""
    return f"p_sigma_b_below_{sigma_b_small:g}"


def tracked_labels(track_group: str, structure: Structure = STRUCTURE) -> list[str]:
    """The scalars whose ESS a record reports: the model's hyperparameters and the tracked group's effects
    (``a_<group>``, ``b_<group>``)."""
    return [*structure.hyperparameters, *(f"{effect}_{track_group}" for effect in structure.effects)]


def ess_column(kind: str, label: str) -> str:
    """'ess_bulk_<label>' or 'ess_tail_<label>'."""
    return f"ess_{kind}_{label}"


# ------------------------------------------------------------------ the fields
@dataclass(frozen=True)
class Field:
    name: str
    type: Any  # a type, or a tuple of types (one of them)
    meaning: str


NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))


def form_fields(model: str | None) -> list[Field]:
    """The extra fields a form's fits carry (``funnel.forms.Form.record_fields``: a partial form's split)."""
    from .forms import FORMS

    form = FORMS.get(model or "")
    return [Field(name, NUMBER, meaning) for name, meaning in (form.record_fields.items() if form else ())]


def form_fields_of(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The form's extra fields from a trace's attributes (where the fit put them), as plain numbers."""
    out = {}
    for f in form_fields(attrs.get("model")):
        if f.name in attrs:
            value = attrs[f.name]
            out[f.name] = int(value) if isinstance(value, (int, np.integer)) else float(value)  # counts stay counts
    return out


def _head_fields(structure: Structure, labels: Sequence[str]) -> list[Field]:
    """The fields every record starts with: the fit's settings, the sampler's and ArviZ's diagnostics of the
    scalars ``labels`` (the model's hyperparameters and tracked effects)."""
    return [
        Field("dataset", str, "the dataset's name"),
        Field("sampler", str, "pymc or nutpie"),
        Field("model", str, "the form: one of funnel.forms.FORMS"),
        Field("seed", int, "the seed of the fit"),
        Field("tune", int, "warm-up iterations per chain"),
        Field("target_accept", float, "NUTS target acceptance rate"),
        Field("priors", str, "the prior set"),
        Field("chains", int, "chains in the trace"),
        Field("draws", int, "draws per chain in the trace"),
        Field("divergences", int, "divergent transitions, all chains"),
        Field("divergence_fraction", float, "share of draws that diverged"),
        Field("divergences_per_chain", list, "divergent transitions per chain"),
        Field("max_treedepth_hits", (int, type(None)), "draws that reached the maximum tree depth"),
        Field("mean_tree_depth", float, "mean tree depth"),
        Field("step_size_mean", float, "mean step size"),
        Field("rhat_max", float, "largest rank-normalized R-hat of the hyperparameters and the effects"),
        *(Field(f"rhat_{name}", float, f"R-hat of {name}") for name in structure.hyperparameters),
        *(
            Field(ess_column(kind, label), float, f"{kind} ESS of {label}")
            for label in labels
            for kind in ("bulk", "tail")
        ),
        Field("ess_bulk_min", float, "smallest bulk ESS of the tracked scalars"),
        Field("ess_tail_min", float, "smallest tail ESS of the tracked scalars"),
        Field("bfmi_per_chain", list, "E-BFMI per chain"),
        Field("bfmi_min", float, "smallest E-BFMI"),
    ]


def _tail_fields(structure: Structure, model: str | None) -> list[Field]:
    """The fields every record ends with: the timings, the scales' speeds, the form's fields and the checks."""
    return [
        Field("compile_seconds", float, "compile time"),
        Field("sampling_seconds", float, "sampling time"),
        Field("import_seconds", float, "import time of the job"),
        *(
            Field(per_s_column(scale), OPTIONAL_NUMBER, f"bulk ESS of {scale} per second of sampling")
            for scale in structure.scales
        ),
        Field(SLOWEST_SCALE_PER_S, OPTIONAL_NUMBER, "bulk ESS per second of the slowest group-level scale (min)"),
        Field("n_draws_total", int, "chains × draws"),
        *form_fields(model),
        *(Field(check.column, bool, f"passes the {check.name} check") for check in CHECKS),
        Field(PASS_ALL, bool, "passes every check"),
    ]


def fields(
    track_group: str,
    sigma_b_small: float,
    bias_groups: Sequence[str] = (),
    model: str | None = None,
    structure: Structure = STRUCTURE,
) -> list[Field]:
    """The fields of a fit's record, in the order the diagnostics write them (before ``status``, ``error``);
    ``model`` adds its form's own fields (:func:`form_fields`); ``structure`` is the fitted model's."""
    groups = [track_group, *(g for g in bias_groups if g != track_group)]
    return [
        *_head_fields(structure, tracked_labels(track_group, structure)),
        Field("mean_sigma_b", float, "posterior mean of σ_b"),
        Field("sd_sigma_b", float, "posterior sd of σ_b"),
        Field("mcse_mean_sigma_b", float, "MCSE of the posterior mean of σ_b"),
        Field("mean_log_sigma_b", float, "posterior mean of log σ_b"),
        Field(below_column(sigma_b_small), float, "share of draws in the funnel's neck"),
        Field("mean_sigma_a", float, "posterior mean of σ_a"),
        Field("mean_mu_b", float, "posterior mean of μ_b"),
        Field("mean_b_spread", float, "posterior mean of the sd of the slopes across groups"),
        Field(f"mean_a_{track_group}", float, "posterior mean of the tracked group's intercept"),
        Field(f"mean_b_{track_group}", float, "posterior mean of the tracked group's slope"),
        Field("track_group", str, "the tracked group"),
        *(
            Field(column(name), float, f"{what} of the bias estimand {name}")
            for name in estimand_names(groups)
            for column, what in ((est_column, "estimate"), (mcse_column, "MCSE"))
        ),
        *_tail_fields(structure, model),
    ]


def glm_tracked_labels(structure: Structure, levels: Mapping[str, str]) -> list[str]:
    """The scalars whose ESS a formula model's record reports: its hyperparameters and each effect at its
    tracked level (``levels``: effect -> level), ``<effect>_<level>``."""
    return [*structure.hyperparameters, *(f"{effect}_{levels[effect]}" for effect in structure.effects)]


def glm_fields(structure: Structure, levels: Mapping[str, str], model: str | None = None) -> list[Field]:
    """The fields of a formula model's record (:func:`funnel.diagnostics.glm_diagnostics`), in its order."""
    return [
        *_head_fields(structure, glm_tracked_labels(structure, levels)),
        *(Field(f"mean_{scale}", float, f"posterior mean of {scale}") for scale in structure.scales),
        Field("track_levels", str, "the tracked level of each grouping dimension, as dimension=level"),
        *_tail_fields(structure, model),
    ]


def check_record(record: Mapping[str, Any], fields_: Sequence[Field]) -> list[str]:
    """What in ``record`` differs from ``fields_`` (missing, unexpected or mistyped fields); [] when it conforms."""
    problems = []
    names = [f.name for f in fields_]
    for f in fields_:
        if f.name not in record:
            problems.append(f"missing {f.name}")
        elif not isinstance(record[f.name], f.type):
            problems.append(f"{f.name} is {type(record[f.name]).__name__}, not {f.type}")
    problems += [f"unexpected {name}" for name in record if name not in names]
    return problems
