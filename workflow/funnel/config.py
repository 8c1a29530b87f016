"""Validate the workflow configuration against its JSON schema with readable errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration does not match ``workflow/schemas/config.schema.yaml``."""


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
        allowed = sorted(_subschema(schema, list(error.absolute_path)).get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = "" if key == "<top level>" else f" under '{key}'"
        names = ", ".join(f"'{'.'.join([*map(str, error.absolute_path), e])}'" for e in extra)
        return f"unknown config key {names}{where}; allowed keys: {', '.join(allowed)}"
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
    data = config.get("data", {})
    if data.get("source") == "embedded" and data.get("transform") == "offset":
        raise ConfigError(
            "config key 'data.transform' is 'offset', which needs the raw ARM files, but 'data.source' is "
            "'embedded' (Gelman & Hill's transform only). Use data.source 'local' or 'url', or data.transform 'arm'."
        )
    if data.get("source") == "local" and not data.get("local_dir"):
        raise ConfigError("config key 'data.local_dir' must be set when 'data.source' is 'local'")
