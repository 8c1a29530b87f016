"""The verdict and the tables of a formula model (issue 26): every group-level scale, not σ_b alone.

A formula dataset's fits table has, per group-level scale ``<s>`` of its model, ``ess_bulk_<s>``,
``ess_bulk_<s>_per_s`` and ``mean_<s>`` (funnel.diagnostics.glm_diagnostics). The verdict decides as for the
shorthand, with its per-scale statistics of the slowest-mixing scale and Welch's test between the forms over every
scale (Bonferroni); the tables summarise every scale.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from funnel import diagnostics as D
from funnel import records as R
from funnel import verdict as V
from funnel import verdict_text as T
from funnel.errors import DataError
from funnel.prechecks import check_formula_forms

BROOD, LOCATION = "sigma_1|BROOD", "sigma_1|LOCATION"
SCALES = (BROOD, LOCATION)


def spread(mean: float, sd: float, n: int) -> np.ndarray:
    """n values with exactly this mean and sample standard deviation (evenly spaced)."""
    base = np.linspace(-1.0, 1.0, n)
    return mean + sd * (base - base.mean()) / base.std(ddof=1)


def formula_rows(sampler, model, *, speeds, means, ess=800.0, divergences=0, seeds=8, seconds=10.0):
    """One row per seed of a two-scale formula model: ``speeds`` and ``means`` map each scale to its per-seed values
    (or one value); ESS per second is ``ess_bulk_<s>`` ÷ ``sampling_seconds``."""
    rows = []
    for i in range(seeds):
        row = {"dataset": "grouse", "sampler": sampler, "model": model, "seed": i + 1, "status": "ok"}
        row.update(divergences=divergences, sampling_seconds=seconds, rhat_max=1.0)
        for scale in SCALES:
            speed = np.broadcast_to(speeds[scale], seeds)[i]
            row[R.ess_column("bulk", scale)] = float(speed * seconds)
            row[R.ess_column("tail", scale)] = ess
            row[R.per_s_column(scale)] = float(speed)
            row[f"mean_{scale}"] = float(np.broadcast_to(means[scale], seeds)[i])
            row[f"rhat_{scale}"] = 1.0
        row[R.SLOWEST_SCALE_PER_S] = min(row[R.per_s_column(s)] for s in SCALES)
        row.update(ess_bulk_min=ess, ess_tail_min=ess, bfmi_min=0.9, max_treedepth_hits=0, step_size_mean=0.3)
        row.update(R.pass_checks(row, R.DEFAULT_THRESHOLDS))
        rows.append(row)
    return rows


def grouse_like(shift: float = 0.0, centered_divergences: int = 0) -> pd.DataFrame:
    """Both forms clean and alike but for speed (LOCATION mixes worst; the non-centered form 3× faster) and a
    ``shift`` of the centered form's E[σ_LOCATION]."""
    out = []
    for sampler in ("nutpie", "pymc"):
        out += formula_rows(
            sampler,
            "centered",
            speeds={BROOD: 60.0, LOCATION: spread(20.0, 2.0, 8)},
            means={BROOD: spread(0.9, 0.02, 8), LOCATION: spread(0.6 + shift, 0.02, 8)},
            divergences=centered_divergences,
        )
        out += formula_rows(
            sampler,
            "noncentered",
            speeds={BROOD: 90.0, LOCATION: spread(60.0, 6.0, 8)},
            means={BROOD: spread(0.9, 0.02, 8), LOCATION: spread(0.6, 0.02, 8)},
        )
    return pd.DataFrame(out)


def assert_table_cells_do_not_split(markdown: str) -> None:
    """Every row of a Markdown table has as many cells as its header: a scale's pipe is escaped."""
    import re

    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
    assert rows and len(cells) == 1, cells


def test_the_verdict_reports_the_slowest_scale_and_decides_on_it():
    fits = grouse_like()
    verdict = V.compute_verdict(fits, scales=SCALES)
    assert verdict.scale == LOCATION  # the slowest-mixing scale, though BROOD comes first
    assert verdict.recommendation == "noncentered" and verdict.ratio_ess_per_s == pytest.approx(3.0)
    nc = verdict.form("nutpie", "noncentered")
    assert nc.scale == LOCATION
    assert nc.median_ess_bulk_sigma_b == pytest.approx(600.0)  # LOCATION's 60/s × 10 s, not BROOD's 900
    assert nc.mean_sigma_b == pytest.approx(0.6) and nc.sd_sigma_b == pytest.approx(0.02)
    # With BROOD slower, it is BROOD's statistics
    slow_brood = fits.copy()
    slow_brood[R.per_s_column(BROOD)] = 5.0
    assert V.compute_verdict(slow_brood, scales=SCALES).scale == BROOD


