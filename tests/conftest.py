"""Shared fixtures: repository paths, the read-only shared data, tiny raw files."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_RADON = ROOT.parent / "shared" / "data" / "radon"
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")

sys.path.insert(0, str(ROOT / "workflow"))

# One compile cache for every process of the session: the test processes (set here, before any test module
# imports PyTensor) and, through the environment, every Snakemake job they start, whatever its config's
# fit.compile_cache (a set PYTENSOR_FLAGS base_compiledir and NUMBA_CACHE_DIR win: funnel.fitting.use_compile_cache).
# Without it the tests compiled the same C modules and numba functions again into ~/.pytensor and into each
# workdir's .cache/compile. A test of the config's own cache runs its jobs with OWN_COMPILE_CACHE.
COMPILE_CACHE = ROOT / ".cache" / "compile"
OWN_COMPILE_CACHE = {"PYTENSOR_FLAGS": "", "NUMBA_CACHE_DIR": ""}

from funnel.fitting import use_compile_cache  # noqa: E402

use_compile_cache(COMPILE_CACHE)

# The mode of tests that only compare log densities: PyTensor's Python implementations give the same values
# without compiling C modules (each new module costs a cold CI machine about a second of gcc).
VALUE_MODE = "FAST_COMPILE"


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released): an 'offline' mirror."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# REQUIRE_SHARED=1 (set by .ci/run) turns a missing ../shared/data/radon from a skip into a failure.
REQUIRE_SHARED = os.environ.get("REQUIRE_SHARED", "") == "1"


SHARED_FILES = ("srrs2.dat", "cty.dat", "radon.csv")


def require_shared(folder: Path = SHARED_RADON, required: bool = REQUIRE_SHARED) -> Path:
    """``folder`` if it holds SHARED_FILES; else skip the test, or fail it when ``required``."""
    missing = [n for n in SHARED_FILES if not (folder / n).is_file()]
    if missing:
        message = f"{folder} lacks {', '.join(missing)} (the folder sits beside the checkout in CI)"
        if required:
            pytest.fail(f"REQUIRE_SHARED=1 but {message}: the tests on the shared radon files cannot run")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def shared_radon() -> Path:
    """The byte-exact raw files and the blog's radon.csv in ../shared/data/radon.

    Skips where they are absent, unless REQUIRE_SHARED=1: then the test fails, naming what is missing.
    """
    return require_shared()


# Fixtures that run the small end-to-end configuration: a test that uses one, even
# through another fixture, is slow whether or not it says so (`-m "not slow"` must
# never build the small run).
SLOW_FIXTURES = {"small_run"}


# The files `make test` hands to its two workers first, longest first (each file goes to one worker:
# --dist loadfile --no-loadscope-reorder), then every other file in its usual order. One worker
# builds the small run in test_report.py's first test while the other works through the next
# files, which do not need it (about as long, 2026-12-07); the files that read the small run come
# after them, and the many short files last, so both workers finish at about the same time.
LONGEST_FIRST = (
    "test_report.py",
    "test_sbc_workflow.py",
    "test_slurm.py",
    "test_hostile.py",
    "test_formula_data.py",
    "test_glm.py",
    "test_fitting.py",
    "test_map.py",
    "test_workflow.py",
    "test_resilience.py",
    "test_browser.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order


# ---------------------------------------------------------------- tiny raw files
SRRS2_HEADER = (
    "idnum, state, state2, stfips, zip, region, typebldg, floor, room, basement, windoor, rep, "
    "stratum, wave, starttm, stoptm, startdt, stopdt, activity, pcterr, adjwt, dupflag, zipflag, "
    "cntyfips, county"
)


def _srrs2_row(
    idnum: int, state: str, state2: str, stfips: int, floor: int, activity: float, cntyfips: int, county: str
) -> str:
    return (
        f"{idnum},{state},{state2},{stfips:2d},55735, 5,1,{floor},3,N, , 2, 4, 41,0930,0930,012088,012288,"
        f"{activity:8.1f},     9.7,  1146.499190,1,0,{cntyfips:3d},{county:<20s}"
    )


TINY_HOMES = [
    # idnum, state, state2, stfips, floor, activity, cntyfips, county
    (1, "AZ", "AZ", 4, 1, 0.3, 1, "APACHE"),
    (10, "MN", "MN", 27, 1, 2.2, 1, "AITKIN"),
    (11, "MN", "MN", 27, 0, 2.9, 1, "AITKIN"),
    (12, "MN", "MN", 27, 1, 0.0, 19, "CARVER"),  # zero reading
    (13, "MN", "MN", 27, 0, 5.5, 19, "CARVER"),
    (14, "R5", "MN", 27, 0, 7.1, 1, "AITKIN"),  # the state2 trap: must be dropped
    (15, "MN", "MN", 27, 0, 1.0, 73, "LAC QUI PARLE"),
    (20, "WI", "WI", 55, 0, 3.0, 1, "ADAMS"),
]
TINY_COUNTIES = [
    "01,001,AL,AUTAUGA, -86.643,  32.534,1.78331",
    "27,001,MN,AITKIN, -93.415,  46.608,0.502054",
    "27,019,MN,CARVER, -93.802,  44.821,1.9",
    "27,019,MN,CARVER, -93.800,  44.820,1.9",  # listed twice, as in the real file
    "27,073,MN,LACQUIPARLE, -96.174,  45.000,3.5",  # spaces removed: join by FIPS, not name
    "55,001,WI,ADAMS, -89.770,  43.970,1.1",
]


def write_tiny_raw(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    srrs2 = folder / "srrs2.dat"
    lines = [SRRS2_HEADER, *(_srrs2_row(*row) for row in TINY_HOMES)]
    srrs2.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())
    cty = folder / "cty.dat"
    cty.write_bytes("\r\n".join(["stfips,ctfips,st,cty,lon,lat,Uppm", *TINY_COUNTIES]).encode())
    return {"srrs2.dat": srrs2, "cty.dat": cty}


@pytest.fixture
def tiny_raw(tmp_path: Path) -> dict[str, Path]:
    return write_tiny_raw(tmp_path / "raw")


# ---------------------------------------------------------------- running Snakemake
# TEST_TIMEOUT_SCALE=3 (say) multiplies run_snakemake's timeouts on a machine shared with other
# work, where the small run alone can take longer than 15 minutes; CI leaves it at 1.
TIMEOUT_SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))


def run_snakemake(
    workdir: Path, *args: str, timeout: float = 900, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real Snakemake CLI on this repository's Snakefile in ``workdir`` (``env``: extra variables)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * TIMEOUT_SCALE, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def _merge(base: dict, override: dict) -> dict:
    """Nested update, as Snakemake merges a --configfile over config.yaml."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def copy_config(dest: Path, **sections: dict) -> Path:
    """Put the shipped config.yaml in ``dest``, with keys of ``sections`` merged over it (nested)."""
    import yaml

    target = dest / "config.yaml"
    shutil.copy(ROOT / "config.yaml", target)
    if sections:
        config = _merge(yaml.safe_load(target.read_text()), sections)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def radon(**keys) -> dict:
    """A ``datasets`` override for radon only."""
    return {"radon": keys}


