"""The numbers and tables the report quotes, computed from the workflow's tables and draws.

Everything here is plain pandas/NumPy on data already read: no figures, no prose
(see :mod:`funnel.prose`), nothing fits a model. Column names come from the
dataset's provenance (``columns``: group, x, y), never from radon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import records as R
from .forms import FORMS
from .forms import split_text as form_split_text
from .records import below_column
from .verdict_rule import PAIR as WHOLE_FORMS  # the two whole forms: the comparison's story (the funnel, its removal)

# |z| at which a fit's estimate counts as off the reference run's (see funnel.bias).
Z_FLAG = 3.0


# ------------------------------------------------------------------ the data
def is_binary(values: pd.Series) -> bool:
    """Whether x takes exactly two values (radon's floor: 0 basement, 1 first floor)."""
    return pd.Series(values).nunique() == 2


def group_counts(table: pd.DataFrame, group: str, x: str) -> pd.DataFrame:
    """Rows per group, most rows first, with the spread of x in the group.

    Columns: the group column, ``rows``, ``x_values`` (distinct x values), and
    for a binary x ``x_low`` / ``x_high`` (rows at the lower and the higher value).
    """
    grouped = table.groupby(group, sort=True)[x]
    counts = pd.DataFrame({"rows": grouped.size(), "x_values": grouped.nunique()})
    if is_binary(table[x]):
        low, high = sorted(table[x].unique())
        counts["x_low"] = grouped.apply(lambda s: int((s == low).sum()))
        counts["x_high"] = grouped.apply(lambda s: int((s == high).sum()))
    return counts.sort_values("rows", ascending=False, kind="stable").reset_index()


def data_facts(table: pd.DataFrame, columns: Mapping[str, str], track_group: str, few_rows: int = 5) -> dict[str, Any]:
    """The numbers the data notebook quotes (``columns``: the provenance's group, x, y)."""
    group, x = columns["group"], columns["x"]
    counts = group_counts(table, group, x)
    labels = counts[group].astype(str)
    if track_group not in set(labels):
        raise ValueError(f"tracked group {track_group!r} is not a value of column {group!r}")
    track = counts.loc[labels == track_group].iloc[0]
    largest = counts.iloc[0]
    facts: dict[str, Any] = {
        "rows": int(len(table)),
        "groups": int(len(counts)),
        "median_rows": float(counts["rows"].median()),
        "few_rows": few_rows,
        "groups_few": int(counts["rows"].le(few_rows).sum()),
        "share_groups_few": float(counts["rows"].le(few_rows).mean()),
        "groups_single": int(counts["rows"].eq(1).sum()),
        "largest_group": str(largest[group]),
        "largest_rows": int(largest["rows"]),
        "x_binary": is_binary(table[x]),
        "x_min": float(table[x].min()),
        "x_max": float(table[x].max()),
        "x_distinct": int(table[x].nunique()),
        "groups_x_constant": sorted(labels[counts["x_values"].le(1)].tolist()),
        "track_group": track_group,
        "track_rows": int(track["rows"]),
        "track_x_values": int(track["x_values"]),
    }
    if facts["x_binary"]:
        facts["x_low"], facts["x_high"] = (float(v) for v in sorted(table[x].unique()))
        facts["rows_x_high"] = int(table[x].eq(facts["x_high"]).sum())
        facts["share_x_high"] = float(table[x].eq(facts["x_high"]).mean())
        facts["track_x_high"] = int(track["x_high"])
    return facts


def provenance_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """provenance.json as rows of (what, value) for the reader."""
    download = provenance.get("download", {})
    columns = provenance.get("columns", {})
    rows = [
        ("dataset", provenance.get("dataset")),
        ("source used", download.get("source")),
        ("source requested", download.get("requested_source")),
        ("fallback reason", download.get("fallback_reason") or "none"),
        ("columns (group, x, y)", ", ".join(str(columns.get(k)) for k in ("group", "x", "y"))),
    ]
    if "transform" in provenance:
        rows.append(("log transform", provenance["transform"]))
    if "y_transform" in provenance:
        rows.append(("y transform", f"{provenance['y_transform']} (of column {provenance.get('source_y')})"))
    if "rows_read" in provenance:
        rows.append(("rows read", provenance["rows_read"]))
    rows += [
        ("rows", provenance.get("rows")),
        ("groups", provenance.get("groups")),
        ("tracked group", provenance.get("track_group")),
        ("σ_b threshold (funnel's neck)", provenance.get("sigma_b_small")),
    ]
    for name, info in sorted(download.get("files", {}).items()):
        detail = ", ".join(f"{k} {v}" for k, v in sorted(info.items()) if k != "sha256")
        rows.append((f"file {name}", f"sha256 {str(info.get('sha256', ''))[:16]}…; {detail}"))
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows], columns=["what", "value"])


