"""The package's layout keeps its dependency direction (DESIGN.md section 1), and every
public module says what it exports.

Dependencies point down: ``cli`` -> ``serving`` -> ``frontends`` -> ``vfs`` -> ``store`` ->
``errors``; ``http`` depends on nothing of davstore; nothing but ``cli`` imports ``cli``.
Every import counts, the ones inside functions and under ``TYPE_CHECKING`` too: a lazy
import is a dependency all the same.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import davstore

PACKAGE = Path(davstore.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


MODULES = MODULE_FILES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names; relative imports resolved)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # ``from package import module`` imports the module; else the names' module
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULE_FILES else base)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _offenders(importer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {imported}"
        for name, imports in IMPORTS.items()
        if _within(name, importer)
        for imported in imports
        if any(_within(imported, bad) for bad in forbidden)
    )


def test_the_walk_sees_the_layers() -> None:
    for package in ("cli", "serving", "frontends", "vfs", "store", "http"):
        assert f"davstore.{package}" in MODULES
    assert "davstore.http.server" in IMPORTS["davstore.frontends.webdav"]


def test_nothing_below_the_cli_imports_it() -> None:
    """Only ``python -m davstore`` (``__main__``), the CLI's other door, may."""
    offenders = [
        f"{name} imports {imported}"
        for name, imports in IMPORTS.items()
        if not _within(name, "davstore.cli") and name != "davstore.__main__"
        for imported in imports
        if _within(imported, "davstore.cli")
    ]
    assert offenders == []


def test_http_imports_nothing_of_davstore() -> None:
    offenders = [
        f"{name} imports {imported}"
        for name, imports in IMPORTS.items()
        if _within(name, "davstore.http")
        for imported in imports
        if _within(imported, "davstore") and not _within(imported, "davstore.http")
    ]
    assert offenders == []


def test_errors_import_nothing_of_davstore() -> None:
    assert [m for m in IMPORTS["davstore.errors"] if _within(m, "davstore")] == []


@pytest.mark.parametrize(
    ("layer", "above"),
    [
        (
            "davstore.store",
            (
                "davstore.vfs",
                "davstore.frontends",
                "davstore.serving",
                "davstore.cli",
                "davstore.management",
                "davstore.models",
                "davstore.shares",
                "davstore.shares_app",
                "davstore.signals",
                "django.db",
                "django.contrib",
            ),
        ),
        (
            "davstore.vfs",
            (
                "davstore.frontends",
                "davstore.serving",
                "davstore.cli",
                "davstore.management",
                "davstore.shares",
                "davstore.shares_app",
                "django",
            ),
        ),
        (
            "davstore.frontends",
            ("davstore.serving", "davstore.cli", "davstore.management", "davstore.shares"),
        ),
        ("davstore.serving", ("davstore.cli", "davstore.management")),
    ],
)
def test_dependencies_point_down(layer: str, above: tuple[str, ...]) -> None:
    assert _offenders(layer, above) == []


def test_frontends_never_touch_a_storage() -> None:
    """Frontends work on the VFS: no Django Storage, no store adapter. Allowed: the store's
    value types in ``store.base`` (``Usage`` is part of the VFS's answers) and the local
    system calls of ``store.cached_io`` (the SQLite lock file's ``flock``)."""
    offenders = [
        f"{name} imports {imported}"
        for name, imports in IMPORTS.items()
        if _within(name, "davstore.frontends")
        for imported in imports
        if _within(imported, "django.core.files")
        or (
            _within(imported, "davstore.store")
            and not _within(imported, "davstore.store.base")
            and not _within(imported, "davstore.store.cached_io")
        )
    ]
    assert offenders == []


def _public_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(davstore.__path__, "davstore.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and ".migrations" not in info.name
        and info.name != "davstore.wagtail_hooks"  # only imported when Wagtail is there
    )


@pytest.mark.parametrize("name", _public_modules())
def test_every_public_module_declares_its_exports(name: str) -> None:
    """``__all__`` exists, names each export once, and every name in it is defined."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it does not define"
    public = {
        item
        for item, value in vars(module).items()
        if not item.startswith("_")
        and getattr(value, "__module__", None) == name
        and (isinstance(value, type) or callable(value))
    }
    assert sorted(public - set(exported)) == [], f"{name} defines public names not in __all__"
