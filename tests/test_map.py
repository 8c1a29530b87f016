"""The MAP points, written by a fit job (rules/fit.smk, scripts/fit.py), through the real Snakemake CLI.

The fit job that computes them must write exactly what ``funnel.fitting.map_estimate``
returns, whichever sampler's job it is and however the seeds are batched, and a
rerun must take them from their store instead of computing them again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import copy_config, radon, run_snakemake

pytest.importorskip("pymc")

from funnel.datasets import load  # noqa: E402
from funnel.fitting import map_estimate  # noqa: E402

pytestmark = pytest.mark.slow  # runs Snakemake and fits models

MODELS = ("centered", "noncentered")
MAPS = [f"results/radon/map/{m}.json" for m in MODELS]


def tiny(dest: Path, sampler: str, seeds=(1,), batch_size: int = 1) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    fit = {
        "seeds": list(seeds),
        "batch_size": batch_size,
        "chains": 2,
        "tune": 50,
        "draws": 50,
        "samplers": [sampler],
        "models": list(MODELS),
    }
    copy_config(dest, datasets=radon(source="embedded"), fit=fit)
    return dest


def job_stats(proc) -> set[str]:
    log = proc.stdout + proc.stderr
    stats = log[log.index("Job stats") :] if "Job stats" in log else ""
    return {rule for rule, _ in re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M)} - {"total"}


@pytest.fixture(scope="module")
def pymc_run(tmp_path_factory) -> Path:
    workdir = tiny(tmp_path_factory.mktemp("map_pymc"), "pymc")
    proc = run_snakemake(workdir, *MAPS)
    # The MAP points come from the fit job of batch 0 of the first model; no job of their own.
    assert job_stats(proc) == {"download", "clean", "fit_batch0_radon_pymc_centered"}, proc.stdout
    return workdir


@pytest.fixture(scope="module")
def expected(pymc_run) -> dict[str, dict]:
    data = load(pymc_run / "results/radon/data/table.csv", pymc_run / "results/radon/data/provenance.json")
    return {model: map_estimate(data, model, "blog") for model in MODELS}


def test_the_fit_job_writes_exactly_map_estimate(pymc_run, expected):
    """Equality, not a tolerance: the centered MAP is where L-BFGS-B stops on a density that is
    unbounded as sigma_b -> 0, so any change in the last digits of the log density moves it by
    orders of magnitude (PyTensor's numba backend instead of C: sigma_a 11.2 -> about 1). The same
    function compiled the same way gives the same bits, and JSON keeps every float's digits."""
    for model in MODELS:
        assert json.loads((pymc_run / f"results/radon/map/{model}.json").read_text()) == expected[model], model
    log = (pymc_run / "results/logs/radon/fit/pymc/centered/batch0.log").read_text()
    for model in MODELS:
        assert re.search(rf"^MAP of {model}: computed in \d+\.\d s ", log, flags=re.M), log
    assert (pymc_run / "results/benchmarks/radon/fit/pymc/centered/batch0.tsv").is_file()


def test_nutpie_job_and_other_batches_write_the_same_map(pymc_run, tmp_path):
    """Another sampler's job, with the seeds in two batches: the same bytes."""
    workdir = tiny(tmp_path / "nutpie", "nutpie", seeds=(1, 2), batch_size=1)
    proc = run_snakemake(workdir, *MAPS)
    assert job_stats(proc) == {"download", "clean", "fit_batch0_radon_nutpie_centered"}, proc.stdout
    for path in MAPS:
        assert (workdir / path).read_bytes() == (pymc_run / path).read_bytes(), path


def test_a_rerun_takes_the_map_from_the_store(pymc_run, expected, tmp_path):
    import shutil

    workdir = tmp_path / "copy"
    shutil.copytree(pymc_run, workdir, symlinks=True)
    log = workdir / "results/logs/radon/fit/pymc/centered/batch0.log"
    before = {path: (workdir / path).read_bytes() for path in MAPS}

    # A deleted MAP file: its fit job reruns, takes its seeds and both MAPs from the stores,
    # and so never imports PyMC or compiles anything.
    (workdir / MAPS[1]).unlink()
    run_snakemake(workdir, *MAPS)
    text = log.read_text()
    assert "seed 1: resumed from" in text and "imported PyMC" not in text, text
    assert "computed in" not in text and text.count("taken from the store") == 2, text
    assert {path: (workdir / path).read_bytes() for path in MAPS} == before

    # Seeds stored but not the centered MAP: that one is computed then, the other linked.
    for path in (workdir / "results/radon/map/.store").glob("centered-*.json"):
        path.unlink()
    (workdir / MAPS[0]).unlink()
    run_snakemake(workdir, *MAPS)
    text = log.read_text()
    assert "seed 1: resumed from" in text and "imported PyMC" not in text, text
    assert "MAP of centered: computed in" in text and "MAP of noncentered: taken from the store" in text, text
    assert json.loads((workdir / MAPS[0]).read_text()) == expected["centered"]
    assert "Nothing to be done" in run_snakemake(workdir, "-n", *MAPS).stdout
