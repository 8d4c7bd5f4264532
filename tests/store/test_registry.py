"""The adapter registry: a project's adapters chosen for their Storage classes, most specific
first, the generic adapter as the fallback, clear errors for bad dotted paths, and no cloud
SDK imported for a project that does not use it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage
from django.test import override_settings

from davstore.conf import parse_config
from davstore.store import FileSystemStore, GenericStore, MemoryStore, adapt
from davstore.store.registry import AdapterRegistry, Registration, register, unregister
from tests.minimal_storages import LimitedStorage, MinimalStorage

HERE = "tests.store.test_registry"


class ProjectStore(GenericStore):
    """A project's adapter (it only has to be told apart from the others)."""


class OtherProjectStore(GenericStore):
    pass


class FlatChild(LimitedStorage):
    """A subclass of a subclass: served by the most specific registration above it."""


@pytest.fixture
def registered() -> Iterator[list[Registration]]:
    """register() calls made by a test, undone after it."""
    made: list[Registration] = []
    yield made
    for registration in made:
        unregister(registration)


def test_the_built_ins_serve_their_classes_and_anything_else_is_generic(tmp_path: Path) -> None:
    assert type(adapt(FileSystemStorage(location=str(tmp_path)))) is FileSystemStore
    assert type(adapt(InMemoryStorage())) is MemoryStore
    assert type(adapt(MinimalStorage())) is GenericStore
    assert type(adapt(LimitedStorage())) is GenericStore


def test_an_adapter_registered_through_settings_serves_its_class_and_subclasses() -> None:
    adapters = {"tests.minimal_storages.MinimalStorage": f"{HERE}.ProjectStore"}
    with override_settings(DAVSTORE={"ADAPTERS": adapters}):
        assert type(adapt(MinimalStorage())) is ProjectStore
        assert type(adapt(FlatChild())) is ProjectStore
        assert type(adapt(InMemoryStorage())) is MemoryStore
    assert type(adapt(MinimalStorage())) is GenericStore  # read when adapting, never stale


def test_an_adapter_registered_through_the_api_serves_its_class_and_subclasses(
    registered: list[Registration],
) -> None:
    registered.append(register(MinimalStorage, ProjectStore))
    assert type(adapt(MinimalStorage())) is ProjectStore
    assert type(adapt(FlatChild())) is ProjectStore


def test_the_most_specific_registration_wins(registered: list[Registration]) -> None:
    registered.append(register(LimitedStorage, OtherProjectStore))
    registered.append(register("tests.minimal_storages.MinimalStorage", f"{HERE}:ProjectStore"))
    assert type(adapt(MinimalStorage())) is ProjectStore
    assert type(adapt(LimitedStorage())) is OtherProjectStore
    assert type(adapt(FlatChild())) is OtherProjectStore


def test_a_project_adapter_for_a_subclass_of_a_built_in_beats_the_built_in(
    tmp_path: Path, registered: list[Registration]
) -> None:
    class Encrypting(FileSystemStorage):
        def _save(self, name: str, content: Any) -> str:
            return super()._save(name, content)

    class ProjectFiles(FileSystemStorage):
        pass

    assert type(adapt(Encrypting(location=str(tmp_path)))) is GenericStore
    registered.append(register(Encrypting, ProjectStore))
    assert type(adapt(Encrypting(location=str(tmp_path)))) is ProjectStore
    assert type(adapt(ProjectFiles(location=str(tmp_path)))) is FileSystemStore


def test_a_later_registration_of_the_same_class_replaces_an_earlier_one(
    registered: list[Registration],
) -> None:
    registered.append(register(MinimalStorage, OtherProjectStore))
    with override_settings(
        DAVSTORE={"ADAPTERS": {"tests.minimal_storages.MinimalStorage": f"{HERE}.ProjectStore"}}
    ):
        assert type(adapt(MinimalStorage())) is ProjectStore  # the setting comes last
    registered.append(register(MinimalStorage, ProjectStore))
    assert type(adapt(MinimalStorage())) is ProjectStore


def test_a_declining_registration_leaves_the_storage_to_the_next_one(
    registered: list[Registration],
) -> None:
    registered.append(register(MinimalStorage, ProjectStore))
    registered.append(
        register(LimitedStorage, OtherProjectStore, accepts=lambda s, cls: type(s) is cls)
    )
    assert type(adapt(LimitedStorage())) is OtherProjectStore
    assert type(adapt(FlatChild())) is ProjectStore


def test_unregister_brings_the_fallback_back() -> None:
    registration = register(MinimalStorage, ProjectStore)
    assert type(adapt(MinimalStorage())) is ProjectStore
    unregister(registration)
    assert type(adapt(MinimalStorage())) is GenericStore
    with pytest.raises(ValueError):
        unregister(registration)


def test_a_separate_registry_starts_empty_and_reads_no_setting() -> None:
    own = AdapterRegistry()
    assert own.adapter_for(InMemoryStorage()) is None
    own.register(InMemoryStorage, ProjectStore)
    assert own.adapter_for(InMemoryStorage()) is ProjectStore
    assert type(adapt(InMemoryStorage())) is MemoryStore
    with override_settings(
        DAVSTORE={"ADAPTERS": {"tests.minimal_storages.MinimalStorage": f"{HERE}.ProjectStore"}}
    ):
        assert own.adapter_for(MinimalStorage()) is None
        assert AdapterRegistry(discover=True).adapter_for(MinimalStorage()) is ProjectStore


