"""The report: notebook execution (papermill), rendering (nbconvert), helpers, and the report rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_config, copy_run, run_snakemake
from funnel import facts as F
from funnel import index_page, notebook, plots, prose, records, report
from funnel.config import load_schema, main_sampler, validate_config
from funnel.radon import BLOG

TEMPLATES = ROOT / "workflow" / "notebooks"
PNG = 'src="data:image/png'  # an inline figure in nbconvert's HTML (the CSS holds another data: PNG)


@pytest.fixture(autouse=True, scope="module")
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


# ================================================================ helpers (no kernel)
def _fits(below: str = "p_sigma_b_below_0.1") -> pd.DataFrame:
    rows = []
    for sampler in ("nutpie", "pymc"):
        for model, div, rhat, ess, mean, small in (
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
                        below: small[i],
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


COLUMNS = {"group": "site", "x": "dose", "y": "response"}


def _table(binary: bool = True) -> pd.DataFrame:
    # 3 groups: A 4 rows (x varies), B 2 rows (x constant), C 1 row
    x = [0, 0, 0, 1, 0, 0, 1] if binary else [0.5, 1.5, 2.5, 3.5, 2.0, 2.0, 7.0]
    return pd.DataFrame({"site": ["A", "A", "A", "A", "B", "B", "C"], "dose": x, "response": np.linspace(0, 1, 7)})


def test_group_counts_and_data_facts_binary_x():
    counts = F.group_counts(_table(), "site", "dose")
    assert list(counts["site"]) == ["A", "B", "C"]
    assert list(counts["rows"]) == [4, 2, 1] and list(counts["x_high"]) == [1, 0, 1]
    facts = F.data_facts(_table(), COLUMNS, "B", few_rows=2)
    assert facts["rows"] == 7 and facts["groups"] == 3 and facts["x_binary"]
    assert facts["groups_few"] == 2 and facts["groups_single"] == 1
    assert facts["groups_x_constant"] == ["B", "C"]  # a single row cannot vary either
    assert facts["largest_group"] == "A" and facts["largest_rows"] == 4
    assert facts["track_rows"] == 2 and facts["track_x_high"] == 0
    assert facts["rows_x_high"] == 2 and (facts["x_low"], facts["x_high"]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="ATLANTIS"):
        F.data_facts(_table(), COLUMNS, "ATLANTIS")


def test_data_facts_of_a_continuous_x_have_no_split():
    facts = F.data_facts(_table(binary=False), COLUMNS, "C")
    assert not facts["x_binary"] and "x_high" not in facts
    assert facts["x_distinct"] == 6 and (facts["x_min"], facts["x_max"]) == (0.5, 7.0)
    assert facts["groups_x_constant"] == ["B", "C"] and facts["track_x_values"] == 1
    assert "x_high" not in F.group_counts(_table(binary=False), "site", "dose")


def test_seed_lists_stay_short():
    assert notebook.seed_list([1, 2, 3]) == "1, 2, 3"
    assert notebook.seed_list(range(1, 1001)) == "1, 2, 3, 4, 5, 6, 7, 8, …, 1000"
    assert notebook.seed_list(range(1, 11)) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"


def test_number_formatting():
    assert notebook.fmt(float("nan")) == "n/a" and notebook.fmt(None) == "n/a"
    assert notebook.fmt(0.25664, ".4f") == "0.2566"
    assert notebook.pct(0.125, 1) == "12.5%"
    assert notebook.median_range([3, 1, 10]) == "3 [1, 10]"
    assert [notebook.num(v) for v in (0.28435, 6.2318, 551.04, 5.0, 1.4e-08, 0.0)] == [
        "0.284",
        "6.23",
        "551",
        "5",
        "1.40e-08",
        "0",
    ]


def _draws(funnel: bool, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    log_sigma = rng.normal(-1.5, 0.8, n)
    sigma = np.exp(log_sigma)
    x = rng.normal(0, 1, n) * (sigma if funnel else 1.0)
    diverging = sigma < np.quantile(sigma, 0.01)
    return pd.DataFrame({"seed": np.repeat([1, 2], n // 2), "b": x, "sigma_b": sigma, "diverging": diverging})


def test_funnel_facts_and_spread():
    funnel, flat = _draws(True), _draws(False)
    facts = F.funnel_facts(funnel, sigma_b_small=0.1)
    assert facts["draws"] == 4000 and facts["fits"] == 2 and facts["divergent"] == 40
    assert facts["median_sigma_b_divergent"] < facts["median_sigma_b"]
    assert facts["share_sigma_b_small"] == pytest.approx((funnel["sigma_b"] < 0.1).mean())
    assert F.funnel_facts(funnel, sigma_b_small=1e9)["share_sigma_b_small"] == 1.0
    assert F.spread_by_sigma(funnel, "b")["ratio"] > 2
    assert 0.9 < F.spread_by_sigma(flat, "b")["ratio"] < 1.1


def test_group_stats_bias_and_conclusions():
    fits, maps = _fits(), _maps()
    stats = F.group_stats(fits)
    c = stats.loc[("pymc", "centered")]
    assert c["fits"] == 3 and c["fits_with_divergences"] == 2 and c["divergences_total"] == 17
    assert c["ess_bulk_sigma_b_median"] == 90.0 and c["p_sigma_b_small_median"] == pytest.approx(0.02)
    bias = F.sigma_b_bias(fits, "pymc")
    assert bias["mean_centered"] == pytest.approx(0.31) and bias["mean_noncentered"] == pytest.approx(0.26)
    text = prose.describe_bias(bias)
    assert "biased **high** by 19.2%" in text and "σ_b < 0.1" in text and "under-visit" in text
    lower = fits.assign(mean_sigma_b=np.where(fits["model"].eq("centered"), 0.2, 0.26))
    assert "**lower**" in prose.describe_bias(F.sigma_b_bias(lower, "pymc"))
    lines = prose.conclusions(fits, maps, rhat_max=1.01, ess_min=400)
    pymc = next(line for line in lines if line.startswith("**pymc**"))
    assert "2 of 3 centered fits diverged (17 divergent transitions in all)" in pymc
    assert "multiplied the median bulk ESS of σ_b by 11.1 (90 → 1000)" in pymc
    assert "reached 1.01 or more on 2 of 3 seeds" in pymc
    assert any("6 of 12 fits have a bulk ESS(σ_b) below 400" in line for line in lines)
    assert any("centered MAP σ_b = 6.2e-05" in line for line in lines)


def test_thresholds_come_from_the_arguments_not_constants():
    fits, maps = _fits("p_sigma_b_below_2"), _maps()
    lines = prose.conclusions(fits, maps, rhat_max=1.05, ess_min=50)
    pymc = next(line for line in lines if line.startswith("**pymc**"))
    assert "stayed below 1.05 on every seed" in pymc and "1.01" not in " ".join(lines)
    assert "Every fit reached a bulk ESS(σ_b) of at least 50." in lines
    # The neck's threshold is the dataset's (sigma_b_small 2 -> column p_sigma_b_below_2).
    text = prose.describe_bias(F.sigma_b_bias(fits, "pymc", sigma_b_small=2.0))
    assert "σ_b < 2:" in text and "0.1" not in text
    assert records.below_column(2.0) == "p_sigma_b_below_2" and records.below_column(0.1) == "p_sigma_b_below_0.1"


def test_experiments_index_line_without_a_reference_says_how_to_switch_it_on():
    fits = pd.DataFrame(
        {
            "sampler": ["pymc", "pymc", "pymc"],
            "model": ["centered", "centered", "noncentered"],
            "ess_bulk_sigma_b_per_s": [8.0, 10.0, 84.25],
        }
    )
    line = prose.experiments_line(fits)
    assert line.startswith("Median ESS(σ_b) per second: pymc centered 9.0, pymc noncentered 84.2.")
    assert "workflow/presets/experiments.yaml" in line


def test_crossover_and_bias_sentences():
    summary = pd.DataFrame(
        {
            "sampler": ["nutpie"] * 6,
            "model": ["centered"] * 3 + ["noncentered"] * 3,
            "rows_per_group_median_median": [5.0, 25.0, 100.0] * 2,
            "ess_bulk_sigma_b_per_s_median": [30.0, 400.0, 900.0, 350.0, 120.0, 40.0],
        }
    )
    assert "from 25 rows per group" in prose.crossover_sentence(summary)
    summary.loc[summary["model"] == "centered", "ess_bulk_sigma_b_per_s_median"] = 1.0
    assert "non-centered form stays ahead" in prose.crossover_sentence(summary)
    fits = pd.DataFrame({"model": ["centered"] * 2, "z_sigma_b": [2.5, -4.0], "ess_bulk_sigma_b": [20, 30]})
    assert "1 of 2 fits have |z| ≥ 3" in prose.bias_sentence(fits)
    assert "2 of 2 fits have |z| ≥ 2" in prose.bias_sentence(fits, z_flag=2)


def test_blog_table_puts_the_blog_beside_the_run():
    table = F.blog_table(_fits(), _maps(), "pymc", BLOG)
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
        "ess_bulk_b_308": 800.2,
        "bfmi_min": 0.25,
        "mean_sigma_b": 6.2712,
        "sampling_seconds": 3.21,
        "pass_all": False,
    }
    table = F.seed_table([record, {**record, "seed": 1, "pass_all": True}], "308")
    assert list(table["seed"]) == [1, 3]
    assert table.loc[1, "ESS bulk σ_b"] == "123" and table.loc[1, "ESS bulk b[308]"] == "800"
    assert table.loc[1, "E[σ_b]"] == "6.27" and list(table["all checks pass"]) == ["yes", "no"]
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
    assert prose.group_line(row) == (
        "8 seeds, median [min, max] over seeds: divergences 3 [0, 40]; largest R-hat of a fit 1.023 (median over "
        "seeds); bulk ESS(σ_b) 152 [20, 300]; E[σ_b] 0.310; all checks pass on 25% of seeds"
    )
    # The label says what the R-hat is, and the worst seed is shown when the summary has it.
    assert "(median over seeds, worst seed 1.528)" in prose.group_line({**row, "rhat_max_max": 1.528})
    assert prose.group_line({**row, "seeds": 1}).startswith("1 seed, median")
    # The comparison's traces and the MAP job: PyMC's NUTS when fitted, else the first sampler configured.
    assert main_sampler(["nutpie", "pymc"]) == "pymc" and main_sampler(["nutpie"]) == "nutpie"


def _provenance(**extra) -> dict:
    return {
        "dataset": "trial",
        "columns": COLUMNS,
        "rows": 7,
        "groups": 3,
        "track_group": "C",
        "sigma_b_small": 0.05,
        "download": {
            "source": "csv",
            "requested_source": "csv",
            "fallback_reason": None,
            "files": {"table.csv": {"sha256": "ab" * 32, "path": "/data/trial.csv"}},
        },
        **extra,
    }


def test_provenance_table_and_data_line_are_generic():
    generic = _provenance(y_transform="log", source_y="response", rows_read=9)
    table = F.provenance_table(generic).set_index("what")["value"]
    assert table["columns (group, x, y)"] == "site, dose, response"
    assert table["y transform"] == "log (of column response)" and table["rows read"] == "9"
    assert table["tracked group"] == "C" and table["fallback reason"] == "none"
    assert table["file table.csv"].startswith("sha256 abababababababab") and "log transform" not in table
    line = prose.data_line(_table(), generic)
    assert line.startswith("7 rows in 3 groups of site (x dose), 3 of them with 1 to 5 rows; tracked group C")
    assert "y_transform log" in line
    radon = _provenance(transform="arm")
    assert F.provenance_table(radon).set_index("what").loc["log transform", "value"] == "arm"
    assert prose.data_line(_table(), radon).endswith("transform arm")
    for word in ("county", "counties", "homes", "TRAVERSE", "radon"):
        assert word not in line


def test_figures_draw():
    import matplotlib.pyplot as plt

    counts = F.group_counts(_table(), "site", "dose")
    assert plots.plot_rows_per_group(counts, "site", "B", 2).get_xlabel().startswith("site")
    plots.plot_x_split(counts, "dose", 0, 1)
    plots.plot_x_histogram(_table(binary=False), "dose", "site")
    plots.plot_funnel(_draws(True))
    plots.plot_sigma_b_posteriors({"centered": np.ones(10) * 0.3, "noncentered": np.linspace(0.1, 0.5, 10)}, 0.1)
    fits = _fits().assign(rhat_max=1.0, ess_bulk_sigma_b_per_s=10.0)
    plots.plot_across_seeds(fits, rhat_max=1.01, ess_min=400)
    plots.plot_samplers(fits, rhat_max=1.01)
    plots.plot_map_vs_mean(_maps())
    plt.close("all")


def test_one_colour_per_form_and_pass_marks_from_the_arguments():
    import matplotlib.pyplot as plt
    from funnel.plots.style import FORM_COLORS
    from matplotlib.colors import to_hex

    fits = _fits().assign(rhat_max=1.0, ess_bulk_sigma_b_per_s=10.0)
    fig = plots.plot_across_seeds(fits, rhat_max=1.05, ess_min=123)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "pass mark 1.05" in texts and "pass mark 123" in texts and "pass mark 1.01" not in texts
    used = {to_hex(c) for ax in fig.axes for coll in ax.collections for c in coll.get_facecolors()}
    assert used == {FORM_COLORS[m] for m in fits["model"]}  # each form its own registered colour
    ax = plots.plot_sigma_b_posteriors({"centered": np.linspace(0.1, 0.5, 10)})
    assert to_hex(ax.patches[0].get_edgecolor()) == FORM_COLORS["centered"]
    plt.close("all")


def test_experiment_figures_draw():
    import matplotlib.pyplot as plt

    fits = _fits().assign(z_sigma_b=0.5, z_log_sigma_b=-1.0, z_p_sigma_b_small=3.5)
    fig = plots.plot_bias(fits, {"z_sigma_b": "E[σ_b]", "z_p_sigma_b_small": "P(σ_b < 2)"})
    assert len(fig.axes) == 2
    rows = pd.DataFrame(
        {
            "sampler": ["nutpie"] * 4,
            "model": ["centered", "centered", "noncentered", "noncentered"],
            "target_accept": [0.8, 0.99] * 2,
            "seed": 1,
            "ess_bulk_sigma_b": [5.0, 9.0, 300.0, 310.0],
            "divergences": [3, 1, 0, 0],
            "step_size_mean": [0.3, 0.05, 0.4, 0.2],
        }
    )
    plots.plot_target_accept(rows)
    summary = pd.DataFrame(
        {
            "sampler": ["nutpie"] * 4,
            "model": ["centered", "centered", "noncentered", "noncentered"],
            "rows_per_group_median_median": [5.0, 50.0] * 2,
            "ess_bulk_sigma_b_per_s_median": [5.0, 300.0, 200.0, 100.0],
            "ess_bulk_mu_a_per_s_median": [50.0, 300.0, 200.0, 100.0],
            "ess_bulk_b_track_per_s_median": [40.0, 300.0, 200.0, 100.0],
        }
    )
    fig = plots.plot_rows_crossover(summary, "308")
    assert fig.axes[2].get_title() == "ESS(b[308]) per second"
    plt.close("all")


def _trial_dataset(fits: pd.DataFrame) -> Path:
    """A dataset 'trial' under results/ of the current folder: its table, provenance and ``fits``."""
    base = Path("results/trial")
    (base / "data").mkdir(parents=True)
    (base / "tables").mkdir()
    _table().to_csv(base / "data/table.csv", index=False)
    (base / "data/provenance.json").write_text(json.dumps(_provenance(y_transform="none", source_y="response")))
    fits.to_csv(base / "tables/fits.csv", index=False)
    return base


def test_index_sections_link_every_dataset_and_the_cross_dataset_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fits = _fits()
    base = _trial_dataset(fits)
    summary = pd.DataFrame(
        [
            {
                "sampler": s,
                "model": m,
                "seeds": 3,
                "divergences_median": 1,
                "divergences_min": 0,
                "divergences_max": 5,
                "rhat_max_median": 1.01,
                "ess_bulk_sigma_b_median": 90,
                "ess_bulk_sigma_b_min": 60,
                "ess_bulk_sigma_b_max": 150,
                "mean_sigma_b_median": 0.3,
                "share_pass_all": 0.0,
            }
            for s, m in F.group_order(fits)
        ]
    )
    summary.to_csv(base / "tables/summary.csv", index=False)
    _maps().to_csv(base / "tables/map_vs_mean.csv", index=False)
    index = "results/report/index.html"
    heading, entries = index_page.dataset_section(
        index,
        "trial",
        pages={"data": str(base / "report/data.html"), "comparison": str(base / "report/comparison.html")},
        group_pages={("pymc", "centered"): str(base / "report/fit_pymc_centered.html")},
        tables={k: str(base / f"tables/{k}.csv") for k in ("fits", "summary")}
        | {"map_table": str(base / "tables/map_vs_mean.csv")},
        table=str(base / "data/table.csv"),
        provenance=str(base / "data/provenance.json"),
        sampler="pymc",
    )
    assert heading == "Dataset trial: 7 rows, 3 groups"
    hrefs = [href for _, href, _ in entries]
    assert hrefs[:3] == [
        "../trial/report/data.html",
        "../trial/report/fit_pymc_centered.html",
        "../trial/report/comparison.html",
    ]
    assert "../trial/tables/fits.csv" in hrefs
    datasets = Path("results/tables/datasets.csv")
    datasets.parent.mkdir(parents=True)
    summary.assign(dataset="trial").to_csv(datasets, index=False)
    heading, [(text, href, line)] = index_page.datasets_section(index, str(datasets))
    assert href == "../tables/datasets.csv" and "no seed of any dataset passes every check" in line
    page = index_page.index_page("t", "intro", [("Dataset trial", entries)])
    assert "href='../trial/report/data.html'" in page
    assert index_page.relative_href("results/trial/tables/summary.html", index) == "../trial/tables/summary.html"


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
    setup = nbformat.v4.new_code_cell("from funnel import notebook\nnotebook.setup_notebook()")
    text = nbformat.v4.new_code_cell('notebook.md(f"x is **{x}**")')
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


def test_kernel_talks_over_private_unix_sockets_not_tcp_ports(tmp_path):
    # Over TCP two report jobs starting at once could pick the same free port (one kernel then
    # died with "Address already in use"); sockets in a folder of the job's own cannot collide.
    body = "from ipykernel import get_connection_info\nc = get_connection_info(unpack=True)\nprint(c['transport'], c['ip'])"
    template = _tiny_template(tmp_path / "sock.ipynb", body)
    nb = report.run_notebook(template, tmp_path / "o.ipynb", tmp_path / "o.html", {"x": 1}, timeout=60)
    transport, ip = "".join(o.get("text", "") for o in nb.cells[4].outputs).split()
    assert transport == "ipc"
    folder = Path(ip).parent
    assert folder.name.startswith("funnel-kernel-") and not folder.exists(), "the socket folder must be removed"


def test_private_sockets_keep_tcp_where_a_socket_path_would_be_too_long(tmp_path, monkeypatch):
    class Manager:
        transport, ip = "tcp", "127.0.0.1"

    long_tmp = tmp_path / ("d" * 120)
    long_tmp.mkdir()
    monkeypatch.setattr(report.tempfile, "tempdir", str(long_tmp))
    manager = Manager()
    with report.private_sockets(manager):
        assert (manager.transport, manager.ip) == ("tcp", "127.0.0.1")
    assert list(long_tmp.iterdir()) == []
    # A short folder (tmp_path itself may be too long under pytest-xdist's per-worker folders).
    short_tmp = Path(tempfile.mkdtemp(prefix="s", dir="/tmp"))
    try:
        monkeypatch.setattr(report.tempfile, "tempdir", str(short_tmp))
        with report.private_sockets(manager):
            assert manager.transport == "ipc" and Path(manager.ip).parent.is_dir()
        assert not Path(manager.ip).parent.exists()
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)


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
    radon = merged["datasets"]["radon"]
    assert radon["transform"] == "offset" and radon["source"] == "local" and radon["priors"] == "blog"
    assert merged["fit"]["samplers"] == ["pymc"]
    assert merged["fit"]["chains"] == config["fit"]["chains"]  # the blog's chains/draws are not claimed
    text = (ROOT / "workflow/presets/blog.yaml").read_text().splitlines()
    for i, line in enumerate(text):
        if re.match(r"^\s*\w+:", line):
            previous = text[i - 1].strip()
            # a comment, a blank line, or the key's parent (e.g. `datasets:` above `radon:`)
            assert previous.startswith("#") or previous == "" or previous.endswith(":"), (
                f"preset key without comment: {line}"
            )


def test_blog_preset_plans_pymc_fits_and_the_report(workdir):
    copy_config(workdir)
    proc = run_snakemake(workdir, "-n", "--configfile", str(ROOT / "workflow/presets/blog.yaml"))
    log = proc.stdout + proc.stderr
    assert "sampler=pymc" in log and "sampler=nutpie" not in log
    # radon's comparison adds the blog's table: its rule is report_comparison_radon
    for rule in ("report_data", "report_fit", "report_comparison_radon", "report"):
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
FIT_PAGES = [f"fit_{s}_{m}" for s in ("pymc", "nutpie") for m in ("centered", "noncentered")]
NOTEBOOK_FIGURES = {"data": 2, **dict.fromkeys(FIT_PAGES, 4), "comparison": 5, "experiments": 4}
REPORT_RULES = {"report_data", "report_fit", "report_comparison", "report_experiments", "report"}
COUNTY_WORDS = ("county", "counties", "homes", "TRAVERSE", "radon", "Wiecki")


def _datasets(workdir: Path) -> dict[str, dict]:
    """The run's datasets by name, with their provenance (columns, tracked group, ...)."""
    names = yaml.safe_load((workdir / "config.yaml").read_text())["datasets"]
    return {name: json.loads((workdir / f"results/{name}/data/provenance.json").read_text()) for name in names}