# ------------------------------------------------------------------ draws
def funnel_facts(draws: pd.DataFrame, sigma_b_small: float = 0.1, scale: str = "sigma_b") -> dict[str, Any]:
    """Divergences and where they sit in sigma_b; the share of draws in the neck (σ_b < sigma_b_small).
    ``scale``: another group-level scale's column (a formula model's), whose facts take the same keys."""
    div = draws["diverging"].to_numpy()
    sigma = draws[scale].to_numpy()
    return {
        "draws": int(len(draws)),
        "fits": int(draws["seed"].nunique()),
        "divergent": int(div.sum()),
        "share_divergent": float(div.mean()) if len(div) else float("nan"),
        "median_sigma_b": float(np.median(sigma)),
        "median_sigma_b_divergent": float(np.median(sigma[div])) if div.any() else float("nan"),
        "min_sigma_b": float(sigma.min()),
        "share_sigma_b_small": float((sigma < sigma_b_small).mean()),
    }


def spread_by_sigma(draws: pd.DataFrame, x: str, scale: str = "sigma_b") -> dict[str, float]:
    """Standard deviation of ``x`` in the lower and the upper half of σ_b (or of another ``scale``).

    In a funnel the spread shrinks with σ_b (ratio high/low well above 1); in a
    flat geometry it does not (ratio near 1).
    """
    cut = float(draws[scale].median())
    low = float(draws.loc[draws[scale] <= cut, x].std())
    high = float(draws.loc[draws[scale] > cut, x].std())
    return {"cut": cut, "sd_low": low, "sd_high": high, "ratio": high / low if low > 0 else float("inf")}


# ------------------------------------------------------------------ diagnostics tables
def seed_table(records: Sequence[Mapping[str, Any]], track_group: str) -> pd.DataFrame:
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
                f"ESS bulk b[{track_group}]": f"{r[R.ess_column('bulk', f'b_{track_group}')]:.0f}",
                "E-BFMI min": f"{r['bfmi_min']:.2f}",
                "E[σ_b]": f"{r['mean_sigma_b']:.3g}",
                "sampling s": f"{r['sampling_seconds']:.1f}",
                "all checks pass": "yes" if r[R.PASS_ALL] else "no",
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the forms fitted
def form_key(model: str) -> tuple[int, str]:
    """A form's place in every table and figure: the registry's order (funnel.forms), unknown names after."""
    names = list(FORMS)
    return (names.index(model), "") if model in FORMS else (len(names), str(model))


def form_order(models: Any) -> list[str]:
    """The distinct forms of ``models`` in the registry's order."""
    return sorted({str(m) for m in models}, key=form_key)


def extra_forms(models: Any) -> list[str]:
    """The forms of ``models`` beyond the two whole ones (centered, non-centered), in the registry's order."""
    return [m for m in form_order(models) if m not in WHOLE_FORMS]


