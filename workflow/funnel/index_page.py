"""The report's index page: each dataset's verdict, its notebooks and tables, then the table across datasets.

Every line under a link is computed from the run's tables (:mod:`funnel.prose`); a dataset's
section opens on its verdict as the verdict rule rendered it (:func:`verdict_section`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .escape import html_text
from .facts import extra_forms, form_order
from .forms import FORMS
from .prose import count_words, forms_title, plural, ranking_sentence
from .verdict import Verdict
from .verdict_text import VERDICT_CSS, headline_sentence, verdict_html


def read_verdict(path: str | os.PathLike[str]) -> Verdict:
    """A verdict from its ``verdict.json``."""
    return Verdict.from_dict(json.loads(Path(path).read_text()))


# ------------------------------------------------------------------ the index page
class IndexSection(NamedTuple):
    """One section of the index: a heading, optional HTML that opens it (a dataset's verdict),
    then its links, each (link text, href, one-line summary); ``anchor`` is the heading's id."""

    heading: str
    entries: Sequence[tuple[str, str, str]]
    lead: str = ""
    anchor: str = ""


def index_page(
    title: str,
    intro: str,
    sections: Sequence[IndexSection | tuple[str, Sequence[tuple[str, str, str]]]],
    *,
    preface: str = "",
    first: str = "",
) -> str:
    """A small static HTML page: ``first`` (HTML: the newcomer's first screen, :func:`first_screen`), the
    intro, ``preface`` (HTML), then the sections.

    A section is an :class:`IndexSection` or a plain (heading, entries) pair.
    """
    parts = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html_text(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:72em;margin:1.2em auto;padding:0 1em;line-height:1.45}"
        "h1{margin:.2em 0 .4em}li{margin:.4em 0}.s{color:#444}"
        ".first{font-size:1.05em;background:#fffbea;border:1px solid #ecd9a0;padding:.5em 1em;margin:.5em 0 1em}"
        ".first p{margin:.45em 0}.first .for-you{font-weight:bold}"
        f"{VERDICT_CSS}</style>",
        "</head><body>",
        f"<h1>{html_text(title)}</h1>",
    ]
    if first:
        parts.append(first)
    parts.append(f"<p class='s'>{html_text(intro)}</p>")
    if preface:
        parts.append(preface)
    for section in sections:
        heading, entries, lead, anchor = IndexSection(*section)
        anchor_attr = f" id='{html_text(anchor)}'" if anchor else ""
        parts.append(f"<h2{anchor_attr}>{html_text(heading)}</h2>")
        if lead:
            parts.append(lead)
        parts.append("<ul>")
        for text, href, summary in entries:
            parts.append(
                f"<li><a href='{html_text(href)}'>{html_text(text)}</a>"
                f" <span class='s'>&mdash; {html_text(summary)}</span></li>"
            )
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def relative_href(target: str | os.PathLike[str], page: str | os.PathLike[str]) -> str:
    """Link from the page ``page`` to ``target`` (both relative to the working directory)."""
    return Path(os.path.relpath(Path(target), Path(page).parent)).as_posix()


ORDINALS = {3: "third", 4: "fourth", 5: "fifth"}


def fitted_forms(verdicts: Sequence[Verdict]) -> list[str]:
    """The forms any of ``verdicts`` fitted, in the registry's order."""
    return form_order(f.model for verdict in verdicts for f in verdict.forms)


def index_intro(verdicts: Sequence[Verdict], formulas: Sequence[Verdict] = ()) -> str:
    """The line under the index's title: the forms the run fitted, the models (``verdicts``: the varying-intercept,
    varying-slope datasets'; ``formulas``: the datasets' with a model by formula), and what the page holds."""
    forms = fitted_forms([*verdicts, *formulas]) or ["centered", "noncentered"]
    kinds = ["varying-intercept, varying-slope models"] if verdicts else []
    kinds += ["models by formula"] if formulas else []
    models = " and ".join(kinds) or "varying-intercept, varying-slope models"
    across = "; last, the table across datasets" if verdicts else ""
    return (
        f"{forms_title(forms)[:1].upper()}{forms_title(forms)[1:]} {models}: for each "
        "dataset, the verdict (which form to use, computed from the fits by the rule stated with it) and its evidence, "
        f"then its notebooks and tables{across}. Every notebook reads this run's tables and "
        "traces (none fits a model); every number below comes from them."
    )


