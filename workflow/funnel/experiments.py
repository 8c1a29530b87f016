"""Experiments beyond the blog: reference posterior (the collapsed model), target_accept and data sweeps.

Each sweep job compiles a (sampler, model) once where it can and returns one
row of diagnostics per (level, seed), with bias z-scores against the
reference run where the data are the dataset's own (not replicated). Both run
on funnel.batch's loop (signals, compile-cache errors, failures): the
reference run as a one-task batch with a store, so a rerun after a deleted
output takes it from there; a sweep's (level, seed) fits as a batch whose
tasks that repeat a main fit read its record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .batch import KEY_ATTR, Batch, read_trace, store_trace
from .bias import estimand_names, z_columns
from .collapsed import MODEL as COLLAPSED_MODEL
from .collapsed import SAMPLER as COLLAPSED_SAMPLER
from .datasets import ModelData
from .diagnostics import Thresholds, fit_diagnostics
from .fitting import BatchSampler, FitSettings
from .models import HYPERPARAMETERS
from .store import Store, check_attrs, copy_out, fit_key

Log = Callable[[str], None]


def reference_run(data: ModelData, settings: FitSettings, seed: int, log: Log = print) -> tuple[Any, dict[str, Any]]:
    """The reference: the collapsed model (:mod:`funnel.collapsed`: the group effects integrated out exactly,
    NUTS on the five hyperparameters, the group effects drawn from their exact conditional), independent of
    both forms and samplers under test. Every model here has a Gaussian likelihood with normal group effects,
    so the exact marginal always exists. Returns its reduced trace and its summary: ``diagnostics`` (its own
    record by :func:`funnel.diagnostics.fit_diagnostics`: R-hat, ESS, divergences, E-BFMI by ArviZ, which gate
    the verdict's bias tests) and ``estimands`` (name -> {mean, mcse}). ``settings.sampler`` and
    ``settings.model`` are not used: the collapsed model is sampled with PyMC's NUTS."""
    from .collapsed import reference_idata

    track = str(data.track_group)
    keep = list(dict.fromkeys([track, *data.bias_groups]))
    idata = reference_idata(data, settings, seed, log=log)
    record = fit_diagnostics(idata, track, bias_groups=data.bias_groups, sigma_b_small=data.sigma_b_small)
    # The record already holds every estimand's estimate and MCSE: no second pass.
    summary = {
        "diagnostics": record,
        "estimands": {
            name: {"mean": record[f"est_{name}"], "mcse": record[f"mcse_{name}"]} for name in estimand_names(keep)
        },
    }
    dim = data.group_dim
    reduced = idata.posterior[list(HYPERPARAMETERS)].assign(
        a=idata.posterior["a"].sel({dim: keep}), b=idata.posterior["b"].sel({dim: keep})
    )
    reduced.attrs = idata.posterior.attrs
    idata.posterior = reduced
    return idata, summary


class ReferenceBatch(Batch):
    """The reference run as a batch of one seed: stored (trace and summary) beside its outputs."""

    noun, doing, done = "reference seed", "sampling", "sampled"
    on_error_hint = ""

    def __init__(
        self,
        *,
        data: ModelData,
        settings: FitSettings,
        trace: str | Path,
        summary: str | Path,
        key_parts: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data, self.settings = data, settings
        self.trace, self.summary = Path(trace), Path(summary)
        self.store = Store.beside(self.trace, self.log)
        self.kept_in = self.store.folder
        self.key_parts = {**key_parts, "kind": "reference", "method": COLLAPSED_MODEL}
        self.store.clean([self.trace.stem, self.summary.stem], self.trace.parent)

    def key(self, seed: int) -> str:
        return fit_key({**self.key_parts, "seed": int(seed)})

    def resume(self, seed: int) -> dict[str, Any] | None:
        from .io import read_json

        key, s = self.key(seed), self.settings
        made_by = {"sampler": COLLAPSED_SAMPLER, "model": COLLAPSED_MODEL}
        expected = {"seed": seed, KEY_ATTR: key, **made_by, "chains": s.chains, "draws": s.draws}

        def read_summary(path: Path) -> dict[str, Any]:
            summary = read_json(path)
            check_attrs(summary["diagnostics"], {"seed": seed, **made_by})
            return summary

        summary = self.store.load(self.summary.stem, key, self.summary.suffix, read_summary)
        if summary is None:
            return None
        read = lambda path: read_trace(path, s.chains, s.draws, expected)  # noqa: E731
        if self.store.load(self.trace.stem, key, self.trace.suffix, read) is None:
            return None
        self.log(f"reference seed {seed}: resumed from {self.store.folder}")
        return summary

    def compute(self, seed: int, tool: Any) -> dict[str, Any]:
        from .io import write_json

        idata, summary = reference_run(self.data, self.settings, seed, log=self.log)
        key = self.key(seed)
        store_trace(self.store, self.trace.stem, key, idata)
        self.store.put(
            self.summary.stem, key, self.summary.suffix, lambda path: write_json(path, summary, undefined_as_null=True)
        )
        return summary

    def finish(self, seed: int, summary: dict[str, Any], resumed: bool) -> None:
        key = self.key(seed)
        copy_out(self.store.path(self.trace.stem, key, self.trace.suffix), self.trace)
        copy_out(self.store.path(self.summary.stem, key, self.summary.suffix), self.summary)
        d = summary["diagnostics"]
        self.log(
            f"reference: {d['divergences']} divergences, R-hat max {d['rhat_max']:.4f}, "
            f"ESS bulk sigma_b {d['ess_bulk_sigma_b']:.0f}, "
            f"E[sigma_b] {d['mean_sigma_b']:.4f} +- {d['mcse_mean_sigma_b']:.4f} (MCSE)"
        )


def _diagnose(idata: Any, data: ModelData, thresholds: Thresholds) -> dict[str, Any]:
    return fit_diagnostics(idata, str(data.track_group), thresholds, data.bias_groups, data.sigma_b_small)


Known = Mapping[tuple[float, int], Mapping[str, Any]]


def _row(record: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A fit's diagnostics record as a table row (lists as text), with bias z-scores."""
    row = {k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in record.items()}
    if reference:
        row.update(z_columns(row, reference))
    return row


class SweepBatch(Batch):
    """The (level, seed) fits of a sweep, in order; a fit that repeats a main fit exactly reads its record.

    Not stored: a sweep's output is one table, written when every fit is done.
    ``fit(sampler, level, seed)`` returns a fit's diagnostics record, ``sampler_for(level)``
    the compiled sampler for a level (built once per distinct value, only if needed),
    ``row(record, level, seed)`` the table row; the rows are in ``self.rows``.
    """

    noun, doing, done = "fit", "", "fitted"
    on_error_hint = ""
    resumed_from = "the main fits"

    def __init__(
        self,
        *,
        name: str,
        known: Known,
        sampler_for: Callable[[Any], Any],
        fit: Callable[[Any, Any, int], dict[str, Any]],
        row: Callable[[Mapping[str, Any], Any, int], dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name, self.known, self.sampler_for, self.fit, self.row = name, known, sampler_for, fit, row
        self.rows: list[dict[str, Any]] = []

    def label(self, task: tuple[Any, int]) -> str:
        return f"{self.name} {task[0]} seed {task[1]}"

    def resume(self, task: tuple[Any, int]) -> Mapping[str, Any] | None:
        return self.known.get(task)

    def compute(self, task: tuple[Any, int], tool: Any) -> dict[str, Any]:
        level, seed = task
        sampler = self.sampler_for(level)
        return self.fit(sampler, level, seed)

    def finish(self, task: tuple[Any, int], record: Mapping[str, Any], resumed: bool) -> None:
        self.rows.append(self.row(record, *task))

    def run_rows(self, tasks: Sequence[tuple[Any, int]]) -> pd.DataFrame:
        self.run(tasks)
        return pd.DataFrame(self.rows)


def target_accept_sweep(
    data: ModelData,
    settings: FitSettings,
    levels: Sequence[float],
    seeds: Sequence[int],
    thresholds: Thresholds,
    reference: Mapping[str, Any] | None,
    known: Known | None = None,
    log: Log = print,
    cache_dir: Any = None,
) -> pd.DataFrame:
    """One row per (level, seed). ``known`` maps (level, seed) to the diagnostics
    of a fit that the sweep would repeat exactly (a main fit): read, not refitted."""
    known = known or {}
    samplers: dict[str, Any] = {}  # compiled once for every level, and only if something is left to fit

    def sampler_for(level: float) -> Any:
        if "all" not in samplers:
            samplers["all"] = BatchSampler(data, settings, log=log)
        return samplers["all"]

    def row(record: Mapping[str, Any], level: float, seed: int) -> dict[str, Any]:
        out = _row(record, reference)
        source = "the main fit" if (level, seed) in known else "fitted"
        log(
            f"target_accept {level} seed {seed} ({source}): {out['divergences']} divergences, ESS(sigma_b) {out['ess_bulk_sigma_b']:.0f}"
        )
        return out

    batch = SweepBatch(
        name="target_accept",
        known=known,
        sampler_for=sampler_for,
        fit=lambda sampler, level, seed: _diagnose(sampler.sample(seed, target_accept=level), data, thresholds),
        row=row,
        cache_dir=cache_dir,
        log=log,
    )
    return batch.run_rows([(level, seed) for level in levels for seed in seeds])


def rows_sweep(
    data: ModelData,
    settings: FitSettings,
    factors: Sequence[int],
    seeds: Sequence[int],
    thresholds: Thresholds,
    known: Known | None = None,
    log: Log = print,
    cache_dir: Any = None,
) -> pd.DataFrame:
    """Fit with every row replicated ``factor`` times: more data per group (no bias: new posterior).

    ``known`` maps (factor, seed) to the diagnostics of a fit that the sweep would
    repeat exactly (factor 1: a main fit): read, not refitted.
    """
    known = known or {}
    base_median = float(pd.Series(data.group_idx).value_counts().median())
    track = str(data.track_group)
    samplers: dict[int, Any] = {}  # one compile per factor (the data differ), only if needed

    def sampler_for(factor: int) -> Any:
        if factor not in samplers:
            samplers[factor] = BatchSampler(data.replicate(factor), settings, log=log)
        return samplers[factor]

    def row(record: Mapping[str, Any], factor: int, seed: int) -> dict[str, Any]:
        out = _row(record, None)
        out.update(
            rows_factor=int(factor),
            rows_per_group_median=base_median * factor,
            ess_bulk_mu_a_per_s=out["ess_bulk_mu_a"] / out["sampling_seconds"],
            ess_bulk_b_track_per_s=out[f"ess_bulk_b_{track}"] / out["sampling_seconds"],
        )
        source = "the main fit" if (factor, seed) in known else "fitted"
        log(f"rows x{factor} seed {seed} ({source}): ESS(sigma_b)/s {out['ess_bulk_sigma_b_per_s']:.1f}")
        return out

    batch = SweepBatch(
        name="rows x",
        known=known,
        sampler_for=sampler_for,
        fit=lambda sampler, factor, seed: _diagnose(sampler.sample(seed), data, thresholds),
        row=row,
        cache_dir=cache_dir,
        log=log,
    )
    return batch.run_rows([(factor, seed) for factor in factors for seed in seeds])


SWEEP_LEVEL = {"target_accept": "target_accept", "rows_per_group": "rows_factor"}
EXPERIMENTS = tuple(SWEEP_LEVEL)
SWEEP_METRICS = (
    "divergences",
    "step_size_mean",
    "mean_tree_depth",
    "max_treedepth_hits",
    "rhat_max",
    "ess_bulk_sigma_b",
    "ess_bulk_sigma_b_per_s",
    "ess_bulk_mu_a_per_s",
    "ess_bulk_b_track_per_s",
    "rows_per_group_median",
    "z_sigma_b",
    "z_log_sigma_b",
    "z_p_sigma_b_small",
    "sampling_seconds",
)


def summarize_sweep(rows: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Median (and min, max) over seeds per sampler, model and sweep level."""
    level = SWEEP_LEVEL[experiment]
    metrics = [m for m in SWEEP_METRICS if m in rows.columns]
    grouped = rows.groupby(["sampler", "model", level], sort=True)[metrics]
    summary = grouped.median().add_suffix("_median")
    summary = summary.join(grouped.min().add_suffix("_min")).join(grouped.max().add_suffix("_max"))
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()
