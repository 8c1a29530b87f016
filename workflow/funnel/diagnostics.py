"""Per-fit diagnostics (all computed by ArviZ) and their aggregation across seeds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import records as R
from .bias import estimands, flat, z_columns
from .escape import md_cell
from .glm import Structure
from .models import STRUCTURE, group_dim
from .records import Thresholds, ran_ok
from .records import thresholds_from as thresholds_from  # the fit and aggregate scripts read it from here


def tracked_variables(idata: Any, track_group: str, structure: Structure = STRUCTURE) -> dict[str, Any]:
    """Name -> selection of the scalars whose ESS we report: the model's hyperparameters and the tracked
    group's effects (a and b)."""
    dim = group_dim(idata.posterior)
    groups = [str(g) for g in idata.posterior[dim].values]
    if track_group not in groups:
        raise ValueError(f"track_group {track_group!r} is not a value of {dim!r} in the trace; e.g. {groups[:3]}")
    selections: dict[str, Any] = {name: {"var": name, "sel": {}} for name in structure.hyperparameters}
    labels = R.tracked_labels(track_group, structure)[len(structure.hyperparameters) :]
    for label, var in zip(labels, structure.effects, strict=True):
        selections[label] = {"var": var, "sel": {dim: track_group}}
    return selections


def _plain(value: Any) -> Any:
    """NetCDF attributes come back as NumPy scalars; JSON wants Python ones."""
    return value.item() if isinstance(value, np.generic) else value


def fit_diagnostics(
    idata: Any,
    track_group: str,
    thresholds: Thresholds = R.DEFAULT_THRESHOLDS,
    bias_groups: Sequence[str] = (),
    sigma_b_small: float = 0.1,
    structure: Structure = STRUCTURE,
) -> dict[str, Any]:
    """One flat record of diagnostics for one fit (of a model of ``structure``). Every statistic comes from ArviZ.

    It includes the estimates and MCSEs (``est_*``, ``mcse_*``) that the bias
    z-scores against the reference run are computed from.
    """

    def estimates(post: Any) -> dict[str, Any]:
        # Estimates and MCSEs (ArviZ) of the bias estimands, computed once; the summary's familiar names are
        # read from them.
        dim = group_dim(post)
        est = estimands(post, [track_group, *[g for g in bias_groups if g != track_group]], sigma_b_small)
        return {
            "mean_sigma_b": est[R.SIGMA_B]["mean"],
            "sd_sigma_b": float(post["sigma_b"].std()),
            "mcse_mean_sigma_b": est[R.SIGMA_B]["mcse"],
            "mean_log_sigma_b": est[R.LOG_SIGMA_B]["mean"],
            R.below_column(sigma_b_small): est[R.P_SIGMA_B_SMALL]["mean"],
            "mean_sigma_a": float(post["sigma_a"].mean()),
            "mean_mu_b": float(post["mu_b"].mean()),
            "mean_b_spread": float(post["b"].std(dim=dim).mean()),
            f"mean_a_{track_group}": float(post["a"].sel({dim: track_group}).mean()),
            f"mean_b_{track_group}": float(post["b"].sel({dim: track_group}).mean()),
            "track_group": track_group,
            **flat(est),
        }

    return _diagnose(idata, tracked_variables(idata, track_group, structure), structure, thresholds, estimates)


