"""Conda env files agree with requirements.lock, and the lock with what runs the tests."""

from __future__ import annotations

import importlib.metadata

import yaml
from conftest import ROOT
from funnel import envs


def test_env_files_are_generated_from_the_lock():
    pins = envs.read_lock()
    for env in envs.ENV_PACKAGES:
        path = ROOT / "envs" / f"{env}.yaml"
        assert path.read_text() == envs.render(env, pins), f"{path} drifted: run python -m funnel.envs"


def test_env_pins_equal_installed_versions():
    for env in envs.ENV_PACKAGES:
        spec = yaml.safe_load((ROOT / "envs" / f"{env}.yaml").read_text())
        assert spec["channels"] == ["conda-forge", "nodefaults"]
        for dep in spec["dependencies"]:
            items = dep["pip"] if isinstance(dep, dict) else [dep]
            for item in items:
                name, _, version = item.replace("==", "=").partition("=")
                if name in ("python", "pip"):
                    continue
                assert importlib.metadata.version(name) == version, f"envs/{env}.yaml pins {item}"


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
