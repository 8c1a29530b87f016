"""The figure that justifies the partial form's rule: per county, centered ÷ non-centered ESS/s against the
information ratio.

Fits radon (embedded source, blog priors) in the centered and the non-centered form with nutpie over N seeds
(funnel.fitting.BatchSampler, as a fit job does), and computes per county ArviZ's bulk ESS of a[g] and b[g] per
CPU second of sampling in each form (each seed samples every form in turn: a busy machine slows them alike).
Each county's information ratio is the partial form's own (funnel.partial: its pilot, type-II ML of the marginal
likelihood; n_g·σ_a²/eps² for the intercept, S_g·σ_b²/eps² for the slope).
It plots log(ESS/s centered ÷ non-centered) against the ratio (log axis), one point per county (median over
seeds), with the rule's thresholds as vertical lines, and prints per effect how many counties fall above and
below the threshold and the share of each where the centered form wins.

The whole centered form also centers the other effect, whose funnel slows every group; a second row isolates
one effect: a form with only the intercepts centered (and one with only the slopes), for this bench only,
against the non-centered form (``--no-alone`` skips it).

Full size is 4 seeds of 4 × (1000 + 1000) draws (about 2 minutes on 2 shared cores, 2026-12-07); smaller:

    nice -n 10 .venv/bin/python bench/partial_rule_figure.py --seeds 3 --tune 500 --draws 500

Writes docs/figures/partial_rule.png (``--out``); ``--csv`` writes the per-county rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT / "bench"))

from forms_bench import load  # noqa: E402
from funnel import forms, partial  # noqa: E402
from funnel.fitting import BatchSampler, FitSettings, use_compile_cache  # noqa: E402

WHOLE = ("centered", "noncentered")
#: Two mixed forms for this bench only (not registered in the workflow): one effect centered in every group, the
#: other non-centered. Against the non-centered form they isolate centering that effect, which the whole centered
#: form confounds with the other effect's funnel.
ALONE = {"a": "only_a_centered", "b": "only_b_centered"}


def _one_effect(effect: str) -> forms.Form:
    def centering(data, priors: str) -> forms.Centering:
        return forms.Centering({e: np.full(data.n_groups, e == effect) for e in forms.EFFECTS})

    return forms.Form(ALONE[effect], f"{effect} centered alone", "#8e44ad", centering, f"every {effect}[g] centered")


def register_bench_forms() -> None:
    """Add the two one-effect forms to this process's registry (funnel.models builds any registered centering)."""
    for effect in ALONE:
        forms.FORMS.setdefault(ALONE[effect], _one_effect(effect))


#: Per effect: its label, the rule's threshold on the information ratio, and the ratio's formula.
EFFECTS = {
    "a": ("intercept a[g]", partial.INTERCEPT_THRESHOLD, "n_g·σ_a²/eps²"),
    "b": ("slope b[g]", partial.SLOPE_THRESHOLD, "S_g·σ_b²/eps²"),
}


def information(data) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per group: rows n_g, and the intercept's and the slope's information ratios from the partial form's pilot
    (funnel.partial.pilot, slope_information); checked against the rule's own split (centered_groups)."""
    point = partial.pilot(data)
    n = np.bincount(data.group_idx, minlength=data.n_groups).astype(float)
    scale = 1.0 / point["eps"] ** 2
    ratios = pd.DataFrame(
        {
            "group": [str(g) for g in data.groups],
            "rows": n.astype(int),
            "info_a": n * point["sigma_a"] ** 2 * scale,
            "info_b": partial.slope_information(data) * point["sigma_b"] ** 2 * scale,
        }
    )
    split = partial.centered_groups(data, point["eps"], point["sigma_a"], point["sigma_b"])
    for effect, (_, threshold, _) in EFFECTS.items():
        if not np.array_equal(ratios[f"info_{effect}"].to_numpy() > threshold, split[effect]):
            raise AssertionError(f"the information ratio of {effect} does not reproduce funnel.partial's split")
    return ratios, point


def ess_per_second(data, args: argparse.Namespace) -> pd.DataFrame:
    """One row per (form, seed, group, effect): ArviZ's bulk ESS of a[g] or b[g], per draw and per CPU second of
    sampling.

    The forms are compiled first and each seed samples every form in turn, so that a busy machine slows them alike;
    the time is the process's CPU time around the sampling (nutpie samples in this process), which a shared machine
    inflates far less than the wall clock (BatchSampler's sampling_seconds, printed beside it).
    """
    import arviz as az

    names = (*WHOLE, *(ALONE.values() if args.alone else ()))
    fitters = {
        form: BatchSampler(
            data,
            FitSettings(
                sampler="nutpie", model=form, chains=args.chains, tune=args.tune, draws=args.draws, priors="blog"
            ),
            log=lambda m: None,
        )
        for form in names
    }
    rows = []
    for seed in range(1, args.seeds + 1):
        for form, fitter in fitters.items():
            cpu = time.process_time()
            idata = fitter.sample(seed)
            seconds = time.process_time() - cpu
            wall = float(idata.posterior.attrs["sampling_seconds"])
            ess = az.ess(idata.posterior[["a", "b"]], method="bulk")
            draws = args.chains * args.draws
            divergences = int(idata.sample_stats["diverging"].sum())
            for effect in EFFECTS:
                for group, value in zip(data.groups, ess[effect].to_numpy()):
                    rows.append(
                        {
                            "form": form,
                            "seed": seed,
                            "group": str(group),
                            "effect": effect,
                            "ess_per_s": float(value) / seconds,
                            "ess_per_draw": float(value) / draws,
                        }
                    )
            print(
                f"{form} seed {seed}: {divergences} divergences, {seconds:.1f} CPU s sampling ({wall:.1f} s wall)",
                file=sys.stderr,
                flush=True,
            )
    return pd.DataFrame(rows)


