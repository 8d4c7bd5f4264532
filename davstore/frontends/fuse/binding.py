"""The one import seam for the FUSE binding.

davstore speaks the fusepy API. It prefers mfusepy (the maintained fork, which drives
libfuse 3 or libfuse 2) and falls back to fusepy (libfuse 2 only). Where both libfuse
versions are installed, mfusepy is pointed at libfuse 3 (1 MiB writes, ``renameat2``
flags, atomic ``O_TRUNC``); ``DAVSTORE_FUSE_LIBRARY=fuse`` (or ``fuse3``, or a path) picks
one explicitly, and ``FUSE_LIBRARY_PATH`` is honoured as mfusepy does.

The :class:`FUSE` exported here is the binding's class with three calls widened, so the
operations see what the kernel asked for and not a lossy conversion:

- ``rename`` receives the ``renameat2`` flags (libfuse 3): ``rename(old, new, flags)``;
- ``truncate`` receives the open file (libfuse 3 ``ftruncate``): ``truncate(path, n, fh)``;
- ``utimens`` receives ``(atime_ns, mtime_ns)`` where each is ``None`` for ``UTIME_OMIT``
  and ``UTIME_NOW`` is resolved to the current time (``times`` is ``None`` for "both now").

fusepy dispatches through ``operations(name, *args)``; :class:`FUSE` adapts a plain
operations object to that, so an operations class never needs ``__call__`` (mfusepy warns
about one) and never subclasses a binding's ``Operations`` (whose defaults would register
callbacks davstore does not mean to offer).

Importing this module raises ``ImportError`` when no binding or no libfuse is installed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import time
from typing import Any

__all__ = [
    "BINDING",
    "FUSE",
    "LIBFUSE_VERSION",
    "FuseOSError",
    "fuse_exit",
    "fuse_get_context",
]

_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


def _libfuse3_path() -> str | None:
    choice = os.environ.get("DAVSTORE_FUSE_LIBRARY", "fuse3")
    if os.sep in choice:
        return choice
    return ctypes.util.find_library(choice)


def _import_mfusepy() -> Any:
    saved = os.environ.get("FUSE_LIBRARY_PATH")
    if saved is None:
        path = _libfuse3_path()
        if path:
            os.environ["FUSE_LIBRARY_PATH"] = path
    try:
        return importlib.import_module("mfusepy")
    finally:
        if saved is None:
            os.environ.pop("FUSE_LIBRARY_PATH", None)


try:
    _lib: Any = _import_mfusepy()
    BINDING = "mfusepy"
    LIBFUSE_VERSION: tuple[int, int] = (_lib.fuse_version_major, _lib.fuse_version_minor)
except (ImportError, OSError, AttributeError) as _mfusepy_error:
    try:
        _lib = importlib.import_module("fuse")
    except (ImportError, OSError) as exc:
        raise ImportError(
            "davstore mount needs mfusepy (pip install 'davstore[fuse]') and libfuse "
            f"(apt-get install fuse3): {_mfusepy_error}; fusepy: {exc}"
        ) from exc
    BINDING = "fusepy"
    LIBFUSE_VERSION = (2, 9)

FuseOSError: type[OSError] = _lib.FuseOSError
fuse_get_context = _lib.fuse_get_context
fuse_exit: Any = getattr(_lib, "fuse_exit", None)


def _timespec_ns(ts: Any) -> int | None:
    if ts.tv_nsec == _UTIME_OMIT:
        return None
    if ts.tv_nsec == _UTIME_NOW:
        return time.time_ns()
    return int(ts.tv_sec) * 1_000_000_000 + int(ts.tv_nsec)


def _times(buf: Any) -> tuple[int | None, int | None] | None:
    if not buf:
        return None
    return _timespec_ns(buf.contents.actime), _timespec_ns(buf.contents.modtime)


class _Dispatch:
    """fusepy calls ``operations(name, *args)``; this forwards to a plain object."""

    def __init__(self, operations: Any) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    def __call__(self, op: str, *args: Any) -> Any:
        return getattr(self._operations, op)(*args)


def _path(raw: bytes | None, encoding: str = "utf-8") -> str | None:
    return None if raw is None else raw.decode(encoding, "surrogateescape")


def _fh(fip: Any, raw_fi: bool) -> Any:
    if not fip:
        return None
    return fip.contents if raw_fi else fip.contents.fh


if BINDING == "mfusepy":

    class FUSE(_lib.FUSE):  # type: ignore[misc]
        """mfusepy's FUSE with rename flags, ftruncate's handle and exact utimens."""

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return int(self.operations.rename(_path(old), _path(new), flags) or 0)

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fh = _fh(fip, self.raw_fi)
            return int(self.operations.truncate(_path(path), length, fh) or 0)

        def utimens_fuse_2(self, path: bytes | None, buf: Any) -> int:
            return int(self.operations.utimens(_path(path), _times(buf)) or 0)

        def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
            return self.utimens_fuse_2(path, buf)

else:

    class FUSE(_lib.FUSE):  # type: ignore[misc, no-redef]
        """fusepy's FUSE over a plain operations object, with exact utimens."""

        def __init__(self, operations: Any, mountpoint: str, **kwargs: Any) -> None:
            super().__init__(_Dispatch(operations), mountpoint, **kwargs)

        def utimens(self, path: bytes | None, buf: Any) -> int:
            return int(self.operations("utimens", _path(path), _times(buf)) or 0)
