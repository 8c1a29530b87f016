"""Benchmark the cost of the tables and the report as fit.seeds grows (8 -> 1,000 seeds).

    .venv/bin/python bench/report_scaling.py [--workdir bench/out-report] [--seeds 1000]

1. Runs the default config with small fits (radon embedded, both samplers and
   forms, 8 seeds of 2 chains x 200 draws) through the report.
2. Raises fit.seeds to --seeds and fills in the new seeds' files by copying the
   first eight seeds' records (seed number changed) and linking their traces:
   the report's cost depends on how many files and rows it reads, not on the
   draws, so no new fit is needed. Snakemake then reruns the tables, the
   verdict and the report.
Prints, for both sizes, the wall seconds of the aggregate, verdict and report
jobs (from Snakemake's benchmark files) and their sum. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
BASE = 8
STEPS = ("aggregate", "verdict", "report/")


def snakemake(workdir: Path, *args: str) -> None:
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "all", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def write_config(workdir: Path, seeds: int) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["datasets"]["radon"]["source"] = "embedded"
    config["fit"].update(seeds=list(range(1, seeds + 1)), chains=2, tune=200, draws=200)
    config["fit"]["compile_cache"] = str(ROOT / ".cache" / "compile")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def report_seconds(workdir: Path) -> pd.Series:
    """Wall seconds of the last run of each table and report job."""
    rows = {}
    bench = workdir / "results/benchmarks"
    for tsv in bench.rglob("*.tsv"):
        name = str(tsv.relative_to(bench).with_suffix(""))
        if any(step in name for step in STEPS):
            rows[name] = float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
    return pd.Series(rows).sort_index()


def fill_in(workdir: Path, seeds: int) -> None:
    """Files of seeds BASE+1..seeds, copied from seeds 1..BASE (records) and linked (traces)."""
    for folder in (workdir / "results/radon/fits").glob("*/*"):
        for seed in range(BASE + 1, seeds + 1):
            source = 1 + (seed - 1) % BASE
            record = json.loads((folder / f"seed{source}.json").read_text())
            record["seed"] = seed
            (folder / f"seed{seed}.json").write_text(json.dumps(record))
            trace = folder / f"seed{seed}.nc"
            if not trace.exists():
                os.link(folder / f"seed{source}.nc", trace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out-report")
    parser.add_argument("--seeds", type=int, default=1000)
    args = parser.parse_args()
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_config(work, BASE)
    snakemake(work)
    small = report_seconds(work)
    write_config(work, args.seeds)
    fill_in(work, args.seeds)
    snakemake(work)
    large = report_seconds(work)
    table = pd.DataFrame({f"{BASE} seeds (s)": small, f"{args.seeds} seeds (s)": large}).round(2)
    print(table.to_string())
    print(
        f"\nall table and report jobs: {small.sum():.1f} s at {BASE} seeds, {large.sum():.1f} s at {args.seeds} seeds"
    )


if __name__ == "__main__":
    main()
