"""Posterior of σ_b in each model form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..facts import form_order
from .style import form_color


def plot_sigma_b_posteriors(
    samples: Mapping[str, np.ndarray], sigma_b_small: float | None = None, ax: Any = None
) -> Any:
    """Histograms of sigma_b per model form (in the registry's order), each with a dashed line at its mean; dotted:
    the neck's threshold."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7.5, 4))[1]
    top = max(float(np.quantile(v, 0.995)) for v in samples.values())
    bins = np.linspace(0, top, 50)
    for model in form_order(samples):
        values = samples[model]
        color = form_color(model)
        mean = float(np.mean(values))
        ax.hist(
            values,
            bins=bins,
            density=True,
            histtype="step",
            lw=1.8,
            color=color,
            label=f"{model} ({len(values)} draws)",
        )
        ax.axvline(mean, color=color, ls="--", lw=1.4, label=f"{model} mean {mean:.3g}")
    if sigma_b_small is not None and sigma_b_small < top:
        ax.axvline(sigma_b_small, color="grey", ls=":", lw=1.2, label=f"σ_b = {sigma_b_small:g} (funnel's neck)")
    ax.set_xlabel("σ_b")
    ax.set_ylabel("posterior density")
    ax.legend(frameon=False)
    return ax