def glm_diagnostics(idata: Any, spec: Any, thresholds: Thresholds = R.DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """The record of a fit of a formula model (a :class:`funnel.spec.ModelSpec`): the sampler's and ArviZ's
    diagnostics of its scalar parameters and of each effect at its dimension's tracked level
    (``<effect>_<level>``), each group-level scale's posterior mean, the speeds and the pass checks."""
    structure = spec.structure
    levels = {effect: spec.track_levels[dim] for effect, dim in spec.effect_dims.items()}
    labels = R.glm_tracked_labels(structure, levels)
    selections: dict[str, Any] = {name: {"var": name, "sel": {}} for name in structure.hyperparameters}
    for label, (effect, dim) in zip(labels[len(structure.hyperparameters) :], spec.effect_dims.items(), strict=True):
        selections[label] = {"var": effect, "sel": {dim: levels[effect]}}

    def estimates(post: Any) -> dict[str, Any]:
        means = {f"mean_{scale}": float(post[scale].mean()) for scale in structure.scales}
        return {**means, "track_levels": " ".join(f"{d}={v}" for d, v in spec.track_levels.items())}

    return _diagnose(idata, selections, structure, thresholds, estimates)


def _diagnose(
    idata: Any,
    tracked: Mapping[str, Any],
    structure: Structure,
    thresholds: Thresholds,
    estimates: Any,
) -> dict[str, Any]:
    """The record's common part around a model's own ``estimates`` (a function of the posterior, whose fields
    come after the E-BFMI): the fit's settings, divergences, tree depth and step size, the rank-normalized R-hat
    of every parameter, the bulk and tail ESS of the ``tracked`` scalars (label -> variable and selection), the
    E-BFMI per chain, the timings, the group-level scales' speeds, the form's fields and the pass checks."""
    import arviz as az
    import xarray as xr

    post = idata.posterior
    stats = idata.sample_stats
    attrs = dict(post.attrs)
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    row: dict[str, Any] = {
        key: _plain(attrs.get(key))
        for key in ("dataset", "sampler", "model", "seed", "tune", "target_accept", "priors")
    }
    # The chains and draws actually present (the fit job refuses a trace without the configured ones).
    row["chains"], row["draws"] = int(n_chains), int(n_draws)
    diverging = stats["diverging"].values.astype(bool)
    row["divergences"] = int(diverging.sum())
    row["divergence_fraction"] = float(diverging.mean())
    row["divergences_per_chain"] = [int(x) for x in diverging.sum(axis=1)]
    if "reached_max_treedepth" in stats:
        row["max_treedepth_hits"] = int(stats["reached_max_treedepth"].values.astype(bool).sum())
    else:  # pragma: no cover - both samplers report it
        row["max_treedepth_hits"] = None
    row["mean_tree_depth"] = float(stats["tree_depth"].values.mean())
    row["step_size_mean"] = float(stats["step_size"].values.mean())

    rhat = az.rhat(idata, var_names=[*structure.hyperparameters, *structure.effects], method="rank")
    row["rhat_max"] = float(max(float(rhat[v].max()) for v in rhat.data_vars))
    for name in structure.hyperparameters:
        row[f"rhat_{name}"] = float(rhat[name])

    # ESS of the tracked scalars only (not of every group's effect: most of the cost).
    scalars = xr.Dataset({label: post[spec["var"]].sel(spec["sel"]) for label, spec in tracked.items()})
    ess_bulk = az.ess(scalars, method="bulk")
    ess_tail = az.ess(scalars, method="tail")
    for label in tracked:
        row[R.ess_column("bulk", label)] = float(ess_bulk[label])
        row[R.ess_column("tail", label)] = float(ess_tail[label])
    row["ess_bulk_min"] = min(row[R.ess_column("bulk", label)] for label in tracked)
    row["ess_tail_min"] = min(row[R.ess_column("tail", label)] for label in tracked)

    bfmi = np.asarray(az.bfmi(idata), dtype=float)
    row["bfmi_per_chain"] = [float(x) for x in bfmi]
    row["bfmi_min"] = float(bfmi.min())

    row.update(estimates(post))

    row["compile_seconds"] = float(attrs.get("compile_seconds", np.nan))
    row["sampling_seconds"] = float(attrs.get("sampling_seconds", np.nan))
    row["import_seconds"] = float(attrs.get("import_seconds", np.nan))
    # The ESS/s of each group-level scale (σ_a, σ_b) and of the slowest of them (the verdict's speed).
    row.update(R.scale_speeds(row, structure.scales))
    row["n_draws_total"] = int(n_chains * n_draws)
    row.update(R.form_fields_of(attrs))

    row.update(R.pass_checks(row, thresholds))
    return row


# ------------------------------------------------------------------ aggregation

SUMMARY_METRICS = (
    "divergences",
    "max_treedepth_hits",
    "step_size_mean",
    "rhat_max",
    "rhat_sigma_b",
    "ess_bulk_sigma_b",
    "ess_tail_sigma_b",
    "ess_bulk_min",
    "bfmi_min",
    "mean_sigma_b",
    "mcse_mean_sigma_b",
    "sampling_seconds",
    "ess_bulk_sigma_b_per_s",
    R.SLOWEST_SCALE_PER_S,
)
# Bias against the reference run, in MCSE units (present when the reference is enabled).
Z_METRICS = R.Z_COLUMNS
PASS_COLUMNS = R.PASS_COLUMNS
GROUP = ["dataset", "sampler", "model"]


def fits_table(
    records: Iterable[Mapping[str, Any]], reference: Mapping[str, Mapping[str, float]] | None = None
) -> pd.DataFrame:
    """One row per fit, sorted by sampler, model, seed; list-valued fields as text.

    With the reference run's estimands, adds the bias z-score columns ``z_*``.
    """
    records = [dict(r) for r in records]
    if reference:
        for record in records:
            record.update(z_columns(record, reference))
    frame = pd.DataFrame(records)
    if frame.empty:
        raise ValueError("no fit diagnostics to aggregate")
    # Records of fits that raised (fit.on_error: record) say status "failed" and carry the error.
    frame[R.STATUS] = frame[R.STATUS].fillna(R.OK) if R.STATUS in frame else R.OK
    frame[R.ERROR] = frame[R.ERROR].fillna("") if R.ERROR in frame else ""
    for column in PASS_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna(False).astype(bool)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, list)).any():
            frame[column] = frame[column].map(
                lambda v: (
                    " ".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in v) if isinstance(v, list) else ""
                )  # a failed fit's record has no per-chain values
            )
    return frame.sort_values([*GROUP, "seed"]).reset_index(drop=True)


