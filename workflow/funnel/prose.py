"""Sentences the report writes, each chosen and filled in by the numbers.

Thresholds are arguments (the rule's ``rhat_max``, ``ess_min``, ``bfmi_min`` and
the dataset's ``sigma_b_small``), never constants; σ_b values are rounded to
three significant figures (:func:`funnel.notebook.num`), whatever the data's scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .facts import Z_FLAG, data_facts, group_stats
from .notebook import label, num, pct
from .records import SIGMA_B, z_column

Z_SIGMA_B = z_column(SIGMA_B)


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 dataset', '3 datasets' (``many`` for an irregular plural)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


# ------------------------------------------------------------------ comparison
def funnel_sentence(facts: Mapping[str, Any], spread: Mapping[str, float], track: str, ratio_min: float = 1.2) -> str:
    """What the centered draws say about the funnel: the divergences and the spread of b[track] by σ_b.

    The spread's ratio (upper half of σ_b ÷ lower half) shows a funnel only where the chains reach its neck;
    when the draws diverge, the neck was met but not entered, so a ratio near 1 is no sign of its absence.
    """
    divergent, share = int(facts["divergent"]), float(facts["share_divergent"])
    text = f"**{divergent}** of {facts['draws']} centered draws ({pct(share, 2)}) were divergent"
    if divergent:
        text += (
            f"; their median σ_b is {num(facts['median_sigma_b_divergent'])} against {num(facts['median_sigma_b'])} "
            "over all draws"
            + (": they cluster in the neck." if facts["median_sigma_b_divergent"] < facts["median_sigma_b"] else ".")
        )
    else:
        text += "."
    ratio = float(spread["ratio"])
    text += (
        f" The spread of b[{track}] is {num(spread['sd_low'])} in the lower half of σ_b and "
        f"{num(spread['sd_high'])} in the upper half (ratio {ratio:.2f})"
    )
    if ratio > ratio_min:
        return text + ": the funnel."
    if divergent:
        return text + (
            f": the spread narrows little in the draws, but the {plural(divergent, 'divergent transition')} "
            f"{'says' if divergent == 1 else 'say'} "
            "the sampler met the funnel's neck and could not enter it, so the draws miss the small σ_b where it "
            "narrows: a funnel, hidden from the draws by the sampler's failure to explore it."
        )
    return text + ": little sign of a funnel on this dataset, and no divergences."


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
    text = f"Posterior mean of σ_b (median over seeds): centered {num(c)}, non-centered {num(nc)}: {verdict}."
    if "below_centered" in bias and "below_noncentered" in bias:
        small = f"{bias['sigma_b_small']:g}"
        under = bias["below_centered"] < bias["below_noncentered"]
        text += (
            f" Share of draws with σ_b < {small}: centered {pct(bias['below_centered'], 1)}, "
            f"non-centered {pct(bias['below_noncentered'], 1)}"
            + (" (the centered chains under-visit the funnel's neck)." if under else ".")
        )
    return text


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
        change = f"({c['ess_bulk_sigma_b_median']:.0f} → {nc['ess_bulk_sigma_b_median']:.0f})"
        if ratio > 1:
            ess = f"non-centering multiplied the median bulk ESS of σ_b by {ratio:.1f} {change}"
        else:
            ess = f"non-centering did **not** raise the median bulk ESS of σ_b {change}"
        sel = fits[fits["sampler"].eq(sampler) & fits["model"].eq("centered")]
        n_high = int((sel["rhat_sigma_b"] >= rhat_max).sum())
        if n_high:
            rhat = (
                f"the centered R-hat(σ_b) reached {rhat_max:g} or more on {n_high} of {len(sel)} seeds "
                f"(max {c['rhat_sigma_b_max']:.3f}), against a non-centered max of {nc['rhat_sigma_b_max']:.3f}"
            )
        else:
            rhat = f"the centered R-hat(σ_b) stayed below {rhat_max:g} on every seed (max {c['rhat_sigma_b_max']:.3f})"
            if c["fits_with_divergences"] or c["ess_bulk_sigma_b_median"] < ess_min:
                rhat += ": R-hat alone would not have flagged the funnel"

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
            f"mean of {num(c['posterior_mean_sigma_b'])} (every slope pulled to {num(c['map_mu_b'])}); non-centered "
            f"MAP σ_b = {num(nc['map_sigma_b'])} against {num(nc['posterior_mean_sigma_b'])}. The mode of a "
            "hierarchical posterior sits where the volume is not."
        )
    return out


# ------------------------------------------------------------------ experiments
def bias_sentence(fits: pd.DataFrame, z_flag: float = Z_FLAG) -> str:
    """How many fits per form have |z(E[σ_b])| >= z_flag, computed from the table."""
    parts = []
    for model, group in fits.groupby("model", sort=True):
        flagged = int((group[Z_SIGMA_B].abs() >= z_flag).sum())
        parts.append(
            f"{model}: {flagged} of {len(group)} fits have |z| ≥ {z_flag:g} for E[σ_b] "
            f"(median z {group[Z_SIGMA_B].median():+.1f}, median ESS(σ_b) {group['ess_bulk_sigma_b'].median():.0f})"
        )
    return "; ".join(parts) + "."


def target_accept_sentence(summary: pd.DataFrame) -> str:
    rows = summary.set_index(["sampler", "model", "target_accept"]).sort_index()
    parts = []
    for (sampler, model), group in rows.groupby(level=[0, 1]):
        low, high = group.index.get_level_values(2).min(), group.index.get_level_values(2).max()
        at_low, at_high = group.xs(low, level=2).iloc[0], group.xs(high, level=2).iloc[0]
        parts.append(
            f"{model} ({sampler}): from target_accept {low:g} to {high:g}, median divergences "
            f"{at_low['divergences_median']:.0f} → {at_high['divergences_median']:.0f}, median ESS(σ_b) "
            f"{at_low['ess_bulk_sigma_b_median']:.0f} → {at_high['ess_bulk_sigma_b_median']:.0f}"
        )
    return "; ".join(parts) + "."


ROWS_AXIS = "rows_per_group_median_median"


def crossover_sentence(summary: pd.DataFrame) -> str:
    """At which median rows per group the centered form overtakes the non-centered one, for σ_b."""
    column = "ess_bulk_sigma_b_per_s_median"
    parts = []
    for sampler, group in summary.groupby("sampler", sort=True):
        wide = group.pivot_table(index=ROWS_AXIS, columns="model", values=column)
        if not {"centered", "noncentered"} <= set(wide.columns):
            continue
        better = wide.index[wide["centered"] > wide["noncentered"]]
        if len(better):
            parts.append(
                f"with {sampler}, the centered form has the higher ESS(σ_b) per second from "
                f"{better.min():g} rows per group (median) on"
            )
        else:
            parts.append(f"with {sampler}, the non-centered form stays ahead at every data size tried")
    return ("; ".join(parts) + ".") if parts else "Both forms are needed for the comparison."


def sampler_lines(fits: pd.DataFrame) -> str:
    """Medians over seeds per sampler and form: divergences, each fit's largest R-hat, ESS(σ_b) and its rate."""
    stats = fits.groupby(["sampler", "model"]).agg(
        divergences=("divergences", "median"),
        rhat_max=("rhat_max", "median"),
        ess_sigma_b=("ess_bulk_sigma_b", "median"),
        ess_per_s=("ess_bulk_sigma_b_per_s", "median"),
    )
    lines = [
        f"{sampler} {model}: median {row.divergences:.0f} divergences, largest R-hat of a fit {row.rhat_max:.3f}, "
        f"ESS(σ_b) {row.ess_sigma_b:.0f} ({num(row.ess_per_s)} per second)"
        for (sampler, model), row in stats.iterrows()
    ]
    return "Medians over seeds: " + "; ".join(lines) + "."