def _is_radon(provenance: dict) -> bool:
    return "transform" in provenance  # only the radon recipe records its log transform


def _outputs(nb) -> str:
    """What an executed notebook shows the reader: its Markdown cells and its text, Markdown and HTML outputs."""
    parts = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts += [str(data[k]) for k in ("text/markdown", "text/html", "text/plain") if k in data]
            parts.append(str(output.get("text", "")))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def built_report(small_run, small_run_report_log):
    """The small run and the output of its `snakemake report` step: every page built from no
    report folder at all, after every fit (conftest's small_run), so nothing is refitted."""
    return small_run, small_run_report_log


@pytest.mark.slow
def test_report_target_builds_all_notebooks_of_every_dataset_without_fitting(built_report):
    workdir, log = built_report
    datasets = _datasets(workdir)
    assert len(datasets) >= 2
    ran = set(re.findall(r"^rule (\w+):", log, flags=re.M)) | set(re.findall(r"^localrule (\w+):", log, flags=re.M))
    assert ran - {"report_comparison_radon"} == REPORT_RULES, ran
    for name, provenance in datasets.items():
        out = workdir / "results" / name / "report"
        for page, figures in NOTEBOOK_FIGURES.items():
            html = (out / f"{page}.html").read_text()
            assert html.count(PNG) >= figures, (name, page, html.count(PNG))
            nb = nbformat.read(str(out / "notebooks" / f"{page}.ipynb"), as_version=4)
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    assert output["output_type"] != "error", (name, page, output)
                    assert not (output["output_type"] == "stream" and output["name"] == "stderr"), (
                        name,
                        page,
                        output["text"],
                    )
                assert "papermill" not in cell.metadata and "execution" not in cell.metadata
            assert "start_time" not in nb.metadata["papermill"]
            assert (workdir / f"results/logs/{name}/report/{page}.log").read_text().count("wrote ") == 1
            if not _is_radon(provenance):
                shown = _outputs(nb)
                assert not [w for w in COUNTY_WORDS if w in shown], (name, page)
        for figure in (
            "centered_funnel",
            "noncentered_offsets",
            "sigma_b_posteriors",
            "diagnostics_across_seeds",
            "map_vs_mean",
            "rows_per_group",
            "x_distribution",
            "funnel_pymc_centered",
            "samplers",
        ):
            assert (out / "figures" / f"{figure}.png").read_bytes().startswith(b"\x89PNG"), (name, figure)
        assert "<table" in (out / "tables" / "summary_table.html").read_text()
        assert (out / "tables" / "blog_vs_run.html").exists() == _is_radon(provenance), name


