"""House rules that code review forgets: layer direction, one attribute vocabulary, packaging, config.

Layers point one way: ui → analytics → collector.storage (schema, reader) → instrumentation.semconv.
The collector never imports analytics or ui; the instrumentation speaks only OTLP.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from harness import REPO
from spanlake.collector.settings import SETTINGS_DOC, Settings

PACKAGE_DIRS = {"collector": "spanlake.collector", "instrumentation": "spanlake.instrumentation",
                "analytics": "spanlake.analytics", "ui": "spanlake.ui"}
HEAVY = ("duckdb", "pyarrow", "deltalake", "streamlit", "sklearn", "scipy", "ibis", "pandas")


def _modules(top: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((REPO / top).rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offenders(top: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path, tree in _modules(top):
        for name in _imports(tree):
            if name.startswith(forbidden) and not name.startswith(allowed):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_collector_never_imports_analytics_or_ui() -> None:
    assert _offenders("collector", ("spanlake.analytics", "spanlake.ui")) == []


def test_instrumentation_speaks_only_otlp() -> None:
    assert _offenders("instrumentation", ("spanlake.collector", "spanlake.analytics", "spanlake.ui", *HEAVY)) == []


def test_analytics_uses_only_the_lake_interface() -> None:
    allowed = ("spanlake.collector.storage", "spanlake.collector.settings")
    assert _offenders("analytics", ("spanlake.ui", "spanlake.collector"), allowed) == []


def test_ui_pages_run_no_sql() -> None:
    pages = REPO / "ui" / "app_pages"
    if not pages.exists():
        pytest.skip("no UI pages yet")
    assert _offenders("ui/app_pages", ("duckdb", "spanlake.collector", "ibis")) == []


def _string_constants(tree: ast.Module) -> Iterator[ast.Constant]:
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_genai_keys_live_only_in_semconv() -> None:
    offenders = []
    for top in PACKAGE_DIRS:
        for path, tree in _modules(top):
            if path.name == "semconv.py":
                continue
            offenders += [f"{path.relative_to(REPO)}:{c.lineno} {c.value!r}" for c in _string_constants(tree)
                          if "gen_ai." in c.value]
    assert offenders == []


def test_only_the_settings_modules_read_the_environment() -> None:
    allowed = {"collector/settings.py", "instrumentation/config.py", "ui/cli.py"}
    offenders = []
    for top in PACKAGE_DIRS:
        for path, tree in _modules(top):
            rel = str(path.relative_to(REPO))
            for node in ast.walk(tree):
                reads = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                         and isinstance(node.value, ast.Name) and node.value.id == "os")
                if reads and rel not in allowed:
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, name in PACKAGE_DIRS.items():
        assert config["package-dir"][name] == top
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            found.add(".".join([name, *rel.parts]))
    assert found == listed


def test_base_install_is_light() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.split(">")[0].split("[")[0].strip() in
                ("duckdb", "pyarrow", "deltalake", "streamlit", "scikit-learn", "scipy", "ibis-framework")]
    probe = "import sys, spanlake.instrumentation as sl; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_every_setting_is_documented() -> None:
    fields = {f for f in Settings.__dataclass_fields__ if f != "extra"}
    assert {s.name for s in SETTINGS_DOC} == fields
    readme = (REPO / "README.md").read_text()
    defaults = Settings()
    missing = [s.name for s in SETTINGS_DOC
               if f"| `SPANLAKE_{s.name.upper()}` / `{s.name}` | `{getattr(defaults, s.name)}` |" not in readme]
    assert missing == [], "README settings rows missing or with a stale default"


def test_readme_documents_every_stored_column() -> None:
    from spanlake.collector.storage import schema

    readme = (REPO / "README.md").read_text()
    missing = [f"{table}.{c.name}" for table in schema.TABLES for c in schema.COLUMNS[table]
               if f"| `{c.name}` |" not in readme]
    assert missing == []