class Holder:
    class NestedStorage(MinimalStorage):
        pass


def test_a_registered_class_may_be_nested(registered: list[Registration]) -> None:
    registered.append(register(f"{HERE}:Holder.NestedStorage", f"{HERE}:ProjectStore"))
    assert type(adapt(Holder.NestedStorage())) is ProjectStore
    assert type(adapt(MinimalStorage())) is GenericStore


@pytest.mark.parametrize(
    ("adapters", "message"),
    [
        (
            {"tests.minimal_storages.MinimalStorage": "tests.no_such_module.Store"},
            "DAVSTORE['ADAPTERS']['tests.minimal_storages.MinimalStorage']: cannot import "
            "'tests.no_such_module.Store': No module named 'tests.no_such_module'",
        ),
        (
            {"tests.minimal_storages.MinimalStorage": f"{HERE}.NoSuchStore"},
            f"cannot import '{HERE}.NoSuchStore': '{HERE}' has no 'NoSuchStore'",
        ),
        (
            {"tests.minimal_storages.MinimalStorage": f"{HERE}.HERE"},
            f"'{HERE}.HERE' is not callable",
        ),
        (
            {"tests.no_such_module.Storage": f"{HERE}.ProjectStore"},
            "'tests.no_such_module.Storage': there is no module 'tests.no_such_module'",
        ),
        (
            {"nosuchpackage.sub.Storage": f"{HERE}.ProjectStore"},
            "there is no module 'nosuchpackage.sub'",
        ),
        (
            {f"{HERE}.ProjectStore": f"{HERE}.ProjectStore"},
            f"'{HERE}.ProjectStore' does not name a Storage class",
        ),
        (
            {"MinimalStorage": f"{HERE}.ProjectStore"},
            "'MinimalStorage' is not a dotted path (like 'package.module.Name')",
        ),
        (["tests.minimal_storages.MinimalStorage"], "must be a dict of Storage class path"),
    ],
)
def test_a_bad_dotted_path_in_settings_is_a_clear_error(adapters: object, message: str) -> None:
    with (
        override_settings(DAVSTORE={"ADAPTERS": adapters}),
        pytest.raises(ImproperlyConfigured) as raised,
    ):
        adapt(MinimalStorage())
    assert message in str(raised.value)


def test_the_setting_is_checked_with_the_rest_of_davstore() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"DAVSTORE\['ADAPTERS'\]: must be a dict"):
        parse_config({"ADAPTERS": "tests.ProjectStore"}, storages={})
    with pytest.raises(ImproperlyConfigured, match="is not a dotted path"):
        parse_config({"ADAPTERS": {"x": "y"}}, storages={})
    # Nothing is imported yet: the paths need not exist until a store is adapted.
    parse_config({"ADAPTERS": {"a.Storage": "b.Store"}}, storages={"default": {}})


def test_bad_arguments_to_register_are_refused_at_once() -> None:
    with pytest.raises(ImproperlyConfigured, match="'Store' is not a dotted path"):
        register(MinimalStorage, "Store")
    with pytest.raises(TypeError, match="is not a Storage class"):
        register(ProjectStore, ProjectStore)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not callable"):
        register(MinimalStorage, 42)  # type: ignore[arg-type]


def test_an_entry_point_registers_an_adapter(tmp_path: Path, monkeypatch: Any) -> None:
    info = tmp_path / "project_adapters-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: project-adapters\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[davstore.adapters]\ntests.minimal_storages.MinimalStorage = {HERE}:ProjectStore\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert type(adapt(MinimalStorage())) is ProjectStore
    assert type(adapt(FlatChild())) is ProjectStore
    # The setting comes after the entry points.
    with override_settings(
        DAVSTORE={
            "ADAPTERS": {"tests.minimal_storages.MinimalStorage": f"{HERE}.OtherProjectStore"}
        }
    ):
        assert type(adapt(MinimalStorage())) is OtherProjectStore


def test_a_bad_entry_point_names_itself(tmp_path: Path, monkeypatch: Any) -> None:
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[davstore.adapters]\ntests.minimal_storages.MinimalStorage = broken_nowhere:Store\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImproperlyConfigured) as raised:
        adapt(MinimalStorage())
    assert str(raised.value).startswith(
        "entry point davstore.adapters:tests.minimal_storages.MinimalStorage: cannot import "
        "'broken_nowhere:Store'"
    )


def test_no_cloud_sdk_is_imported_for_a_project_that_does_not_use_one(tmp_path: Path) -> None:
    """The built-in registrations for S3/GCS/Azure and a project's registration for a class
    nobody imported import nothing (its adapter module does not even exist: importing it
    would fail)."""
    script = textwrap.dedent(
        """
        import sys
        from django.conf import settings
        settings.configure(MEDIA_URL="/m/", DAVSTORE={"ADAPTERS": {
            "tests.minimal_storages.MinimalStorage": "tests.store.no_such_adapter.Store",
        }})
        from django.core.files.storage import FileSystemStorage, InMemoryStorage
        from davstore.store import adapt
        adapt(FileSystemStorage(location=sys.argv[1]))
        adapt(InMemoryStorage())
        heavy = ["boto3", "botocore", "storages", "google", "azure",
                 "tests.minimal_storages"]
        print(sorted(name for name in heavy if name in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_storage_registered_by_class_object_needs_no_import_path(
    registered: list[Registration],
) -> None:
    class Local(Storage):
        pass

    registered.append(register(Local, ProjectStore))
    assert type(adapt(Local())) is ProjectStore