@pytest.mark.slow
def test_report_quotes_the_numbers_of_the_tables(built_report):
    workdir, _ = built_report
    index = (workdir / "results/report/index.html").read_text()
    for name, provenance in _datasets(workdir).items():
        out = workdir / "results" / name / "report"
        tables = workdir / "results" / name / "tables"
        track = provenance["track_group"]
        comparison = (out / "comparison.html").read_text()
        summary = pd.read_csv(tables / "summary.csv")
        for _, row in summary.iterrows():
            ess = f"{row['ess_bulk_sigma_b_median']:.0f} [{row['ess_bulk_sigma_b_min']:.0f}, {row['ess_bulk_sigma_b_max']:.0f}]"
            assert ess in comparison, (name, ess)
            assert f"median bulk ESS(σ_b) {row['ess_bulk_sigma_b_median']:.0f}" in comparison
        assert f"b[{track}]" in comparison
        for number in ("0.2566", "6.2e-05", "1.0008", "Wiecki (2017)"):
            assert (number in comparison) == _is_radon(provenance), (name, number)
        maps = pd.read_csv(tables / "map_vs_mean.csv").set_index("model")
        assert f"MAP σ_b = {maps.loc['centered', 'map_sigma_b']:.1e}" in comparison
        fits = pd.read_csv(tables / "fits.csv")
        for (sampler, model), group in fits.groupby(["sampler", "model"]):
            page = (out / f"fit_{sampler}_{model}.html").read_text()
            for ess in group["ess_bulk_sigma_b"]:
                assert f"<td>{ess:.0f}</td>" in page
            assert f"{int(group['divergences'].sum())}</strong> of" in page and f"b[{track}]" in page
        data = (out / "data.html").read_text()
        assert f"<strong>{provenance['download']['source']}</strong>" in data
        assert f"<strong>{provenance['rows']}</strong> rows in <strong>{provenance['groups']}</strong> groups" in data
        assert f"The tracked group is <strong>{track}</strong>" in data
        for page in NOTEBOOK_FIGURES:
            assert f"href='../{name}/report/{page}.html'" in index, (name, page)
        assert f"href='../{name}/tables/summary.html'" in index
        pymc_c = summary.set_index(["sampler", "model"]).loc[("pymc", "centered")]
        assert f"bulk ESS(σ_b) {pymc_c['ess_bulk_sigma_b_median']:.0f} [" in index
    assert "href='../tables/datasets.csv'" in index


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
    assert jobs == {"report_fit": str(4 * len(_datasets(run))), "report": "1", "all": "1"}, stats
    assert "Updated input files: " + str(template) in log
    # Without the edit nothing would run: the copies themselves change nothing.
    shutil.copy2(ROOT / "workflow" / "notebooks" / "fit_group.ipynb", template)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.slow
