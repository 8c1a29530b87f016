"""Validate the workflow configuration against its JSON schema with readable errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# Keys of earlier versions and where they live now (named in the error for an old config).
MOVED = {
    "data": "datasets.radon (one entry per dataset)",
    "fit.priors": "datasets.<name>.priors",
    "diagnostics.small_county": "datasets.<name>.track_group",
    "experiments.homes_per_county": "experiments.rows_per_group",
    "experiments.reference.counties": "datasets.<name>.bias_groups",
}


class ConfigError(ValueError):
    """The configuration does not match ``workflow/schemas/config.schema.yaml``."""


def main_sampler(samplers: Sequence[str]) -> str:
    """The sampler whose fits stand for the run where one must (the MAP job, the comparison's traces):
    PyMC's NUTS (the blog's sampler) when it is fitted, else the first one configured (fit.samplers)."""
    return "pymc" if "pymc" in samplers else samplers[0]


# ------------------------------------------------------------------ the files themselves
def duplicate_keys(text: str) -> list[tuple[str, ...]]:
    """The paths of the mapping keys a YAML document gives twice (PyYAML silently keeps the last one),
    e.g. ``[("fit",), ("datasets", "mine")]``."""
    found: list[tuple[str, ...]] = []

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value in node.value:
                key = str(key_node.value)
                if key in seen:
                    found.append((*path, key))
                seen.add(key)
                walk(value, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, str(index)))

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is not None:
            walk(document, ())
    return found


def describe_duplicate(path: tuple[str, ...]) -> str:
    """A repeated key in words: a top-level section, a dataset name, or a key by its dotted path."""
    if len(path) == 1:
        return f"top-level key '{path[0]}' (its sections must be merged into one)"
    if len(path) == 2 and path[0] == "datasets":
        return f"dataset name '{path[1]}' under 'datasets' (a dataset name must be unique)"
    return f"key '{'.'.join(path)}'"


def check_config_files(paths: Sequence[str | Path]) -> None:
    """Refuse config files that give a key (a section, a dataset) twice: the first would vanish silently."""
    for path in paths:
        duplicates = list(dict.fromkeys(duplicate_keys(Path(path).read_text())))
        if duplicates:
            raise ConfigError(
                f"{path} gives {'; '.join(describe_duplicate(d) for d in duplicates)} more than once; YAML would "
                "silently keep only the last. Rename or merge the entries."
            )


def load_schema(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def _key(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _subschema(schema: Mapping[str, Any], path: list[Any]) -> Mapping[str, Any]:
    node: Mapping[str, Any] = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    key = _key(error)
    if error.validator == "additionalProperties":
        path = list(error.absolute_path)
        node = _subschema(schema, path)
        if not node.get("properties") and path and path[0] == "datasets":
            node = schema["properties"]["datasets"]["additionalProperties"]  # one dataset's spec
        allowed = sorted(node.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = "" if key == "<top level>" else f" under '{key}'"
        full = [".".join([*map(str, path), e]) for e in extra]
        names = ", ".join(f"'{name}'" for name in full)
        moved = [f"'{name}' is now '{MOVED[name]}'" for name in full if name in MOVED]
        hint = f" ({'; '.join(moved)})" if moved else ""
        return f"unknown config key {names}{where}{hint}; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key '{key}' is {error.instance!r}; allowed values: {allowed}"
    if error.validator == "type":
        return f"config key '{key}' must be of type {error.validator_value}, got {error.instance!r}"
    if error.validator == "required":
        return f"config section '{key}' is missing a required key: {error.message}"
    description = _subschema(schema, list(error.absolute_path)).get("description")
    hint = f" ({description})" if description else ""
    return f"config key '{key}': {error.message}{hint}"


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` listing every problem, each naming its key."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = "\n".join(f"  - {_describe(e, schema)}" for e in errors)
        raise ConfigError(
            f"invalid configuration ({len(errors)} problem(s)):\n{lines}\nSee config.yaml for what each key means."
        )
    from .datasets import resolve_datasets
    from .errors import DataError

    try:
        resolve_datasets(config["datasets"])
    except DataError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
