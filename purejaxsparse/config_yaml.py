"""Reading a config: a YAML file (a key given twice is an error, not the last value) or a
mapping, and `dotted.key=value` overrides with YAML values. A leaf module but for ConfigError."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .fields import ConfigError


class _YAMLLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (PyYAML would keep the
    last value without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = []
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.append(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str):
    """YAML text as Python values; a duplicate key is an error (yaml.YAMLError)."""
    return yaml.load(text, Loader=_YAMLLoader)


def load_config(source) -> dict:
    """A config mapping from a YAML path or a mapping (copied)."""
    if isinstance(source, dict):
        return copy.deepcopy(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config: no such file {str(path)!r}")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config: malformed YAML in {path.name}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path.name} must be a YAML mapping of keys, got {type(data).__name__}")
    return data


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Set `dotted.key=value` overrides (values parsed as YAML) on a copy of `config`."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: not a setting; allowed: dotted.key=value (YAML value)")
        key, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"{key}: value {raw!r} is not valid YAML") from None
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key")
        node = config
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {p} is not a mapping")
            node = child
        node[parts[-1]] = value
    return config