def test_snakemake_report_embeds_notebooks_figures_and_captions(built_report, tmp_path):
    workdir = copy_run(built_report[0], tmp_path / "run")  # the session's small run stays as it is
    target = tmp_path / "report.html"
    run_snakemake(workdir, "--report", str(target))
    page = target.read_text()
    assert "Wiecki 2017" in page  # the workflow caption, rendered with the config
    # Captions are rendered before any data is read: a configured track_group is named (radon's
    # TRAVERSE), one chosen from the data at clean time is "the tracked group".
    assert "b[TRAVERSE]" in page
    assert "b[the tracked group]" in page
    for name in ("comparison.html", "fit_pymc_centered.html", "centered_funnel.png", "blog_vs_run.html"):
        assert name in page, name


@pytest.mark.slow
def test_experiments_section_quotes_reference_and_sweeps(built_report):
    workdir, _ = built_report
    index = (workdir / "results/report/index.html").read_text()
    for name, provenance in _datasets(workdir).items():
        page = (workdir / f"results/{name}/report/experiments.html").read_text()
        reference = json.loads((workdir / f"results/{name}/reference/reference.json").read_text())
        d = reference["diagnostics"]
        assert f"rank R-hat max <strong>{d['rhat_max']:.4f}</strong>" in page
        fits = pd.read_csv(workdir / f"results/{name}/tables/fits.csv")
        centered = fits[fits["model"] == "centered"]
        flagged = int((centered["z_sigma_b"].abs() >= 3).sum())
        assert f"centered: {flagged} of {len(centered)} fits have |z| ≥ 3" in page
        assert "centered (nutpie): from target_accept 0.8 to 0.99" in page
        assert "rows per group" in page and f"P(σ_b &lt; {provenance['sigma_b_small']:g})" in page
        for figure in ("bias", "target_accept", "rows_crossover", "samplers"):
            path = workdir / f"results/{name}/report/figures/{figure}.png"
            assert path.read_bytes().startswith(b"\x89PNG"), (name, figure)
        assert f"href='../{name}/report/experiments.html'" in index