def test_welch_between_forms_covers_every_scale_at_a_bonferroni_level():
    from scipy import stats

    # A shift of the second scale's mean the test of σ_b alone would never see fails both clean forms.
    verdict = V.compute_verdict(grouse_like(shift=0.1), scales=SCALES)
    assert verdict.recommendation == V.NEITHER
    between = verdict.sampler("nutpie").between
    assert between.estimand == LOCATION and verdict.sampler("nutpie").between_tests == 2
    assert between.estimate == pytest.approx(0.1)
    assert any("the forms disagree on E[sigma_1|LOCATION]" in line for line in verdict.failures)
    assert all("a formula model has none yet" in line for line in verdict.failures)

    # A difference significant at alpha but not at alpha / 2 (two scales) fails nothing.
    def p_of(shift: float) -> float:
        c, nc = spread(0.6 + shift, 0.02, 8), spread(0.6, 0.02, 8)
        return float(stats.ttest_ind(c, nc, equal_var=False).pvalue)

    shift = next(s for s in np.arange(0.0, 0.05, 0.0002) if p_of(s) < V.ALPHA)
    assert V.ALPHA / 2 < p_of(shift) < V.ALPHA
    verdict = V.compute_verdict(grouse_like(shift=shift), scales=SCALES)
    assert verdict.recommendation == "noncentered"
    assert verdict.sampler("pymc").between.p == pytest.approx(p_of(shift))
    lines = T.bias_lines(verdict)
    assert "2 scales, each at 0.01/2" in lines[0] and "a formula model has none yet" in lines[0]
    assert "E[sigma_1|LOCATION]: centered − non-centered" in lines[1] and "no difference detected" in lines[1]


def test_a_form_that_fails_its_checks_loses_whatever_its_speed():
    fits = grouse_like(centered_divergences=3)
    fits.loc[fits["model"].eq("centered"), R.per_s_column(LOCATION)] = 500.0
    verdict = V.compute_verdict(fits, scales=SCALES)
    assert verdict.recommendation == "noncentered"
    assert not verdict.form("pymc", "centered").passes


def test_a_formula_verdict_round_trips_and_names_its_scale_in_every_shape():
    verdict = V.compute_verdict(grouse_like(), scales=SCALES, dataset="grouse")
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["scale"] == LOCATION and data["samplers"][0]["between_tests"] == 2
    assert V.Verdict.from_dict(data) == verdict
    assert "Bonferroni over the scales" in verdict.rule["text"] and "σ_b" not in verdict.rule["text"]
    markdown = T.verdict_markdown(verdict)
    assert r"median ESS_bulk(sigma_1\|LOCATION)" in markdown and r"E[sigma_1\|LOCATION] over seeds" in markdown
    assert_table_cells_do_not_split(markdown)
    assert "σ_b" not in T.table_rows(verdict)[0]


def test_a_scale_name_reaches_the_page_escaped():
    fits = grouse_like()
    hostile = "sigma_1|<b>x</b>"
    fits = fits.rename(columns=lambda c: c.replace(LOCATION, hostile))
    verdict = V.compute_verdict(fits, scales=(BROOD, hostile))
    page = T.verdict_page(verdict)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_shorthand_verdict_json_has_no_formula_fields():
    fits = pd.DataFrame(
        formula_rows("nutpie", "centered", speeds={BROOD: 10.0, LOCATION: 10.0}, means={BROOD: 1, LOCATION: 1})
    )
    fits = fits.rename(columns=lambda c: c.replace(BROOD, "sigma_b"))
    fits = fits.drop(columns=[c for c in fits.columns if LOCATION in c])
    data = V.compute_verdict(fits).to_dict()
    assert "scale" not in data and "between_tests" not in data["samplers"][0] and "scale" not in data["forms"][0]


