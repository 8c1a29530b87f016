"""How often SBC's uniformity tests reject exactly uniform ranks (the false-rejection rate).

    .venv/bin/python bench/sbc_null.py [--simulations 10000] [--campaigns 1000] [--prob 0.95]

Draws ``--campaigns`` synthetic campaigns of ``--simulations`` fits whose ranks are
exactly uniform on 0..n, randomizes and tests them as ``funnel.sbc.calibration``
does (``funnel.sbc.null_rejection_rates``), and prints the rejection rates of the
ECDF band and of the chi-square test beside their nominal level, for fits that all
ranked 20, 77 or 100 draws and for a mixture of n like a radon campaign's (the ESS
thinning: median about 77, capped at 100). Also at the family-wise band probability
the campaign tables use (``funnel.sbc.family_prob``). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from funnel.sbc import family_prob, null_rejection_rates  # noqa: E402

# Ranked draws per fit like a radon campaign's: the ESS, capped at rank_draws = 100.
MIXED = tuple(int(n) for n in np.clip(np.random.default_rng(1).lognormal(np.log(77), 0.5, 500), 5, 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--prob", type=float, default=0.95, help="band probability (chi-square level 1 - prob)")
    args = parser.parse_args()
    print(f"{args.campaigns} campaigns of {args.simulations} simulations with exactly uniform ranks")
    print(f"{'ranked draws n':>18} {'band prob':>10} {'band rejects':>13} {'chi2 rejects':>13} {'nominal':>8} {'s':>6}")
    cases = [(20, args.prob), (77, args.prob), (100, args.prob), (MIXED, args.prob), (MIXED, family_prob())]
    for seed, (rank_n, prob) in enumerate(cases):
        started = time.perf_counter()
        rates = null_rejection_rates(args.simulations, rank_n, campaigns=args.campaigns, prob=prob, seed=seed)
        label = str(rank_n) if isinstance(rank_n, int) else f"mixed (median {int(np.median(rank_n))})"
        print(
            f"{label:>18} {prob:>10.4f} {rates['band']:>13.4f} {rates['chi2']:>13.4f} {rates['nominal']:>8.4f} "
            f"{time.perf_counter() - started:>6.1f}"
        )


if __name__ == "__main__":
    main()
