"""Benchmark the pipeline: prints wall times, per-fit cost breakdown, marginal seed cost.

    .venv/bin/python bench/run_bench.py [--workdir bench/out] [--reuse] [--experiments]

Runs the real Snakemake CLI on the default config.yaml in a scratch working
directory (data source auto: offline it falls back to the embedded table):

1. cold: empty working directory and empty compile cache;
2. warm: outputs removed, compile cache kept;
3. no-op rerun: nothing changed;
4. marginal cost of extra seeds: adds seeds (one more batch) and divides the
   extra wall time by the new fits' own sampling time spread over the cores
   (each fit's sampling seconds x fit.threads / cores);
5. report regeneration after a notebook template is touched (when the
   workflow has a report);
6. with --experiments: a cold run with workflow/presets/experiments.yaml.

The cold run also prints its ratio to the sampling floor (the fits' sampling
seconds spread over the cores) and the size of a stored trace per fit.
bench/planning.py times Snakemake's planning as the seeds grow.

Targets (2-core machine): cold <= 180 s including the report; marginal cost
per extra seed <= 1.5x its sampling time; no-op rerun <= 5 s; report
regeneration <= 30 s. This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(workdir: Path, *args: str) -> float:
    start = time.perf_counter()
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "all", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def write_config(workdir: Path, seeds: list[int] | None = None) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["fit"]["compile_cache"] = str(workdir / "cache")
    if seeds is not None:
        config["fit"]["seeds"] = seeds
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--reuse", action="store_true", help="skip the cold and warm runs: reuse a finished default run in --workdir"
    )
    parser.add_argument(
        "--experiments", action="store_true", help="also time a cold run with workflow/presets/experiments.yaml"
    )
    args = parser.parse_args()
    work = args.workdir.resolve()
    base = yaml.safe_load((ROOT / "config.yaml").read_text())["fit"]["seeds"]
    print(f"machine: {os.cpu_count()} cores; default config: {len(base)} seeds", flush=True)
    if args.reuse:
        write_config(work)
        snakemake(work)  # brings the default run up to date (seeds of an earlier --reuse run stay)
    else:
        cold_and_warm(work)
    marginal_seeds(work, base)
    report_regeneration(work)
    if args.experiments:
        with_experiments(work.parent / (work.name + "-experiments"))


def with_experiments(work: Path) -> None:
    """Cold run of the default config plus workflow/presets/experiments.yaml."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_config(work)
    wall = snakemake(work, "--configfile", str(ROOT / "workflow/presets/experiments.yaml"))
    print(f"\ncold run with the experiments preset: {wall:.1f} s", flush=True)
    job_times(work, "experiments-preset cold")


def cold_and_warm(work: Path) -> None:
    figures: dict[str, float] = {}
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_config(work)
    figures["cold"] = snakemake(work)
    print(f"cold run (empty outputs and compile cache): {figures['cold']:.1f} s", flush=True)
    floor = sampling_floor(work)
    print(
        f"its sampling floor (the fits' sampling seconds x cores per fit / {os.cpu_count()} cores): {floor:.1f} s; "
        f"cold run / floor = {figures['cold'] / floor:.2f}x (goal <= 1.5x)",
        flush=True,
    )
    trace_sizes(work)
    job_times(work, "cold")
    for sub in ("results", "data", ".snakemake"):
        shutil.rmtree(work / sub, ignore_errors=True)
    figures["warm"] = snakemake(work)
    print(f"warm run (outputs removed, compile cache kept): {figures['warm']:.1f} s", flush=True)
    figures["noop"] = snakemake(work)
    print(f"rerun with nothing changed: {figures['noop']:.1f} s", flush=True)

    job_times(work, "warm")
    fits = pd.read_csv(work / "results/radon/tables/fits.csv")
    cols = ["import_seconds", "compile_seconds", "sampling_seconds"]
    breakdown = fits.groupby(["sampler", "model"])[cols].median().round(2)
    print("\nper-fit breakdown, median over seeds (import and compile are paid once per batch job):")
    print(breakdown.to_string())


