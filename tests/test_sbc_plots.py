"""The SBC report: the ECDF-difference figures on synthetic ranks, and the SBC notebook end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from funnel import report
from funnel import sbc as S
from funnel.plots import sbc as P

PNG = 'src="data:image/png'  # an inline figure in nbconvert's HTML


@pytest.fixture(autouse=True, scope="module")
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _records(
    n: int = 40,
    groups: tuple[tuple[str, str], ...] = (("nutpie", "centered"), ("nutpie", "noncentered")),
    skew: dict[tuple[str, str], str] | None = None,
    diverge: dict[tuple[str, str], float] | None = None,
    failed: int = 0,
    seed: int = 1,
) -> pd.DataFrame:
    """Records of a campaign as the SBC rules write them, with ranks drawn uniformly on 0..rank_n.

    ``skew`` maps a group to the quantity whose ranks are piled at the low end (u**3); ``diverge`` maps a
    group to the share of its fits that diverged; a skewed quantity is skewed in the fits that diverged
    when the group has any, else in all of them. ``failed`` more simulations per group raised.
    """
    rng = np.random.default_rng(seed)
    # The posterior means draw from a stream of their own, so that the ranks stay those of ``seed``.
    post_rng = np.random.default_rng([seed, 1])
    skew, diverge = skew or {}, diverge or {}
    rows = []
    for sampler, model in groups:
        share = diverge.get((sampler, model), 0.0)
        for i in range(1, n + failed + 1):
            base = {
                "dataset": "trial",
                "sampler": sampler,
                "model": model,
                "priors": "auto",
                "simulation": i,
                "sim_seed": S.simulation_seed("trial", i),
                "fit_seed": S.fit_seed("trial", i),
            }
            if i > n:
                rows.append(base | {"status": "failed", "error": "FloatingPointError: the sampler blew up"})
                continue
            diverged = i <= round(share * n)
            row = base | {
                "status": "ok",
                "error": "",
                **{f"true_{q}": rng.normal() for q in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")},
                "true_a_track": rng.normal(),
                "true_b_track": rng.normal(),
                "chains": 2,
                "draws": 200,
                "divergences": 4 if diverged else 0,
                "diverged": diverged,
                "rhat_max": 1.003,
                "ess_bulk_sigma_b": 150.0,
                "ess_bulk_min": 120.0,
                "sampling_seconds": 0.5 + i / 100,
                "thin": 4,
                "rank_n": 100,
            }
            for q in S.QUANTITIES:
                u = rng.uniform()
                if skew.get((sampler, model)) == q and (diverged or share == 0.0):
                    u = u**3
                row[f"rank_{q}"] = int(np.floor(u * (row["rank_n"] + 1)))
            for q in S.PARAMETERS:  # posterior means scattered around the truths (the data-averaged check)
                row[f"post_mean_{q}"] = row[f"true_{q}"] + 0.3 * post_rng.normal()
                row[f"post_sd_{q}"] = 0.3
            rows.append(row)
    return pd.DataFrame(rows)


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


# ================================================================ the ECDF-difference grid
def test_grid_has_one_panel_per_quantity_and_form_and_uniform_ranks_stay_inside():
    records = _records()
    fig = P.ecdf_differences(records)
    titles = _titles(fig)
    assert len(titles) == len(S.QUANTITIES) * 2
    # Rows are quantities, columns (sampler, model) in order; every title names both and the fits.
    assert titles[0].startswith("μ_a, centered (nutpie)\n40 fits")
    assert titles[1].startswith("μ_a, non-centered (nutpie)")
    assert titles[2 * 3].startswith("σ_b, centered (nutpie)")
    assert titles[-1].startswith("log-likelihood, non-centered (nutpie)")
    assert all("inside band" in t for t in titles) and not any(P.OUTSIDE in t for t in titles)
    # Every panel draws ArviZ's band (a filled area) and the ECDF difference (a line).
    assert all(ax.collections and ax.lines for ax in fig.axes)
    assert "0.9938 simultaneous band (family-wise 95% over 8 quantities)" in fig.get_suptitle()


def test_skewed_ranks_are_marked_outside_the_band_as_the_calibration_table_says():
    records = _records(skew={("nutpie", "centered"): "sigma_b"})
    fig = P.ecdf_differences(records)
    marked = [t for t in _titles(fig) if P.OUTSIDE in t]
    assert len(marked) == 1 and marked[0].startswith("σ_b, centered (nutpie)\n40 fits: outside band (")
    ax = next(ax for ax in fig.axes if P.OUTSIDE in ax.get_title())
    assert ax.title.get_color() == P.DIVERGENT_COLOR
    # The figure's band is the calibration's: the same quantities fail there, no others.
    table = S.calibration(records)
    failing = table[(table["subset"] == "all") & ~table["uniform"].astype(bool)]
    assert list(zip(failing["model"], failing["quantity"])) == [("centered", "sigma_b")]
    points = int(failing["ecdf_points_outside_band"].iloc[0])
    assert marked[0].endswith(f"outside band ({points} points)")


def test_failed_fits_have_no_ranks_and_too_few_fits_are_not_marked():
    records = _records(n=6, failed=3, skew={("nutpie", "centered"): "sigma_b"})
    fig = P.ecdf_differences(records, quantities=("sigma_b",))
    assert _titles(fig) == [
        "σ_b, centered (nutpie)\n6 fits: too few to test (< 10)",
        "σ_b, non-centered (nutpie)\n6 fits: too few to test (< 10)",
    ]
    only_failed = _records(n=0, failed=2, groups=(("pymc", "centered"),))
    fig = P.ecdf_differences(pd.concat([_records(), only_failed]), quantities=("mu_a",))
    assert [t.split("\n")[0] for t in _titles(fig)] == [
        "μ_a, centered (nutpie)",
        "μ_a, non-centered (nutpie)",
        "μ_a, centered (pymc)",
    ]
    assert _titles(fig)[2].endswith("no fits") and not fig.axes[2].lines


def test_prob_sets_the_band_and_is_named_without_the_family_claim():
    records = _records(skew={("nutpie", "centered"): "sigma_b"})
    fig = P.ecdf_differences(records, quantities=("sigma_b",), prob=0.9)
    assert "0.9 simultaneous band" in fig.get_suptitle() and "family-wise" not in fig.get_suptitle()


# ================================================================ the divergence split
def test_divergence_split_puts_the_fits_that_diverged_beside_the_others():
    records = _records(
        n=60,
        groups=(("nutpie", "centered"), ("nutpie", "noncentered"), ("pymc", "centered")),
        skew={("nutpie", "centered"): "sigma_b"},
        diverge={("nutpie", "centered"): 0.5, ("pymc", "centered"): 0.1},
    )
    assert P.split_groups(records) == [("nutpie", "centered")]  # pymc: 6 diverged; non-centered: none
    fig = P.divergence_split(records)
    titles = _titles(fig)
    assert len(titles) == 2
    left, right = titles
    assert left.startswith("σ_b, centered (nutpie): fits that diverged\n30 fits: outside band")
    assert right == "σ_b, centered (nutpie): fits without divergences\n30 fits: inside band"


def test_divergence_split_without_enough_fits_in_both_subsets_says_so():
    records = _records(diverge={("nutpie", "centered"): 0.1})
    fig = P.divergence_split(records, "mu_b")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == [P.no_split_message("mu_b", 10)]
    assert "No sampler and form has at least 10 fits that diverged and 10 that did not" in texts[0]
    assert "μ_b" in texts[0] and not any(ax.lines for ax in fig.axes)


# ================================================================ the notebook end to end
def _campaign(folder: Path, records: pd.DataFrame) -> dict[str, str]:
    """records.csv, calibration.csv and conclusion.json of a synthetic campaign, written by the library's
    own functions (as the SBC rules do)."""
    records = S.records_table(records.to_dict("records"))
    table = S.calibration(records)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in ("records", "calibration")}
    records.to_csv(paths["records"], index=False)
    table.to_csv(paths["calibration"], index=False)
    paths["conclusion"] = folder / "conclusion.json"
    paths["conclusion"].write_text(json.dumps(S.conclusion(records, table), indent=2) + "\n")
    return {name: str(path) for name, path in paths.items()}


def _run_sbc_notebook(paths: dict[str, str], out: Path) -> tuple[str, dict[str, Path]]:
    """The SBC notebook executed as rule report_sbc does (report.run_notebook): its HTML and figures."""
    exports = {name: out / "figures" / f"{name}.png" for name in ("sbc_ecdf", "sbc_divergences")}
    report.run_notebook(
        ROOT / "workflow/notebooks/sbc.ipynb",
        out / "notebooks/sbc.ipynb",
        out / "sbc.html",
        {
            "dataset": "trial",
            "records_path": paths["records"],
            "calibration_path": paths["calibration"],
            "conclusion_path": paths["conclusion"],
        },
        exports=exports,
        title="trial: simulation-based calibration",
        timeout=120,
        code="hide",
    )
    return (out / "sbc.html").read_text(), exports


def test_sbc_notebook_reads_the_campaign_and_exports_its_figures_without_pymc(tmp_path, monkeypatch):
    import html

    # A PyMC or PyTensor import in the kernel fails: the notebook must read tables only.
    blocker = tmp_path / "blocker"
    for name in ("pymc", "pytensor"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('the SBC notebook imported {name}')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    records = _records(n=40, failed=1, skew={("nutpie", "centered"): "sigma_b"}, diverge={("nutpie", "centered"): 0.5})
    paths = _campaign(tmp_path / "sbc", records)
    page, exports = _run_sbc_notebook(paths, tmp_path / "report")
    line = json.loads(Path(paths["conclusion"]).read_text())["line"]
    assert "centered (nutpie) miscalibrated in sigma_b" in line
    assert html.escape(line, quote=False) in page  # the conclusion line, first thing after the intro
    assert page.index("Conclusion.") < page.index("1. What was run")
    assert "FloatingPointError: the sampler blew up" in page  # the failed fits' errors are named
    assert "Säilynoja" in page and "1 − 0.05/8" in page and "0.9938" in page
    assert "σ_b of the non-centered" not in page and "σ_b of the centered (nutpie) fits" in page
    assert "the divergences are where it fails" in page
    # Failed and non-converged fits are counted; coverage and the data-averaged posterior are tabled.
    assert "<td>1 (2%)</td>" in page and "ran without converging (R-hat &gt; 1.01)" in page
    assert "3b. Coverage and the data-averaged posterior" in page and "95% covers" in page
    assert "data-averaged z" in page and "Modrák" in page and "randomized within its tie" in page
    table = S.calibration(S.records_table(records.to_dict("records")))
    row = table.set_index(["model", "quantity", "subset"]).loc[("noncentered", "mu_a", "all")]
    assert np.isfinite(row["dap_z"]) and f"{row['coverage_50']:.2f} [{row['coverage_50_lo']:.2f}, " in page
    assert page.count(PNG) == 2
    for path in exports.values():
        assert path.read_bytes().startswith(b"\x89PNG")


def test_sbc_notebook_names_a_form_with_too_few_fits_to_test(tmp_path):
    import html

    # 10 simulations (the config's minimum): pymc/centered has 4 failed fits, so 6 ranks, too few for 10 bins.
    records = pd.concat(
        [
            _records(n=10, groups=(("nutpie", "noncentered"),)),
            _records(n=6, failed=4, groups=(("pymc", "centered"),), diverge={("pymc", "centered"): 0.5}),
        ]
    )
    paths = _campaign(tmp_path / "sbc", records)
    page, exports = _run_sbc_notebook(paths, tmp_path / "report")
    line = json.loads(Path(paths["conclusion"]).read_text())["line"]
    assert "centered (pymc): too few fits to test" in line and html.escape(line, quote=False) in page
    assert "<strong>4 fit(s) failed</strong>" in page
    assert "<strong>centered (pymc)</strong>: too few fits to test." in page
    assert "<td>too few fits (6)</td>" in page and "<td>too few fits</td>" in page  # split and uniformity tables
    assert "Every tested panel stays inside its band" in page
    assert page.count(PNG) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in exports.values())
