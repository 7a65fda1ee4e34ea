"""The repository's layout keeps its promises: one home per concern, imports that run down the layers, SQL
shipped inside the package without a symlink, and nothing under an ignored path tracked by git.

Pure Python and git: no database.
"""

from __future__ import annotations

import ast
import re
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


# Python calls SQL functions: every state change of schema crm is one SQL function call. Only the migrator (which
# runs the SQL files) and the fakes / test helpers beside the product may write to crm.* tables directly.
_WRITES_TO_CRM = re.compile(r"\b(?:insert\s+into|update|delete\s+from)\s+crm\s*\.", re.IGNORECASE)
_MAY_WRITE = ("crmindex/platform/migrate.py", "crmindex/testing/")


def _direct_writes(path: Path) -> list[str]:
    text = path.read_text()
    return [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {' '.join(m.group(0).split())}"
        for m in _WRITES_TO_CRM.finditer(text)
    ]


def test_python_changes_crm_tables_only_through_sql_functions() -> None:
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(_MAY_WRITE)
        for hit in _direct_writes(path)
    ]
    assert found == []


def test_the_direct_write_check_catches_each_statement(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        'Q1 = "INSERT INTO crm.job (org_id) VALUES (%s)"\n'
        'Q2 = "update  crm.sync_state SET x = 1"\n'
        'Q3 = """DELETE\n   FROM crm . writeback_queue"""\n'
        'OK = "SELECT * FROM crm.job; SELECT crm.sync_restart(%s, %s)"\n'
    )
    hits = [m.group(0) for m in _WRITES_TO_CRM.finditer(bad.read_text())]
    assert [" ".join(h.split()).lower() for h in hits] == [
        "insert into crm.",
        "update crm.",
        "delete from crm .",
    ]


INTERNAL_PACKAGES = ("platform", "crm", "index", "freshness", "records", "writeback")
PUBLIC_MODULES = ("crmindex", "crmindex.app", "crmindex.errors", "crmindex.testing", "crmindex.tools")


def test_internal_packages_say_so_and_export_nothing() -> None:
    for name in INTERNAL_PACKAGES:
        init = PACKAGE / name / "__init__.py"
        text = init.read_text()
        assert "Internal:" in text, f"crmindex/{name}/__init__.py does not mark its modules internal"
        assert "__all__: list[str] = []" in text


def test_the_readme_and_docs_use_only_the_public_surface() -> None:
    import crmindex

    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S):
            for module in re.findall(r"^\s*(?:from|import) (crmindex[\w.]*)", block, flags=re.M):
                assert module in PUBLIC_MODULES, f"{doc.name} imports the internal module {module}"
            for name in re.findall(r"\bcrmindex\.([A-Za-z_]\w*)\(", block):
                assert name in crmindex.__all__, f"{doc.name} calls crmindex.{name}, not in crmindex.__all__"