def per_county(rates: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """Per (effect, group): median ESS/s over seeds in each form, their ratio (centered ÷ non-centered), and the
    group's information ratio for that effect and whether the rule centers it."""
    med = rates.groupby(["effect", "group", "form"])["ess_per_s"].median().unstack("form").reset_index()
    per_draw = rates.groupby(["effect", "group", "form"])["ess_per_draw"].median().unstack("form")
    out = []
    for effect, (_, threshold, _) in EFFECTS.items():
        part = med[med["effect"].eq(effect)].merge(info[["group", "rows", f"info_{effect}"]], on="group")
        part = part.rename(columns={f"info_{effect}": "information"})
        part["rule_centers"] = part["information"] > threshold
        for numerator, comparison in ((WHOLE[0], "whole"), (ALONE[effect], "alone")):
            if numerator in part:
                draws = per_draw.loc[effect].reindex(part["group"])
                ratio_draw = (draws[numerator] / draws["noncentered"]).to_numpy()
                out.append(
                    part.assign(
                        comparison=comparison, ratio=part[numerator] / part["noncentered"], ratio_per_draw=ratio_draw
                    )
                )
    return pd.concat(out, ignore_index=True)


COMPARISONS = {
    "whole": "centered ÷ non-centered",
    "alone": "{effect} centered alone ÷ non-centered",
}


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per effect and side of the threshold: counties, the share where the centered form wins, the median ratio."""
    rows = []
    for (comparison, effect), part in table.groupby(["comparison", "effect"], sort=False):
        label, threshold, formula = EFFECTS[effect]
        for above, side in ((True, f"> {threshold:g}"), (False, f"≤ {threshold:g}")):
            sel = part[part["rule_centers"].eq(above)]
            rows.append(
                {
                    "ratio": COMPARISONS[comparison].format(effect=effect),
                    "effect": label,
                    "information": f"{formula} {side}",
                    "counties": len(sel),
                    "centered wins": f"{(sel['ratio'] > 1).mean():.0%}" if len(sel) else "n/a",
                    "median ratio": f"{sel['ratio'].median():.2f}" if len(sel) else "n/a",
                    "median ratio per draw": f"{sel['ratio_per_draw'].median():.2f}" if len(sel) else "n/a",
                }
            )
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from funnel.plots.style import form_color

    comparisons = [c for c in COMPARISONS if c in set(table["comparison"])]
    fig, axes = plt.subplots(len(comparisons), 2, figsize=(11, 4.0 * len(comparisons)), sharey="row", squeeze=False)
    for row, comparison in zip(axes, comparisons):
        for ax, (effect, (label, threshold, formula)) in zip(row, EFFECTS.items()):
            part = table[table["effect"].eq(effect) & table["comparison"].eq(comparison)]
            none = part["information"] <= 0  # a group whose x does not vary: no information, no place on a log axis
            part = part[~none]
            wins = part["ratio"] > 1
            for mask, form, text in (
                (wins, "centered", "centered faster"),
                (~wins, "noncentered", "non-centered faster"),
            ):
                ax.scatter(
                    part.loc[mask, "information"],
                    np.log(part.loc[mask, "ratio"]),
                    s=10 + 2 * np.sqrt(part.loc[mask, "rows"]),
                    color=form_color(form),
                    alpha=0.75,
                    label=f"{text} ({int(mask.sum())})",
                )
            ax.axhline(0, color="0.5", lw=0.8)
            ax.axvline(threshold, color="black", ls="--", lw=1.2, label=f"the rule's threshold {threshold:g}")
            ax.set_xscale("log")
            ax.set_xlabel(
                f"information ratio {formula} (pilot)" + (f"; {int(none.sum())} at 0 left out" if none.any() else "")
            )
            ax.set_title(f"{label}: {COMPARISONS[comparison].format(effect=effect)}", fontsize=10)
            ax.legend(frameon=False, fontsize=8, loc="best")
        row[0].set_ylabel("log(ESS per CPU second ratio)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--cache", default=".cache/compile", help="compile cache folder (fit.compile_cache)")
    parser.add_argument("--out", default=str(ROOT / "docs/figures/partial_rule.png"))
    parser.add_argument("--csv", help="write the per-county rows here")
    parser.add_argument(
        "--no-alone", dest="alone", action="store_false", help="skip the one-effect forms (the second row)"
    )
    args = parser.parse_args(argv)
    use_compile_cache(args.cache)
    register_bench_forms()
    with tempfile.TemporaryDirectory() as tmp:
        data, priors, _ = load("radon", Path(tmp))
    if priors != "blog":
        raise SystemExit(f"radon's bench spec has priors {priors!r}; this figure is for the blog priors")
    info, point = information(data)
    rates = ess_per_second(data, args)
    table = per_county(rates, info)
    if args.csv:
        table.to_csv(args.csv, index=False)
    size = f"{args.seeds} seeds × {args.chains} chains × ({args.tune} + {args.draws})"
    pilot = f"pilot eps {point['eps']:.3g}, σ_a {point['sigma_a']:.3g}, σ_b {point['sigma_b']:.3g}"
    plot(
        table,
        f"radon, blog priors, nutpie, {size}; one point per county (median over seeds; size: rows); {pilot}",
        Path(args.out),
    )
    print(f"\nradon, nutpie, {size}; {pilot}; {len(info)} counties\n")
    print(summary(table).to_markdown(index=False))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