def test_the_formula_tables_summarise_every_scale(tmp_path):
    fits = grouse_like()
    records = fits.to_dict("records")
    outputs = {k: str(tmp_path / f"{k}.{ext}") for k, ext in (("fits", "csv"), ("summary", "csv"))}
    outputs |= {"summary_md": str(tmp_path / "summary.md"), "summary_html": str(tmp_path / "summary.html")}
    D.write_glm_tables(records, SCALES, outputs)
    summary = pd.read_csv(outputs["summary"]).set_index(["sampler", "model"])
    row = summary.loc[("nutpie", "noncentered")]
    assert row["seeds"] == 8 and row["share_pass_all"] == 1.0
    assert row[f"{R.per_s_column(LOCATION)}_median"] == pytest.approx(60.0)
    assert row[f"{R.per_s_column(BROOD)}_median"] == pytest.approx(90.0)
    assert row[f"mean_{LOCATION}_median"] == pytest.approx(0.6)
    assert row[f"{R.SLOWEST_SCALE_PER_S}_median"] == pytest.approx(60.0)
    markdown = (tmp_path / "summary.md").read_text()
    assert r"ESS(sigma_1\|LOCATION)/s" in markdown and "σ_b" not in markdown
    assert_table_cells_do_not_split(markdown)
    assert "each group-specific effect at its tracked level" in markdown
    assert len(pd.read_csv(outputs["fits"])) == 32


def test_formula_datasets_are_fitted_in_the_whole_forms_only():
    check_formula_forms(["cbpp"], ["centered", "noncentered"])
    check_formula_forms([], ["centered", "noncentered", "partial"])
    with pytest.raises(DataError) as error:
        check_formula_forms(["cbpp", "grouse"], ["centered", "partial"])
    message = str(error.value)
    assert "fit.models has 'partial'" in message and "(cbpp, grouse)" in message
    assert "fit.models: [centered, noncentered]" in message


def test_the_advice_offers_partial_centering_only_where_the_workflow_can_fit_it():
    from funnel.advice import PARTIAL, TARGET_ACCEPT, advise

    fits = grouse_like(centered_divergences=3)
    fits.loc[fits["model"].eq("noncentered"), ["divergences", "pass_divergences", "pass_all"]] = [5, False, False]
    verdict = V.compute_verdict(fits, scales=SCALES)
    assert verdict.recommendation == V.NEITHER
    shorthand = {remedy.kind for remedy in advise(verdict, fits=fits)}
    formula = {remedy.kind for remedy in advise(verdict, fits=fits, partial=False)}
    assert PARTIAL in shorthand and TARGET_ACCEPT in shorthand
    assert PARTIAL not in formula and TARGET_ACCEPT in formula


def test_a_formula_datasets_index_section_links_its_tables_and_escapes_its_formula(tmp_path, monkeypatch):
    from funnel import index_page

    monkeypatch.chdir(tmp_path)
    tables = tmp_path / "results/grouse/tables"
    tables.mkdir(parents=True)
    fits = grouse_like()
    paths = {k: f"results/grouse/tables/{name}" for k, name in (("fits", "fits.csv"), ("summary", "summary.csv"))}
    paths |= {"summary_md": "results/grouse/tables/summary.md", "summary_html": "results/grouse/tables/summary.html"}
    D.write_glm_tables(fits.to_dict("records"), SCALES, paths)
    record = {
        "formula": "TICKS ~ cHEIGHT + (1 | BROOD) + (1 | <script>LOCATION)",
        "family": "poisson",
        "rows": 403,
        "terms": [
            {"term": "1|BROOD", "factor": "BROOD", "levels": 118},
            {"term": "1|LOCATION", "factor": "L", "levels": 63},
        ],
    }
    (tmp_path / "provenance.json").write_text(json.dumps(record))
    index = "results/report/index.html"
    page = "results/grouse/report/model.html"
    heading, entries = index_page.formula_section(
        index, "grouse", page=page, tables=paths, provenance="provenance.json"
    )
    assert heading == "Dataset grouse: 403 rows, a formula model"
    text, href, line = entries[0]
    assert href == "../grouse/report/model.html" and "1|BROOD (118 levels), 1|LOCATION (63 levels)" in line
    assert "family poisson" in line
    links = {href: line for _, href, line in entries[1:]}
    assert links["../grouse/tables/fits.csv"] == "one row per fit (32 fits): every diagnostic of every seed"
    assert "4 rows, one per sampler and form" in links["../grouse/tables/summary.csv"]
    page = index_page.index_page("report", "intro", [index_page.IndexSection(heading, entries)])
    assert "<script>" not in page and "&lt;script&gt;LOCATION" in page
