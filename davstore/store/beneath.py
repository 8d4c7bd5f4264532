"""Names opened beneath a root folder, never through a symbolic link.

The local-disk store resolves every share path relative to a descriptor of its root folder
(``FileSystemStorage.location``, opened once, links in the location itself followed: that
is the administrator's choice), and no symbolic link below the root is ever followed, in any
component: a link is not part of the share (docs/SEMANTICS.md, *Symbolic links*).

- Where the kernel has ``openat2`` (Linux 5.6), one call resolves the whole name with
  ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS``: the kernel refuses a
  link (``ELOOP``) and anything that would leave the root (``EXDEV``) while it walks, so a
  link swapped in during the walk cannot lead out either.
- Elsewhere the name is walked one component at a time with ``openat(dir_fd, part,
  O_NOFOLLOW | O_DIRECTORY)``, each step relative to the folder the previous one opened.

Both refusals are reported as ``FileNotFoundError`` (ENOENT): what a link leads to is not
there for davstore, the same on every kernel. A change (unlink, rmdir, mkdir, rename, link)
is made with the ``*at`` call on the last component inside its resolved folder
(:func:`folder_of`), so it acts on the entry itself: deleting or replacing a link never
touches what it leads to.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import sys
from collections.abc import Iterator

__all__ = ["OPENAT2", "RESOLVE", "folder_of", "not_served", "open_beneath", "stat_beneath"]

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (new system calls)
#: RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH.
RESOLVE = 0x02 | 0x04 | 0x08
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: A folder opened only to resolve names in it (``O_PATH`` where there is one).
_FOLDER = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


def _load() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall  # CDLL: the GIL is released
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    syscall.argtypes = (
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(_OpenHow),
        ctypes.c_size_t,
    )
    how = _OpenHow(os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC, 0, RESOLVE)
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        fd = syscall(_SYS_OPENAT2, root, b".", ctypes.byref(how), ctypes.sizeof(how))
    finally:
        os.close(root)
    if fd < 0:
        return None  # ENOSYS: a kernel before 5.6 (or a sandbox that refuses the call)
    os.close(fd)
    return syscall


_SYSCALL = _load()
#: Whether names are resolved by ``openat2`` (else by the component walk).
OPENAT2 = _SYSCALL is not None
_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def not_served(name: str) -> FileNotFoundError:
    """The error of a name that leads through a symbolic link, or out of the root."""
    return FileNotFoundError(
        errno.ENOENT, "no such file (symbolic links are not followed)", name or "."
    )


def _openat2(root_fd: int, name: str, flags: int, mode: int) -> int:
    creates = flags & os.O_CREAT or (_TMPFILE and flags & _TMPFILE == _TMPFILE)
    # Without O_NOFOLLOW a link at the end is ELOOP too (with it, openat2 opens the link).
    how = _OpenHow(flags & ~_NOFOLLOW | _CLOEXEC, mode if creates else 0, RESOLVE)
    fd: int = _SYSCALL(  # type: ignore[misc]
        _SYS_OPENAT2, root_fd, name.encode(*_ENCODING), ctypes.byref(how), ctypes.sizeof(how)
    )
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code in (errno.ELOOP, errno.EXDEV):
        raise not_served(name)
    raise OSError(code, os.strerror(code), name)


_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _walk(root_fd: int, name: str, flags: int, mode: int) -> int:
    parts = name.split("/") if name and name != "." else ["."]
    if any(part in ("", "..") for part in parts):
        raise not_served(name)
    fd = root_fd
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                step = os.open(
                    part, flags | _NOFOLLOW | _CLOEXEC if last else _FOLDER, mode, dir_fd=fd
                )
            except OSError as exc:
                if _is_link(exc, fd, part):
                    raise not_served(name) from None
                raise
            if last:
                return step
            if fd != root_fd:
                os.close(fd)
            fd = step
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns
    finally:
        if fd != root_fd:
            os.close(fd)


def _is_link(exc: OSError, fd: int, part: str) -> bool:
    """Whether ``exc``, from opening ``part`` in ``fd`` with O_NOFOLLOW, met a link
    (ELOOP, or ENOTDIR where a folder was asked for)."""
    if exc.errno == errno.ELOOP:
        return True
    if exc.errno != errno.ENOTDIR:
        return False
    try:
        return stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_beneath(root_fd: int, name: str, flags: int, mode: int = 0o777) -> int:
    """``name`` (relative to the folder ``root_fd``; ``""`` is the root) opened with
    ``flags``, no symbolic link followed and nothing outside the root reached.

    :raises OSError: as ``os.open`` would; FileNotFoundError where a link is met.
    """
    if _SYSCALL is not None:
        return _openat2(root_fd, name or ".", flags, mode)
    return _walk(root_fd, name, flags, mode)


def stat_beneath(root_fd: int, name: str) -> os.stat_result:
    """The stat of ``name`` beneath ``root_fd`` (never of a link, nor through one)."""
    with folder_of(root_fd, name) as (fd, base):
        st = os.stat(base, dir_fd=fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise not_served(name)
    return st


@contextlib.contextmanager
def folder_of(root_fd: int, name: str) -> Iterator[tuple[int, str]]:
    """The folder holding ``name`` (a descriptor to resolve its last component in, closed
    on leaving) and that last component (``"."`` for the root)."""
    parent, _, base = name.rpartition("/")
    if not parent:
        yield root_fd, base or "."
        return
    fd = open_beneath(root_fd, parent, _FOLDER)
    try:
        yield fd, base
    finally:
        os.close(fd)