# ================================================================ report.code, and the index opening on the verdict
def _tiny_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A page\nSome text."),
        nbformat.v4.new_code_cell(
            "secret_code_marker = 41 + 1\nprint(secret_code_marker)",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="42\n")],
            execution_count=1,
        ),
    ]
    return nb


def test_report_code_hide_leaves_out_the_code_and_links_the_executed_notebook():
    from funnel.config import ConfigError

    nb = _tiny_notebook()
    hidden = report.render_html(nb, "t", code="hide", notebook_href="notebooks/t.ipynb")
    shown = report.render_html(nb, "t", code="show", notebook_href="notebooks/t.ipynb")
    assert "secret_code_marker" not in hidden and "secret_code_marker" in shown
    for page in (hidden, shown):
        assert "42" in page and "Some text." in page and 'href="notebooks/t.ipynb"' in page
    assert "report.code: hide" in hidden and "report.code: hide" not in shown
    assert len(nb.cells) == 2  # the executed notebook itself keeps its cells
    with pytest.raises(ValueError, match="show, hide"):
        report.render_html(nb, "t", code="maybe")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["report"]["code"] == "hide"
    config["report"]["code"] = "maybe"
    with pytest.raises(ConfigError, match="'report.code' is 'maybe'; allowed values: show, hide"):
        validate_config(config, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))