# ------------------------------------------------------------------ the index page's one-liners
def group_line(summary_row: Mapping[str, Any]) -> str:
    """One sampler × form over its seeds, each number labelled with what it is (medians [min, max] over seeds)."""
    r = summary_row
    worst = f", worst seed {r['rhat_max_max']:.3f}" if "rhat_max_max" in r else ""
    return (
        f"{plural(int(r['seeds']), 'seed')}, median [min, max] over seeds: divergences {r['divergences_median']:.0f} "
        f"[{r['divergences_min']:.0f}, {r['divergences_max']:.0f}]; largest R-hat of a fit {r['rhat_max_median']:.3f} "
        f"(median over seeds{worst}); bulk ESS(σ_b) {r['ess_bulk_sigma_b_median']:.0f} "
        f"[{r['ess_bulk_sigma_b_min']:.0f}, {r['ess_bulk_sigma_b_max']:.0f}]; E[σ_b] {num(r['mean_sigma_b_median'])}; "
        f"all checks pass on {pct(r['share_pass_all'])} of seeds"
    )


def data_line(table: pd.DataFrame, provenance: Mapping[str, Any], few_rows: int = 5) -> str:
    columns = provenance["columns"]
    f = data_facts(table, columns, str(provenance["track_group"]), few_rows)
    src = provenance.get("download", {})
    if "transform" in provenance:
        how = f"transform {provenance['transform']}"
    else:
        how = f"y {columns['y']} (y_transform {provenance.get('y_transform', 'none')})"
    return (
        f"{f['rows']} rows in {f['groups']} groups of {columns['group']} (x {columns['x']}), {f['groups_few']} of them "
        f"with 1 to {few_rows} rows; tracked group {f['track_group']}; source {src.get('source')} "
        f"(requested {src.get('requested_source')}), {how}"
    )


