"""A model formula (lme4/Bambi syntax) parsed into a typed design, with formulae (Bambi's parser).

    y ~ 1 + x + (1 + x | g)                   varying intercept and slope by g
    p(k, n) ~ period + (1 | herd)             binomial: k successes of n trials (lme4's cbind(k, n - k))
    TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)   crossed grouping factors
    y ~ 1 + (1 | a/b)                         nested: formulae expands it to (1 | a) + (1 | a:b)

:func:`parse_formula` returns a :class:`Design`: the response (and the binomial trials of ``p(k, n)``, and
a known per-row standard error from a column named by ``se``: formulae 0.6 has no brms-style
``y | se(s)``), the common terms with their columns of the design matrix, and one :class:`GroupTerm`
per group-specific term (``1|g``, ``x|g``, ``1|a:b``, ...): its grouping factor's levels (those with
at least one row), the row -> level index and its predictor column(s). formulae builds every matrix;
nothing here parses the formula by hand. Bad input raises :class:`~funnel.errors.DataError` naming the
dataset, the column and the fix. Nothing here imports PyMC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError


@dataclass(frozen=True)
class CommonTerm:
    """One common (population-level) term: ``Intercept``, ``x``, or a categorical ``period`` (one column per
    non-reference level); ``matrix`` is its (rows, columns) block of the design matrix."""

    name: str
    kind: str  # formulae's: "intercept", "numeric", "categoric", "interaction", ...
    columns: tuple[str, ...]
    matrix: np.ndarray


@dataclass(frozen=True)
class GroupTerm:
    """One group-specific term ``expr|factor``: an effect per level of the grouping factor and per predictor
    column, zero-mean normal with the term's own scale (funnel.glm).

    ``levels``    the grouping factor's levels that have rows ("a", or "a:p" for an interaction factor);
    ``index``     (rows,) int: each row's level (a position in ``levels``);
    ``predictor`` (rows, columns) float: the predictor(s) multiplying the effect (ones for an intercept);
    ``columns``   the predictor columns' names ("1", "x", "period[2]", ...).
    The term's contribution to row i's linear predictor is ``sum_j effect[index[i], j] * predictor[i, j]``.
    """

    name: str
    expr: str
    factor: str
    kind: str  # "intercept", "numeric" or "categoric" (formulae's kind of the predictor)
    levels: tuple[str, ...]
    index: np.ndarray
    predictor: np.ndarray
    columns: tuple[str, ...]

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class Design:
    """A formula's design on one table (rows with any missing value in its variables are refused, not dropped)."""

    formula: str
    dataset: str
    response: str
    y: np.ndarray
    trials: np.ndarray | None  # the n of a p(k, n) response
    se: np.ndarray | None  # the known standard error of each row (``se`` column), else None
    se_column: str | None
    common: tuple[CommonTerm, ...]
    group: tuple[GroupTerm, ...]

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the common design matrix's columns."""
        return tuple(c for term in self.common for c in term.columns)

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - the design matrix's usual name
        """The common terms' design matrix (rows, columns)."""
        if not self.common:
            return np.zeros((self.n_rows, 0))
        return np.concatenate([term.matrix for term in self.common], axis=1)

    def term(self, name: str) -> GroupTerm:
        for term in self.group:
            if term.name == name:
                return term
        raise KeyError(f"no group-specific term {name!r}; the design has {', '.join(t.name for t in self.group)}")


def formula_variables(formula: str, dataset: str = "data") -> tuple[list[str], list[str]]:
    """The columns a formula names (sorted) and, among them, its grouping factors' (formulae's parse)."""
    from formulae import model_description

    try:
        description = model_description(formula)
    except Exception as error:  # noqa: BLE001 - formulae's scanner and parser raise several types
        raise DataError(
            f"dataset {dataset!r}: cannot parse the formula {formula!r} ({type(error).__name__}: {error}); "
            "write it in lme4/Bambi syntax, e.g. 'y ~ 1 + x + (1 + x | group)'"
        ) from None
    factors = {name for term in description.terms if hasattr(term, "factor") for name in term.factor.var_names}
    return sorted(description.var_names), sorted(factors)


def _variables(formula: str, dataset: str) -> set[str]:
    return set(formula_variables(formula, dataset)[0])


def _check_columns(formula: str, table: pd.DataFrame, dataset: str, se: str | None) -> list[str]:
    names = _variables(formula, dataset)
    if "cbind" in formula.replace(" ", ""):
        raise DataError(
            f"dataset {dataset!r}: the formula {formula!r} uses cbind(), which formulae does not know; write a "
            "binomial response as p(successes, trials), e.g. 'p(incidence, size) ~ period + (1 | herd)'"
        )
    if se is not None and se not in table.columns:
        raise DataError(
            f"dataset {dataset!r}: the standard-error column {se!r} is not in the table; its columns are "
            f"{', '.join(map(str, table.columns))}. Fix the se column's name"
        )
    wanted = sorted(names | ({se} if se else set()))
    missing = [name for name in wanted if name not in table.columns]
    if missing:
        raise DataError(
            f"dataset {dataset!r}: the formula {formula!r} names column(s) {', '.join(map(repr, missing))} that "
            f"the table does not have; its columns are {', '.join(map(str, table.columns))}. Fix the formula "
            "(or the dataset's columns)"
        )
    incomplete = [name for name in wanted if table[name].isna().any()]
    if incomplete:
        counts = ", ".join(f"{name!r} ({int(table[name].isna().sum())} rows)" for name in incomplete)
        raise DataError(
            f"dataset {dataset!r}: column(s) {counts} have missing values; drop those rows or fill them "
            "before fitting (the model refuses to drop rows silently)"
        )
    return wanted


