"""The third-party fixed costs of the default run, and the lower bound they put on its cold ratio.

    .venv/bin/python bench/fixed_costs.py [--workdir bench/out] [--repeats 3]

Needs a finished default run in --workdir (bench/run_bench.py leaves one): it
reads the radon table and the fits' sampling seconds from there.

Each cost is timed in a fresh Python process, cold (an empty compile cache)
and warm (the same cache again), median of --repeats:

* a fit job's start-up (Python, ArviZ, PyMC, nutpie, reading the data);
* compiling each form for PyMC's NUTS (numba, fit.backend) and for nutpie
  (whose numba ``cfunc`` wrappers numba cannot cache: paid warm too);
* the MAP point of each form (PyTensor's C backend, as the report's MAP
  values need);
* one notebook: a Jupyter kernel that imports ArviZ and draws one figure,
  executed by papermill and rendered by nbconvert, as every report page is.

It then adds the smallest set of them that the default content needs whatever
the workflow's design: one import per core, every form compiled once per
sampler, both MAP points, one kernel per report notebook. Spread over the
cores with the sampling, that is the shortest cold run any design could
reach on this stack. This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from run_bench import sampling_floor  # bench/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("centered", "noncentered")

# Runs in a fresh interpreter: argv = workflow dir, cache dir, table, provenance, what, model.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from funnel.fitting import limit_blas_threads, use_compile_cache
limit_blas_threads()
use_compile_cache(sys.argv[2])
what, model = sys.argv[5], sys.argv[6]
import arviz, pymc
if what == "nutpie":
    import nutpie
out = {"import": time.perf_counter() - start}
from funnel.datasets import load
from funnel.fitting import BatchSampler, FitSettings, map_estimate
data = load(sys.argv[3], sys.argv[4])
t = time.perf_counter()
if what == "map":
    map_estimate(data, model, "blog")
else:
    BatchSampler(data, FitSettings(sampler=what, model=model), log=lambda line: None)
out["work"] = time.perf_counter() - t
print(json.dumps(out))
"""

NOTEBOOK = r"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import nbformat
from funnel.report import run_notebook
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
parameters = nbformat.v4.new_code_cell("x = 1")
parameters.metadata["tags"] = ["parameters"]
nb.cells = [
    parameters,
    nbformat.v4.new_code_cell("import arviz as az\nimport matplotlib.pyplot as plt\nplt.plot([0, x])\nplt.show()"),
]
with tempfile.TemporaryDirectory() as tmp:
    template = Path(tmp) / "t.ipynb"
    nbformat.write(nb, template)
    run_notebook(template, Path(tmp) / "o.ipynb", Path(tmp) / "o.html", {"x": 2})
"""


def child(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"measurement failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall}


def cold_and_warm(work: Path, repeats: int) -> pd.DataFrame:
    """Median seconds of every (what, model) in a fresh process: one cache shared by all, cold then warm.

    The six processes run one after another on one cache, as the run's jobs share
    one, so what one compiles and another reuses is counted once.
    """
    data = work / "results/radon/data"
    argv = [str(ROOT / "workflow"), "", str(data / "table.csv"), str(data / "provenance.json")]
    items = [(what, model) for what in ("pymc", "nutpie", "map") for model in MODELS]
    runs: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for _ in range(repeats):
        cache = Path(tempfile.mkdtemp(prefix="fixed-costs-"))
        argv[1] = str(cache)
        try:
            for state in ("cold", "warm"):
                for what, model in items:
                    runs.setdefault((what, model, state), []).append(child([*argv, what, model]))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    rows = []
    for what, model in items:
        row = {"what": what, "model": model}
        for state in ("cold", "warm"):
            for key in ("import", "work", "wall"):
                row[f"{state}_{key}"] = statistics.median(r[key] for r in runs[(what, model, state)])
        rows.append(row)
    return pd.DataFrame(rows).set_index(["what", "model"]).round(2)


def notebook_seconds(repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", NOTEBOOK, str(ROOT / "workflow")], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"notebook measurement failed:\n{proc.stderr[-3000:]}")
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = args.workdir.resolve()
    fits_csv = work / "results/radon/tables/fits.csv"
    if not fits_csv.is_file():
        sys.exit(f"no finished default run in {work}: run bench/run_bench.py first (or pass --workdir)")
    cores = os.cpu_count() or 1

    table = cold_and_warm(work, args.repeats)
    print(f"\nfixed costs in a fresh process, median of {args.repeats} (seconds; 'work' is the compile or the MAP):")
    print(table[["cold_import", "cold_work", "cold_wall", "warm_work", "warm_wall"]].to_string())

    notebook = notebook_seconds(args.repeats)
    # The report jobs of the run (each executes one notebook): from Snakemake's benchmark files.
    n_notebooks = len(list((work / "results/benchmarks").glob("*/report/*.tsv")))
    print(f"\none notebook (kernel, ArviZ import, one figure, papermill + nbconvert): {notebook:.2f} s")

    # The floor exactly as bench/run_bench.py prints it (fit.threads included); as job-seconds, x cores.
    floor = sampling_floor(work)
    sampling = floor * cores
    # The least any design pays: a fit process per core (its Python start-up and imports),
    # every form compiled once per sampler, both MAP points, one kernel per notebook.
    # A process's start-up: Python, the imports, reading the data (its wall time less its work).
    imports = cores * float((table["cold_wall"] - table["cold_work"]).median())
    compiles = float(table.loc[["pymc", "nutpie"], "cold_work"].sum())
    maps = float(table.loc["map", "cold_work"].sum())
    notebooks = n_notebooks * notebook
    fixed = imports + compiles + maps + notebooks
    bound = (sampling + fixed) / cores
    print(f"\nthe default run's sampling: {sampling:.1f} job-seconds -> floor {floor:.1f} s on {cores} cores")
    print(
        f"least fixed cost of its content: imports {imports:.1f} s ({cores} processes) + compiles {compiles:.1f} s "
        f"+ MAP {maps:.1f} s + {n_notebooks} notebooks {notebooks:.1f} s = {fixed:.1f} job-seconds"
    )
    print(
        f"shortest possible cold run: {bound:.1f} s = {bound / floor:.2f}x the floor "
        f"(the goal 1.5x leaves {0.5 * sampling:.1f} job-seconds for everything but sampling)"
    )


if __name__ == "__main__":
    main()
