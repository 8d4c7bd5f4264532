"""The conformance kit itself: it stays out of ``import davstore``, a store opts out of a
rule only by declaring a feature it lacks (and the declaration is checked), and a subclass
that forgets its storage or names an unknown frontend is told so."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from davstore.errors import NotSupported
from davstore.store import adapt
from davstore.testing import ConformanceSuite, Features, StorageConformance, VFSDriver
from davstore.vfs import VFS
from tests.minimal_storages import MinimalStorage, NoDeleteStorage

REPO = Path(__file__).resolve().parents[2]


def test_import_davstore_does_not_import_pytest() -> None:
    script = textwrap.dedent(
        """
        import sys
        import davstore, davstore.cli, davstore.store, davstore.vfs, davstore.frontends.webdav
        print(sorted(m for m in ("pytest", "_pytest", "davstore.testing") if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class _DeclaresTooLittle(StorageConformance):  # not collected: no Test prefix
    storage_factory = staticmethod(lambda folder: MinimalStorage())
    store_features = Features(delete=False)


class _DeclaresTooMuch(StorageConformance):
    storage_factory = staticmethod(lambda folder: NoDeleteStorage())


def test_a_declaration_that_is_not_the_stores_fails() -> None:
    with pytest.raises(AssertionError, match=r"store_features says Features\(delete=False\)"):
        _DeclaresTooLittle().test_store_features_are_the_stores(
            MinimalStorage(), Features(delete=False)
        )
    with pytest.raises(AssertionError, match=r"store_features says Features\(delete=True\)"):
        _DeclaresTooMuch().test_store_features_are_the_stores(NoDeleteStorage(), Features())


def test_a_store_that_cannot_delete_fails_the_rules_unless_it_says_so() -> None:
    suite = ConformanceSuite()
    with pytest.raises(NotSupported):
        suite.test_remove_file(VFSDriver(VFS(adapt(NoDeleteStorage()))), Features())
    suite.test_remove_file(VFSDriver(VFS(adapt(NoDeleteStorage()))), Features(delete=False))
    # A store that can delete and says it cannot fails the refusal's check.
    with pytest.raises(pytest.fail.Exception):
        suite.test_remove_file(VFSDriver(VFS(adapt(MinimalStorage()))), Features(delete=False))


def test_an_unknown_frontend_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match=r"frontends: \['vfs', 'ftp'\] must name some of"):

        class _Bad(StorageConformance):
            frontends = ("vfs", "ftp")

    with pytest.raises(TypeError, match="must name some of"):

        class _Empty(StorageConformance):
            frontends = ()


def test_subclasses_run_under_pytest_as_documented(tmp_path: Path) -> None:
    """A plain function works as storage_factory too; a class with no storage errors with
    the fix in the message; a wrong declaration fails its check and the refusal tests."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import django
            from django.conf import settings

            def pytest_configure():
                settings.configure(USE_TZ=True, SECRET_KEY="x")
                django.setup()
            """
        )
    )
    (tmp_path / "test_subclasses.py").write_text(
        textwrap.dedent(
            """
            from davstore.testing import Features, StorageConformance
            from tests.minimal_storages import MinimalStorage

            class TestPlainFunction(StorageConformance):
                frontends = ("vfs",)
                storage_factory = lambda folder: MinimalStorage()

            class TestNoStorage(StorageConformance):
                frontends = ("vfs",)

            class TestWrongDeclaration(StorageConformance):
                frontends = ("vfs",)
                storage_factory = staticmethod(lambda folder: MinimalStorage())
                store_features = Features(delete=False)
            """
        )
    )
    report = tmp_path / "report.xml"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            f"--junitxml={report}",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcomes: dict[str, dict[str, str]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        kind = next((child.tag for child in case if child.tag in ("failure", "error")), "passed")
        message = next((child.get("message", "") for child in case if child.tag == kind), "")
        outcomes.setdefault(case.get("classname", "").rpartition(".")[2], {})[
            case.get("name", "")
        ] = f"{kind}: {message}"
    plain = outcomes["TestPlainFunction"]
    assert len(plain) == 26 and all(v.startswith("passed") for v in plain.values()), plain
    missing = outcomes["TestNoStorage"]
    assert len(missing) == 26
    assert all(
        v.startswith("error") and "set storage_factory or override the storage fixture" in v
        for v in missing.values()
    ), missing
    wrong = outcomes["TestWrongDeclaration"]
    failed = sorted(name for name, v in wrong.items() if v.startswith("failure"))
    assert failed == [
        "test_copy_replaces_a_file[vfs]",
        "test_overwrite_keeps_the_exact_name[vfs]",
        "test_overwrite_replaces_the_whole_content[vfs]",
        "test_remove_file[vfs]",
        "test_rename_file[vfs]",
        "test_rename_folder_with_content[vfs]",
        "test_rename_into_another_folder[vfs]",
        "test_rename_replaces_a_file[vfs]",
        "test_rmtree[vfs]",
        "test_store_features_are_the_stores",
    ]