# The first screen's two paragraphs on the funnel and the forms, filled with the words of the run's models: the
# shorthand's slopes b, whose spread is σ_b, or (a run of formula datasets alone) the effects u of each grouping
# factor, whose spread is a group-level scale σ.
FUNNEL_MODEL = (
    "<p>Your model gives {groups}, drawn from a common distribution whose {spread}. When the groups carry little "
    "data, the posterior is shaped like a <strong>funnel</strong>: as {scale} nears zero the {effects} are squeezed "
    "together, and a sampler whose steps fit the funnel's wide mouth cannot enter its narrow neck: it reports "
    "<em>divergences</em> and its estimates are biased.</p>"
)
FUNNEL_FORMS = (
    "<p>The same model can be written in two <strong>forms</strong>: <em>centered</em>, the {effects} sampled as "
    "they are ({centered}), or <em>non-centered</em>, standard-normal offsets scaled by {scale} ({noncentered}), "
    "which hides the funnel from the sampler."
)
FUNNEL_WORDS = {
    "slopes": {
        "groups": "every group its own intercept and slope",
        "spread": "spread of slopes is σ_b",
        "scale": "σ_b",
        "effects": "slopes",
        "centered": "b ~ Normal(μ_b, σ_b)",
        "noncentered": "b = μ_b + σ_b·z",
    },
    "effects": {
        "groups": "the groups of each grouping factor their own effects",
        "spread": "spread is a group-level scale σ",
        "scale": "σ",
        "effects": "effects",
        "centered": "u ~ Normal(0, σ)",
        "noncentered": "u = σ·z",
    },
}


def first_screen(
    index: str, verdicts: Mapping[str, tuple[Verdict, str | None]], formulas: Mapping[str, Verdict] | None = None
) -> str:
    """The newcomer's first screen, before any table: what a funnel is, what the forms are (the two whole ones,
    and any other the run fitted, from the registry), and what the verdict means for their model (one line per
    dataset; with more than two forms, the winner's speed against the runner-up's), with a link to the comparison.

    ``verdicts``: dataset -> (its verdict, its comparison page or None); ``formulas``: a formula dataset -> its
    verdict (a run of formula datasets alone explains the funnel with a group-level scale, not σ_b).
    """
    formulas = formulas or {}
    fitted = fitted_forms([verdict for verdict, _ in verdicts.values()] + list(formulas.values()))
    n = max(len(fitted), 2)
    comparison = next((page for _, page in verdicts.values() if page), None)
    link = (
        f" <a href='{html_text(relative_href(comparison, index))}'>See the {count_words(n)} forms side by side</a>."
        if comparison
        else ""
    )
    others = "".join(
        f" A {ORDINALS.get(i, f'{i}th')} form, <em>{html_text(FORMS[m].prose)}</em>, mixes the two: "
        f"{html_text(FORMS[m].plain_description)}."
        for i, m in enumerate((m for m in extra_forms(fitted) if m in FORMS), start=3)
    )
    words = FUNNEL_WORDS["slopes" if verdicts or not formulas else "effects"]
    model = FUNNEL_MODEL.format(**words)
    forms = FUNNEL_FORMS.format(**words)
    parts = [
        "<div class='first'>",
        model,
        f"{forms}{others} This run fitted "
        f"{'both' if n == 2 else f'all {count_words(n)}'}, with several seeds and samplers, and checked every "
        f"fit.{link}</p>",
    ]
    for dataset, verdict in [*((d, v) for d, (v, _) in verdicts.items()), *formulas.items()]:
        where = f"#{dataset_anchor(dataset)}"
        name = f"<a href='{html_text(where)}'>{html_text(dataset)}</a>"
        ranking = ranking_sentence(verdict)
        text = headline_sentence(verdict) + (f" {ranking}" if ranking else "")
        parts.append(f"<p class='for-you'>For your model on {name}: {html_text(text)}</p>")
    parts.append(
        "<p class='s'>Each dataset's section below gives the reasons, what to try where a form fails, the funnel "
        "figures, and the evidence (folded: click to open).</p></div>"
    )
    return "\n".join(parts)


