"""Simulation-based calibration: the ECDF of each quantity's randomized ranks minus the uniform CDF, with
the simultaneous band of Säilynoja, Bürkner and Vehtari (2022) drawn by ArviZ.

The ranks are randomized within their ties exactly as the calibration table does
(:func:`funnel.sbc.record_ranks`, the same U for the same record), so plot and table agree.

The band is the one :func:`funnel.sbc.uniformity` tests against (same method, same evaluation points),
so a panel marked "outside band" is a quantity the calibration table calls not uniform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..records import OK, STATUS
from ..sbc import ECDF_POINTS, FORM_NAMES, QUANTITIES, band_outside, family_prob, record_ranks
from .style import DIVERGENT_COLOR, OTHER_COLOR, form_color

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The randomized ranks' ECDF is compared with the uniform CDF at these points (funnel.sbc.uniformity's).
EVAL_POINTS = ECDF_POINTS  # the points the calibration table tests
QUANTITY_LABELS = {
    "mu_a": "μ_a",
    "sigma_a": "σ_a",
    "mu_b": "μ_b",
    "sigma_b": "σ_b",
    "eps": "ε",
    "a_track": "a[tracked]",
    "b_track": "b[tracked]",
    "loglik": "log-likelihood",
}
OUTSIDE = "outside band"
INSIDE = "inside band"
OUTSIDE_FACE = "#fdecea"


def quantity_label(quantity: str) -> str:
    return QUANTITY_LABELS.get(quantity, quantity)


def form_label(sampler: str, model: str) -> str:
    """'centered (pymc)': the form, then the sampler, as the SBC conclusion names them."""
    return f"{FORM_NAMES.get(model, model)} ({sampler})"


def ok_fits(records: pd.DataFrame) -> pd.DataFrame:
    """The fits that ran (status 'ok'), with ``diverged`` as a bool: the ones whose ranks are tested."""
    ok = records[records[STATUS] == OK].copy()
    ok["diverged"] = ok["diverged"].astype(bool)
    return ok


def sbc_groups(records: pd.DataFrame) -> list[tuple[str, str]]:
    """The (sampler, model) pairs of a records table, failed fits included, in a fixed order."""
    return sorted({(str(s), str(m)) for s, m in zip(records["sampler"], records["model"])})


def ecdf_panel(ax: Any, fits: pd.DataFrame, quantity: str, prob: float, bins: int, color: str) -> int | None:
    """The ECDF difference of one quantity's randomized ranks over ``fits`` on ``ax``, with its band.

    Returns the number of evaluation points outside the band, or None when there are fewer than
    ``bins`` fits (the calibration table does not test those; the panel says so and marks nothing).
    """
    import arviz as az
    from scipy.stats import uniform

    u = record_ranks(fits, quantity)
    if not u.size:
        ax.text(0.5, 0.5, "no fits", ha="center", va="center", transform=ax.transAxes, color="dimgrey")
        ax.set_xlim(0, 1)
        return None
    az.plot_ecdf(
        u,
        eval_points=EVAL_POINTS,
        cdf=uniform(0, 1).cdf,
        difference=True,
        confidence_bands="optimized",  # simultaneous (Säilynoja et al. 2022), not pointwise
        ci_prob=prob,
        plot_kwargs={"color": color, "lw": 1.4},
        fill_kwargs={"color": "0.6", "alpha": 0.3},
        ax=ax,
    )
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlim(0, 1)
    if u.size < bins:
        return None
    return band_outside(u, prob)


def _mark(ax: Any, title: str, size: int, outside: int | None, bins: int) -> None:
    """Title a panel with its subject, its number of fits and whether the ECDF leaves the band."""
    fits = f"{size} fit{'' if size == 1 else 's'}"
    if outside is None:
        verdict = f"{fits}: too few to test (< {bins})" if size else "no fits"
    elif outside:
        verdict = f"{fits}: {OUTSIDE} ({outside} points)"
    else:
        verdict = f"{fits}: {INSIDE}"
    ax.set_title(f"{title}\n{verdict}", fontsize=9, color=DIVERGENT_COLOR if outside else "black")
    if outside:
        ax.set_facecolor(OUTSIDE_FACE)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(DIVERGENT_COLOR)
            spine.set_linewidth(1.5)


def _band_note(prob: float) -> str:
    family = f" (family-wise 95% over {len(QUANTITIES)} quantities)" if np.isclose(prob, family_prob()) else ""
    return f"grey: {prob:.4g} simultaneous band{family}"


def ecdf_differences(
    records: pd.DataFrame,
    quantities: Sequence[str] = QUANTITIES,
    prob: float | None = None,
    bins: int = 10,
) -> Figure:
    """One panel per quantity (rows) and (sampler, model) (columns): the ECDF of the randomized ranks of the
    fits that ran minus the uniform CDF, inside its simultaneous band when the ranks are uniform.

    ``prob`` is the band's probability per panel (default :func:`funnel.sbc.family_prob`); a panel with at
    least ``bins`` fits whose ECDF leaves the band says "outside band" in red and is framed in red.
    """
    import matplotlib.pyplot as plt

    prob = family_prob() if prob is None else float(prob)
    ok = ok_fits(records)
    groups = sbc_groups(records)
    fig, axes = plt.subplots(
        len(quantities),
        len(groups),
        figsize=(max(3.8 * len(groups), 7.5), 2.3 * len(quantities)),
        squeeze=False,
        sharex=True,
        sharey="row",
        layout="constrained",
    )
    for col, (sampler, model) in enumerate(groups):
        fits = ok[ok["sampler"].eq(sampler) & ok["model"].eq(model)]
        for row, quantity in enumerate(quantities):
            title = f"{quantity_label(quantity)}, {form_label(sampler, model)}"
            _grid_panel(axes, row, col, fits, quantity, prob, bins, form_color(model), title)
    fig.suptitle(f"ECDF of the randomized ranks minus the uniform CDF\n{_band_note(prob)}", fontsize=10)
    return fig


def _grid_panel(
    axes: Any, row: int, col: int, fits: pd.DataFrame, quantity: str, prob: float, bins: int, color: str, title: str
) -> None:
    """One panel of a grid of ECDF differences: the plot, its band verdict in the title, outer axis labels."""
    ax = axes[row, col]
    _mark(ax, title, len(fits), ecdf_panel(ax, fits, quantity, prob, bins, color), bins)
    if col == 0:
        ax.set_ylabel("ECDF − uniform")
    if row == axes.shape[0] - 1:
        ax.set_xlabel("randomized rank (r + U)/(n + 1)")


def split_groups(records: pd.DataFrame, bins: int = 10) -> list[tuple[str, str]]:
    """The (sampler, model) pairs with at least ``bins`` fits that diverged and ``bins`` that did not."""
    ok = ok_fits(records)
    found = []
    for sampler, model in sbc_groups(records):
        diverged = ok.loc[ok["sampler"].eq(sampler) & ok["model"].eq(model), "diverged"]
        if int(diverged.sum()) >= bins and int((~diverged).sum()) >= bins:
            found.append((sampler, model))
    return found


def no_split_message(quantity: str, bins: int) -> str:
    return (
        f"No sampler and form has at least {bins} fits that diverged and {bins} that did not: "
        f"the ranks of {quantity_label(quantity)} cannot be split by divergences."
    )


def divergence_split(
    records: pd.DataFrame,
    quantity: str = "sigma_b",
    prob: float | None = None,
    bins: int = 10,
) -> Figure:
    """Per (sampler, model) with at least ``bins`` fits in both subsets: the ECDF difference of
    ``quantity``'s randomized ranks over the fits that diverged (left) and over those that did not (right).

    If a form is miscalibrated only on the left, its miscalibration is in the fits that diverged.
    Without such a group, a figure that says so.
    """
    import matplotlib.pyplot as plt

    prob = family_prob() if prob is None else float(prob)
    ok = ok_fits(records)
    groups = split_groups(records, bins)
    if not groups:
        fig, ax = plt.subplots(figsize=(7.5, 1.6))
        ax.set_axis_off()
        ax.text(0.5, 0.5, no_split_message(quantity, bins), ha="center", va="center", wrap=True, fontsize=10)
        return fig
    fig, axes = plt.subplots(
        len(groups), 2, figsize=(9.0, 3.0 * len(groups)), squeeze=False, sharex=True, sharey="row", layout="constrained"
    )
    for row, (sampler, model) in enumerate(groups):
        fits = ok[ok["sampler"].eq(sampler) & ok["model"].eq(model)]
        for col, (subset, text, color) in enumerate(
            [
                (fits[fits["diverged"]], "fits that diverged", DIVERGENT_COLOR),
                (fits[~fits["diverged"]], "fits without divergences", OTHER_COLOR),
            ]
        ):
            title = f"{quantity_label(quantity)}, {form_label(sampler, model)}: {text}"
            _grid_panel(axes, row, col, subset, quantity, prob, bins, color, title)
    fig.suptitle(f"{quantity_label(quantity)} split by divergences\n{_band_note(prob)}", fontsize=10)
    return fig
