"""What the report notebooks compute and draw: numbers for the text, tables, figures.

The notebooks stay short by calling these. Everything here *reads* workflow
outputs (the cleaned table, the traces, the aggregated tables); nothing fits
and nothing imports PyMC. Matplotlib and ArviZ are imported where needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Wiecki (2017): Thomas Wiecki, "Why hierarchical models are awesome, tricky, and Bayesian",
# blog post of 8 Feb 2017. One run with PyMC3 (NUTS initialised by ADVI), offset transform.
BLOG = {
    "reference": "Wiecki (2017)",
    "title": "Why hierarchical models are awesome, tricky, and Bayesian",
    "url": "https://twiecki.io/blog/2017/02/08/bayesian-hierchical-non-centered/",
    "run": "a single 2017 run with PyMC3, NUTS initialised by ADVI",
    "noncentered_mean_sigma_b": 0.2566,
    "centered_map_sigma_b": 6.2e-05,
    "centered_map_b": -0.551,
    "centered_rhat_sigma_b": 1.0008,
}
MODEL_COLORS = {"centered": "#c0392b", "noncentered": "#2471a3"}
DIVERGENT_COLOR = "#e31a1c"


# ------------------------------------------------------------------ notebook set-up and text
def setup_notebook() -> None:
    """Inline PNG figures of one size, quiet library warnings (the log keeps the kernel's stderr)."""
    import warnings

    import matplotlib.pyplot as plt

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - notebooks always have IPython
        shell = None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
        shell.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
    plt.rcParams.update(
        {
            "figure.figsize": (7.5, 4.0),
            "figure.dpi": 90,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


def md(text: str) -> None:
    """Show ``text`` as Markdown in the notebook (numbers are formatted by the caller)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def fmt(value: Any, spec: str = ".3g") -> str:
    """A number for prose: 'n/a' for missing, otherwise ``format(value, spec)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def pct(share: float, digits: int = 0) -> str:
    return fmt(100 * share, f".{digits}f") + "%"


def median_range(values: Iterable[float], spec: str = ".0f") -> str:
    """'median [min, max]', the summary tables' format."""
    arr = np.asarray(list(values), dtype=float)
    return f"{np.median(arr):{spec}} [{arr.min():{spec}}, {arr.max():{spec}}]"


def label(sampler: str, model: str) -> str:
    return f"{sampler} / {model}"


# ------------------------------------------------------------------ the data
def county_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Homes per county, split by floor (0 basement, 1 first floor), most homes first."""
    counts = (
        table.assign(basement=table["floor"].eq(0).astype(int), first_floor=table["floor"].eq(1).astype(int))
        .groupby("county", sort=True)[["basement", "first_floor"]]
        .sum()
    )
    counts.insert(0, "homes", counts["basement"] + counts["first_floor"])
    return counts.sort_values(["homes", "basement"], ascending=[False, False], kind="stable").reset_index()


def data_facts(table: pd.DataFrame, small_county: str, few_homes: int = 5) -> dict[str, Any]:
    """The numbers the data notebook quotes."""
    counts = county_counts(table)
    if small_county not in set(counts["county"]):
        raise ValueError(f"county {small_county!r} is not in the table")
    small = counts.set_index("county").loc[small_county]
    no_first = counts.loc[counts["first_floor"].eq(0), "county"].sort_values().tolist()
    largest = counts.iloc[0]
    return {
        "homes": int(len(table)),
        "counties": int(len(counts)),
        "median_homes": float(counts["homes"].median()),
        "few_homes": few_homes,
        "counties_few": int(counts["homes"].le(few_homes).sum()),
        "share_counties_few": float(counts["homes"].le(few_homes).mean()),
        "counties_single": int(counts["homes"].eq(1).sum()),
        "largest_county": str(largest["county"]),
        "largest_homes": int(largest["homes"]),
        "first_floor": int(table["floor"].eq(1).sum()),
        "share_first_floor": float(table["floor"].eq(1).mean()),
        "counties_without_first_floor": no_first,
        "small_county": small_county,
        "small_county_homes": int(small["homes"]),
        "small_county_first_floor": int(small["first_floor"]),
    }


def plot_homes_per_county(counts: pd.DataFrame, small_county: str, few_homes: int = 5, ax: Any = None) -> Any:
    """Sorted bars of homes per county; counties with few homes and ``small_county`` highlighted."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.6))[1]
    x = np.arange(len(counts))
    few = counts["homes"].le(few_homes).to_numpy()
    ax.bar(x[~few], counts["homes"][~few], color="#7f8c8d", width=0.85, label=f"more than {few_homes} homes")
    ax.bar(x[few], counts["homes"][few], color="#e67e22", width=0.85, label=f"1 to {few_homes} homes")
    where = int(np.flatnonzero(counts["county"].to_numpy() == small_county)[0])
    ax.annotate(
        small_county,
        (where, counts["homes"].iloc[where]),
        xytext=(where - 12, counts["homes"].max() * 0.35),
        arrowprops={"arrowstyle": "->"},
    )
    ax.set_yscale("log")
    ax.set_xlabel("county (sorted by number of homes)")
    ax.set_ylabel("homes (log scale)")
    ax.set_xticks([])
    ax.legend(frameon=False)
    return ax


def plot_floor_split(counts: pd.DataFrame, ax: Any = None) -> Any:
    """Per county: homes measured in the basement vs on the first floor (stacked)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.6))[1]
    x = np.arange(len(counts))
    ax.bar(x, counts["basement"], color="#5d6d7e", width=0.85, label="basement (floor 0)")
    ax.bar(
        x, counts["first_floor"], bottom=counts["basement"], color="#f5b041", width=0.85, label="first floor (floor 1)"
    )
    none = counts["first_floor"].eq(0).to_numpy()
    ax.scatter(x[none], counts["homes"][none] + 1.5, marker="v", s=14, color="black", label="no first-floor home")
    ax.set_xlabel("county (sorted by number of homes)")
    ax.set_ylabel("homes")
    ax.set_xticks([])
    ax.legend(frameon=False)
    return ax


def provenance_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """provenance.json as rows of (what, value) for the reader."""
    download = provenance.get("download", {})
    rows = [
        ("source used", download.get("source")),
        ("source requested", download.get("requested_source")),
        ("fallback reason", download.get("fallback_reason") or "none"),
        ("log transform", provenance.get("transform")),
        ("homes", provenance.get("rows")),
        ("counties", provenance.get("counties")),
    ]
    for name, info in sorted(download.get("files", {}).items()):
        detail = ", ".join(f"{k} {v}" for k, v in sorted(info.items()) if k != "sha256")
        rows.append((f"file {name}", f"sha256 {str(info.get('sha256', ''))[:16]}…; {detail}"))
    return pd.DataFrame(rows, columns=["what", "value"])


# ------------------------------------------------------------------ traces
def open_trace(path: str | Path, var_names: Sequence[str] | None = None, stats: Sequence[str] | None = None) -> Any:
    """One fit's InferenceData with only ``var_names`` (posterior) and ``stats`` (sample_stats) loaded."""
    import arviz as az

    idata = az.from_netcdf(str(path))
    groups = {}
    post = idata.posterior
    groups["posterior"] = (post[list(var_names)] if var_names is not None else post).load()
    if "sample_stats" in idata.groups():
        ss = idata.sample_stats
        groups["sample_stats"] = (ss[list(stats)] if stats is not None else ss).load()
    out = az.InferenceData(**groups)
    idata.close()
    return out


def funnel_draws(paths: Sequence[str | Path], county: str, offsets: bool = False) -> pd.DataFrame:
    """Draws of (b or b_offset)[county], sigma_b and the divergence flag, pooled over fits.

    Reads only those three quantities from each trace. One row per draw, with
    the fit's seed, chain and draw index.
    """
    frames = []
    x_var = "b_offset" if offsets else "b"
    for path in paths:
        idata = open_trace(path, [x_var, "sigma_b"], ["diverging"])
        post = idata.posterior
        if offsets and x_var not in post:
            raise ValueError(f"{path} has no {x_var}: is it a non-centered fit?")
        seed = int(post.attrs.get("seed", -1))
        x = post[x_var].sel(county=county).values
        chains, draws = x.shape
        frames.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "chain": np.repeat(np.arange(chains), draws),
                    "draw": np.tile(np.arange(draws), chains),
                    x_var: x.ravel(),
                    "sigma_b": post["sigma_b"].values.ravel(),
                    "diverging": idata.sample_stats["diverging"].values.astype(bool).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def funnel_facts(draws: pd.DataFrame) -> dict[str, Any]:
    """Divergences and where they sit in sigma_b."""
    div = draws["diverging"].to_numpy()
    sigma = draws["sigma_b"].to_numpy()
    return {
        "draws": int(len(draws)),
        "fits": int(draws["seed"].nunique()),
        "divergent": int(div.sum()),
        "share_divergent": float(div.mean()) if len(div) else float("nan"),
        "median_sigma_b": float(np.median(sigma)),
        "median_sigma_b_divergent": float(np.median(sigma[div])) if div.any() else float("nan"),
        "min_sigma_b": float(sigma.min()),
        "share_sigma_b_below_0.1": float((sigma < 0.1).mean()),
    }


def plot_funnel(
    draws: pd.DataFrame, x: str = "b", ax: Any = None, title: str | None = None, xlabel: str | None = None
) -> Any:
    """Scatter of ``x`` against sigma_b (log axis), divergent draws on top in red."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    ok = ~draws["diverging"].to_numpy()
    ax.scatter(draws[x][ok], draws["sigma_b"][ok], s=3, alpha=0.25, color="#34495e", linewidths=0, label="draws")
    n_div = int((~ok).sum())
    ax.scatter(
        draws[x][~ok], draws["sigma_b"][~ok], s=14, color=DIVERGENT_COLOR, linewidths=0, label=f"divergent ({n_div})"
    )
    ax.set_yscale("log")
    ax.set_ylabel("σ_b (log scale)")
    ax.set_xlabel(xlabel or x)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, loc="lower right", markerscale=2)
    return ax


def plot_sigma_b_posteriors(samples: Mapping[str, np.ndarray], ax: Any = None) -> Any:
    """Histograms of sigma_b per model form, each with a dashed line at its mean."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7.5, 4))[1]
    top = max(float(np.quantile(v, 0.995)) for v in samples.values())
    bins = np.linspace(0, top, 50)
    for model, values in samples.items():
        color = MODEL_COLORS.get(model)
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
        ax.axvline(mean, color=color, ls="--", lw=1.4, label=f"{model} mean {mean:.3f}")
    ax.set_xlabel("σ_b")
    ax.set_ylabel("posterior density")
    ax.legend(frameon=False)
    return ax


# ------------------------------------------------------------------ diagnostics tables and figures
def seed_table(records: Sequence[Mapping[str, Any]], small_county: str) -> pd.DataFrame:
    """Per-seed diagnostics of one fit group, formatted for reading."""
    rows = []
    for r in sorted(records, key=lambda r: r["seed"]):
        rows.append(
            {
                "seed": r["seed"],
                "divergences": r["divergences"],
                "R-hat max": f"{r['rhat_max']:.3f}",
                "R-hat σ_b": f"{r['rhat_sigma_b']:.3f}",
                "ESS bulk σ_b": f"{r['ess_bulk_sigma_b']:.0f}",
                "ESS tail σ_b": f"{r['ess_tail_sigma_b']:.0f}",
                f"ESS bulk b[{small_county}]": f"{r[f'ess_bulk_b_{small_county}']:.0f}",
                "E-BFMI min": f"{r['bfmi_min']:.2f}",
                "E[σ_b]": f"{r['mean_sigma_b']:.3f}",
                "sampling s": f"{r['sampling_seconds']:.1f}",
                "all checks pass": "yes" if r["pass_all"] else "no",
            }
        )
    return pd.DataFrame(rows)


def group_order(fits: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(set(zip(fits["sampler"], fits["model"])))


def plot_across_seeds(fits: pd.DataFrame, rhat_max: float = 1.01, ess_min: float = 400) -> Any:
    """Divergences, R-hat(σ_b) and bulk ESS(σ_b) of every fit, per sampler and form; medians as bars."""
    import matplotlib.pyplot as plt

    groups = group_order(fits)
    panels = [
        ("divergences", "divergences per fit", None, "linear"),
        ("rhat_sigma_b", "R-hat(σ_b)", rhat_max, "linear"),
        ("ess_bulk_sigma_b", "bulk ESS(σ_b)", ess_min, "log"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (column, title, line, scale) in zip(axes, panels):
        for i, (sampler, model) in enumerate(groups):
            values = fits.loc[fits["sampler"].eq(sampler) & fits["model"].eq(model), column].to_numpy(dtype=float)
            jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(i + jitter, values, s=22, color=MODEL_COLORS.get(model), alpha=0.8, zorder=3)
            ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black", lw=2, zorder=4)
        if line is not None:
            ax.axhline(line, color="grey", ls=":", lw=1.2)
            ax.annotate(
                f"pass mark {line:g}",
                xy=(0.01, line),
                xycoords=("axes fraction", "data"),
                ha="left",
                va="top",
                fontsize=8,
                color="dimgrey",
            )
        ax.set_yscale(scale)
        if scale == "log":
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(groups)), [f"{s}\n{m}" for s, m in groups])
        ax.set_title(title)
    fig.suptitle("every seed's fit: points; median across seeds: black bar")
    fig.tight_layout()
    return fig


def plot_map_vs_mean(maps: pd.DataFrame, ax: Any = None) -> Any:
    """σ_b: MAP against posterior mean for each model form (log axis: the centered MAP is near 0)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    models = list(maps["model"])
    x = np.arange(len(models))
    width = 0.36
    handles = []
    for offset, column, name, hatch in (
        (-width / 2, "map_sigma_b", "MAP (find_MAP)", "//"),
        (width / 2, "posterior_mean_sigma_b", "posterior mean (NUTS, median over fits)", ""),
    ):
        values = maps[column].to_numpy(dtype=float)
        bars = ax.bar(
            x + offset,
            values,
            width,
            color=[MODEL_COLORS.get(m) for m in models],
            hatch=hatch,
            edgecolor="black",
            alpha=0.85,
        )
        for bar, value in zip(bars, values):
            ax.annotate(
                f"{value:.2g}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=9
            )
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=hatch, label=name))
    ax.set_yscale("log")
    ax.set_xticks(x, models)
    ax.set_ylabel("σ_b (log scale)")
    ax.legend(handles=handles, frameon=False)
    return ax


# ------------------------------------------------------------------ the comparison's numbers
def pick_sampler(samplers: Sequence[str]) -> str:
    """The sampler the comparison's trace figures use: PyMC's NUTS (the blog's) when fitted."""
    return "pymc" if "pymc" in samplers else sorted(samplers)[0]


def group_stats(fits: pd.DataFrame) -> pd.DataFrame:
    """Per (sampler, model): fits, fits with divergences, and medians/extremes used in the prose."""
    grouped = fits.groupby(["sampler", "model"], sort=True)
    out = pd.DataFrame(
        {
            "fits": grouped.size(),
            "fits_with_divergences": grouped["divergences"].apply(lambda s: int((s > 0).sum())),
            "divergences_total": grouped["divergences"].sum(),
            "divergences_median": grouped["divergences"].median(),
            "rhat_sigma_b_median": grouped["rhat_sigma_b"].median(),
            "rhat_sigma_b_max": grouped["rhat_sigma_b"].max(),
            "ess_bulk_sigma_b_median": grouped["ess_bulk_sigma_b"].median(),
            "ess_bulk_sigma_b_min": grouped["ess_bulk_sigma_b"].min(),
            "mean_sigma_b_median": grouped["mean_sigma_b"].median(),
            "p_sigma_b_below_0.1_median": grouped["p_sigma_b_below_0.1"].median(),
            "share_pass_all": grouped["pass_all"].mean(),
        }
    )
    return out


def blog_table(fits: pd.DataFrame, maps: pd.DataFrame, sampler: str) -> pd.DataFrame:
    """The blog's numbers beside this run's (``sampler``'s fits; MAPs are sampler-free)."""
    stats = group_stats(fits)
    m = maps.set_index("model")
    rows = []
    if (sampler, "noncentered") in stats.index:
        nc = fits[fits["sampler"].eq(sampler) & fits["model"].eq("noncentered")]["mean_sigma_b"]
        rows.append(
            (
                "non-centered: posterior mean of σ_b",
                f"{BLOG['noncentered_mean_sigma_b']:.4f}",
                f"{nc.median():.4f} (median over {len(nc)} seeds; range {nc.min():.4f} to {nc.max():.4f})",
            )
        )
    if "centered" in m.index:
        c = m.loc["centered"]
        rows.append(("centered: MAP of σ_b", f"{BLOG['centered_map_sigma_b']:.1e}", f"{c['map_sigma_b']:.1e}"))
        rows.append(
            (
                "centered: MAP of every b",
                f"≈ {BLOG['centered_map_b']:.3f}",
                f"{c['map_b_min']:.3f} to {c['map_b_max']:.3f} (spread {c['map_b_spread']:.1e})",
            )
        )
    if (sampler, "centered") in stats.index:
        r = fits[fits["sampler"].eq(sampler) & fits["model"].eq("centered")]["rhat_sigma_b"]
        rows.append(
            (
                "centered: R-hat of σ_b",
                f"{BLOG['centered_rhat_sigma_b']:.4f}",
                f"{r.median():.4f} (median over {len(r)} seeds; max {r.max():.4f})",
            )
        )
    return pd.DataFrame(rows, columns=["quantity", BLOG["reference"], f"this run ({sampler})"])


def sigma_b_bias(fits: pd.DataFrame, sampler: str) -> dict[str, float]:
    """Posterior mean of σ_b per form (median over seeds) and the centered-minus-non-centered gap."""
    sel = fits[fits["sampler"].eq(sampler)]
    means = sel.groupby("model")["mean_sigma_b"].median()
    below = sel.groupby("model")["p_sigma_b_below_0.1"].median()
    out = {f"mean_{k}": float(v) for k, v in means.items()}
    out.update({f"below_0.1_{k}": float(v) for k, v in below.items()})
    if {"centered", "noncentered"} <= set(means.index):
        out["gap"] = float(means["centered"] - means["noncentered"])
        out["relative_gap"] = out["gap"] / float(means["noncentered"])
    return out


def describe_bias(bias: Mapping[str, float]) -> str:
    """One sentence, chosen by the numbers, on how the centered σ_b compares."""
    if "gap" not in bias:
        return "Both forms are needed to compare their σ_b."
    c, nc, rel = bias["mean_centered"], bias["mean_noncentered"], bias["relative_gap"]
    if abs(rel) < 0.02:
        verdict = "the two forms agree to within 2%"
    elif rel > 0:
        verdict = f"the centered form is biased **high** by {pct(rel, 1)}"
    else:
        verdict = f"the centered form is **lower** by {pct(-rel, 1)}"
    return (
        f"Posterior mean of σ_b (median over seeds): centered {c:.3f}, non-centered {nc:.3f}: {verdict}. "
        f"Share of draws with σ_b < 0.1: centered {pct(bias.get('below_0.1_centered', float('nan')), 1)}, "
        f"non-centered {pct(bias.get('below_0.1_noncentered', float('nan')), 1)}"
        + (
            " (the centered chains under-visit the funnel's neck)."
            if bias.get("below_0.1_centered", 0) < bias.get("below_0.1_noncentered", 0)
            else "."
        )
    )


def conclusions(fits: pd.DataFrame, maps: pd.DataFrame, rhat_max: float, ess_min: float) -> list[str]:
    """The conclusions, each sentence chosen and filled in by the numbers."""
    stats = group_stats(fits)
    out = []
    for sampler in sorted(set(fits["sampler"])):
        if (sampler, "centered") not in stats.index or (sampler, "noncentered") not in stats.index:
            continue
        c, nc = stats.loc[(sampler, "centered")], stats.loc[(sampler, "noncentered")]
        ratio = nc["ess_bulk_sigma_b_median"] / c["ess_bulk_sigma_b_median"]
        divs = (
            f"{int(c['fits_with_divergences'])} of {int(c['fits'])} centered fits diverged "
            f"({int(c['divergences_total'])} divergent transitions in all) against "
            f"{int(nc['fits_with_divergences'])} of {int(nc['fits'])} non-centered fits "
            f"({int(nc['divergences_total'])})"
        )
        if ratio > 1:
            ess = f"non-centering multiplied the median bulk ESS of σ_b by {ratio:.1f} ({c['ess_bulk_sigma_b_median']:.0f} → {nc['ess_bulk_sigma_b_median']:.0f})"
        else:
            ess = f"non-centering did **not** raise the median bulk ESS of σ_b ({c['ess_bulk_sigma_b_median']:.0f} → {nc['ess_bulk_sigma_b_median']:.0f})"
        sel = fits[fits["sampler"].eq(sampler) & fits["model"].eq("centered")]
        n_high = int((sel["rhat_sigma_b"] >= rhat_max).sum())
        if n_high:
            rhat = (
                f"the centered R-hat(σ_b) reached {rhat_max:g} or more on {n_high} of {len(sel)} seeds "
                f"(max {c['rhat_sigma_b_max']:.3f}), against a non-centered max of {nc['rhat_sigma_b_max']:.3f}"
            )
        else:
            rhat = (
                f"the centered R-hat(σ_b) stayed below {rhat_max:g} on every seed (max {c['rhat_sigma_b_max']:.3f}): "
                "R-hat alone would not have flagged the funnel"
            )
        out.append(f"**{sampler}**: {divs}; {ess}; {rhat}.")
    low_ess = fits.loc[fits["ess_bulk_sigma_b"] < ess_min]
    if len(low_ess):
        groups = ", ".join(sorted({label(s, m) for s, m in zip(low_ess["sampler"], low_ess["model"])}))
        out.append(
            f"{len(low_ess)} of {len(fits)} fits have a bulk ESS(σ_b) below {ess_min:g} ({groups}): "
            "their σ_b summaries rest on too few effective draws to be trusted."
        )
    else:
        out.append(f"Every fit reached a bulk ESS(σ_b) of at least {ess_min:g}.")
    m = maps.set_index("model")
    if {"centered", "noncentered"} <= set(m.index):
        c, nc = m.loc["centered"], m.loc["noncentered"]
        out.append(
            f"The MAP is no stand-in for the posterior: centered MAP σ_b = {c['map_sigma_b']:.1e} against a posterior "
            f"mean of {c['posterior_mean_sigma_b']:.3f} (every slope pulled to {c['map_mu_b']:.3f}); non-centered MAP "
            f"σ_b = {nc['map_sigma_b']:.3g} against {nc['posterior_mean_sigma_b']:.3f}. The mode of a hierarchical "
            "posterior sits where the volume is not."
        )
    return out


# ------------------------------------------------------------------ the index page's one-liners
def group_line(summary_row: Mapping[str, Any]) -> str:
    r = summary_row
    return (
        f"{int(r['seeds'])} seeds: divergences {r['divergences_median']:.0f} [{r['divergences_min']:.0f}, "
        f"{r['divergences_max']:.0f}], R-hat max {r['rhat_max_median']:.3f}, bulk ESS(σ_b) "
        f"{r['ess_bulk_sigma_b_median']:.0f} [{r['ess_bulk_sigma_b_min']:.0f}, {r['ess_bulk_sigma_b_max']:.0f}], "
        f"E[σ_b] {r['mean_sigma_b_median']:.3f}; all checks pass on {pct(r['share_pass_all'])} of seeds"
    )


def data_line(table: pd.DataFrame, provenance: Mapping[str, Any], small_county: str) -> str:
    f = data_facts(table, small_county)
    src = provenance.get("download", {})
    return (
        f"{f['homes']} homes in {f['counties']} counties, {f['counties_few']} of them with 1 to {f['few_homes']} homes; "
        f"source {src.get('source')} (requested {src.get('requested_source')}), transform {provenance.get('transform')}"
    )


def comparison_line(summary: pd.DataFrame, maps: pd.DataFrame, sampler: str) -> str:
    s = summary.set_index(["sampler", "model"])
    m = maps.set_index("model")
    parts = []
    if (sampler, "centered") in s.index and (sampler, "noncentered") in s.index:
        parts.append(
            f"{sampler}: median bulk ESS(σ_b) centered {s.loc[(sampler, 'centered'), 'ess_bulk_sigma_b_median']:.0f} "
            f"vs non-centered {s.loc[(sampler, 'noncentered'), 'ess_bulk_sigma_b_median']:.0f}, divergences "
            f"{s.loc[(sampler, 'centered'), 'divergences_median']:.0f} vs "
            f"{s.loc[(sampler, 'noncentered'), 'divergences_median']:.0f}"
        )
    if "centered" in m.index:
        parts.append(
            f"centered MAP σ_b {m.loc['centered', 'map_sigma_b']:.1e} vs posterior mean "
            f"{m.loc['centered', 'posterior_mean_sigma_b']:.3f}"
        )
    return "; ".join(parts) or "the centered vs non-centered comparison"


def show_table(frame: pd.DataFrame) -> None:
    """Display a table without its index (plain HTML: stable from run to run, unlike a Styler)."""
    from IPython.display import HTML, display

    display(HTML(frame.to_html(index=False, border=0, escape=True)))


def spread_by_sigma(draws: pd.DataFrame, x: str) -> dict[str, float]:
    """Standard deviation of ``x`` in the lower and the upper half of σ_b.

    In a funnel the spread shrinks with σ_b (ratio high/low well above 1); in a
    flat geometry it does not (ratio near 1).
    """
    cut = float(draws["sigma_b"].median())
    low = float(draws.loc[draws["sigma_b"] <= cut, x].std())
    high = float(draws.loc[draws["sigma_b"] > cut, x].std())
    return {"cut": cut, "sd_low": low, "sd_high": high, "ratio": high / low if low > 0 else float("inf")}
