"""Reading fit traces for the report: only the variables a figure needs, pooled over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .models import with_deterministics


def open_trace(path: str | Path, var_names: Sequence[str] | None = None, stats: Sequence[str] | None = None) -> Any:
    """One fit's InferenceData with only ``var_names`` (posterior) and ``stats`` (sample_stats) loaded.

    None for the placeholder of a fit recorded as failed (``fit.on_error: record``).
    """
    import arviz as az

    idata = az.from_netcdf(str(path))
    if "posterior" not in idata.groups():
        idata.close()
        return None
    groups = {}
    post = with_deterministics(idata.posterior)  # lean traces store no non-centered a, b
    groups["posterior"] = (post[list(var_names)] if var_names is not None else post).load()
    if "sample_stats" in idata.groups():
        ss = idata.sample_stats
        groups["sample_stats"] = (ss[list(stats)] if stats is not None else ss).load()
    out = az.InferenceData(**groups)
    idata.close()
    return out


def funnel_draws(paths: Sequence[str | Path], group: str, offsets: bool = False) -> pd.DataFrame:
    """Draws of (b or b_offset)[group], sigma_b and the divergence flag, pooled over fits.

    ``group`` is a label of the traces' group dimension (named after the
    dataset's group column). One row per draw, with the fit's seed, chain and
    draw index.
    """
    return level_draws(paths, "b_offset" if offsets else "b", "sigma_b", group)


def level_draws(paths: Sequence[str | Path], x_var: str, scale: str, level: str) -> pd.DataFrame:
    """Draws of ``x_var`` at ``level`` of its one level dimension (an effect, or its offset), of its ``scale``
    and the divergence flag, pooled over fits: one row per draw, with the fit's seed, chain and draw index (columns
    seed, chain, draw, ``x_var``, ``scale``, diverging)."""
    frames = []
    for path in paths:
        idata = open_trace(path, [x_var, scale], ["diverging"])
        if idata is None:  # a failed fit's placeholder: no draws
            continue
        post = idata.posterior
        if x_var not in post:
            raise ValueError(f"{path} has no {x_var}: is it a non-centered fit?")
        dim = next(d for d in post[x_var].dims if d not in ("chain", "draw"))
        labels = [str(g) for g in post[x_var][dim].values]
        if level not in labels:
            raise ValueError(f"{path}: {level!r} is not a value of {dim!r}; e.g. {', '.join(labels[:3])}")
        x = post[x_var].isel({dim: labels.index(level)}).values
        chains, draws = x.shape
        frames.append(
            pd.DataFrame(
                {
                    "seed": int(post.attrs.get("seed", -1)),
                    "chain": np.repeat(np.arange(chains), draws),
                    "draw": np.tile(np.arange(draws), chains),
                    x_var: x.ravel(),
                    scale: post[scale].values.ravel(),
                    "diverging": idata.sample_stats["diverging"].values.astype(bool).ravel(),
                }
            )
        )
    if not frames:
        raise ValueError(f"no draws to pool: all {len(paths)} fits failed or none were given")
    return pd.concat(frames, ignore_index=True)


def ok_traces(paths: Sequence[str | Path]) -> list[str]:
    """The traces that hold draws (not the placeholders of failed fits)."""
    import xarray as xr

    out = []
    for path in paths:
        with xr.open_dataset(str(path), engine="h5netcdf") as root:
            if root.attrs.get("funnel_status") != "failed":
                out.append(str(path))
    return out
