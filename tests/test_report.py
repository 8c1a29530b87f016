"""The report: notebook execution (papermill), rendering (nbconvert), helpers, and the report rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_config, run_snakemake
from funnel import plots, report
from funnel.config import load_schema, validate_config

TEMPLATES = ROOT / "workflow" / "notebooks"
PNG = 'src="data:image/png'  # an inline figure in nbconvert's HTML (the CSS holds another data: PNG)


@pytest.fixture(autouse=True, scope="module")
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


# ================================================================ helpers (no kernel)
def _fits() -> pd.DataFrame:
    rows = []
    for sampler in ("nutpie", "pymc"):
        for model, div, rhat, ess, mean, below in (
            ("centered", [5, 0, 12], [1.02, 1.005, 1.04], [60.0, 150.0, 90.0], [0.31, 0.30, 0.33], [0.02, 0.03, 0.01]),
            (
                "noncentered",
                [0, 0, 1],
                [1.001, 1.002, 1.0],
                [900.0, 1100.0, 1000.0],
                [0.26, 0.25, 0.27],
                [0.1, 0.12, 0.09],
            ),
        ):
            for i, seed in enumerate((1, 2, 3)):
                rows.append(
                    {
                        "sampler": sampler,
                        "model": model,
                        "seed": seed,
                        "divergences": div[i],
                        "rhat_sigma_b": rhat[i],
                        "ess_bulk_sigma_b": ess[i],
                        "mean_sigma_b": mean[i],
                        "p_sigma_b_below_0.1": below[i],
                        "pass_all": div[i] == 0 and ess[i] >= 400,
                        "priors": "blog",
                    }
                )
    return pd.DataFrame(rows)


def _maps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["centered", "noncentered"],
            "map_sigma_b": [6.2e-05, 4.9],
            "map_sigma_a": [0.3, 4.0],
            "map_mu_b": [-0.551, -0.6],
            "map_b_spread": [1e-9, 0.6],
            "map_b_min": [-0.5512, -2.0],
            "map_b_max": [-0.5508, 1.0],
            "posterior_mean_sigma_b": [0.31, 0.26],
            "posterior_mean_sigma_a": [0.33, 0.33],
            "posterior_mean_b_spread": [0.25, 0.27],
        }
    )


def _table() -> pd.DataFrame:
    # 3 counties: A 4 homes (1 first floor), B 2 homes (none), C 1 home (first floor)
    return pd.DataFrame(
        {
            "county": ["A", "A", "A", "A", "B", "B", "C"],
            "floor": [0, 0, 0, 1, 0, 0, 1],
            "log_radon": np.linspace(0, 1, 7),
        }
    )


def test_county_counts_and_data_facts():
    counts = plots.county_counts(_table())
    assert list(counts["county"]) == ["A", "B", "C"]
    assert list(counts["homes"]) == [4, 2, 1] and list(counts["first_floor"]) == [1, 0, 1]
    facts = plots.data_facts(_table(), "B", few_homes=2)
    assert facts["homes"] == 7 and facts["counties"] == 3
    assert facts["counties_few"] == 2 and facts["counties_single"] == 1
    assert facts["counties_without_first_floor"] == ["B"]
    assert facts["largest_county"] == "A" and facts["largest_homes"] == 4
    assert facts["small_county_homes"] == 2 and facts["small_county_first_floor"] == 0
    with pytest.raises(ValueError, match="ATLANTIS"):
        plots.data_facts(_table(), "ATLANTIS")


def test_number_formatting():
    assert plots.fmt(float("nan")) == "n/a" and plots.fmt(None) == "n/a"
    assert plots.fmt(0.25664, ".4f") == "0.2566"
    assert plots.pct(0.125, 1) == "12.5%"
    assert plots.median_range([3, 1, 10]) == "3 [1, 10]"


def _draws(funnel: bool, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    log_sigma = rng.normal(-1.5, 0.8, n)
    sigma = np.exp(log_sigma)
    x = rng.normal(0, 1, n) * (sigma if funnel else 1.0)
    diverging = sigma < np.quantile(sigma, 0.01)
    return pd.DataFrame({"seed": np.repeat([1, 2], n // 2), "b": x, "sigma_b": sigma, "diverging": diverging})


def test_funnel_facts_and_spread():
    funnel, flat = _draws(True), _draws(False)
    facts = plots.funnel_facts(funnel)
    assert facts["draws"] == 4000 and facts["fits"] == 2 and facts["divergent"] == 40
    assert facts["median_sigma_b_divergent"] < facts["median_sigma_b"]
    assert plots.spread_by_sigma(funnel, "b")["ratio"] > 2
    assert 0.9 < plots.spread_by_sigma(flat, "b")["ratio"] < 1.1


def test_group_stats_bias_and_conclusions():
    fits, maps = _fits(), _maps()
    stats = plots.group_stats(fits)
    c = stats.loc[("pymc", "centered")]
    assert c["fits"] == 3 and c["fits_with_divergences"] == 2 and c["divergences_total"] == 17
    assert c["ess_bulk_sigma_b_median"] == 90.0
    bias = plots.sigma_b_bias(fits, "pymc")
    assert bias["mean_centered"] == pytest.approx(0.31) and bias["mean_noncentered"] == pytest.approx(0.26)
    text = plots.describe_bias(bias)
    assert "biased **high** by 19.2%" in text and "under-visit" in text
    lower = fits.assign(mean_sigma_b=np.where(fits["model"].eq("centered"), 0.2, 0.26))
    assert "**lower**" in plots.describe_bias(plots.sigma_b_bias(lower, "pymc"))
    lines = plots.conclusions(fits, maps, rhat_max=1.01, ess_min=400)
    pymc = next(line for line in lines if line.startswith("**pymc**"))
    assert "2 of 3 centered fits diverged (17 divergent transitions in all)" in pymc
    assert "multiplied the median bulk ESS of σ_b by 11.1 (90 → 1000)" in pymc
    assert "reached 1.01 or more on 2 of 3 seeds" in pymc
    assert any("6 of 12 fits have a bulk ESS(σ_b) below 400" in line for line in lines)
    assert any("centered MAP σ_b = 6.2e-05" in line for line in lines)


def test_experiments_index_line_without_a_reference_says_how_to_switch_it_on():
    from funnel.experiment_plots import experiments_line

    fits = pd.DataFrame(
        {
            "sampler": ["pymc", "pymc", "pymc"],
            "model": ["centered", "centered", "noncentered"],
            "ess_bulk_sigma_b_per_s": [8.0, 10.0, 84.25],
        }
    )
    line = experiments_line(fits)
    assert line.startswith("Median ESS(σ_b) per second: pymc centered 9.0, pymc noncentered 84.2.")
    assert "workflow/presets/experiments.yaml" in line


def test_blog_table_puts_the_blog_beside_the_run():
    table = plots.blog_table(_fits(), _maps(), "pymc")
    assert list(table.columns) == ["quantity", "Wiecki (2017)", "this run (pymc)"]
    cells = dict(zip(table["quantity"], zip(table["Wiecki (2017)"], table["this run (pymc)"])))
    assert cells["non-centered: posterior mean of σ_b"][0] == "0.2566"
    assert cells["non-centered: posterior mean of σ_b"][1].startswith("0.2600 (median over 3 seeds")
    assert cells["centered: MAP of σ_b"] == ("6.2e-05", "6.2e-05")
    assert cells["centered: R-hat of σ_b"][0] == "1.0008"
    assert cells["centered: MAP of every b"][0] == "≈ -0.551"


def test_seed_table_and_one_liners():
    record = {
        "seed": 3,
        "divergences": 2,
        "rhat_max": 1.0123,
        "rhat_sigma_b": 1.011,
        "ess_bulk_sigma_b": 123.4,
        "ess_tail_sigma_b": 200.0,
        "ess_bulk_b_TRAVERSE": 800.2,
        "bfmi_min": 0.25,
        "mean_sigma_b": 0.27,
        "sampling_seconds": 3.21,
        "pass_all": False,
    }
    table = plots.seed_table([record, {**record, "seed": 1, "pass_all": True}], "TRAVERSE")
    assert list(table["seed"]) == [1, 3]
    assert table.loc[1, "ESS bulk σ_b"] == "123" and table.loc[1, "ESS bulk b[TRAVERSE]"] == "800"
    assert list(table["all checks pass"]) == ["yes", "no"]
    row = {
        "seeds": 8,
        "divergences_median": 3,
        "divergences_min": 0,
        "divergences_max": 40,
        "rhat_max_median": 1.0234,
        "ess_bulk_sigma_b_median": 151.6,
        "ess_bulk_sigma_b_min": 20,
        "ess_bulk_sigma_b_max": 300,
        "mean_sigma_b_median": 0.31,
        "share_pass_all": 0.25,
    }
    assert plots.group_line(row) == (
        "8 seeds: divergences 3 [0, 40], R-hat max 1.023, bulk ESS(σ_b) 152 [20, 300], E[σ_b] 0.310; "
        "all checks pass on 25% of seeds"
    )
    assert plots.pick_sampler(["nutpie", "pymc"]) == "pymc" and plots.pick_sampler(["nutpie"]) == "nutpie"


def test_provenance_table():
    provenance = {
        "download": {
            "source": "embedded",
            "requested_source": "auto",
            "fallback_reason": "offline",
            "files": {"x.csv": {"sha256": "ab" * 32, "bytes": 10}},
        },
        "transform": "arm",
        "rows": 919,
        "counties": 85,
    }
    table = plots.provenance_table(provenance).set_index("what")["value"]
    assert table["source used"] == "embedded" and table["fallback reason"] == "offline"
    assert table["log transform"] == "arm" and table["file x.csv"].startswith("sha256 abababababababab")


def test_figures_draw():
    import matplotlib.pyplot as plt

    counts = plots.county_counts(_table())
    assert plots.plot_homes_per_county(counts, "B", 2).get_yscale() == "log"
    plots.plot_floor_split(counts)
    ax = plots.plot_funnel(_draws(True), "b", title="t")
    assert ax.get_yscale() == "log" and "divergent (40)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plots.plot_sigma_b_posteriors({"centered": np.array([0.1, 0.2, 0.3]), "noncentered": np.array([0.2, 0.3])})
    fig = plots.plot_across_seeds(_fits())
    assert len(fig.axes) == 3 and fig.axes[2].get_yscale() == "log"
    assert plots.plot_map_vs_mean(_maps()).get_yscale() == "log"
    plt.close("all")


def test_plots_and_report_import_without_pymc():
    code = "import sys, funnel.plots, funnel.report; assert 'pymc' not in sys.modules, 'pymc imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "workflow")
    for template in TEMPLATES.glob("*.ipynb"):
        assert not re.search(r"^\s*(import|from)\s+pymc", template.read_text(), flags=re.M), template


# ================================================================ notebook surgery
def _executed_like() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "start_time": "t0",
        "end_time": "t1",
        "duration": 1.5,
        "exception": None,
        "input_path": "/abs/path/t.ipynb",
        "output_path": None,
        "parameters": {"x": 1},
    }
    params = nbformat.v4.new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("x = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    figure = nbformat.v4.new_code_cell("plot()")
    figure.metadata.update(tags=["export:fig"], papermill={"duration": 0.1}, execution={"iopub.status.busy": "t"})
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "aGVsbG8=", "text/plain": "<Figure>"})]
    table = nbformat.v4.new_code_cell("show()")
    table.metadata["tags"] = ["export:tab"]
    table.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<table></table>"})]
    nb.cells = [params, injected, figure, table]
    return nb


def test_strip_volatile():
    nb = report.strip_volatile(_executed_like(), "t.ipynb")
    meta = nb.metadata["papermill"]
    assert not {"start_time", "end_time", "duration", "exception", "output_path"} & set(meta)
    assert meta["input_path"] == "t.ipynb" and meta["parameters"] == {"x": 1}
    assert nb.cells[1]["id"] == "injected-parameters"
    assert "papermill" not in nb.cells[2].metadata and "execution" not in nb.cells[2].metadata
    assert report.has_parameters_cell(nb)


def test_exports_and_errors():
    nb = _executed_like()
    found = report.exports_of(nb)
    assert found["fig"] == ("image/png", b"hello")
    assert found["tab"][0] == "text/html" and b"<table></table>" in found["tab"][1]
    assert report.cell_errors(nb) == []
    nb.cells[3].outputs.append(nbformat.v4.new_output("error", ename="KeyError", evalue="'x'", traceback=[]))
    assert report.cell_errors(nb) == ["cell 3: KeyError: 'x'"]


def test_index_page_and_links():
    page = report.index_page("T <1>", "intro & more", [("Notebooks", [("a", "a b.html", "x < y")])])
    assert "<title>T &lt;1&gt;</title>" in page and "intro &amp; more" in page
    assert "href='a b.html'" in page and "x &lt; y" in page
    assert report.relative_href("results/report/data.html", "results/report/index.html") == "data.html"
    assert report.relative_href("results/tables/summary.html", "results/report/index.html") == "../tables/summary.html"


# ================================================================ the kernel
def test_python3_kernel_is_this_interpreter_whatever_is_installed(tmp_path, monkeypatch):
    # A user-level python3 kernelspec pointing elsewhere must not win, a named one must resolve.
    for name in ("python3", "radon-test"):
        spec = tmp_path / "kernels" / name
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": name,
                    "language": "python",
                }
            )
        )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert report.kernel_manager("python3").kernel_spec.argv[0] == sys.executable
    assert report.kernel_manager("radon-test").kernel_spec.argv[0] == "/nonexistent/python"
    with pytest.raises(report.NotebookError, match="kernel 'nope' is not installed; available: .*python3"):
        report.kernel_manager("nope")


# ================================================================ executing notebooks
def _tiny_template(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell("from funnel import plots\nplots.setup_notebook()")
    text = nbformat.v4.new_code_cell('plots.md(f"x is **{x}**")')
    fail = nbformat.v4.new_code_cell(body)
    fig = nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, x]);")
    fig.metadata["tags"] = ["export:line"]
    nb.cells = [params, setup, text, fail, fig]
    nbformat.write(nb, str(path))
    return path


def test_notebook_runs_and_reruns_identically(tmp_path):
    template = _tiny_template(tmp_path / "tiny.ipynb", "y = x + 1")
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        report.run_notebook(
            template, out / "t.ipynb", out / "t.html", {"x": 3}, exports={"line": out / "line.png"}, timeout=60
        )
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert sorted(outputs[0]) == ["line.png", "t.html", "t.ipynb"]
    assert outputs[0] == outputs[1], "a rerun with the same inputs changed an output"
    assert outputs[0]["line.png"].startswith(b"\x89PNG")
    html = outputs[0]["t.html"].decode()
    assert "x is <strong>3</strong>" in html and html.count(PNG) == 1
    nb = nbformat.reads(outputs[0]["t.ipynb"].decode(), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3" and "start_time" not in nb.metadata["papermill"]


def test_failing_notebook_raises_with_the_cell_error_and_leaves_nothing(tmp_path):
    template = _tiny_template(tmp_path / "bad.ipynb", "raise ValueError('radon is not a noble gas')")
    out = tmp_path / "out"
    with pytest.raises(report.NotebookError) as info:
        report.run_notebook(
            template, out / "t.ipynb", out / "t.html", {"x": 3}, exports={"line": out / "line.png"}, timeout=60
        )
    message = str(info.value)
    assert "ValueError: radon is not a noble gas" in message and "raise ValueError" in message
    assert not out.exists() or list(out.iterdir()) == []  # no HTML, notebook, figure, or temp file


def test_missing_export_or_parameters_cell_fails_early(tmp_path):
    template = _tiny_template(tmp_path / "t.ipynb", "pass")
    with pytest.raises(report.NotebookError, match="no output for export"):
        report.run_notebook(
            template, tmp_path / "o.ipynb", tmp_path / "o.html", {}, exports={"nope": tmp_path / "n.png"}
        )
    assert not (tmp_path / "o.html").exists()
    nb = nbformat.read(str(template), as_version=4)
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, str(template))
    with pytest.raises(report.NotebookError, match="no cell tagged 'parameters'"):
        report.run_notebook(template, tmp_path / "o.ipynb", tmp_path / "o.html", {})


# ================================================================ the blog preset and config
def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def test_blog_preset_is_a_valid_override():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    preset = yaml.safe_load((ROOT / "workflow/presets/blog.yaml").read_text())
    merged = _merge(config, preset)
    validate_config(merged, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))
    assert merged["data"]["transform"] == "offset" and merged["data"]["source"] == "local"
    assert merged["fit"]["samplers"] == ["pymc"] and merged["fit"]["priors"] == "blog"
    assert merged["fit"]["chains"] == config["fit"]["chains"]  # the blog's chains/draws are not claimed
    text = (ROOT / "workflow/presets/blog.yaml").read_text().splitlines()
    for i, line in enumerate(text):
        if re.match(r"^\s*\w+:", line):
            assert text[i - 1].strip().startswith("#") or text[i - 1].strip() == "", (
                f"preset key without comment: {line}"
            )


def test_blog_preset_plans_pymc_fits_and_the_report(workdir):
    copy_config(workdir)
    proc = run_snakemake(workdir, "-n", "--configfile", str(ROOT / "workflow/presets/blog.yaml"))
    log = proc.stdout + proc.stderr
    assert "sampler=pymc" in log and "sampler=nutpie" not in log
    for rule in ("report_data", "report_fit", "report_comparison", "report"):
        assert re.search(rf"^{rule}\s+\d+$", log, flags=re.M), rule


def test_experiments_are_off_by_default_and_the_preset_switches_them_on(workdir):
    copy_config(workdir)
    default = run_snakemake(workdir, "-n")
    default_log = default.stdout + default.stderr
    assert not re.search(r"^(reference|sweep|experiment_table)\s+\d+$", default_log, flags=re.M)
    assert re.search(r"^report_experiments\s+1$", default_log, flags=re.M)  # its sampler comparison stays
    preset = ROOT / "workflow/presets/experiments.yaml"
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_config(
        _merge(config, yaml.safe_load(preset.read_text())), load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    )
    proc = run_snakemake(workdir, "-n", "--configfile", str(preset))
    log = proc.stdout + proc.stderr
    assert re.search(r"^reference\s+1$", log, flags=re.M)
    # Two sweeps x two models (nutpie only), and their two tables.
    assert re.search(r"^sweep\s+4$", log, flags=re.M) and re.search(r"^experiment_table\s+2$", log, flags=re.M)


# ================================================================ the report rules (end to end)
NOTEBOOK_FIGURES = {
    "data": 2,
    "fit_pymc_centered": 4,
    "fit_pymc_noncentered": 4,
    "fit_nutpie_centered": 4,
    "fit_nutpie_noncentered": 4,
    "comparison": 5,
    "experiments": 4,
}


@pytest.fixture(scope="module")
def built_report(small_run):
    """`snakemake report` from a clean results/report (the fits are there: nothing is refitted)."""
    shutil.rmtree(small_run / "results" / "report", ignore_errors=True)
    proc = run_snakemake(small_run, "report")
    return small_run, proc.stdout + proc.stderr


@pytest.mark.slow
def test_report_target_builds_all_notebooks_without_fitting(built_report):
    workdir, log = built_report
    ran = set(re.findall(r"^rule (\w+):", log, flags=re.M)) | set(re.findall(r"^localrule (\w+):", log, flags=re.M))
    assert ran == {"report_data", "report_fit", "report_comparison", "report_experiments", "report"}, ran
    out = workdir / "results" / "report"
    for name, figures in NOTEBOOK_FIGURES.items():
        html = (out / f"{name}.html").read_text()
        assert html.count(PNG) >= figures, (name, html.count(PNG))
        nb = nbformat.read(str(out / "notebooks" / f"{name}.ipynb"), as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] != "error", (name, output)
                assert not (output["output_type"] == "stream" and output["name"] == "stderr"), (name, output["text"])
            assert "papermill" not in cell.metadata and "execution" not in cell.metadata
        assert "start_time" not in nb.metadata["papermill"]
        assert (workdir / f"results/logs/report/{name}.log").read_text().count("wrote ") == 1
    for figure in (
        "centered_funnel",
        "noncentered_offsets",
        "sigma_b_posteriors",
        "diagnostics_across_seeds",
        "map_vs_mean",
        "homes_per_county",
        "funnel_pymc_centered",
    ):
        assert (out / "figures" / f"{figure}.png").read_bytes().startswith(b"\x89PNG")
    for table in ("summary_table", "blog_vs_run"):
        assert "<table" in (out / "tables" / f"{table}.html").read_text()


@pytest.mark.slow
def test_report_quotes_the_numbers_of_the_tables(built_report):
    workdir, _ = built_report
    out = workdir / "results" / "report"
    comparison = (out / "comparison.html").read_text()
    summary = pd.read_csv(workdir / "results/tables/summary.csv")
    for _, row in summary.iterrows():
        ess = f"{row['ess_bulk_sigma_b_median']:.0f} [{row['ess_bulk_sigma_b_min']:.0f}, {row['ess_bulk_sigma_b_max']:.0f}]"
        assert ess in comparison, ess
        assert f"median bulk ESS(σ_b) {row['ess_bulk_sigma_b_median']:.0f}" in comparison
    for number in ("0.2566", "6.2e-05", "1.0008", "Wiecki (2017)"):
        assert number in comparison
    maps = pd.read_csv(workdir / "results/tables/map_vs_mean.csv").set_index("model")
    assert f"MAP σ_b = {maps.loc['centered', 'map_sigma_b']:.1e}" in comparison
    fits = pd.read_csv(workdir / "results/tables/fits.csv")
    for (sampler, model), group in fits.groupby(["sampler", "model"]):
        page = (out / f"fit_{sampler}_{model}.html").read_text()
        for ess in group["ess_bulk_sigma_b"]:
            assert f"<td>{ess:.0f}</td>" in page
        assert f"{int(group['divergences'].sum())}</strong> of" in page
    data = (out / "data.html").read_text()
    provenance = json.loads((workdir / "results/data/provenance.json").read_text())
    assert f"<strong>{provenance['download']['source']}</strong>" in data
    assert f"<strong>{provenance['rows']}</strong> homes" in data
    index = (out / "index.html").read_text()
    for name in NOTEBOOK_FIGURES:
        assert f"href='{name}.html'" in index
    assert "href='../tables/summary.html'" in index
    pymc_c = summary.set_index(["sampler", "model"]).loc[("pymc", "centered")]
    assert f"bulk ESS(σ_b) {pymc_c['ess_bulk_sigma_b_median']:.0f} [" in index


def _copy_repo(dest: Path) -> Path:
    """The workflow's files (not results, not the venv) in ``dest``: a checkout we may edit."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("workflow", "envs", "profiles"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@pytest.mark.slow
