"""The repository's layout keeps its promises: one home per concern, imports that run down the layers, SQL
shipped inside the package without a symlink, and nothing under an ignored path tracked by git.

Pure Python and git: no database.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crmindex"

# Layers, lowest first: a module may import from its own layer and the layers below it, never above.
LAYERS: list[tuple[str, ...]] = [
    ("crmindex.errors",),
    ("crmindex.platform",),
    ("crmindex.crm",),
    ("crmindex.index",),
    ("crmindex.writeback",),
    ("crmindex.records",),
    ("crmindex.freshness",),
    ("crmindex.status", "crmindex.app", "crmindex.tools", "crmindex.mcp", "crmindex.demo", "crmindex.cli"),
]
# the fakes and the data generator stand beside the product: they may use its lower layers (signatures,
# models), and only the top layer (CLI, demo) may use them
TESTING = "crmindex.testing"
TESTING_MAY_USE = ("crmindex.errors", "crmindex.platform", "crmindex.crm", "crmindex.freshness.signatures")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _layer(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "crmindex":
                found += [(node.lineno, f"crmindex.{a.name}") for a in node.names]
            elif node.module.startswith("crmindex."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("crmindex.")]
    return found


def test_imports_run_down_the_layers() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module_name(path)
        if me == "crmindex":
            continue  # the public surface re-exports every layer
        for line, target in _imports(path):
            if me.startswith(TESTING):
                if not (target.startswith(TESTING) or target.startswith(TESTING_MAY_USE)):
                    wrong.append(f"{me}:{line} imports {target} (the fakes use only lower layers)")
                continue
            if target.startswith(TESTING):
                if _layer(me) != len(LAYERS) - 1:
                    wrong.append(f"{me}:{line} imports {target} (only the CLI and demo use the fakes)")
                continue
            mine, theirs = _layer(me), _layer(target)
            assert mine is not None, f"{me} belongs to no layer: add it to LAYERS"
            assert theirs is not None, f"{target} belongs to no layer: add it to LAYERS"
            if theirs > mine:
                wrong.append(f"{me}:{line} imports {target}, a layer above it")
    assert wrong == []


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "crmindex" / "platform" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from crmindex.index.search import search\n")
    [(_, target)] = _imports(bad)
    assert _layer(target) is not None and _layer("crmindex.platform.bad") is not None
    assert _layer(target) > _layer("crmindex.platform.bad")  # type: ignore[operator]


def test_no_symlink_in_the_package() -> None:
    links = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*") if p.is_symlink()]
    assert links == []


def test_pyproject_lists_every_package_and_ships_the_sql() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {_module_name(p.parent) for p in PACKAGE.rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"crmindex.sql"}
    assert config["package-dir"] == {"crmindex.sql": "sql"}
    assert (ROOT / "sql" / "__init__.py").exists()
    import crmindex.sql

    assert Path(crmindex.sql.__file__).resolve().parent == ROOT / "sql"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)


@needs_git
def test_nothing_under_an_ignored_path_is_tracked() -> None:
    # a virtualenv was once committed with the first commit; `make lint` runs this check too
    assert _git("ls-files", "-ci", "--exclude-standard") == ""
    assert _git("ls-files", ".venv") == ""