def form_splits(fits: pd.DataFrame) -> dict[str, str]:
    """Per form whose fits record a split (the partial form): the split in a sentence (funnel.forms.split_text),
    from its first fit that has it (every seed of a dataset has the same split)."""
    out: dict[str, str] = {}
    for model in form_order(fits["model"]):
        for _, row in fits[fits["model"].astype(str).eq(model)].iterrows():
            record = {k: _read_back(v) for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
            text = form_split_text(record)
            if text:
                out[model] = text.strip()
                break
    return out


def _read_back(value: Any) -> Any:
    """A cell as its record held it: a whole float back to an int (a CSV column with empty cells, as the whole
    forms leave a partial form's counts, is read as floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def group_order(fits: pd.DataFrame) -> list[tuple[str, str]]:
    """The (sampler, model) pairs of a fits table: by sampler, then in the registry's order of forms."""
    return sorted(
        {(str(s), str(m)) for s, m in zip(fits["sampler"], fits["model"])}, key=lambda g: (g[0], form_key(g[1]))
    )


def group_stats(fits: pd.DataFrame, sigma_b_small: float = 0.1) -> pd.DataFrame:
    """Per (sampler, model), in :func:`group_order`: fits, fits with divergences, and medians/extremes used in the
    prose."""
    grouped = fits.groupby(["sampler", "model"], sort=True)
    below = below_column(sigma_b_small)
    stats = pd.DataFrame(
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
            "p_sigma_b_small_median": grouped[below].median() if below in fits else np.nan,
            "share_pass_all": grouped[R.PASS_ALL].mean(),
        }
    )
    return stats.loc[[g for g in group_order(fits) if g in stats.index]]


def sigma_b_bias(fits: pd.DataFrame, sampler: str, sigma_b_small: float = 0.1) -> dict[str, float]:
    """Posterior mean of σ_b per form (median over seeds), the share of draws in the neck, and the gap."""
    sel = fits[fits["sampler"].eq(sampler)]
    means = sel.groupby("model")["mean_sigma_b"].median()
    out: dict[str, float] = {"sigma_b_small": float(sigma_b_small)}
    out.update({f"mean_{k}": float(v) for k, v in means.items()})
    below = below_column(sigma_b_small)
    if below in sel:
        out.update({f"below_{k}": float(v) for k, v in sel.groupby("model")[below].median().items()})
    if {"centered", "noncentered"} <= set(means.index):
        out["gap"] = float(means["centered"] - means["noncentered"])
        out["relative_gap"] = out["gap"] / float(means["noncentered"])
    return out


def _over_seeds(values: pd.Series, extremes: str) -> str:
    """'median (median over n seeds; range min to max)' or '...; max max)' to four decimals."""
    tail = f"range {values.min():.4f} to {values.max():.4f}" if extremes == "range" else f"max {values.max():.4f}"
    return f"{values.median():.4f} (median over {len(values)} seeds; {tail})"


def blog_table(fits: pd.DataFrame, maps: pd.DataFrame, sampler: str, blog: Mapping[str, Any]) -> pd.DataFrame:
    """A published run's numbers (``blog``, e.g. ``radon.BLOG``) beside this run's (``sampler``'s fits)."""
    m = maps.set_index("model")
    mine = fits[fits["sampler"].eq(sampler)]
    nc = mine.loc[mine["model"].eq("noncentered"), "mean_sigma_b"]
    rhat = mine.loc[mine["model"].eq("centered"), "rhat_sigma_b"]
    rows = []
    if len(nc):
        rows.append(
            ("non-centered: posterior mean of σ_b", f"{blog['noncentered_mean_sigma_b']:.4f}", _over_seeds(nc, "range"))
        )
    if "centered" in m.index:
        c = m.loc["centered"]
        rows.append(("centered: MAP of σ_b", f"{blog['centered_map_sigma_b']:.1e}", f"{c['map_sigma_b']:.1e}"))
        spread = f"{c['map_b_min']:.3f} to {c['map_b_max']:.3f} (spread {c['map_b_spread']:.1e})"
        rows.append(("centered: MAP of every b", f"≈ {blog['centered_map_b']:.3f}", spread))
    if len(rhat):
        rows.append(("centered: R-hat of σ_b", f"{blog['centered_rhat_sigma_b']:.4f}", _over_seeds(rhat, "max")))
    return pd.DataFrame(rows, columns=["quantity", blog["reference"], f"this run ({sampler})"])