def sampling_floor(work: Path) -> float:
    """The wall time the run would take if the machine's cores did nothing but sample."""
    threads = yaml.safe_load((work / "config.yaml").read_text())["fit"]["threads"]
    fits = pd.concat(pd.read_csv(p) for p in (work / "results").glob("*/tables/fits.csv"))
    return float(fits["sampling_seconds"].sum()) * threads / (os.cpu_count() or 1)


def trace_sizes(work: Path) -> None:
    """Median size of a stored trace per dataset, sampler and form (fit.trace_dtype, store_deterministics)."""
    rows = [
        {"fits": str(p.parent.relative_to(work / "results")), "MB": p.stat().st_size / 1e6}
        for p in (work / "results").glob("*/fits/*/*/seed*.nc")
    ]
    sizes = pd.DataFrame(rows).groupby("fits")["MB"].median().round(2)
    print("\ntrace size per fit, median (MB):")
    print(sizes.to_string())


def job_times(work: Path, label: str) -> None:
    """Wall seconds of the last run's jobs, per rule group, from Snakemake's benchmark files."""
    rows = []
    for tsv in sorted((work / "results/benchmarks").rglob("*.tsv")):
        name = tsv.relative_to(work / "results/benchmarks").with_suffix("")
        parts = name.parts
        # results/benchmarks/<dataset>/<rule or folder>/...; fits and sweeps grouped per sampler.
        depth = 3 if len(parts) > 2 and parts[1] in ("fit", "experiments") else 2
        group = "/".join(parts[:depth])
        rows.append({"group": group, "job": str(name), "seconds": float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])})
    table = pd.DataFrame(rows)
    summary = table.groupby("group")["seconds"].agg(["count", "sum", "max"]).round(1)
    print(f"\njob wall times of the {label} run (results/benchmarks), per group:")
    print(summary.to_string())
    print(f"all jobs: {table['seconds'].sum():.1f} job-seconds")


def marginal_seeds(work: Path, base: list[int]) -> None:
    """Wall time of fitting one more batch of seeds (fits and their diagnostics only)."""
    batch = yaml.safe_load((work / "config.yaml").read_text())["fit"]["batch_size"]
    extra = list(range(max(base) + 1, max(base) + 1 + batch))
    for seed in extra:  # left by an earlier benchmark run: fit them again
        for old in (work / "results/radon/fits").glob(f"*/*/seed{seed}.*"):
            old.unlink()
    write_config(work, seeds=[*base, *extra])
    wall = snakemake(work, "results/radon/tables/fits.csv")
    fits = pd.read_csv(work / "results/radon/tables/fits.csv")
    new = fits[fits["seed"].isin(extra)]
    threads = yaml.safe_load((work / "config.yaml").read_text())["fit"]["threads"]
    cores = os.cpu_count() or 1
    n_fits = len(new)
    sampling = new["sampling_seconds"].sum()
    # The sampling alone, spread over the machine's cores: each fit's sampling
    # holds `threads` cores for sampling_seconds.
    ideal = sampling * threads / cores
    print(
        f"\nadding {len(extra)} seeds ({n_fits} fits, batch size {batch}, {threads} core(s) per job): "
        f"{wall:.1f} s wall up to fits.csv; their sampling {sampling:.1f} s in all, "
        f"{ideal:.1f} s spread over {cores} cores"
    )
    print(f"marginal wall cost of the extra fits / their sampling time on the cores: {wall / ideal:.2f}x")
    write_config(work)


def report_regeneration(work: Path) -> None:
    """Edit a template's content (restored afterwards) and time the rerun it causes."""
    import nbformat

    snakemake(work)  # everything up to date, report included
    for name in ("comparison", "fit_group"):
        template = ROOT / f"workflow/notebooks/{name}.ipynb"
        original = template.read_bytes()
        stat = template.stat()
        nb = nbformat.read(str(template), as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell("A benchmark edit."))
        try:
            nbformat.write(nb, str(template))
            wall = snakemake(work)
        finally:
            template.write_bytes(original)
            os.utime(template, (stat.st_atime, stat.st_mtime))
        print(f"report regeneration after editing {name}.ipynb: {wall:.1f} s")


if __name__ == "__main__":
    main()
