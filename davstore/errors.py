"""The one error tree of davstore.

Every error raised below the frontends is one of these classes. Each is an ``OSError``
with ``errno`` set and, where Python has one, the matching built-in as a base, so code
that catches ``FileNotFoundError`` or ``PermissionError`` keeps working::

    OSError
    └── DavstoreError (EIO)                       any store or core failure
        ├── NotFound (ENOENT)                     + FileNotFoundError
        ├── AlreadyExists (EEXIST)                + FileExistsError
        ├── NotADirectory (ENOTDIR)               + NotADirectoryError
        ├── IsADirectory (EISDIR)                 + IsADirectoryError
        ├── DirectoryNotEmpty (ENOTEMPTY)
        ├── PermissionDenied (EACCES)             + PermissionError
        │   └── ReadOnly (EROFS)
        ├── InvalidPath (EINVAL)                  a name no store may hold
        │   └── NameTooLong (ENAMETOOLONG)
        ├── NotSupported (ENOSYS)                 the store lacks the operation
        ├── InsufficientStorage (ENOSPC)
        ├── FileTooLarge (EFBIG)                  over a configured upload limit
        ├── StoreError (EIO)                      the store failed; reason logged
        │   ├── StoreUnavailable (ECONNREFUSED)   + ConnectionError: unreachable
        │   └── StoreTimeout (ETIMEDOUT)          + TimeoutError
        ├── Conflict (EBUSY)                      a concurrent change got in the way
        ├── PartlyDone (EIO)                      a folder's tree changed in part
        │   ├── PartlyRemoved                     a folder remove left some members
        │   └── PartlyCopied                      a folder copy left some members out
        └── ChangesLost (ESTALE)                  a change-journal cursor the journal
                                                  cannot continue from (trimmed, another
                                                  journal, the folder itself replaced)

Construct them with the path they concern and an optional reason:
``NotFound("a/b.txt")`` or ``StoreError("a.txt", "bucket answered 500")``. A bare
``FileNotFoundError("x")`` (no errno) must never escape the core: FUSE would unmount.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "ChangesLost",
    "Conflict",
    "DavstoreError",
    "DirectoryNotEmpty",
    "FileTooLarge",
    "InsufficientStorage",
    "InvalidPath",
    "IsADirectory",
    "NameTooLong",
    "NotADirectory",
    "NotFound",
    "NotSupported",
    "PartlyCopied",
    "PartlyDone",
    "PartlyRemoved",
    "PermissionDenied",
    "ReadOnly",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "from_exception",
]

logger = logging.getLogger(__name__)


class DavstoreError(OSError):
    """Base of every davstore error; ``errno`` is always set."""

    code: ClassVar[int] = errno.EIO

    def __init__(self, path: str = "", reason: str | None = None) -> None:
        super().__init__(self.code, reason or os.strerror(self.code), path)

    @property
    def path(self) -> str:
        return str(self.filename or "")

    @property
    def reason(self) -> str:
        return str(self.strerror)

    def __str__(self) -> str:
        return f"{self.reason}: {self.path!r}" if self.path else self.reason


class NotFound(DavstoreError, FileNotFoundError):
    code = errno.ENOENT


class AlreadyExists(DavstoreError, FileExistsError):
    code = errno.EEXIST


class NotADirectory(DavstoreError, NotADirectoryError):
    code = errno.ENOTDIR


class IsADirectory(DavstoreError, IsADirectoryError):
    code = errno.EISDIR


class DirectoryNotEmpty(DavstoreError):
    code = errno.ENOTEMPTY


class PermissionDenied(DavstoreError, PermissionError):
    code = errno.EACCES


class ReadOnly(PermissionDenied):
    code = errno.EROFS


class InvalidPath(DavstoreError):
    code = errno.EINVAL


class NameTooLong(InvalidPath):
    code = errno.ENAMETOOLONG


class NotSupported(DavstoreError):
    code = errno.ENOSYS


class InsufficientStorage(DavstoreError):
    code = errno.ENOSPC


class FileTooLarge(DavstoreError):
    code = errno.EFBIG


class StoreError(DavstoreError):
    code = errno.EIO


class StoreUnavailable(StoreError, ConnectionError):
    code = errno.ECONNREFUSED


class StoreTimeout(StoreError, TimeoutError):
    code = errno.ETIMEDOUT


class Conflict(DavstoreError):
    code = errno.EBUSY


class PartlyDone(DavstoreError):
    """A change to a folder's whole tree was made for some members and not for others
    (:class:`PartlyRemoved`, :class:`PartlyCopied`). ``failures`` holds the first
    :attr:`KEPT` (member path, error) pairs of ``count``; frontends report each member
    (WebDAV: a 207 Multi-Status)."""

    code = errno.EIO
    #: How many failures are kept for the report (the count goes on past it).
    KEPT = 1000
    #: What the change did, for the default reason ("removed", "copied").
    done = "changed"

    def __init__(
        self,
        path: str = "",
        reason: str | None = None,
        *,
        failures: Sequence[tuple[str, DavstoreError]] = (),
        count: int | None = None,
    ) -> None:
        count = len(failures) if count is None else count
        super().__init__(path, reason or f"{count} members of the folder could not be {self.done}")
        self.failures = list(failures)
        self.count = count


class PartlyRemoved(PartlyDone):
    """Removing a folder's tree left some members: everything else is gone, and the
    folders above what is left stay (RFC 4918 section 9.6.1)."""

    done = "removed"


class PartlyCopied(PartlyDone):
    """Copying a folder's tree left some members out: everything else was copied, and a
    folder that could not be made left out what it holds (RFC 4918 section 9.8.8). ``path``
    and the failures name the source's members.

    A folder's move by a copy (a store that cannot rename) raises it too, the source kept
    whole and what the copy made at the target removed again. ``left`` is None then, or,
    when that removal failed as well, its error: a :class:`PartlyRemoved` naming the
    members still at the target, or the error that stopped it; the reason says both."""

    done = "copied"

    def __init__(
        self,
        path: str = "",
        reason: str | None = None,
        *,
        failures: Sequence[tuple[str, DavstoreError]] = (),
        count: int | None = None,
        left: DavstoreError | None = None,
    ) -> None:
        super().__init__(path, reason, failures=failures, count=count)
        self.left = left


class ChangesLost(DavstoreError):
    """The changes since a cursor cannot be told: the caller starts over from a full listing
    (:mod:`davstore.vfs.sync`). Never made from a store's errno (an NFS ``ESTALE`` is not it)."""

    code = errno.ESTALE


