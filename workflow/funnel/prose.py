"""Sentences the report writes, each chosen and filled in by the numbers.

Thresholds are arguments (the rule's ``rhat_max``, ``ess_min``, ``bfmi_min`` and
the dataset's ``sigma_b_small``), never constants; σ_b values are rounded to
three significant figures (:func:`funnel.notebook.num`), whatever the data's scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .facts import WHOLE_FORMS, Z_FLAG, data_facts, extra_forms, form_order, group_stats
from .forms import FORMS
from .notebook import label, num, pct
from .records import SIGMA_B, z_column

if TYPE_CHECKING:
    from .verdict import Verdict

Z_SIGMA_B = z_column(SIGMA_B)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def form_prose(model: str) -> str:
    """A form's name in sentences, from the registry ('non-centered'); an unregistered name as it is."""
    return FORMS[model].prose if model in FORMS else str(model)


def count_words(n: int) -> str:
    """'two', 'three', ... (digits from six on)."""
    return NUMBER_WORDS.get(n, str(n))


def forms_title(models: Sequence[str]) -> str:
    """'centered vs non-centered' (vs 'partially centered' ...): the forms fitted, in the registry's order."""
    return " vs ".join(form_prose(m) for m in form_order(models))


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
    for model in extra_forms(k.removeprefix("mean_") for k in bias if k.startswith("mean_")):
        mean, rel_nc = bias[f"mean_{model}"], bias[f"mean_{model}"] / nc - 1
        against = (
            "within 2% of the non-centered"
            if abs(rel_nc) < 0.02
            else (f"{pct(abs(rel_nc), 1)} {'above' if rel_nc > 0 else 'below'} the non-centered")
        )
        text += f" The {form_prose(model)} form: {num(mean)} ({against})"
        if f"below_{model}" in bias:
            text += f"; share of draws with σ_b < {bias['sigma_b_small']:g}: {pct(bias[f'below_{model}'], 1)}"
        text += "."
    return text


def pooled_means(means: Mapping[str, float]) -> str:
    """'centered 0.31, non-centered 0.26, partially centered 0.27': a value per form, in the registry's order."""
    return ", ".join(f"{form_prose(m)} {num(means[m])}" for m in form_order(means))


def posteriors_heading(models: Sequence[str]) -> str:
    """The σ_b section's heading: 'both forms' for two, 'the three forms' for three."""
    n = len(set(models))
    return f"## 3. σ_b posteriors of {'both forms' if n == 2 else f'the {count_words(n)} forms'}"


def other_forms_paragraph(models: Sequence[str], splits: Mapping[str, str], sampler: str) -> str:
    """What the forms beyond the two whole ones are and how they split the groups; '' when only those two ran."""
    extra = extra_forms(models)
    if not extra:
        return ""
    names = " and ".join(
        f"the **{form_prose(m)}** form" + (f" ({FORMS[m].plain_description})" if m in FORMS else "") for m in extra
    )
    parts = [
        f"Besides the two whole forms this run fitted {names}. "
        f"{'It appears' if len(extra) == 1 else 'They appear'} beside them in every table and figure below "
        f"(figures from the {sampler} fits)."
    ]
    parts += [splits[m] for m in extra if m in splits]
    return " ".join(parts)


def ranking_sentence(verdict: Verdict) -> str:
    """With more than the two whole forms: the verdict's pick among them and its speed ratio to the runner-up
    (the verdict's own numbers: ``compared``, ``ratio_ess_per_s``, ``ratio_interval``); '' otherwise."""
    from .verdict_rule import EITHER

    fitted = form_order(f.model for f in verdict.forms)
    if len(fitted) <= len(WHOLE_FORMS):
        return ""
    pair, ratio, interval = list(verdict.compared), verdict.ratio_ess_per_s, list(verdict.ratio_interval)
    if len(pair) != 2 or not np.isfinite(ratio) or ratio <= 0:
        return ""
    span = ""
    finite = len(interval) == 2 and all(np.isfinite(interval)) and min(interval) > 0
    how = "geometric mean over samplers of the medians" if len(verdict.samplers) > 1 else "median"
    pick = verdict.recommendation
    if pick in pair:
        other = pair[0] if pick == pair[1] else pair[1]
        lead = ratio if pick == pair[1] else 1 / ratio
        if finite:
            lo, hi = interval if pick == pair[1] else (1 / interval[1], 1 / interval[0])
            span = f" (95% bootstrap interval over seeds {num(lo, 2)}–{num(hi, 2)})"
        passes = all(f.passes for f in verdict.forms if f.model == other)
        return (
            f"Of the {count_words(len(fitted))} forms fitted, the {form_prose(pick)} form wins: its {how} ESS per second "
            f"of the slowest group-level scale is {num(lead, 2)}× that of the runner-up, the {form_prose(other)} form{span}"
            + ("." if passes else ", which does not pass with every sampler.")
        )
    if pick == EITHER:
        lead = max(ratio, 1 / ratio)
        return (
            f"Of the {count_words(len(fitted))} forms fitted, the two fastest, the {form_prose(pair[0])} and the "
            f"{form_prose(pair[1])} form, are within {verdict.rule.get('ess_factor', 1.5):g}× of each other in "
            f"{how} ESS per second of the slowest group-level scale ({num(lead, 2)}×): either will do."
        )
    return ""


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
        out += _extra_form_lines(fits, stats, sampler)
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


