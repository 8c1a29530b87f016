"""Benchmark an SBC campaign: planning as the simulations grow, and the marginal cost per simulation.

    .venv/bin/python bench/sbc.py [--plan 1000 10000] [--marginal 10 60] [--skip-marginal]

Planning: for each number of simulations, writes config.yaml with sbc on (radon on
its embedded source, nutpie, both forms, batch_size 50) into a scratch folder and
times `snakemake -n sbc`; prints the wall time, the jobs planned and how many of
them would be cluster jobs (the sbc_batch* jobs).

Marginal cost: runs two fresh campaigns (one job per form holding all of its
simulations), of N1 and N2 simulations, and prints, per form,
(job seconds(N2) - job seconds(N1)) / (sampling seconds(N2) - sampling seconds(N1)):
what one more simulation costs relative to its own sampling (the job's fixed
costs, import and compile, cancel out). Asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
MODELS = ("centered", "noncentered")


def write_config(work: Path, simulations: int, batch_size: int) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["datasets"]["radon"]["source"] = "embedded"
    config["fit"]["compile_cache"] = str(ROOT / ".cache" / "compile")
    config["sbc"].update(enabled=True, simulations=simulations, batch_size=batch_size)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def planning(sizes: list[int]) -> None:
    print(f"{'simulations':>11} {'jobs':>6} {'batch jobs':>10} {'plan s':>7} {'s per 1,000 sims':>17}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="sbc-plan-") as tmp:
            work = Path(tmp)
            write_config(work, n, 50)
            start = time.perf_counter()
            proc = snakemake(work, "-n", "sbc")
            seconds = time.perf_counter() - start
            stats = proc.stdout.split("Job stats:")[1]  # a dry run prints the table twice
            total = int(re.search(r"^total\s+(\d+)", stats, re.MULTILINE).group(1))
            batches = sum(int(c) for c in re.findall(r"^sbc_batch\S+\s+(\d+)", stats, re.MULTILINE))
            print(f"{n:>11} {total:>6} {batches:>10} {seconds:>7.1f} {1000 * seconds / n:>17.2f}", flush=True)


def campaign(work: Path, n: int) -> dict[str, tuple[float, float]]:
    """Run a campaign of n simulations, one job per form; (job seconds, sampling seconds) per form."""
    write_config(work, n, n)
    snakemake(work, "sbc")
    out = {}
    for model in MODELS:
        with open(work / f"results/benchmarks/radon/sbc/nutpie/{model}/batch0.tsv") as handle:
            job = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
        folder = work / f"results/radon/sbc/nutpie/{model}"
        sampling = sum(json.loads(p.read_text()).get("sampling_seconds", 0.0) for p in folder.glob("sim*.json"))
        out[model] = (job, sampling)
    return out


def marginal(n1: int, n2: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sbc-m1-") as a, tempfile.TemporaryDirectory(prefix="sbc-m2-") as b:
        small, large = campaign(Path(a), n1), campaign(Path(b), n2)
    print(f"\nmarginal cost per simulation ({n1} -> {n2} simulations, one job per form, nutpie)")
    print(f"{'form':>12} {'job s':>15} {'sampling s':>15} {'per sim s':>10} {'ratio':>6}")
    for model in MODELS:
        (j1, s1), (j2, s2) = small[model], large[model]
        ratio = (j2 - j1) / (s2 - s1)
        per_sim = (j2 - j1) / (n2 - n1)
        print(f"{model:>12} {j1:>6.1f} -> {j2:>6.1f} {s1:>6.1f} -> {s2:>6.1f} {per_sim:>10.3f} {ratio:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--marginal", type=int, nargs=2, default=[10, 60])
    parser.add_argument("--skip-marginal", action="store_true")
    args = parser.parse_args()
    if args.plan:
        planning(args.plan)
    if not args.skip_marginal:
        marginal(*args.marginal)


if __name__ == "__main__":
    main()
