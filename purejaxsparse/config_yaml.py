"""Reading a config: a YAML file (a key given twice is an error, not the last value) or a
mapping, and `dotted.key=value` overrides with YAML values.

YAML is read within bounds, so that a hostile or broken file is refused in one line within a
second and a few MB, whatever it holds: at most MAX_YAML_BYTES of text, MAX_NESTING levels, and
MAX_VALUES values once aliases are expanded (a few hundred bytes of `&`/`*` aliases can stand
for gigabytes); the text is measured from the parser's events (`_measure`) before anything is
composed or built, every alias counted as the copy it stands for. Every config, read from YAML
or given as a mapping, must then have the shape `check_shape` checks: string keys, no value
inside itself, and the same bounds. Error messages quote a value only by a short prefix
(errors.shown). jax-free.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, MappingStartEvent, ScalarEvent
from yaml.resolver import Resolver

from .disk import disk_errors
from .errors import ConfigError, one_line, shown

try:  # libyaml's parser: the same events, five times faster than PyYAML's own
    from yaml.cyaml import CParser as _Parser

    def _init_parser(loader, text):
        _Parser.__init__(loader, text)
except ImportError:  # pragma: no cover -- PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):
        pass

    def _init_parser(loader, text):
        Reader.__init__(loader, text)
        Scanner.__init__(loader)
        Parser.__init__(loader)

MAX_YAML_BYTES = 4 * 2**20
"""The largest YAML file read: far above the config.yaml of the largest sweep (MAX_RUNS runs,
each seed listed), far below what would take seconds to parse."""
MAX_NESTING = 32
"""The deepest nesting of mappings and lists a config may have (the shipped ones: 4)."""
MAX_KEY_CHARS = 200
"""The longest key a config's mappings may have (keys are names of settings)."""
MAX_VALUES = 250_000
"""The most values (scalars, lists, mappings and keys) a config may hold, every alias counted as
the copy it stands for: over twice the config.yaml of the largest sweep (MAX_RUNS seeds listed)."""