def test_editing_a_template_reruns_only_its_notebooks_and_the_index(built_report, tmp_path):
    # A real edit of a template, made in a copy of the workflow (the repository is never touched),
    # dry-run against a copy of the finished small run. Mtime triggers only: the copy's templates
    # live at another path, which the default 'input' trigger would also count as a change.
    workdir, _ = built_report
    repo = _copy_repo(tmp_path / "repo")
    run = tmp_path / "run"
    shutil.copytree(workdir, run, symlinks=True)
    template = repo / "workflow" / "notebooks" / "fit_group.ipynb"
    nb = nbformat.read(str(template), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("An edit by the test."))
    nbformat.write(nb, str(template))
    cmd = [
        str(Path(sys.executable).parent / "snakemake"),
        "-s",
        str(repo / "Snakefile"),
        "--directory",
        str(run),
        "--cores",
        "2",
        "-n",
        "--rerun-triggers",
        "mtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "0"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    stats = log[log.index("Job stats") :]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
    jobs.pop("total", None)
    assert jobs == {"report_fit": "4", "report": "1", "all": "1"}, stats
    assert "Updated input files: " + str(template) in log
    # Without the edit nothing would run: the copies themselves change nothing.
    shutil.copy2(ROOT / "workflow" / "notebooks" / "fit_group.ipynb", template)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.slow
def test_snakemake_report_embeds_notebooks_figures_and_captions(built_report, tmp_path):
    workdir, _ = built_report
    target = tmp_path / "report.html"
    run_snakemake(workdir, "--report", str(target))
    page = target.read_text()
    assert "Wiecki 2017" in page and "b[TRAVERSE] against" in page  # captions, rendered with the config
    for name in ("comparison.html", "fit_pymc_centered.html", "centered_funnel.png", "blog_vs_run.html"):
        assert name in page, name


@pytest.mark.slow
def test_experiments_section_quotes_reference_and_sweeps(built_report):
    workdir, _ = built_report
    page = (workdir / "results/report/experiments.html").read_text()
    reference = json.loads((workdir / "results/reference/reference.json").read_text())
    d, est = reference["diagnostics"], reference["estimands"]
    assert f"rank R-hat max <strong>{d['rhat_max']:.4f}</strong>" in page
    assert f"E[σ_b] = <strong>{est['sigma_b']['mean']:.4f}</strong>" in page
    fits = pd.read_csv(workdir / "results/tables/fits.csv")
    centered = fits[fits["model"] == "centered"]
    flagged = int((centered["z_sigma_b"].abs() >= 3).sum())
    assert f"centered: {flagged} of {len(centered)} fits have |z| ≥ 3" in page
    assert "centered (nutpie): from target_accept 0.8 to 0.99" in page
    assert "the centered form has the higher ESS(σ_b) per second from" in page
    for figure in ("bias", "target_accept", "homes_crossover", "samplers"):
        assert (workdir / "results/report/figures" / f"{figure}.png").read_bytes().startswith(b"\x89PNG")
    assert "href='experiments.html'" in (workdir / "results/report/index.html").read_text()