def dataset_section(
    index: str,
    dataset: str,
    *,
    pages: Mapping[str, str],
    group_pages: Mapping[tuple[str, str], str],
    tables: Mapping[str, str],
    table: str,
    provenance: str,
    sampler: str,
    few_rows: int = 5,
) -> tuple[str, list[tuple[str, str, str]]]:
    """One dataset's section of the index: its notebooks and tables, each with a line computed from the data.

    ``pages`` maps 'data', 'comparison' and 'experiments' to their HTML (a missing
    key: no such page); ``tables`` maps the aggregate's keys to its files.
    """
    import pandas as pd

    from .datasets import read_table
    from .notebook import read_provenance
    from .prose import comparison_line, data_line, experiments_line, group_line

    record = read_provenance(provenance)
    summary = pd.read_csv(tables["summary"]).set_index(["sampler", "model"])
    maps = pd.read_csv(tables["map_table"])
    fits = pd.read_csv(tables["fits"])
    columns = record["columns"]
    entries = [
        (
            f"The data ({columns['group']}, {columns['x']}, {columns['y']})",
            relative_href(pages["data"], index),
            data_line(read_table(table, record), record, few_rows),
        )
    ]
    order = {form: i for i, form in enumerate(form_order(m for _, m in group_pages))}
    for (s, m), page in sorted(group_pages.items(), key=lambda item: (item[0][0], order[item[0][1]])):
        entries.append((f"Fit group {s} / {m}", relative_href(page, index), group_line(summary.loc[(s, m)])))
    if "comparison" in pages:
        title = forms_title(summary.index.get_level_values("model"))
        entries.append(
            (
                title[:1].upper() + title[1:],
                relative_href(pages["comparison"], index),
                comparison_line(summary.reset_index(), maps, sampler),
            )
        )
    if "experiments" in pages:
        entries.append(
            (
                "Experiments: bias against a reference run, target_accept, rows per group, samplers",
                relative_href(pages["experiments"], index),
                experiments_line(fits),
            )
        )
    entries += table_entries(index, tables, len(summary), len(fits))
    return f"Dataset {dataset}: {plural(record['rows'], 'row')}, {plural(record['groups'], 'group')}", entries


def table_entries(index: str, tables: Mapping[str, str], summary_rows: int, fits: int) -> list[tuple[str, str, str]]:
    """The index's links to a dataset's tables (those of ``tables`` it has), each with what it holds."""
    described = {
        "summary_html": "median [min, max] across seeds per sampler and form, and the share of seeds passing each check",
        "summary_md": "the same table as Markdown",
        "summary": f"the same as CSV: {plural(summary_rows, 'row')}, one per sampler and form, median/min/max of "
        "every metric",
        "fits": f"one row per fit ({plural(fits, 'fit')}): every diagnostic of every seed",
        "map_table": "MAP estimates beside the posterior means, per model form",
    }
    return [
        (f"table {Path(tables[k]).name}", relative_href(tables[k], index), text)
        for k, text in described.items()
        if k in tables
    ]


def formula_section(
    index: str, dataset: str, *, page: str, tables: Mapping[str, str], provenance: str
) -> tuple[str, list[tuple[str, str, str]]]:
    """A formula dataset's section of the index (its verdict opens it): its page (the model, its funnels per scale,
    every seed's diagnostics) with the model in a line, then its tables."""
    import pandas as pd

    from .notebook import read_provenance

    record = read_provenance(provenance)
    summary, fits = pd.read_csv(tables["summary"]), pd.read_csv(tables["fits"])
    terms = ", ".join(f"{t['term']} ({plural(t['levels'], 'level')})" for t in record["terms"])
    model = (
        f"{record['formula']}, family {record['family']}: group-specific terms {terms}; the funnel of each "
        "group-level scale in each form, every seed's diagnostics"
    )
    entries = [(f"The model of {dataset} and its funnels", relative_href(page, index), model)]
    entries += table_entries(index, tables, len(summary), len(fits))
    return f"Dataset {dataset}: {plural(record['rows'], 'row')}, a formula model", entries