def test_index_section_opens_on_the_verdict_with_its_figures_and_links(tmp_path, monkeypatch):
    from funnel import verdict as V
    from funnel import verdict_text as T

    monkeypatch.chdir(tmp_path)
    tables = Path("results/trial/tables")
    tables.mkdir(parents=True)
    fits = _fits().assign(ess_bulk_sigma_b_per_s=lambda f: f["ess_bulk_sigma_b"] / 10.0)
    v = V.compute_verdict(fits, dataset="trial")
    assert v.recommendation == "noncentered"  # the centered seeds diverge, the non-centered ones pass
    (tables / "verdict.json").write_text(json.dumps(v.to_dict()))
    index = "results/report/index.html"
    figures = {name: f"results/trial/report/figures/{name}.png" for name in ("centered_funnel", "noncentered_offsets")}
    # The verdict rule renders the section once, from the verdict it computed; the index includes it.
    lead = index_page.verdict_section(
        v,
        index,
        verdict_page=str(tables / "verdict.html"),
        others=[str(tables / "verdict.md"), str(tables / "verdict.json")],
        figures=figures,
        comparison="results/trial/report/comparison.html",
        sampler="pymc",
    )
    assert "Verdict: Use the non-centered form" in lead and "Only the non-centered form passes" in lead
    assert "<a href='../trial/report/comparison.html'><img src='../trial/report/figures/centered_funnel.png'" in lead
    assert "noncentered_offsets.png" in lead and "The funnel (pymc fits)" in lead
    assert "href='../trial/tables/verdict.html'" in lead and "href='../trial/tables/verdict.md'" in lead
    assert "href='../trial/tables/verdict.json'" in lead
    assert "Per-fit z-scores miss what many seeds reveal" in lead and "Welch&#x27;s t test" in lead
    assert lead.startswith("<div class='verdict verdict-noncentered'>") and T.rule_text() in lead
    # The headline, then the figures (full width), then the evidence folded: the table inside <details>.
    assert lead.index("Verdict: Use") < lead.index("centered_funnel.png") < lead.index("<details class='evidence'>")
    assert lead.index("<details class='evidence'>") < lead.index("<table class='verdict-table'>")
    assert lead.index("<table class='verdict-table'>") < lead.index("</details>")
    entries = [("The data", "../trial/report/data.html", "rows")]
    page = index_page.index_page(
        "t",
        "intro",
        [index_page.IndexSection("Dataset trial", entries, lead, index_page.dataset_anchor("trial")), ("Across", [])],
        preface=index_page.verdicts_at_a_glance(
            index, {"trial": index_page.read_verdict(str(tables / "verdict.json"))}
        ),
    )
    assert "<a href='#dataset-trial'>trial</a>: <strong>Use the non-centered form: it passes" in page
    assert page.index("<h2 id='dataset-trial'>") < page.index("Verdict: Use") < page.index("../trial/report/data.html")
    assert "<h2>Across</h2>" in page