def comparison_line(summary: pd.DataFrame, maps: pd.DataFrame, sampler: str) -> str:
    s = summary.set_index(["sampler", "model"])
    m = maps.set_index("model")
    parts = []
    if (sampler, "centered") in s.index and (sampler, "noncentered") in s.index:
        c, nc = s.loc[(sampler, "centered")], s.loc[(sampler, "noncentered")]
        parts.append(
            f"{sampler}: median bulk ESS(σ_b) centered {c['ess_bulk_sigma_b_median']:.0f} vs non-centered "
            f"{nc['ess_bulk_sigma_b_median']:.0f}, divergences {c['divergences_median']:.0f} vs "
            f"{nc['divergences_median']:.0f}"
        )
    if "centered" in m.index:
        parts.append(
            f"centered MAP σ_b {m.loc['centered', 'map_sigma_b']:.1e} vs posterior mean "
            f"{num(m.loc['centered', 'posterior_mean_sigma_b'])}"
        )
    return "; ".join(parts) or "the centered vs non-centered comparison"


def experiments_line(fits: pd.DataFrame, z_flag: float = Z_FLAG) -> str:
    """One line for the index: the bias headline when the reference ran, else the sampler one."""
    if Z_SIGMA_B in fits.columns:
        return bias_sentence(fits, z_flag)
    medians = fits.groupby(["sampler", "model"])["ess_bulk_sigma_b_per_s"].median()
    return (
        "Median ESS(σ_b) per second: "
        + ", ".join(f"{s} {m} {v:.1f}" for (s, m), v in medians.items())
        + ". No reference run, so no bias z-scores: workflow/presets/experiments.yaml switches the experiments on."
    )


def datasets_line(datasets: pd.DataFrame) -> str:
    """One line for the cross-dataset table: how many datasets, and where all checks pass most."""
    best = datasets.sort_values(["share_pass_all", "ess_bulk_sigma_b_median"], ascending=False).iloc[0]
    text = (
        f"{plural(datasets['dataset'].nunique(), 'dataset')} × sampler × form ({plural(len(datasets), 'row')}): share "
        "of seeds passing every check, median divergences, worst R-hat, median ESS(σ_b) and its rate, E[σ_b]"
    )
    if best["share_pass_all"] > 0:
        return (
            text + f"; most passing: {best['dataset']} {best['sampler']} / {best['model']} "
            f"({pct(best['share_pass_all'])} of seeds)"
        )
    return text + "; no seed of any dataset passes every check"