class _Refused(yaml.YAMLError):
    """A YAML document beyond the bounds (or with a key that is a list or a mapping)."""

    def __init__(self, problem: str, mark=None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _measure(text: str) -> None:
    """Refuse YAML text that, with its aliases expanded, holds more than MAX_VALUES values or
    nests deeper than MAX_NESTING, that holds itself (an alias inside its own anchor), or that
    has a key which is a list or a mapping (comparing such keys could expand them); its other
    errors are left to the loader. One pass over the parser's events, kept in constant memory
    and stopped at the first bound crossed, so it takes milliseconds whatever the text stands
    for, and nothing is composed (recursively) or built before the text is known to be within
    bounds."""
    total = 0  # values so far, each alias counted as what its anchor holds
    stack = []  # open lists and mappings: [is a mapping, items seen, total before it, depth, deepest, anchor]
    anchored = {}  # anchor -> (values, height) of what it names; None while that is still open

    def refuse(problem, event):
        raise _Refused(problem, event.start_mark)

    for event in _events(text):
        if isinstance(event, CollectionEndEvent):
            _, _, before, depth, deepest, anchor = stack.pop()
            if anchor is not None:
                anchored[anchor] = (total - before, deepest - depth + 1)
            if stack:
                stack[-1][4] = max(stack[-1][4], deepest)
            continue
        if not isinstance(event, (ScalarEvent, AliasEvent, CollectionStartEvent)):
            continue
        depth = len(stack) + 1
        if isinstance(event, AliasEvent):
            if event.anchor in anchored and anchored[event.anchor] is None:
                refuse("an alias refers to the list or mapping it is in; allowed: values that do not contain "
                       "themselves", event)
            values, height = anchored.get(event.anchor) or (1, 1)  # an unknown anchor: the loader says so
        else:
            values, height = 1, 1
        is_key = bool(stack) and stack[-1][0] and stack[-1][1] % 2 == 0
        if is_key and (isinstance(event, CollectionStartEvent) or height > 1):
            refuse("a key that is a list or a mapping; allowed: names", event)
        if stack:
            stack[-1][1] += 1
        total += values
        if total > MAX_VALUES:
            refuse(f"more than {MAX_VALUES:,} values (an alias counts as what it stands for); allowed: at most "
                   f"{MAX_VALUES:,}", event)
        if depth + height - 1 > MAX_NESTING:
            refuse(f"nested more than {MAX_NESTING} levels deep; allowed: at most {MAX_NESTING}", event)
        if isinstance(event, CollectionStartEvent):
            if event.anchor is not None:
                anchored[event.anchor] = None
            stack.append([isinstance(event, MappingStartEvent), 0, total - 1, depth, depth, event.anchor])
            continue
        if isinstance(event, ScalarEvent) and event.anchor is not None:
            anchored[event.anchor] = (1, 1)
        if stack:
            stack[-1][4] = max(stack[-1][4], depth + height - 1)


def _events(text: str):
    """The parser's events of `text` (yaml.YAMLError where it does not parse)."""
    parser = _EventParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


class _EventParser(_Parser):
    def __init__(self, text: str):
        _init_parser(self, text)


class _YAMLLoader(Composer, _Parser, SafeConstructor, Resolver):
    """yaml.SafeLoader's composing, construction and typing on libyaml's parser, refusing a
    mapping with the same key twice (PyYAML would keep the last value without a word)."""

    def __init__(self, text: str):
        _init_parser(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # a scalar: _measure refused any other
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: SafeConstructor says so
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {shown(key)}",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str):
    """YAML text as Python values, within the bounds; a duplicate key, or text beyond the
    bounds, is an error (yaml.YAMLError)."""
    if len(text) > MAX_YAML_BYTES:
        raise _Refused(f"{len(text):,} characters; allowed: at most {MAX_YAML_BYTES:,}")
    _measure(text)
    loader = _YAMLLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _yaml_problem(e: yaml.YAMLError) -> str:
    """' line N: PROBLEM' of a YAML error, in one short line."""
    mark = getattr(e, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    return f"{where}: {one_line(getattr(e, 'problem', None) or str(e), 120)}"


def read_yaml(path):
    """The YAML file `path` as Python values, read within the bounds (module docstring); a file
    that is missing, too big, not UTF-8 text or not YAML is a one-line ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: no such file {shown(str(path), 200)}")
    with disk_errors(path, "reading"), open(path, "rb") as f:
        data = f.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"config: {path} is over {MAX_YAML_BYTES // 2**20} MiB; allowed: a YAML file of at most "
                          f"{MAX_YAML_BYTES:,} bytes")
    try:
        text = data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config: {path} is not a YAML file (byte {data[e.start]:#04x} at offset {e.start} is "
                          f"not text: UTF-8, or UTF-16 with its byte-order mark)") from None
    try:
        return parse_yaml(text)
    except yaml.YAMLError as e:
        kind = "YAML beyond bounds" if isinstance(e, _Refused) else "malformed YAML"
        raise ConfigError(f"config: {kind} in {path}{_yaml_problem(e)}") from None


def check_shape(value, where: str = "config") -> None:
    """Refuse (one-line ConfigError naming the place) a config value with a mapping key that is
    not a string (or is longer than MAX_KEY_CHARS), a list or mapping inside itself, more than
    MAX_NESTING levels, or more than MAX_VALUES values counting repeats: the one rule for configs
    read from YAML, given as a mapping (the embedding API) or set by overrides. Each object is
    measured once (memo by identity), so shared values cost nothing to measure."""
    sizes: dict[int, tuple[int, int]] = {}
    open_ids: set[int] = set()

    def too_deep(path):
        return ConfigError(f"{_place(where, path)}: nested more than {MAX_NESTING} levels deep; allowed: at most "
                           f"{MAX_NESTING}")

    def visit(v, path: tuple, depth: int) -> tuple[int, int]:
        if not isinstance(v, (dict, list, tuple)):
            return 1, 1
        known = sizes.get(id(v))
        if known is not None:
            if depth + known[1] - 1 > MAX_NESTING:
                raise too_deep(path)
            return known
        if depth > MAX_NESTING:
            raise too_deep(path)
        if id(v) in open_ids:
            raise ConfigError(f"{_place(where, path)}: holds itself; allowed: values that do not contain themselves")
        open_ids.add(id(v))
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str):
                    raise ConfigError(f"{_place(where, path)}: key {shown(k)} ({type(k).__name__}) is not a string; "
                                      f"allowed: names (quote a key that YAML reads as a number, true/false or null)")
                if len(k) > MAX_KEY_CHARS:
                    raise ConfigError(f"{_place(where, path)}: key {shown(k)} has {len(k):,} characters; allowed: "
                                      f"names of at most {MAX_KEY_CHARS}")
            items = list(v.items())
        else:
            items = list(enumerate(v))
        count, height = 1, 1
        for k, x in items:
            c, h = visit(x, path + (k,), depth + 1)
            count, height = count + c + isinstance(v, dict), max(height, h + 1)
            if count > MAX_VALUES:
                raise ConfigError(f"{_place(where, path)}: more than {MAX_VALUES:,} values (counting repeats); "
                                  f"allowed: at most {MAX_VALUES:,}")
        open_ids.discard(id(v))
        sizes[id(v)] = count, height
        return count, height

    visit(value, (), 1)


def _place(where: str, path: tuple) -> str:
    """Where in a config a value is: its keys dotted, list indices in brackets (sweep.seed[3]);
    `where` alone for the whole config, and as a prefix when it names a file."""
    text = one_line("".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip("."), 120)
    if where == "config":
        return text or where
    return f"{where}: {text}" if text else where


def load_config(source) -> dict:
    """A config mapping from a YAML path or a mapping (copied), of the shape `check_shape` allows."""
    if isinstance(source, dict):
        check_shape(source)
        return copy.deepcopy(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"config: got {shown(source)}; allowed: a mapping or the path of a YAML file")
    path = Path(source)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path.name} must be a YAML mapping of keys, got {type(data).__name__}")
    check_shape(data)
    return data


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Set `dotted.key=value` overrides (values parsed as YAML) on a copy of `config`; the
    result is checked as load_config checks a config."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {shown(item)}: not a setting; allowed: dotted.key=value (YAML value)")
        key, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except _Refused as e:
            raise ConfigError(f"{one_line(key, 80)}: {e.problem}") from None
        except yaml.YAMLError:
            raise ConfigError(f"{one_line(key, 80)}: value {shown(raw)} is not valid YAML") from None
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {shown(item)}: empty key")
        if len(parts) > MAX_NESTING:
            raise ConfigError(f"override {shown(key)}: nested more than {MAX_NESTING} levels deep; allowed: at most "
                              f"{MAX_NESTING}")
        node = config
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{one_line(key, 80)}: {shown(p)} is not a mapping")
            node = child
        node[parts[-1]] = value
    check_shape(config)
    return config