# A small but real configuration: both samplers and forms, two seeds, short chains.
SMALL_FIT = {
    "seeds": [1, 2],
    "batch_size": 2,
    "chains": 2,
    "tune": 300,
    "draws": 300,
}


# Small versions of the experiments (same fit settings as SMALL_FIT).
SMALL_EXPERIMENTS = {
    "reference": {"enabled": True, "chains": 4, "tune": 500, "draws": 2000, "target_accept": 0.95, "seed": 2017},
    "target_accept": {"enabled": True, "values": [0.8, 0.99], "seeds": [1], "samplers": ["nutpie"]},
    "rows_per_group": {"enabled": True, "factors": [1, 10], "seeds": [1], "samplers": ["nutpie"]},
}

# A user's CSV: groups named with spaces, a numeric predictor that is not 0/1.
USER_CSV = "data/user/plots.csv"
USER_GROUPS = ["North Shore", "Lake Superior", "Iron Range", "Red River", "Twin Cities", "Big Woods"]


def write_user_csv(dest: Path) -> Path:
    """Simulate y = a[g] + b[g] * dose + noise for six groups of 4 to 12 rows (fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(20170208)
    lines = ["plot,dose,yield,comment"]
    for i, group in enumerate(USER_GROUPS):
        a, b = rng.normal(10.0, 2.0), rng.normal(1.5, 0.5)
        for _ in range(4 + 2 * i):
            dose = float(rng.choice([0.5, 1.0, 2.0, 3.5]))
            lines.append(f"{group},{dose},{a + b * dose + rng.normal(0, 1.0):.4f},plot {i}")
    path = dest / USER_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# The formula datasets of workflow/presets/glm.yaml (issue 26); lme4's cbpp: 15 herds, binomial.
GLM_PRESET = ROOT / "workflow/presets/glm.yaml"
CBPP = yaml.safe_load(GLM_PRESET.read_text())["datasets"]["cbpp"]


def small_datasets() -> dict:
    """radon (embedded, offline), sleepstudy (the preset's spec) and a user CSV."""
    import yaml

    preset = yaml.safe_load((ROOT / "workflow/presets/datasets.yaml").read_text())["datasets"]
    return {
        "radon": {"source": "embedded"},
        "sleepstudy": preset["sleepstudy"],
        "user": {"source": "csv", "path": USER_CSV, "columns": {"group": "plot", "x": "dose", "y": "yield"}},
    }


def small_config(dest: Path) -> Path:
    """The small test configuration, offline, three datasets, in ``dest``."""
    write_user_csv(dest)
    return copy_config(dest, datasets=small_datasets(), fit=SMALL_FIT, experiments=SMALL_EXPERIMENTS)


def copy_run(src: Path, dest: Path) -> Path:
    """A copy of a finished run (outputs, logs, Snakemake's metadata, timestamps kept) to rerun or
    edit: tests never change the shared ``small_run`` folder that other tests read."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


# The rules of the report pages (the notebooks and the index). The small run builds everything
# else first, then the pages with `snakemake report`: one run serves the tests of the whole
# workflow and those of the report target, whose log is kept (``small_run_report_log``).
REPORT_PAGE_RULES = (
    "report_data",
    "report_fit",
    "report_comparison",
    "report_comparison_radon",
    "report_experiments",
    "report_sbc",
    "report",
)
SMALL_RUN_REPORT_LOG = "small_run_report.log"


def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder every test process of this session sees: under pytest-xdist (`make test`
    runs two workers) the parent of the workers' own base folders, else the base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_small_run(workdir: Path, staging: Path | None = None) -> str:
    """Run the small configuration in ``workdir`` in two steps; Snakemake's output of the second.
    With ``staging`` (a kept SMALL_RUN folder), the configuration is written there first and
    copied only where it changed, so that Snakemake reruns only what changed."""
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
        staged = small_config(staging).parent
        for name in ("config.yaml", USER_CSV):  # rewritten only if changed: a new mtime would rerun jobs
            source, target = staged / name, workdir / name
            if not target.is_file() or target.read_bytes() != source.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        for folder in (workdir / "results").glob("*/report"):  # the report step below builds every page
            shutil.rmtree(folder)
    else:
        small_config(workdir)
    run_snakemake(workdir, "--omit-from", *REPORT_PAGE_RULES)
    assert not list((workdir / "results").glob("*/report")), "a report page was built before the report step"
    proc = run_snakemake(workdir, "report")
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """One end-to-end run of the small configuration, shared by the tests that read it.

    Built in two steps: every job but the report pages (``--omit-from``), then the report
    target alone (`snakemake report`, its output kept for ``small_run_report_log``), so that the
    pages are executed once per session. Tests only read it (a test that reruns or edits works
    on ``copy_run``). Under pytest-xdist the first worker that needs it builds it, under a lock,
    in a folder all workers see; the others wait and read it (a failed build is not retried: they
    fail with its message). For development, SMALL_RUN=<folder> keeps the run in that folder
    across sessions: Snakemake then reruns only what changed since, and the pages every time
    (never set it in CI).
    """
    keep = os.environ.get("SMALL_RUN")
    root = shared_tmp(tmp_path_factory)
    workdir = Path(keep).resolve() if keep else root / "small_run"
    built, failed = root / "small_run.built", root / "small_run.failed"
    with open(root / "small_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.is_file():
            pytest.fail(f"the small run failed in another test process:\n{failed.read_text()[-8000:]}")
        if not built.is_file():
            workdir.mkdir(parents=True, exist_ok=True)
            try:
                log = build_small_run(workdir, root / "small_config" if keep else None)
            except BaseException as error:
                failed.write_text(str(error))
                raise
            (root / SMALL_RUN_REPORT_LOG).write_text(log)
            built.write_text(str(workdir))
    return workdir


@pytest.fixture(scope="session")
def small_run_report_log(small_run: Path, tmp_path_factory) -> str:
    """Snakemake's output of the small run's second step, `snakemake report` (all pages, no fit)."""
    return (shared_tmp(tmp_path_factory) / SMALL_RUN_REPORT_LOG).read_text()
