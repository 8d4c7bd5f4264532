"""A folder's whole tree in the store, walked, copied and removed as a stream.

A folder may hold any number of entries: these functions never hold the tree, only one
open listing per level below the folder and at most :data:`BATCH` names waiting for the
store. :func:`walk` yields the entries as the listings give them; :func:`copy` makes each
folder and copies each file as it walks; :func:`remove` deletes the files in batches while
it walks, then each folder once everything in it is gone; :func:`prune` removes, while it
walks, the members a test does not keep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from davstore.errors import DavstoreError, NotFound, PartlyCopied, PartlyRemoved
from davstore.vfs.paths import is_within, parent

if TYPE_CHECKING:
    from davstore.store.base import ObjectInfo, ObjectStore

__all__ = ["BATCH", "copy", "prune", "remove", "walk"]

#: Names handed to ``ObjectStore.delete_many`` at once (S3's DeleteObjects takes 1000).
BATCH = 1000


def walk(store: ObjectStore, folder: str) -> Iterator[ObjectInfo]:
    """Every entry below ``folder`` in the store (uncached), each folder before what it
    holds. Raises the store's errors (NotFound, NotADirectory for ``folder``)."""
    levels = [iter(store.list(folder))]
    while levels:
        entry = next(levels[-1], None)
        if entry is None:
            levels.pop()
            continue
        yield entry
        if entry.is_dir:
            levels.append(iter(store.list(entry.name)))


def copy(
    store: ObjectStore,
    source: str,
    target: str,
    *,
    copy_file: Callable[[ObjectInfo, str], object] | None = None,
    copied: Callable[[ObjectInfo], None] | None = None,
) -> None:
    """Copy folder ``source`` and everything below it to ``target`` (not there yet, and
    not within ``source``), while walking: each folder is made before what it holds, each
    file copied by ``copy_file(entry, destination)`` (default: ``store.copy``); each
    member copied (folder made, file copied) is then told to ``copied``.

    ``target`` itself is made first; when that fails nothing is copied and its error is
    raised. Past it, a member that cannot be copied does not stop the rest: a folder that
    cannot be made or listed leaves out what it holds, and
    :class:`~davstore.errors.PartlyCopied` names (at the source) each member that failed
    (RFC 4918 section 9.8.8). A member that vanishes meanwhile is not an error.
    """
    failures: list[tuple[str, DavstoreError]] = []
    count = 0

    def failed(name: str, exc: DavstoreError) -> None:
        nonlocal count
        count += 1
        if len(failures) < PartlyCopied.KEPT:
            failures.append((name, exc))

    def listing(name: str) -> Iterator[ObjectInfo] | None:
        try:
            return iter(store.list(name))
        except NotFound:
            return None
        except DavstoreError as exc:
            failed(name, exc)
            return None

    store.make_dir(target)
    levels: list[tuple[str, Iterator[ObjectInfo]]] = []
    top = listing(source)
    if top is not None:
        levels.append((source, top))
    while levels:
        name, entries = levels[-1]
        entry = _next_entry(name, entries, failed)
        if entry is None:
            levels.pop()
            continue
        dest = target + entry.name[len(source) :]
        try:
            if entry.is_dir:
                store.make_dir(dest)
            elif copy_file is None:
                store.copy(entry.name, dest)
            else:
                copy_file(entry, dest)
        except NotFound:
            continue
        except DavstoreError as exc:
            failed(entry.name, exc)
            continue
        if copied is not None:
            copied(entry)
        if entry.is_dir:
            below = listing(entry.name)
            if below is not None:
                levels.append((entry.name, below))
    if count:
        raise PartlyCopied(source, failures=failures, count=count)


def prune(
    store: ObjectStore,
    folder: str,
    *,
    keeps: Callable[[ObjectInfo], bool],
    remove: Callable[[ObjectInfo], None],
    failed: Callable[[str, DavstoreError], None],
) -> None:
    """Walk the tree below ``folder`` and hand each entry ``keeps`` answers False for to
    ``remove`` (a folder with everything in it: what it holds is not walked); the folders
    kept are walked on. A member that cannot be removed (what ``remove`` raises) or
    listed is told to ``failed`` and the walk goes on; one that vanished meanwhile is not
    an error. Raises the store's errors for ``folder`` itself (NotFound, NotADirectory).
    """
    levels: list[tuple[str, Iterator[ObjectInfo]]] = [(folder, iter(store.list(folder)))]
    while levels:
        name, entries = levels[-1]
        entry = _next_entry(name, entries, failed)
        if entry is None:
            levels.pop()
            continue
        try:
            if keeps(entry):
                if entry.is_dir:
                    levels.append((entry.name, iter(store.list(entry.name))))
                continue
            remove(entry)
        except NotFound:
            continue
        except DavstoreError as exc:
            failed(entry.name, exc)


def remove(store: ObjectStore, folder: str, *, batch: int | None = None) -> None:
    """Remove ``folder`` and everything below it, deleting the files ``batch`` (default
    :data:`BATCH`) at a time while walking, then each folder, deepest first.

    A member that cannot be removed does not stop the rest: its folders above stay (they
    are not empty), everything else goes, and :class:`~davstore.errors.PartlyRemoved`
    names the members that failed (RFC 4918 section 9.6.1). A tree that vanishes
    meanwhile is not an error.
    """
    batch = batch or BATCH
    files: list[str] = []
    emptied: list[str] = []  # folders walked to their end, deepest first
    blocked: set[str] = set()  # folders holding a member that could not be removed
    failures: list[tuple[str, DavstoreError]] = []
    count = 0

    def failed(name: str, exc: DavstoreError) -> None:
        nonlocal count
        count += 1
        if len(failures) < PartlyRemoved.KEPT:
            failures.append((name, exc))
        blocked.add(name)
        while name != folder and is_within(name, folder):
            name = parent(name)
            if name in blocked:
                break
            blocked.add(name)

    def flush() -> None:
        names = files.copy()
        files.clear()
        if names:
            try:
                store.delete_many(names)
            except DavstoreError:
                for name in names:  # one by one, to know which fail
                    try:
                        store.delete(name)
                    except NotFound:
                        continue
                    except DavstoreError as exc:
                        failed(name, exc)
        folders = emptied.copy()
        emptied.clear()
        for name in folders:
            if name in blocked:
                continue
            try:
                store.remove_dir(name)
            except NotFound:
                continue
            except DavstoreError as exc:
                failed(name, exc)

    levels: list[tuple[str, Iterator[ObjectInfo]]] = [(folder, iter(store.list(folder)))]
    while levels:
        name, entries = levels[-1]
        entry = _next_entry(name, entries, failed)
        if entry is None:
            levels.pop()
            emptied.append(name)
        elif entry.is_dir:
            levels.append((entry.name, iter(store.list(entry.name))))
        else:
            files.append(entry.name)
        if len(files) + len(emptied) >= batch:
            flush()
    flush()
    if count:
        raise PartlyRemoved(folder, failures=failures, count=count)


def _next_entry(
    folder: str, entries: Iterator[ObjectInfo], failed: Callable[[str, DavstoreError], None]
) -> ObjectInfo | None:
    """The next entry of ``folder``'s listing; None at its end, when the folder went
    meanwhile, or when listing on failed (told to ``failed``)."""
    try:
        return next(entries, None)
    except NotFound:
        return None
    except DavstoreError as exc:
        failed(folder, exc)
        return None
