"""Benchmark the pipeline: prints wall times, per-fit cost breakdown, marginal seed cost.

    .venv/bin/python bench/run_bench.py [--workdir bench/out] [--skip-cold]

Runs the real Snakemake CLI on the default config.yaml in a scratch working
directory (data source auto: offline it falls back to the embedded table):

1. cold: empty working directory and empty compile cache;
2. warm: outputs removed, compile cache kept;
3. no-op rerun: nothing changed;
4. marginal cost of extra seeds: adds seeds (one more batch) and divides the
   extra wall time by the new fits' own sampling time;
5. report regeneration after a notebook template is touched (when the
   workflow has a report).

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
    parser.add_argument("--skip-cold", action="store_true", help="keep an existing compile cache")
    args = parser.parse_args()
    work = args.workdir.resolve()
    if not args.skip_cold and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((ROOT / "config.yaml").read_text())["fit"]["seeds"]
    write_config(work)
    print(f"machine: {os.cpu_count()} cores; default config: {len(base)} seeds", flush=True)

    figures: dict[str, float] = {}
    figures["cold"] = snakemake(work)
    print(f"cold run (empty outputs and compile cache): {figures['cold']:.1f} s", flush=True)
    for sub in ("results", "data", ".snakemake"):
        shutil.rmtree(work / sub, ignore_errors=True)
    figures["warm"] = snakemake(work)
    print(f"warm run (outputs removed, compile cache kept): {figures['warm']:.1f} s", flush=True)
    figures["noop"] = snakemake(work)
    print(f"rerun with nothing changed: {figures['noop']:.1f} s", flush=True)

    fits = pd.read_csv(work / "results/tables/fits.csv")
    cols = ["import_seconds", "compile_seconds", "sampling_seconds"]
    breakdown = fits.groupby(["sampler", "model"])[cols].median().round(2)
    print("\nper-fit breakdown, median over seeds (import and compile are paid once per batch job):")
    print(breakdown.to_string())

    batch = base_batch = yaml.safe_load((work / "config.yaml").read_text())["fit"]["batch_size"]
    extra = list(range(max(base) + 1, max(base) + 1 + batch))
    write_config(work, seeds=[*base, *extra])
    figures["extra"] = snakemake(work)
    fits = pd.read_csv(work / "results/tables/fits.csv")
    new = fits[fits["seed"].isin(extra)]
    # Jobs run in parallel on the cores; compare with the sampling time spread over them.
    n_fits = len(new)
    sampling = new["sampling_seconds"].sum()
    print(
        f"\nadding {len(extra)} seeds ({n_fits} fits, batch size {base_batch}): {figures['extra']:.1f} s wall, "
        f"their sampling {sampling:.1f} s in total"
    )
    print(f"marginal wall cost per extra fit / its sampling time: {figures['extra'] / sampling:.2f}x")
    write_config(work)

    template = ROOT / "workflow/notebooks/comparison.ipynb"
    if template.exists():
        snakemake(work)  # back to the default seeds, report included
        before = template.stat().st_mtime
        os.utime(template)
        try:
            figures["report"] = snakemake(work, "--rerun-triggers", "mtime")
        finally:
            os.utime(template, (before, before))
        print(f"\nreport regeneration after a notebook template edit: {figures['report']:.1f} s")


if __name__ == "__main__":
    main()