def dataset_anchor(dataset: str) -> str:
    return f"dataset-{dataset}"


FUNNEL_FIGURES = {
    "centered_funnel": "the centered form: b of the tracked group against σ_b, divergences in red",
    "noncentered_offsets": "the non-centered form: the offsets against log σ_b, no funnel",
}


def verdict_section(
    verdict: Verdict,
    index: str,
    *,
    verdict_page: str | None = None,
    others: Sequence[str] = (),
    figures: Mapping[str, str] | None = None,
    comparison: str | None = None,
    sampler: str | None = None,
) -> str:
    """The HTML that opens a dataset's section of the index: its verdict, the headline figures
    (``figures``: name -> PNG; small images linking to ``comparison``) and links to the verdict's own
    page and files (``others``). The verdict rule writes it, from the verdict it computed; the index
    only includes it."""
    shown = [(name, path) for name, path in (figures or {}).items() if name in FUNNEL_FIGURES]
    images = [
        (relative_href(path, index), relative_href(comparison or path, index), FUNNEL_FIGURES[name])
        for name, path in shown
    ]
    caption = ""
    if images:
        by = f" ({sampler} fits)" if sampler else ""
        caption = (
            f"The funnel{by}: first, the centered form's slope of the tracked group against σ_b, narrowing into a "
            "funnel with divergent transitions (red) in its neck; second, the non-centered offsets, which show no "
            "funnel. Click a figure for the comparison notebook."
        )
    body = verdict_html(verdict, figures=images, figure_caption=caption)
    if verdict_page:
        page = relative_href(verdict_page, index)
        extra = "".join(
            f", <a href='{html_text(relative_href(p, index))}'>{html_text(Path(p).name)}</a>" for p in others
        )
        body += (
            f"\n<p class='s'>The verdict on a page of its own: <a href='{html_text(page)}'>"
            f"{html_text(Path(verdict_page).name)}</a>{extra}.</p>"
        )
    return body


def sbc_section(index: str, conclusion_json: str, page: str, *, markdown: str | None = None) -> str:
    """The HTML that follows a dataset's verdict when it has an SBC campaign: the campaign's one-line
    conclusion (``conclusion.json``'s ``line``), linking its notebook ``page`` and, when they exist, its
    Markdown tables (``markdown``) and the conclusion file."""
    import json

    outcome = json.loads(Path(conclusion_json).read_text())
    href = html_text(relative_href(page, index))
    others = [Path(p) for p in (markdown, conclusion_json) if p is not None and Path(p).exists()]
    extra = "".join(f", <a href='{html_text(relative_href(p, index))}'>{html_text(p.name)}</a>" for p in others)
    return (
        f"<p><strong>Simulation-based calibration.</strong> {html_text(outcome['line'])}</p>\n"
        f"<p class='s'>The calibration notebook: <a href='{href}'>{html_text(Path(page).name)}</a>{extra}.</p>"
    )


def verdicts_at_a_glance(index: str, verdicts: Mapping[str, Verdict]) -> str:
    """One line per dataset (name -> its verdict, as :func:`read_verdict` read it): its recommendation, linking to
    its section."""
    items = []
    for dataset, verdict in verdicts.items():
        items.append(
            f"<li><a href='#{html_text(dataset_anchor(dataset))}'>{html_text(dataset)}</a>: "
            f"<strong>{html_text(headline_sentence(verdict))}</strong> "
            f"<span class='s'>&mdash; {html_text(verdict.reason)}</span></li>"
        )
    return "<h2>Verdicts</h2><ul>" + "".join(items) + "</ul>"


def datasets_section(index: str, datasets_csv: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The cross-dataset section: the table of every dataset x sampler x form."""
    import pandas as pd

    from .prose import datasets_line

    frame = pd.read_csv(datasets_csv)
    return (
        "Across datasets",
        [(Path(datasets_csv).name, relative_href(datasets_csv, index), datasets_line(frame))],
    )
