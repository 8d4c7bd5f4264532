"""The conformance suite on one Storage, ready to subclass: :class:`StorageConformance`
(through the VFS and WebDAV in-process) and :class:`FuseConformance` (through a real mount).
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.testing.drivers import Driver, FuseDriver, VFSDriver, WebDAVDriver
from davstore.testing.fuse import start_mount
from davstore.testing.suite import ConformanceSuite, Features
from davstore.testing.webdav import serve_share
from davstore.vfs import VFS

__all__ = ["FRONTENDS", "FuseConformance", "StorageConformance"]

#: The frontends :class:`StorageConformance` runs the suite through: the VFS called
#: directly, the VFS with its metadata cache off, and WebDAV served in-process.
FRONTENDS = ("vfs", "vfs-uncached", "webdav")


class StorageConformance(ConformanceSuite):
    """Every rule of the suite on one Storage, through each of ``frontends``.

    The one-line use::

        class TestMyStorage(StorageConformance):
            storage_factory = staticmethod(lambda folder: MyStorage(location=folder))

    ``storage_factory(folder)`` makes a new, empty Storage for each test (``folder`` is a
    fresh empty folder it may use); where making one needs other fixtures (an emulator),
    override the ``storage`` fixture instead. ``frontends`` is a subset of
    :data:`FRONTENDS` (default: all). ``store_features`` says what the store cannot do
    (:class:`~davstore.testing.Features`); ``test_store_features_are_the_stores`` checks it
    against what davstore detects, so a store never opts out of a rule by mistake.
    """

    storage_factory: ClassVar[Callable[[Path], Storage] | None] = None
    frontends: ClassVar[Sequence[str]] = FRONTENDS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        frontends = list(cls.frontends)
        unknown = [name for name in frontends if name not in FRONTENDS]
        if unknown or not frontends:
            raise TypeError(
                f"{cls.__name__}.frontends: {frontends!r} must name some of {FRONTENDS!r}"
            )

        def frontend(self: StorageConformance, request: pytest.FixtureRequest) -> str:
            """The frontend ``driver`` goes through (one of ``frontends``)."""
            return str(request.param)

        cls.frontend = pytest.fixture(params=frontends)(frontend)  # type: ignore[attr-defined]

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        """A new, empty Storage, made by ``storage_factory``."""
        factory = inspect.getattr_static(self, "storage_factory")
        if isinstance(factory, staticmethod):
            factory = factory.__func__
        if factory is None:
            raise TypeError(
                f"{type(self).__name__}: set storage_factory or override the storage fixture"
            )
        folder = tmp_path / "storage"
        folder.mkdir()
        return factory(folder)  # type: ignore[no-any-return]

    @pytest.fixture
    def driver(self, frontend: str, storage: Storage, tmp_path: Path) -> Iterator[Driver]:
        """An empty share of ``storage`` seen through ``frontend``."""
        if frontend == "webdav":
            with serve_share(storage, tmp_path / "davstore-state") as share:
                yield WebDAVDriver(share.url, share.session)
        elif frontend == "vfs-uncached":
            yield VFSDriver(VFS(adapt(storage), cache_ttl=0))
        else:
            yield VFSDriver(VFS(adapt(storage)))

    def test_store_features_are_the_stores(self, storage: Storage, features: Features) -> None:
        """The declared features are the ones davstore finds in the store's methods."""
        capabilities = adapt(storage).capabilities
        assert features == Features(delete=capabilities.delete), (
            f"store_features says {features}, the store's adapter finds {capabilities}"
        )


class FuseConformance(ConformanceSuite):
    """Every rule of the suite through a real FUSE mount: ``davstore mount MOUNTPOINT
    ARGS --foreground``, with ARGS from the ``mount_args`` fixture, which a subclass
    provides::

        class TestMyStorageThroughFuse(FuseConformance):
            @pytest.fixture
            def mount_args(self, tmp_path):
                return ["--backend", "myproject.storage.MyStorage",
                        "--option", f"location={tmp_path / 'files'}"]

    The mount runs this interpreter with this process's environment, in the current
    folder (so the project's modules import), its state under the test's ``tmp_path``.
    It needs a usable ``/dev/fuse`` (Linux, root or a setuid ``fusermount3``) and the
    ``fuse`` extra; a mount that cannot be made fails the test with the mount's log.
    """

    @pytest.fixture
    def mount_args(self) -> Sequence[str]:
        """What follows ``davstore mount MOUNTPOINT``: the share to mount."""
        raise TypeError(f"{type(self).__name__}: provide a mount_args fixture")

    @pytest.fixture
    def driver(self, mount_args: Sequence[str], tmp_path: Path) -> Iterator[Driver]:
        """The mounted share, unmounted after the test."""
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")}
        mount = start_mount(tmp_path / "mnt", mount_args, log_dir=tmp_path, cwd=Path.cwd(), env=env)
        try:
            yield FuseDriver(mount.mountpoint)
        finally:
            mount.stop()
            # Captured by pytest, shown with a failure.
            sys.stdout.write(f"--- {mount.mountpoint} log ---\n{mount.output()}\n")
