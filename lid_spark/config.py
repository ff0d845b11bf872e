"""Layered YAML configuration, validated against ``conf/default.yaml``.

``conf/default.yaml`` is both the documentation and the schema: every key a user may set exists
there, and its default fixes the type. Later layers (``--config`` files, then ``key=value``
overrides) may only set known keys with values of the same type; anything else fails at start
with a :class:`~lid_spark.errors.ParameterError` that names the key.

Example
-------
>>> cfg = load_config(overrides=["spark.shuffle_partitions=4"])
>>> cfg.spark.shuffle_partitions
4
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from lid_spark.errors import ParameterError

# The schema and the demo settings ship inside the package (conf/ at the top links to them).
CONF_DIR = Path(os.environ.get("LID_SPARK_CONF_DIR", Path(__file__).resolve().parent / "conf"))
DEFAULT_CONFIG = CONF_DIR / "default.yaml"


class Config(Mapping):
    """A read-only nested mapping with attribute access (``cfg.spark.master``)."""

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self._data = dict(data)
        self._path = path

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping):
            return Config(value, f"{self._path}{key}.")
        return value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no configuration key {self._path}{key!r}") from None

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

    def get_path(self, dotted: str) -> Any:
        node: Any = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def write_yaml(self, path: str | Path) -> Path:
        """Write the resolved settings as a YAML file that ``load_config([path])`` reads back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Resolved lid-spark settings: pass with --config to rerun any stage on the same data.\n"
                        + yaml.safe_dump(self._data, sort_keys=False), encoding="utf-8")
        return path

    def with_overrides(self, overrides: Iterable[str]) -> "Config":
        """A copy with ``key=value`` overrides applied (validated like command-line ones)."""
        data = self.to_dict()
        schema = _read_yaml(DEFAULT_CONFIG)
        for item in overrides:
            key, value = parse_override(item)
            _set_validated(data, schema, key, value, source="override")
        return Config(data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ParameterError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ParameterError(f"configuration file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"configuration file {path} must hold a mapping at top level")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is read as YAML (numbers, booleans, lists, null)."""
    if "=" not in item:
        raise ParameterError(f"override {item!r} is not of the form key=value (e.g. spark.shuffle_partitions=8)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ParameterError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the type of ``default``; return it (ints widen to floats)."""
    if default is None or value is None:
        # A null default means "optional scalar or list"; null may replace any scalar default.
        if isinstance(value, Mapping) and default is None:
            raise ParameterError(f"{source}: {key} takes a single value, not a mapping")
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
    elif isinstance(default, Mapping):
        if isinstance(value, Mapping):
            return value
    raise ParameterError(
        f"{source}: {key} must be {_type_name(default)} (like the default {default!r}), "
        f"got {_type_name(value)} {value!r}"
    )


def _set_validated(data: dict, schema: Mapping, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node, schema_node = data, schema
    for i, part in enumerate(parts):
        key_so_far = ".".join(parts[: i + 1])
        free_form = isinstance(schema_node, Mapping) and len(schema_node) == 0
        if not free_form and part not in schema_node:
            close = difflib.get_close_matches(part, list(schema_node), n=1)
            hint = f"; did you mean {'.'.join(parts[:i] + [close[0]])!r}?" if close else ""
            raise ParameterError(f"{source}: unknown configuration key {key_so_far!r}{hint}")
        if i == len(parts) - 1:
            if free_form:
                node[part] = value
            elif isinstance(schema_node[part], Mapping) and len(schema_node[part]) > 0:
                if not isinstance(value, Mapping):
                    raise ParameterError(f"{source}: {key_so_far} is a section; set its keys, e.g. {key_so_far}.<key>=...")
                for sub_key, sub_value in value.items():
                    _set_validated(node.setdefault(part, {}), schema_node[part], str(sub_key), sub_value, source)
            else:
                node[part] = _coerce(key_so_far, schema_node[part], value, source)
            return
        if free_form:
            node = node.setdefault(part, {})
            schema_node = {}
            continue
        if not isinstance(schema_node[part], Mapping):
            raise ParameterError(f"{source}: {key_so_far} is a value, not a section")
        node = node.setdefault(part, {})
        schema_node = schema_node[part]


def _merge_file(data: dict, schema: Mapping, layer: Mapping, source: str, prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        sub_schema = _lookup(schema, dotted)
        if isinstance(value, Mapping) and isinstance(sub_schema, Mapping) and len(sub_schema) > 0:
            _merge_file(data, schema, value, source, prefix=f"{dotted}.")
        else:
            _set_validated(data, schema, dotted, value, source)


def _lookup(schema: Mapping, dotted: str) -> Any:
    node: Any = schema
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def load_config(files: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Config:
    """Defaults, then each YAML file in order, then ``key=value`` overrides."""
    schema = _read_yaml(DEFAULT_CONFIG)
    data = copy.deepcopy(schema)
    for path in files:
        _merge_file(data, schema, _read_yaml(Path(path)), source=str(path))
    for item in overrides:
        key, value = parse_override(item)
        _set_validated(data, schema, key, value, source="override")
    return Config(data)
