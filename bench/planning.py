"""Benchmark Snakemake's planning (a dry run) as fit.seeds grows.

    .venv/bin/python bench/planning.py [--seeds 8 1000 10000] [--batch-size 8] [--target all]

For each number of seeds, writes the default config.yaml with seeds 1..N (radon
on its embedded source, both samplers and forms) into a scratch folder and times
`snakemake -n` (the whole DAG of the target, default `all`: fits, tables,
verdict and report) over --repeat runs. Prints the median wall time, the
seconds per 1,000 seeds and the number of jobs planned. Asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def plan(workdir: Path, target: str) -> tuple[float, int]:
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "-n", "--cores", "2", target]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)", proc.stdout, re.MULTILINE)
    return elapsed, int(total.group(1)) if total else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 1000, 10000])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--target", default="all")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"{'seeds':>7} {'batch':>6} {'jobs':>7} {'plan s (median)':>16} {'s per 1,000 seeds':>18}")
    for n in args.seeds:
        with tempfile.TemporaryDirectory(prefix="plan-") as tmp:
            work = Path(tmp)
            config = yaml.safe_load((ROOT / "config.yaml").read_text())
            config["datasets"]["radon"]["source"] = "embedded"
            config["fit"]["seeds"] = list(range(1, n + 1))
            config["fit"]["batch_size"] = args.batch_size
            (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            runs = [plan(work, args.target) for _ in range(args.repeat)]
            seconds = statistics.median(r[0] for r in runs)
            print(
                f"{n:>7} {args.batch_size:>6} {runs[0][1]:>7} {seconds:>16.1f} {1000 * seconds / n:>18.2f}", flush=True
            )


if __name__ == "__main__":
    main()
