"""The conformance kit: davstore's rules as pytest classes, to run on any Storage.

A project checks that its own Storage works through davstore with a one-line subclass in
its test suite::

    from davstore.testing import StorageConformance

    class TestMyStorage(StorageConformance):
        storage_factory = staticmethod(lambda folder: MyStorage(location=folder))

That runs every rule of :class:`ConformanceSuite` (docs/SEMANTICS.md) on a new, empty store
per test, through the VFS (with and without the metadata cache) and WebDAV in-process. A
store that cannot do something declares it (``store_features = Features(delete=False)``):
the tests of it then check the documented refusal instead, and nothing is skipped.
:class:`FuseConformance` runs the same rules through a real FUSE mount.

The kit needs pytest and requests (the ``testing`` extra: ``pip install davstore[testing]``);
only this package imports them, never ``import davstore``. The pieces, for suites of other
shapes: the drivers (:mod:`davstore.testing.drivers`), an in-process WebDAV server
(:mod:`davstore.testing.webdav`) and real mounts (:mod:`davstore.testing.fuse`).
"""

from __future__ import annotations

from davstore.testing.drivers import Driver, FuseDriver, VFSDriver, WebDAVDriver
from davstore.testing.storage import FRONTENDS, FuseConformance, StorageConformance
from davstore.testing.suite import ConformanceSuite, Features, assert_not_supported

__all__ = [
    "FRONTENDS",
    "ConformanceSuite",
    "Driver",
    "Features",
    "FuseConformance",
    "FuseDriver",
    "StorageConformance",
    "VFSDriver",
    "WebDAVDriver",
    "assert_not_supported",
]
