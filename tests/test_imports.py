"""The package's modules import each other without a cycle: every import inside purejaxsparse, at
module level or inside a function (a function-level import only hides a cycle until it runs), read
with `ast` from the source files; imports under `if TYPE_CHECKING:` never run and are left out."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

import purejaxsparse

PACKAGE_DIR = Path(purejaxsparse.__file__).parent


def module_files(package_dir: Path) -> dict[str, Path]:
    """Every module of the package under `package_dir`, by dotted name (a package: its __init__)."""
    root = package_dir.parent
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _runtime_imports(tree: ast.AST):
    """The Import/ImportFrom nodes of a module that can run (all but those under TYPE_CHECKING)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (`from P import name` counts as an
    import of P.name when that is a module, else of P)."""
    files = module_files(package_dir)
    top = package_dir.name
    graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            base = here[:len(here) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                targets.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source)
        graph[name] = {t for t in targets if t in files and t.split(".")[0] == top}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`: each group of modules that reach one another (a strongly
    connected component with more than one module, or a module importing itself), sorted."""
    reach = {}
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(graph.get(node, ()))
        reach[start] = seen
    groups = {tuple(sorted(n for n in graph if n in reach[m] and m in reach[n])) for m in graph if m in reach[m]}
    return sorted(list(group) for group in groups)


def test_no_import_cycle_in_the_package():
    found = cycles(import_graph(PACKAGE_DIR))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(group) for group in found)


def test_the_check_finds_a_cycle_hidden_in_a_function(tmp_path):
    """A hand-made package: a imports b at module level, b imports a in a function, c imports a
    package attribute, d only under TYPE_CHECKING: one cycle (a, b)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    (pkg / "a.py").write_text("from .b import g\n")
    (pkg / "b.py").write_text("def g():\n    from . import a\n    return a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import VERSION\nimport pkg.a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import c\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.d": set(), "pkg.sub": set(),
                     "pkg.sub.c": {"pkg", "pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    assert cycles({**graph, "pkg.sub": {"pkg.sub"}}) == [["pkg.a", "pkg.b"], ["pkg.sub"]]


def test_the_loggers_import_without_their_optional_packages(monkeypatch):
    """wandb and tensorboardX are imported when a logger starts, never by `import`: without them the
    package imports, and asking for W&B is a one-line ConfigError."""
    import purejaxsparse.loggers
    from purejaxsparse.fields import ConfigError

    monkeypatch.setattr(purejaxsparse, "loggers", purejaxsparse.loggers)  # restored after the fresh import
    for name in [m for m in sys.modules if m.startswith("purejaxsparse.loggers")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("wandb", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)  # `import wandb` raises ImportError
    fresh = importlib.import_module("purejaxsparse.loggers")
    assert fresh.requested(["none"], {}) == ()
    with pytest.raises(ConfigError, match="the wandb package is not installed"):
        fresh.requested(["wandb"], {})


def test_the_envs_are_a_subpackage_and_no_top_level_envs_is_installed(tmp_path):
    """`purejaxsparse.envs` holds the environments; the install adds no top-level `envs` module
    (a name many RL projects give their own folder), so outside the repository it is not there."""
    import subprocess

    code = ("import importlib.util, purejaxsparse.envs as e; "
            "print(e.__name__, importlib.util.find_spec('envs') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["purejaxsparse.envs", "True"]