def _group_term(name: str, term, block: np.ndarray, dataset: str) -> GroupTerm:
    onehot = np.asarray(term.factor.data)
    observed = onehot.any(axis=0)  # an interaction factor (a:b) lists every combination; keep those with rows
    levels = tuple(str(level) for level, seen in zip(term.groups, observed) if seen)
    factor = str(term.factor.name)
    if len(levels) < 2:
        raise DataError(
            f"dataset {dataset!r}: the grouping factor {factor!r} of the term ({name}) has "
            f"{'one level' if levels else 'no level'} ({', '.join(levels) or 'none'}); a group-specific term "
            "needs at least two groups: drop the term from the formula or use a column with several groups"
        )
    index = np.cumsum(observed)[np.argmax(onehot, axis=1)] - 1
    predictor = np.asarray(term.expr.data, dtype=float)
    if predictor.ndim == 1:
        predictor = predictor[:, None]
    n_columns = predictor.shape[1]
    columns = tuple(label.split("|", 1)[0] for label in term.labels[:n_columns])
    # formulae's own block of the group design matrix: level-major, predictor column fastest
    expected = np.zeros((len(index), len(term.groups), n_columns))
    expected[np.arange(len(index)), np.flatnonzero(observed)[index], :] = predictor
    if block.shape != (len(index), len(term.groups) * n_columns) or not np.allclose(
        block, expected.reshape(len(index), -1)
    ):
        raise DataError(f"dataset {dataset!r}: formulae built the term ({name}) in a layout funnel.formula cannot read")
    return GroupTerm(
        name=name,
        expr=str(name.split("|", 1)[0]),
        factor=factor,
        kind=str(term.kind),
        levels=levels,
        index=index.astype(np.int64),
        predictor=predictor,
        columns=columns,
    )


def parse_formula(formula: str, table: pd.DataFrame, dataset: str = "data", se: str | None = None) -> Design:
    """The design of ``formula`` on ``table`` (see the module's docstring); ``se`` names a column of known
    per-row standard errors (a meta-analysis: ``y ~ 1 + (1 | school)`` with ``se='sigma'``)."""
    from formulae import design_matrices

    wanted = _check_columns(formula, table, dataset, se)
    try:
        dm = design_matrices(formula, table, na_action="error")
    except Exception as error:  # noqa: BLE001 - formulae raises ParseError, ValueError, KeyError, TypeError, ...
        if "cannot be greater than 'trials'" in str(error):  # formulae's own check of p(successes, trials)
            raise DataError(
                f"dataset {dataset!r}: the binomial response of {formula!r} has more successes than trials in some "
                "rows; fix those rows (successes <= trials in every row)"
            ) from None
        raise DataError(
            f"dataset {dataset!r}: formulae cannot build the formula {formula!r} on the columns "
            f"{', '.join(wanted)} ({type(error).__name__}: {error}); check each term's syntax and column types"
        ) from None
    if dm.response is None:
        raise DataError(f"dataset {dataset!r}: the formula {formula!r} has no response; write it as 'y ~ ...'")
    response = np.asarray(dm.response.design_matrix)
    trials = None
    if dm.response.kind == "proportion":
        y, trials = response[:, 0].astype(float), response[:, 1].astype(float)
    elif dm.response.kind == "numeric" and response.ndim == 1:
        y = response.astype(float)
    else:
        raise DataError(
            f"dataset {dataset!r}: the response {dm.response.name!r} of {formula!r} is {dm.response.kind}; "
            "use a numeric column (0/1 for bernoulli) or p(successes, trials) for binomial"
        )
    common: list[CommonTerm] = []
    if dm.common is not None:
        matrix = np.asarray(dm.common.design_matrix, dtype=float)
        for name, term in dm.common.terms.items():
            block = matrix[:, dm.common.slices[name]]
            common.append(CommonTerm(str(name), str(term.kind), tuple(map(str, term.labels)), block))
    group: list[GroupTerm] = []
    if dm.group is not None:
        zmatrix = dm.group.design_matrix  # a scipy sparse matrix
        zmatrix = np.asarray(zmatrix.toarray() if hasattr(zmatrix, "toarray") else zmatrix, dtype=float)
        for name, term in dm.group.terms.items():
            group.append(_group_term(str(name), term, zmatrix[:, dm.group.slices[name]], dataset))
    se_values = None
    if se is not None:
        se_values = pd.to_numeric(table[se], errors="coerce").to_numpy(dtype=float)
        if not (np.isfinite(se_values).all() and (se_values > 0).all()):
            bad = int((~(np.isfinite(se_values) & (se_values > 0))).sum())
            raise DataError(
                f"dataset {dataset!r}: the standard-error column {se!r} has {bad} row(s) that are not a number > 0; "
                "every row needs its known standard error"
            )
    return Design(
        formula=formula,
        dataset=dataset,
        response=str(dm.response.name),
        y=y,
        trials=trials,
        se=se_values,
        se_column=se,
        common=tuple(common),
        group=tuple(group),
    )