def _section(index: str, name: str) -> str:
    """The index's section of dataset ``name``."""
    start = index.index(f"<h2 id='dataset-{name}'>")
    end = index.find("<h2", start + 1)
    return index[start : end if end > 0 else None]


@pytest.mark.slow
def test_index_opens_on_each_datasets_verdict(built_report):
    import html

    from funnel import verdict as V
    from funnel import verdict_text as T

    workdir, _ = built_report
    index = (workdir / "results/report/index.html").read_text()
    datasets = _datasets(workdir)
    assert index.index("<h2>Verdicts</h2>") < index.index("<h2 id='dataset-")  # more than one dataset
    for name in datasets:
        tables = workdir / "results" / name / "tables"
        stored = json.loads((tables / "verdict.json").read_text())
        # Computed, never by hand: the same numbers again from the per-seed table and the reference.
        fits = pd.read_csv(tables / "fits.csv")
        reference = V.read_reference(workdir / f"results/{name}/reference/reference.json")
        again = V.compute_verdict(fits, reference, dataset=name).to_dict()
        added = ("experiments", "advice")  # the rule adds them from the sweeps and the data
        assert {k: v for k, v in stored.items() if k not in added} == {k: v for k, v in again.items() if k not in added}
        verdict = V.Verdict.from_dict(stored)
        section = _section(index, name)
        opening = section.index(f"Verdict: {T.headline(verdict.recommendation)}")
        assert opening < section.index(f"href='../{name}/report/data.html'")
        assert html.escape(T.rule_text(), quote=False) in section
        for form in verdict.forms:
            assert f"{form.passing}/{form.seeds} ({form.share_pass:.0%})" in section
            assert f"{form.sampler} / {T.FORM_NAMES[form.model]}: mean of {form.bias.n} seeds" in section
            assert f"t = {form.bias.t:.2f}, {T.p_text(form.bias.p)}" in section
        assert "Per-fit z-scores miss what many seeds reveal" in section
        for figure in ("centered_funnel", "noncentered_offsets"):
            assert f"src='../{name}/report/figures/{figure}.png'" in section
        assert f"<a href='../{name}/report/comparison.html'><img" in section
        assert f"href='../{name}/tables/verdict.html'" in section
        # The section is the verdict rule's rendering, included as it is.
        assert (tables / "verdict_index.html").read_text() in section
        # The experiments ran in the small run: their one-liners join the verdict.
        assert len(verdict.experiments) == 3 and "target_accept sweep: " in section
        assert (tables / "verdict.md").read_text().startswith(f"# {name}: {T.headline(verdict.recommendation)}")


@pytest.mark.slow
def test_notebook_pages_hide_their_code_and_link_their_executed_notebooks(built_report):
    workdir, _ = built_report
    assert yaml.safe_load((workdir / "config.yaml").read_text())["report"]["code"] == "hide"
    for name in _datasets(workdir):
        out = workdir / "results" / name / "report"
        for page in NOTEBOOK_FIGURES:
            code = nbformat.read(str(out / "notebooks" / f"{page}.ipynb"), as_version=4)
            imports = next(c.source for c in code.cells if c.cell_type == "code" and "from funnel" in c.source)
            text = (out / f"{page}.html").read_text()
            assert "from funnel" in imports and "from funnel" not in text, (name, page)
            assert f'href="notebooks/{page}.ipynb"' in text and "report.code: hide" in text, (name, page)


@pytest.mark.slow
def test_snakemake_report_zip_contains_the_verdict_pages_and_their_figures(built_report, tmp_path):
    import zipfile

    run = copy_run(built_report[0], tmp_path / "run")
    target = tmp_path / "report.zip"
    run_snakemake(run, "--report", str(target))
    archive = zipfile.ZipFile(target)
    names = archive.namelist()
    datasets = _datasets(run)
    verdicts = [n for n in names if n.endswith("/verdict.html")]
    assert len(verdicts) == len(datasets), names
    pages = {archive.read(n).decode() for n in verdicts}
    for name in datasets:
        assert any(f"<h1>{name}: the verdict</h1>" in page for page in pages), name
    for figure in ("centered_funnel.png", "noncentered_offsets.png"):
        assert len([n for n in names if n.endswith("/" + figure)]) == len(datasets), figure
    html_report = archive.read("report/report.html").decode()
    for name in datasets:
        assert f"The verdict on dataset {name}" in html_report, name


def test_figures_read_the_traces_of_the_first_draw_seeds_only(tmp_path):
    """report.draw_seeds caps the traces a notebook reads; the tables still cover every seed."""
    copy_config(
        tmp_path,
        datasets={"radon": {"source": "embedded"}},
        fit={"seeds": [5, 1, 3], "samplers": ["nutpie"]},
        report={"draw_seeds": 2},
    )
    pages = ["results/radon/report/comparison.html", "results/radon/report/fit_nutpie_centered.html"]
    plan = run_snakemake(tmp_path, "-n", *pages).stdout
    blocks = {b.split(":", 1)[0]: b for b in re.split(r"\n(?=rule )", plan) if b.startswith("rule ")}

    def inputs(rule: str) -> str:
        return next(line for line in blocks[f"rule {rule}"].splitlines() if line.strip().startswith("input:"))

    for rule in ("report_comparison_radon", "report_fit"):
        assert "seed5.nc" in inputs(rule) and "seed1.nc" in inputs(rule), rule
        assert "seed3.nc" not in inputs(rule), rule
    assert "tables/fits.csv" in inputs("report_comparison_radon")  # the tables, built from every seed