_BY_ERRNO: dict[int, type[DavstoreError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        AlreadyExists,
        NotADirectory,
        IsADirectory,
        DirectoryNotEmpty,
        PermissionDenied,
        ReadOnly,
        InvalidPath,
        NameTooLong,
        NotSupported,
        InsufficientStorage,
        FileTooLarge,
        StoreUnavailable,
        StoreTimeout,
        Conflict,
    )
}
_BY_ERRNO[errno.EPERM] = PermissionDenied
_BY_ERRNO[errno.EOPNOTSUPP] = NotSupported
_BY_ERRNO[errno.EDQUOT] = InsufficientStorage
_BY_ERRNO[errno.EXDEV] = NotSupported

_BY_TYPE: tuple[tuple[type[BaseException], type[DavstoreError]], ...] = (
    (FileNotFoundError, NotFound),
    (FileExistsError, AlreadyExists),
    (NotADirectoryError, NotADirectory),
    (IsADirectoryError, IsADirectory),
    (PermissionError, PermissionDenied),
    (TimeoutError, StoreTimeout),
    (ConnectionError, StoreUnavailable),
    (NotImplementedError, NotSupported),
)


def from_exception(exc: BaseException, path: str = "") -> DavstoreError:
    """Translate any exception raised by a backend into the davstore tree.

    Store adapters call this once, at the boundary: ``raise from_exception(e, name) from e``.
    Django's ``SuspiciousFileOperation`` becomes :class:`InvalidPath`; an ``OSError`` keeps
    its errno; everything else not recognised is a :class:`StoreError` whose reason names
    the original exception.
    """
    if isinstance(exc, DavstoreError):
        return exc
    from django.core.exceptions import SuspiciousFileOperation

    if isinstance(exc, SuspiciousFileOperation):
        return InvalidPath(path, f"refused by the storage: {exc}")
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in _BY_ERRNO:
        return _BY_ERRNO[exc.errno](path, exc.strerror or reason)
    for builtin, mapped in _BY_TYPE:
        if isinstance(exc, builtin):
            return mapped(path, reason)
    if isinstance(exc, OSError) and exc.errno:
        error = StoreError(path, exc.strerror or reason)
        error.errno = exc.errno
        return error
    return StoreError(path, f"{type(exc).__name__}: {reason}")
