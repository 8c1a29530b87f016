"""What is decided and checked while Snakemake reads the workflow, before any job.

* :func:`select_datasets`: the datasets this run fits (config ``run_datasets``);
* :func:`check_sources`: the checks of a dataset's source that need no job (a local
  CSV exists and its header holds the configured columns), so that a wrong path or
  column name stops the run at once, before anything is fetched or written.

The ``clean`` rule repeats every check on the table it reads: these are early copies.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError
from .datasets import check_source_file
from .errors import DataError

# Delimiters a CSV header is tried with (a column name is missing only if no reading finds it).
DELIMITERS = (",", ";", "\t")
ROLES = ("group", "x", "y")


def select_datasets(datasets: Mapping[str, Any], run: Sequence[str] | str | None) -> dict[str, Any]:
    """The datasets of ``datasets`` named in ``run`` (config ``run_datasets``), in that
    order; all of them when ``run`` is empty or None. A string is a comma-separated list
    (``--config run_datasets=plots`` or ``run_datasets=radon,plots``)."""
    if isinstance(run, str):
        run = [name.strip() for name in run.split(",") if name.strip()]
    if not run:
        return dict(datasets)
    unknown = [name for name in run if name not in datasets]
    if unknown:
        raise ConfigError(
            f"run_datasets names {', '.join(map(repr, unknown))}, which "
            f"{'is not a dataset' if len(unknown) == 1 else 'are not datasets'} of the configuration "
            f"(datasets: {', '.join(datasets)}). Add {'it' if len(unknown) == 1 else 'them'} under `datasets:` "
            "or fix the name(s) in run_datasets."
        )
    return {name: datasets[name] for name in run}


def header_readings(path: Path) -> dict[str, list[str]]:
    """The first line of a CSV split by each of :data:`DELIMITERS` (quotes and a BOM handled)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        first = handle.readline()
    return {sep: next(csv.reader([first], delimiter=sep), []) for sep in DELIMITERS}


def check_formula_forms(formula_datasets: Sequence[str], models: Sequence[str]) -> None:
    """A formula dataset is fitted in the whole forms only (:data:`funnel.spec.WHOLE_FORMS`): refuse any other
    form in ``fit.models`` before a job runs, rather than in each of its fit jobs."""
    from .spec import WHOLE_FORMS

    other = [m for m in models if m not in WHOLE_FORMS]
    if formula_datasets and other:
        raise DataError(
            f"fit.models has {', '.join(map(repr, other))}, which formula datasets "
            f"({', '.join(formula_datasets)}) cannot be fitted in yet (only {' and '.join(WHOLE_FORMS)}: the partial "
            "form's pilot is the Gaussian varying-slope model's). Fit them in a run of their own with "
            f"fit.models: [{', '.join(WHOLE_FORMS)}], or leave them out with run_datasets."
        )


def check_csv(name: str, spec: Mapping[str, Any]) -> None:
    """Raise :class:`DataError` if a ``source: csv`` dataset's file is missing or its header
    lacks a configured column (under every delimiter the table could be read with)."""
    path = Path(spec["path"])
    check_source_file(path, name)  # missing, not a regular file (a FIFO, a device), unreadable, empty
    readings = header_readings(path)
    columns = spec.get("columns") or {}
    for role in ROLES:
        column = columns.get(role)
        if column is None or any(column in fields for fields in readings.values()):
            continue
        fields = max(readings.values(), key=len)  # the reading the table most likely has
        raise DataError(
            f"dataset {name!r}: column {column!r} (datasets.{name}.columns.{role}) is not in the table {path}; "
            f"its columns are: {', '.join(fields)}. Set columns.{role} to one of them."
        )


def check_sources(datasets: Mapping[str, Mapping[str, Any]]) -> None:
    """The checks of :func:`check_csv` for every ``source: csv`` dataset of ``datasets``."""
    for name, spec in datasets.items():
        if spec.get("source") == "csv":
            check_csv(name, spec)


def merged_datasets_note(
    planned: Sequence[str], files: Sequence[str | Path], run: Sequence[str] | str | None
) -> str | None:
    """A note when the --configfile ``files`` name datasets but the run also fits others that
    come from config.yaml (Snakemake merges the files, so radon stays): how to fit only the
    user's. None when run_datasets is set or nothing was merged in."""
    if run:
        return None
    import yaml

    mine: list[str] = []
    for path in files:
        try:
            datasets = (yaml.safe_load(Path(path).read_text()) or {}).get("datasets") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        mine += [name for name in datasets if name in planned and name not in mine]
    others = [name for name in planned if name not in mine]
    if not mine or not others:
        return None
    return (
        f"Note: this run fits {', '.join(others)} (from config.yaml) beside {', '.join(mine)} (from "
        f"{', '.join(map(str, files))}): Snakemake merges a --configfile over config.yaml. To fit only "
        f"{', '.join(mine)}, set `run_datasets: [{', '.join(mine)}]` in your file (or pass "
        f"--config run_datasets=[{','.join(mine)}])."
    )