def glm_summary_metrics(scales: Sequence[str]) -> tuple[str, ...]:
    """The summary's metrics of a formula model's fits (:func:`glm_diagnostics`), ``scales`` its group-level
    scales: the sampler's and ArviZ's diagnostics, and per scale its R-hat, ESS, ESS/s and posterior mean."""
    return (
        "divergences",
        "max_treedepth_hits",
        "step_size_mean",
        "rhat_max",
        *(f"rhat_{scale}" for scale in scales),
        *(R.ess_column(kind, scale) for scale in scales for kind in ("bulk", "tail")),
        "ess_bulk_min",
        "bfmi_min",
        *(f"mean_{scale}" for scale in scales),
        "sampling_seconds",
        *(R.per_s_column(scale) for scale in scales),
        R.SLOWEST_SCALE_PER_S,
    )


def summarize(fits: pd.DataFrame, metrics: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Median, min and max across seeds per (sampler, model) of ``metrics`` (the shorthand's by default; and the
    bias z-scores when the table has them), and the share of seeds passing."""
    grouped = fits.groupby(GROUP, sort=True)
    failed = ~ran_ok(fits)
    # Medians, minima and maxima over the fits that ran; a failed fit counts as not passing.
    parts = [grouped.size().rename("seeds"), failed.groupby([fits[g] for g in GROUP]).sum().rename("failed")]
    metrics = [*metrics, *[m for m in Z_METRICS if m in fits.columns]]
    for metric in metrics:
        values = grouped[metric]
        parts += [
            values.median().rename(f"{metric}_median"),
            values.min().rename(f"{metric}_min"),
            values.max().rename(f"{metric}_max"),
        ]
    for column in PASS_COLUMNS:
        parts.append(grouped[column].mean().rename(f"share_{column}"))
    return pd.concat(parts, axis=1).reset_index()


def _cell(row: pd.Series, metric: str, fmt: str) -> str:
    """One readable cell: 'median [min, max]' of ``metric`` over the seeds."""
    return f"{row[f'{metric}_median']:{fmt}} [{row[f'{metric}_min']:{fmt}}, {row[f'{metric}_max']:{fmt}}]"


def readable_summary(summary: pd.DataFrame, scales: Sequence[str] | None = None) -> pd.DataFrame:
    """The summary as a scientist reads it: one cell per metric, 'median [min, max]'. ``scales``: a formula
    model's group-level scales (each with its ESS, posterior mean and ESS/s); None: the shorthand's σ_b."""
    shown = [("σ_b", "sigma_b")] if scales is None else [(scale, scale) for scale in scales]
    per_scale = {}
    for label, scale in shown:
        per_scale[f"ESS bulk {label}"] = [_cell(r, R.ess_column("bulk", scale), ".0f") for _, r in summary.iterrows()]
        per_scale[f"ESS tail {label}"] = [_cell(r, R.ess_column("tail", scale), ".0f") for _, r in summary.iterrows()]
    means = {f"E[{label}]": [_cell(r, f"mean_{scale}", ".3f") for _, r in summary.iterrows()] for label, scale in shown}
    speeds = {
        f"ESS({label})/s": [_cell(r, R.per_s_column(scale), ".1f") for _, r in summary.iterrows()]
        for label, scale in shown
    }
    out = pd.DataFrame(
        {
            "sampler": summary["sampler"],
            "model": summary["model"],
            "seeds": summary["seeds"],
            "divergences": [_cell(r, "divergences", ".0f") for _, r in summary.iterrows()],
            "R-hat max": [_cell(r, "rhat_max", ".3f") for _, r in summary.iterrows()],
            **per_scale,
            "E-BFMI min": [_cell(r, "bfmi_min", ".2f") for _, r in summary.iterrows()],
            **means,
            "sampling s": [_cell(r, "sampling_seconds", ".1f") for _, r in summary.iterrows()],
            **speeds,
            "ESS/s slowest scale": [_cell(r, R.SLOWEST_SCALE_PER_S, ".1f") for _, r in summary.iterrows()],
        }
    )
    if "failed" in summary.columns and summary["failed"].sum() > 0:
        out.insert(3, "failed", summary["failed"].astype(int))
    z = R.z_column(R.SIGMA_B)
    if f"{z}_median" in summary.columns:
        out["bias z E[σ_b]"] = [_cell(r, z, ".1f") for _, r in summary.iterrows()]
    labels = (*(check.summary_label for check in R.CHECKS), R.PASS_ALL_LABEL)
    for column, label in zip(PASS_COLUMNS, labels):
        out[label] = [f"{v:.0%}" for v in summary[f"share_{column}"]]
    return out


def split_failed(fits: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fits that ran and those recorded as failed (``status``), from a fits table."""
    ok = ran_ok(fits)
    return fits[ok].reset_index(drop=True), fits[~ok].reset_index(drop=True)


def failed_line(failed: pd.DataFrame) -> str:
    """One sentence naming the fits recorded as failed, or '' when there are none."""
    if failed.empty:
        return ""
    items = [f"{r['sampler']}/{r['model']} seed {int(r['seed'])} ({r['error']})" for _, r in failed.iterrows()]
    return (
        f"**{len(failed)} fit(s) failed** and are left out of the figures and medians (they count as not passing "
        f"in the shares): {'; '.join(items)}."
    )


def map_table(map_records: Iterable[Mapping[str, Any]], fits: pd.DataFrame) -> pd.DataFrame:
    """MAP estimates beside the posterior means (median over seeds and samplers) per model."""
    maps = pd.DataFrame(list(map_records))
    means = (
        fits.groupby("model")[["mean_sigma_b", "mean_sigma_a", "mean_b_spread"]]
        .median()
        .rename(columns=lambda c: c.replace("mean_", "posterior_mean_"))
        .reset_index()
    )
    return maps.merge(means, on="model", how="left")


def write_tables(
    records: Iterable[Mapping[str, Any]],
    map_records: Iterable[Mapping[str, Any]],
    outputs: Mapping[str, str],
    reference: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: Thresholds = R.DEFAULT_THRESHOLDS,
) -> None:
    """Write the aggregated tables: CSV for machines, markdown and HTML for people."""
    from .io import atomic_path

    fits = fits_table(records, reference)
    summary = summarize(fits)
    maps = map_table(map_records, fits)
    with atomic_path(outputs["map_table"]) as tmp:
        maps.to_csv(tmp, index=False)
    bias = (
        " 'bias z' is (E[σ_b] of the fit - E[σ_b] of the long reference run) / combined MCSE: "
        "|z| >= 3 means the fit is biased or its MCSE too optimistic."
        if reference
        else ""
    )
    tracked = "the intercept and slope of the tracked group"
    _write_summary(fits, summary, readable_summary(summary), outputs, thresholds, tracked, bias)


def write_glm_tables(
    records: Iterable[Mapping[str, Any]],
    scales: Sequence[str],
    outputs: Mapping[str, str],
    thresholds: Thresholds = R.DEFAULT_THRESHOLDS,
) -> None:
    """A formula model's tables (``scales``: its group-level scales): the fits table, and the summary over seeds
    per sampler and form as CSV, Markdown and HTML (the outputs of :func:`write_tables` but the MAP table)."""
    fits = fits_table(records)
    summary = summarize(fits, glm_summary_metrics(scales))
    tracked = "each group-specific effect at its tracked level"
    _write_summary(fits, summary, readable_summary(summary, scales), outputs, thresholds, tracked, "")


def _write_summary(
    fits: pd.DataFrame,
    summary: pd.DataFrame,
    readable: pd.DataFrame,
    outputs: Mapping[str, str],
    thresholds: Thresholds,
    tracked: str,
    note: str,
) -> None:
    """The fits table and the summary (CSV, and for people Markdown and HTML, every cell escaped)."""
    from .io import atomic_path

    with atomic_path(outputs["fits"]) as tmp:
        fits.to_csv(tmp, index=False)
    with atomic_path(outputs["summary"]) as tmp:
        summary.to_csv(tmp, index=False)
    intro = (
        "Diagnostics across seeds: each cell is median [min, max] over seeds; the last columns give the share "
        f"of seeds passing R-hat < {thresholds.rhat_max:g}, bulk and tail ESS >= {thresholds.ess_min:g} "
        f"(hyperparameters, and {tracked}), "
        f"zero divergences, and E-BFMI >= {thresholds.bfmi_min:g}." + note
    )
    with atomic_path(outputs["summary_md"]) as tmp:
        # pipes escaped: a formula's scale ('sigma_1|herd') would split its cell
        table = readable.rename(columns=md_cell).map(md_cell).to_markdown(index=False)
        tmp.write_text(f"# Fit summary\n\n{intro}\n\n{table}\n")
    with atomic_path(outputs["summary_html"]) as tmp:
        tmp.write_text(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Fit summary</title></head><body>"
            f"<h1>Fit summary</h1><p>{intro}</p>{readable.to_html(index=False, border=0)}</body></html>\n"
        )


DATASET_COLUMNS = (
    "seeds",
    "share_pass_all",
    "divergences_median",
    "rhat_max_max",
    "ess_bulk_sigma_b_median",
    "ess_bulk_sigma_b_per_s_median",
    "mean_sigma_b_median",
    "sampling_seconds_median",
)


def datasets_table(summaries: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The headline diagnostics of every dataset: one row per dataset x sampler x form."""
    frames = [s[[*GROUP, *DATASET_COLUMNS]] for s in summaries]
    if not frames:
        raise ValueError("no dataset summaries to combine")
    return pd.concat(frames, ignore_index=True).sort_values(GROUP).reset_index(drop=True)
