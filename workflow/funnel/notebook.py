"""What every report notebook needs: set-up, Markdown output, number formatting, plain tables.

Nothing here knows the model or the data; the notebooks and :mod:`funnel.prose`
use it to show text and tables that stay byte-stable from run to run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import escape


def setup_notebook() -> None:
    """Inline PNG figures of one size, quiet library warnings (the log keeps the kernel's stderr)."""
    import warnings

    import matplotlib.pyplot as plt

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - notebooks always have IPython
        shell = None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
        shell.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
    plt.rcParams.update(
        {
            "figure.figsize": (7.5, 4.0),
            "figure.dpi": 90,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


def read_provenance(path: str | Path) -> dict[str, Any]:
    """A dataset's provenance.json: its columns, tracked group, rows and source."""
    return json.loads(Path(path).read_text())


def md(text: str) -> None:
    """Show ``text`` as Markdown in the notebook (numbers are formatted by the caller).

    ``text`` carries values from the data and the config (group labels, column
    names, paths), and nbconvert passes raw HTML in Markdown through: it is made
    safe by :func:`funnel.escape.markdown` (raw HTML shown as text, no unsafe link).
    """
    from IPython.display import Markdown, display

    display(Markdown(escape.markdown(text)))


def show_table(frame: pd.DataFrame) -> None:
    """Display a table without its index (plain HTML: stable from run to run, unlike a Styler).

    Every cell and header is HTML-escaped (``escape=True``), links are not rendered.
    """
    from IPython.display import HTML, display

    display(HTML(frame.to_html(index=False, border=0, escape=True, render_links=False)))


def fmt(value: Any, spec: str = ".3g") -> str:
    """A number for prose: 'n/a' for missing, otherwise ``format(value, spec)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def num(value: Any, digits: int = 3) -> str:
    """A number rounded for prose to ``digits`` significant figures, without exponent below 1e5.

    ``num(0.28435)`` is '0.284', ``num(6.2318)`` '6.23', ``num(551.04)`` '551', ``num(1.4e-08)`` '1.4e-08',
    ``num(5.0)`` '5' (whole numbers without decimals).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if value.is_integer() and abs(value) < 1e5:
        return str(int(value))
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3 or magnitude >= 5:
        return f"{value:.{max(digits - 1, 0)}e}"
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:.{decimals}f}"


def pct(share: float, digits: int = 0) -> str:
    return fmt(100 * share, f".{digits}f") + "%"


def median_range(values: Iterable[float], spec: str = ".0f") -> str:
    """'median [min, max]', the summary tables' format."""
    arr = np.asarray(list(values), dtype=float)
    return f"{np.median(arr):{spec}} [{arr.min():{spec}}, {arr.max():{spec}}]"


def label(sampler: str, model: str) -> str:
    return f"{sampler} / {model}"


def seed_list(seeds: Iterable[int], limit: int = 10) -> str:
    """Seeds for prose: all of them up to ``limit``, else the first few, an ellipsis and the last."""
    seeds = [int(s) for s in seeds]
    if len(seeds) <= limit:
        return ", ".join(map(str, seeds))
    return ", ".join(map(str, seeds[: limit - 2])) + f", …, {seeds[-1]}"
