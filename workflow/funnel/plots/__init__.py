"""The report's figures, one module per figure family (as arviz-plots does).

Every function draws from tables or draws already read (see :mod:`funnel.traces`,
:mod:`funnel.facts`) and returns its axes or figure. Colours, the per-group
strip of seeds and the pass-mark lines come from :mod:`funnel.plots.style`, so
a form has one colour everywhere. Matplotlib is imported where a figure is drawn.
"""

from .data import plot_rows_per_group, plot_x_histogram, plot_x_split
from .diagnostics import plot_across_seeds, plot_samplers, plot_scales_across_seeds
from .experiments import plot_bias, plot_rows_crossover, plot_target_accept
from .funnel import plot_funnel, plot_scale_funnels
from .map import plot_map_vs_mean
from .posteriors import plot_sigma_b_posteriors

__all__ = [
    "plot_across_seeds",
    "plot_bias",
    "plot_funnel",
    "plot_map_vs_mean",
    "plot_rows_crossover",
    "plot_rows_per_group",
    "plot_samplers",
    "plot_scale_funnels",
    "plot_scales_across_seeds",
    "plot_sigma_b_posteriors",
    "plot_target_accept",
    "plot_x_histogram",
    "plot_x_split",
]