def test_sbc_conclusion_follows_the_verdict_only_where_a_campaign_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sbc = Path("results/trial/sbc")
    sbc.mkdir(parents=True)
    line = "SBC, 200 simulations on trial's design: centered (pymc) miscalibrated in sigma_b; 41% of fits diverged."
    (sbc / "conclusion.json").write_text(
        json.dumps({"dataset": "trial", "simulations": 200, "groups": [], "line": line})
    )
    index = "results/report/index.html"
    page = "results/trial/report/sbc.html"
    lead = index_page.sbc_section(index, str(sbc / "conclusion.json"), page, markdown=str(sbc / "calibration.md"))
    assert (
        "<strong>Simulation-based calibration.</strong> SBC, 200 simulations on trial&#x27;s design: centered" in lead
    )
    assert "href='../trial/report/sbc.html'>sbc.html</a>" in lead
    # Links only the campaign's files that exist: calibration.md is not written yet.
    assert "href='../trial/sbc/conclusion.json'" in lead and "calibration.md" not in lead
    (sbc / "calibration.md").write_text("# SBC\n")
    lead = index_page.sbc_section(index, str(sbc / "conclusion.json"), page, markdown=str(sbc / "calibration.md"))
    assert "href='../trial/sbc/calibration.md'>calibration.md</a>" in lead
    (sbc / "conclusion.json").write_text(json.dumps({"line": "a <b> & c"}))
    assert "a &lt;b&gt; &amp; c" in index_page.sbc_section(index, str(sbc / "conclusion.json"), page)
    # In the index, the line follows the verdict and precedes the dataset's links.
    verdict = "<div class='verdict'>Verdict: Use the non-centered form</div>"
    entries = [("The data", "../trial/report/data.html", "rows")]
    html_page = index_page.index_page(
        "t", "intro", [index_page.IndexSection("Dataset trial", entries, verdict + "\n" + lead)]
    )
    assert html_page.index("Verdict: Use") < html_page.index("Simulation-based calibration.")
    assert html_page.index("Simulation-based calibration.") < html_page.index("../trial/report/data.html")


# ---------------------------------------------------------------- the newcomer's first screen (issue 24)
def test_the_first_screen_explains_the_funnel_the_forms_and_the_verdict_before_any_table(tmp_path):
    from funnel import verdict as V
    from test_advice import MATH_X, math_achieve_like, with_advice

    hostile = "<b>x</b>'s"  # a dataset name from the config reaches the page escaped
    verdicts = {
        "radon": (V.compute_verdict(pd.read_csv(ROOT / "tests/references/radon_baseline/fits.csv")), None),
        hostile: (with_advice(math_achieve_like(), MATH_X), f"results/{hostile}/report/comparison.html"),
    }
    first = index_page.first_screen("results/report/index.html", verdicts)
    assert "<b>x</b>" not in first and "&lt;b&gt;x&lt;/b&gt;&#x27;s" in first
    assert "shaped like a <strong>funnel</strong>" in first and "<em>divergences</em>" in first
    assert "<em>centered</em>" in first and "<em>non-centered</em>" in first
    # One line per dataset: what its verdict means for the model, the sampler named where they disagree.
    assert "For your model on <a href='#dataset-radon'>radon</a>: Use the non-centered form: it passes 6 of 8" in first
    assert "with PyMC&#x27;s NUTS it still diverges on 6 of 8 seeds: raise target_accept" in first
    assert "See the two forms side by side</a>" in first and "comparison.html" in first
    page = index_page.index_page("t", "intro", [("Across", [])], first=first)
    assert page.index("class='first'") < page.index("intro") < page.index("<h2>")
    assert "<table" not in page[: page.index("<h2>")]


@pytest.mark.parametrize(
    ("divergent", "ratio", "expected"),
    [
        (0, 1.05, ": little sign of a funnel on this dataset, and no divergences."),
        (320, 1.05, "the 320 divergent transitions say the sampler met the funnel's neck and could not enter it"),
        (1, 1.05, "the 1 divergent transition says the sampler met"),
        (320, 1.6, "(ratio 1.60): the funnel."),
    ],
)
def test_the_funnel_sentence_agrees_with_the_divergences(divergent, ratio, expected):
    facts = {
        "divergent": divergent,
        "draws": 4000,
        "share_divergent": divergent / 4000,
        "median_sigma_b_divergent": 0.05 if divergent else float("nan"),
        "median_sigma_b": 0.2,
    }
    text = prose.funnel_sentence(facts, {"sd_low": 0.2, "sd_high": 0.2 * ratio, "ratio": ratio}, "TRAVERSE")
    assert expected in text
    if divergent:
        assert "little sign of a funnel" not in text  # 8% of the draws diverging is a sign
        assert f"**{divergent}** of 4000 centered draws" in text


def test_plurals_are_right_for_one():
    assert prose.plural(1, "dataset") == "1 dataset" and prose.plural(2, "row") == "2 rows"
    one = pd.DataFrame(
        {"dataset": ["radon"], "sampler": ["pymc"], "model": ["noncentered"], "share_pass_all": [1.0]}
        | {"ess_bulk_sigma_b_median": [900.0]}
    )
    line = prose.datasets_line(one)
    assert line.startswith("1 dataset × sampler × form (1 row)") and "1 datasets" not in line