def _extra_form_lines(fits: pd.DataFrame, stats: pd.DataFrame, sampler: str) -> list[str]:
    """A conclusion per form beyond the two whole ones, with ``sampler``: its divergences and its ESS(σ_b) and
    ESS(σ_b) per second against each whole form's (medians over seeds)."""
    lines = []
    mine = fits[fits["sampler"].eq(sampler)]
    rate = mine.groupby("model")["ess_bulk_sigma_b_per_s"].median() if "ess_bulk_sigma_b_per_s" in mine else None
    for model in extra_forms(mine["model"]):
        e = stats.loc[(sampler, model)]
        whole = [m for m in WHOLE_FORMS if (sampler, m) in stats.index]
        against = " and ".join(
            f"{stats.loc[(sampler, m), 'ess_bulk_sigma_b_median']:.0f} {form_prose(m)}" for m in whole
        )
        text = (
            f"**{sampler}**, {form_prose(model)}: {int(e['fits_with_divergences'])} of {int(e['fits'])} fits diverged "
            f"({int(e['divergences_total'])} divergent transitions in all); median bulk ESS of σ_b "
            f"{e['ess_bulk_sigma_b_median']:.0f}" + (f" against {against}" if against else "")
        )
        if rate is not None and np.isfinite(rate.get(model, np.nan)):
            per_s = " and ".join(f"{num(rate[m])} {form_prose(m)}" for m in whole if np.isfinite(rate.get(m, np.nan)))
            text += f"; per second of sampling {num(rate[model])}" + (f" against {per_s}" if per_s else "")
        lines.append(text + ".")
    return lines


def map_lines(maps: pd.DataFrame) -> list[str]:
    """The MAP against the posterior mean of σ_b, one Markdown bullet per form fitted (registry order)."""
    m = maps.set_index("model")
    lines = []
    for model in form_order(m.index):
        r = m.loc[model]
        if model == "centered":
            lines.append(
                f"- **centered**: MAP σ_b = {r['map_sigma_b']:.1e}, every b between {num(r['map_b_min'])} and "
                f"{num(r['map_b_max'])} (= μ_b {num(r['map_mu_b'])}): complete pooling. Posterior mean σ_b "
                f"{num(r['posterior_mean_sigma_b'])} (median over all centered fits)."
            )
            continue
        ratio = r["map_sigma_b"] / r["posterior_mean_sigma_b"]
        lines.append(
            f"- **{form_prose(model)}**: MAP σ_b = {num(r['map_sigma_b'])}, {num(ratio, 2)} times the posterior mean "
            f"{num(r['posterior_mean_sigma_b'])}" + (" (inflated)." if ratio > 1 else ".")
        )
    return lines


def other_form_heading(model: str, index: int) -> str:
    """'### 2b. The partially centered form' (index 0 -> b, 1 -> c, ...)."""
    return f"### 2{chr(ord('b') + index)}. The {form_prose(model)} form"


def other_form_sentence(
    model: str,
    facts: Mapping[str, Any],
    spread: Mapping[str, float],
    whole: Mapping[str, Mapping[str, Any]],
    track: str,
) -> str:
    """A form beyond the two whole ones, from its draws: its divergences and smallest σ_b against the whole forms'
    (``whole``: form -> :func:`funnel.facts.funnel_facts`), and the spread of b[track] by σ_b."""
    against = ", ".join(f"{int(f['divergent'])} {form_prose(m)}" for m, f in whole.items())
    reach = ", ".join(f"{form_prose(m)} {num(f['min_sigma_b'], 2)}" for m, f in whole.items())
    return (
        f"Divergent draws: **{int(facts['divergent'])}** of {facts['draws']} ({pct(facts['share_divergent'], 2)})"
        + (f", against {against}" if against else "")
        + f". Its chains reach σ_b down to {num(facts['min_sigma_b'], 2)}"
        + (f" ({reach})" if reach else "")
        + f". The spread of b[{track}] is {num(spread['sd_low'])} in the lower half of σ_b and {num(spread['sd_high'])} "
        f"in the upper half (ratio {spread['ratio']:.2f}): the posterior is the same in every form, only the "
        "coordinates the sampler moves in differ."
    )


def moves_in(model: str) -> str:
    """What a form's sampler moves in, for its fit page ('' for the centered form)."""
    if model == "noncentered":
        return (
            " The posterior, and so this funnel, is the same in both forms; this form's sampler moves in "
            "b_offset instead, where there is no neck (see the comparison notebook)."
        )
    if model in extra_forms([model]):
        return (
            " The posterior, and so this funnel, is the same in every form; this form's sampler moves in b for the "
            "groups whose slope it centers and in b_offset for the others (its split is stated on this page)."
        )
    return ""


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
    point = maps.set_index("model")
    parts = []
    models = form_order(model for by, model in s.index if by == sampler)
    if set(WHOLE_FORMS) <= set(models):
        rows = [s.loc[(sampler, m)] for m in models]
        parts.append(
            f"{sampler}: median bulk ESS(σ_b) "
            + " vs ".join(f"{form_prose(m)} {r['ess_bulk_sigma_b_median']:.0f}" for m, r in zip(models, rows))
            + ", divergences "
            + " vs ".join(f"{r['divergences_median']:.0f}" for r in rows)
        )
    if "centered" in point.index:
        parts.append(
            f"centered MAP σ_b {point.loc['centered', 'map_sigma_b']:.1e} vs posterior mean "
            f"{num(point.loc['centered', 'posterior_mean_sigma_b'])}"
        )
    return "; ".join(parts) or f"the {forms_title(models if len(models) > 1 else WHOLE_FORMS)} comparison"


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
