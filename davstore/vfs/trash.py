"""The share's trash: a person's delete moves what it removes into ``.davstore-trash/``.

:class:`Trash` is a :class:`~davstore.vfs.policy.Policy` on ``DELETE``: instead of letting
the VFS remove a file (or a folder with what it holds, as one entry), it moves it into the
share's own store, under the reserved folder :data:`TRASH_FOLDER` (a ``.davstore-`` name:
never listed, never reachable by path through any frontend). Each entry is two names::

    .davstore-trash/<id>.json      the record: path, kind, who, when, origin, size, state
    .davstore-trash/<id>/content   the file, or the folder's tree

The record lives in the store beside the content, so the trash works on every store and
replicas sharing the store share the trash with no other state.

**Never in neither place.** A delete writes the record first (state ``moving``), then moves
the content: a rename where the store has one (local disk), else a copy then a delete
(S3, GCS and Azure copy server-side, past 5 GiB in parts on S3; other stores stream), then
marks the record ``done`` (on local disk, and for folders; on stores without rename a
file's delete writes no such mark: the entry is done once the file is in the trash and
not left at its path, which the first listing, restore or recovery checks and records).
A failure part-way is rolled back at once; a crash leaves a ``moving`` record that
:meth:`Trash.recover` (at start and before every purge) settles: when nothing of the entry
is left at its original path the move is finished, otherwise it is rolled back (what is
missing at the original path is copied back from the trash, then the trash copy goes).
Nothing at the original path is ever deleted by a recovery, and a file made at one of the
names since (told from the original by its etag, else its modification time) is no
original: the entry is then kept rather than rolled back.

**Order.** The trash runs innermost (``order`` = :data:`~davstore.vfs.policy.ORDER_INNERMOST`):
every refusal (the site guard) comes first, so a refused delete is never trashed.

**Retention** (:class:`Retention`): entries older than ``days`` go, at most ``versions``
entries per original path are kept (the newest), and while the trash holds more than
``max_size`` bytes the oldest go. :meth:`Trash.purge` removes them within a time budget;
removing an entry deletes its record first, then its content, and a content left without
a record (a purge cut short) is removed by the next purge.

A folder holding no file is removed, not trashed (there is nothing to keep but names);
restoring a file makes the folders above it again.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from davstore.errors import (
    AlreadyExists,
    Conflict,
    DavstoreError,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    PartlyDone,
    PartlyRemoved,
)
from davstore.store.base import ObjectInfo
from davstore.vfs import trees
from davstore.vfs.events import Action, Actor, current_actor
from davstore.vfs.paths import join, parent
from davstore.vfs.policy import ORDER_INNERMOST, Kind, Operation, Proceed
from davstore.vfs.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from davstore.store.base import ObjectStore
    from davstore.vfs.core import VFS

__all__ = [
    "PURGE_LOCK",
    "TRASH_FOLDER",
    "PurgeResult",
    "Retention",
    "Trash",
    "TrashEntry",
    "trash_of",
]

logger = logging.getLogger("davstore.trash")

#: The reserved folder at the share's root that holds the trash.
TRASH_FOLDER = ".davstore-trash"
_RECORD = ".json"
#: The file of the share's state folder whose ``flock`` the host's purging process holds.
PURGE_LOCK = "trash-purge.lock"
_CONTENT = "content"

#: States of a record.
MOVING, DONE, RESTORING = "moving", "done", "restoring"
#: Kinds of an entry: removed by a delete, or kept when something replaced it.
DELETED, REPLACED = "deleted", "replaced"

#: The name a restore is putting content back onto, while its ``REPLACE`` runs through
#: the policies: the restore keeps the file replaced itself, and the trash among the
#: policies lets it through.
_restoring: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "davstore_trash_restoring", default=None
)


@dataclasses.dataclass(frozen=True, slots=True)
class Retention:
    """How long the trash keeps what it holds (``DAVSTORE`` keys ``TRASH``,
    ``TRASH_DAYS``, ``TRASH_VERSIONS``, ``TRASH_MAX_SIZE``; flags ``--trash/--no-trash``,
    ``--trash-days``, ``--trash-versions``, ``--trash-max-size``)."""

    enabled: bool = True
    #: Entries older than this many days are purged.
    days: float = 30.0
    #: At most this many entries per original path are kept (the newest).
    versions: int = 5
    #: Bytes the trash may hold; past it the oldest entries are purged. None: no cap.
    max_size: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TrashEntry:
    """One entry of the trash (its record)."""

    id: str
    path: str
    kind: str
    is_dir: bool
    when: float
    user: str | None
    origin: str | None
    size: int
    state: str = DONE
    #: For a folder, in records of earlier versions: the names of its files relative to
    #: it (what a recovery checks). Now empty: a recovery walks the trash's copy.
    files: tuple[str, ...] = ()
    #: The store's etags of what was moved (the file; a folder's ``files`` in records of
    #: earlier versions, in order),
    #: where the store gives them: a recovery tells the original, still at its path, from
    #: a file made there since.
    etags: tuple[str | None, ...] = ()
    #: No "done" mark follows the move (a file's delete on a store without rename): the
    #: entry is done once the file is in the trash and not left at its path, which a
    #: listing, a restore or a recovery checks (:meth:`Trash._finished`).
    inferred: bool = False

    def public(self) -> dict[str, Any]:
        """What ``davstore trash list --json`` prints for the entry."""
        return {
            "id": self.id,
            "path": self.path,
            "kind": self.kind,
            "is_dir": self.is_dir,
            "when": _iso(self.when),
            "user": self.user,
            "origin": self.origin,
            "size": self.size,
            "state": self.state,
        }

    def encode(self) -> bytes:
        data = dataclasses.asdict(self)
        data["files"] = list(self.files)
        data["etags"] = list(self.etags)
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> TrashEntry:
        data = json.loads(raw)
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["files"] = tuple(values.get("files", ()))
        values["etags"] = tuple(values.get("etags", ()))
        return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one :meth:`Trash.purge` did."""

    removed: int
    freed: int
    #: False when the time budget ran out before every due entry was removed.
    complete: bool
    entries: int
    size: int


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")


def _new_id(now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{secrets.token_hex(4)}"


class Trash:
    """The trash of one share's VFS (see the module docstring).

    :param stale_after: seconds after which a ``moving`` record no process of this share
        is working on is settled by :meth:`recover` (another replica may still be copying
        a big folder before that).
    """

    kinds = frozenset({Kind.DELETE, Kind.REPLACE, Kind.MOVE})
    order = ORDER_INNERMOST

    def __init__(
        self,
        vfs: VFS,
        retention: Retention | None = None,
        *,
        clock: Callable[[], float] = time.time,
        stale_after: float = 900.0,
    ) -> None:
        self.vfs = vfs
        self.retention = retention or Retention()
        self.clock = clock
        self.stale_after = stale_after
        self._moving: set[str] = set()
        self._lock = threading.Lock()
        self._purger: threading.Thread | None = None
        #: The descriptor holding the host's purge lock (:meth:`start_purging`), if held.
        self._purge_lock: int | None = None
        self._stop = threading.Event()
        #: (entries, bytes) as last counted (a listing, a purge) and kept up to date by
        #: this process's changes since; None before the first count. The metrics use it.
        self.figures: tuple[int, int] | None = None
        #: The entries this process made, per path, oldest first: past ``versions`` the
        #: oldest goes at once (a program saving one file again and again, fsx, a
        #: database in a mount, never fills the trash between two purges).
        self._made: dict[str, collections.deque[TrashEntry]] = {}
        #: The last entry made for each path, until the activity log takes it (by path,
        #: not by thread: the guard runs the change on a thread of its own).
        self._last: dict[str, TrashEntry] = {}

    def __repr__(self) -> str:
        return f"<Trash of {self.vfs.describe()}>"

    @property
    def store(self) -> ObjectStore:
        return self.vfs.store

    def install(self) -> Trash:
        """Add the trash to its VFS (innermost, whatever was added before); returns it."""
        if self.retention.enabled:
            self.vfs.add_policy(self)
        return self

    # -- the policy ------------------------------------------------------------------

    def around(self, op: Operation, proceed: Proceed) -> None:
        if op.kind is Kind.REPLACE or op.kind is Kind.MOVE:
            self._versioned(op, proceed)
            return
        if not self.retention.enabled or (op.is_dir and op.prepare is None):
            proceed()  # rmdir: an empty folder, nothing to keep
            return
        files: tuple[ObjectInfo, ...] = ()
        if op.is_dir:
            # Counted as it is walked, whatever its size: the record names no files (a
            # recovery walks the trash's copy instead).
            size, holds_files = 0, False
            for found_entry in trees.walk(self.store, op.path):
                if not found_entry.is_dir:
                    holds_files = True
                    size += found_entry.size or 0
            if not holds_files:
                proceed()
                return
        else:
            found = self.vfs._lookup(op.path)  # the VFS just looked: cached
            if found is None:
                proceed()
                return
            size = found.size or 0
            files = (found,)
        if op.prepare is not None:
            op.prepare()
        self._trash(op.path, op.is_dir, files, size, kind=DELETED, actor=op.actor)

    def _versioned(self, op: Operation, proceed: Proceed) -> None:
        """An overwrite (new content committed, a copy or a move onto a file): the
        content it replaces is copied into a ``replaced`` entry first (a server-side copy
        on object stores), the change made, the entry marked done. When the change fails
        the copy goes; when the copy fails the change is not made (the error is raised):
        a person's overwrite is never final."""
        name = op.path if op.kind is Kind.REPLACE else op.target
        if not self.retention.enabled or name is None or _restoring.get() == name:
            proceed()  # (a restore onto the file keeps the version itself)
            return
        found = self.vfs._lookup(name)  # the VFS just looked: cached
        if found is None and op.kind is Kind.REPLACE:
            found = self.store.find(name)  # the cache may not know the file yet
        if found is None or found.is_dir:
            proceed()
            return
        self._keep_version(name, found, op.actor, proceed)

    def _keep_version(
        self, name: str, found: ObjectInfo, actor: Actor | None, proceed: Proceed
    ) -> None:
        """Copy file ``name`` (``found``) into a new ``replaced`` entry, call ``proceed``
        (the change that replaces it), mark the entry done; the copy goes when
        ``proceed`` fails (see :meth:`_versioned`)."""
        now = self.clock()
        entry = TrashEntry(
            id=_new_id(now),
            path=name,
            kind=REPLACED,
            is_dir=False,
            when=now,
            user=actor.user if actor is not None else None,
            origin=actor.origin if actor is not None else None,
            size=found.size or 0,
            state=MOVING,
        )
        with self._lock:
            self._moving.add(entry.id)
        try:
            self._make_folder(TRASH_FOLDER)
            self._write(entry)
            try:
                self._make_folder(self._entry_folder(entry.id))
                self.store.copy(name, self._content(entry.id))
                proceed()
            except BaseException:
                try:
                    self._drop(entry.id)
                except DavstoreError:
                    logger.exception("could not drop the version %s of %r", entry.id, name)
                raise
            try:
                self._write(dataclasses.replace(entry, state=DONE))
            except DavstoreError:
                logger.exception("could not mark the version %s of %r done", entry.id, name)
        finally:
            with self._lock:
                self._moving.discard(entry.id)
        self._counted(1, entry.size)
        self._made_one(entry)

    def _made_one(self, entry: TrashEntry) -> None:
        """Remember ``entry``; drop this process's oldest entries of its path past
        ``versions`` (the purge does the same for every process's)."""
        with self._lock:
            if len(self._last) > 1000:
                self._last.clear()
            self._last[entry.path] = entry
            made = self._made.setdefault(entry.path, collections.deque())
            made.append(entry)
            excess = [made.popleft() for _ in range(len(made) - self.retention.versions)]
            if len(self._made) > 10_000:  # bounded: forget the oldest paths
                for path in list(self._made)[:5_000]:
                    del self._made[path]
        for old in excess:
            try:
                self._drop(old.id)
            except DavstoreError:
                logger.exception("could not drop the trash entry %s", old.id)
                continue
            self._counted(-1, -old.size)

    def last_made(self, path: str) -> TrashEntry | None:
        """The entry the last change of ``path`` made, if any (the activity log names it
        beside the change); once."""
        with self._lock:
            return self._last.pop(path, None)

    def versions(self, path: str) -> list[TrashEntry]:
        """The previous versions of file ``path`` (``replaced`` entries), oldest first."""
        path = self.vfs.normalize(path)
        return [e for e in self.entries() if e.path == path and e.kind == REPLACED]

    def _trash(
        self,
        path: str,
        is_dir: bool,
        files: tuple[ObjectInfo, ...],
        size: int,
        *,
        kind: str,
        actor: Actor | None,
    ) -> TrashEntry:
        """Move ``path`` into a new entry: record (moving), move, record (done).

        ``files``: the folder's files, or the file itself (what its record keeps of
        them). A delete on a store without rename writes no "done" record: the move is a
        copy then a delete there, and its end is inferred (:attr:`TrashEntry.inferred`),
        which saves the request and its stat on every delete."""
        now = self.clock()
        entry = TrashEntry(
            id=_new_id(now),
            path=path,
            kind=kind,
            is_dir=is_dir,
            when=now,
            user=actor.user if actor is not None else None,
            origin=actor.origin if actor is not None else None,
            size=size,
            state=MOVING,
            files=tuple(f.name[len(path) + 1 :] for f in files) if is_dir else (),
            etags=tuple(f.etag for f in files),
            # A file's delete only: a folder's record names no files to check (its
            # recovery walks the trees), so it keeps its "done" mark.
            inferred=kind == DELETED and not is_dir and not self.store.capabilities.rename,
        )
        with self._lock:
            self._moving.add(entry.id)
        try:
            self._make_folder(TRASH_FOLDER)
            self._write(entry)
            try:
                self._make_folder(self._entry_folder(entry.id))
                self._move(path, self._content(entry.id), is_dir, files)
            except BaseException:
                logger.warning("moving %r into the trash failed: rolling back", path)
                try:
                    self._settle(entry)
                except DavstoreError:
                    logger.exception(
                        "could not roll back the trash entry %s of %r yet; the next recovery will",
                        entry.id,
                        path,
                    )
                raise
            done = dataclasses.replace(entry, state=DONE)
            try:
                if not entry.inferred:
                    self._write(done)
            except DavstoreError:
                # The move happened: the recovery marks it done (nothing left at the path).
                logger.exception("could not mark the trash entry %s of %r done", entry.id, path)
        finally:
            with self._lock:
                self._moving.discard(entry.id)
        self._counted(1, size)
        self._made_one(done)
        logger.info(
            "share %s: %r moved to the trash as %s (%s by %s via %s, %d bytes)",
            self.vfs.describe(),
            path,
            entry.id,
            kind,
            entry.user,
            entry.origin,
            size,
        )
        return done

    # -- store work ------------------------------------------------------------------

    @staticmethod
    def _entry_folder(entry_id: str) -> str:
        return f"{TRASH_FOLDER}/{entry_id}"

    @staticmethod
    def _content(entry_id: str) -> str:
        return f"{TRASH_FOLDER}/{entry_id}/{_CONTENT}"

    @staticmethod
    def _record(entry_id: str) -> str:
        return f"{TRASH_FOLDER}/{entry_id}{_RECORD}"

    def _make_folder(self, name: str) -> None:
        """Make folder ``name`` where the store has real folders (elsewhere a name
        prefix needs nothing)."""
        if self.store.capabilities.native_dirs:
            self.store.make_dir(name)

    def _make_parents(self, name: str) -> None:
        """Make the folders above share path ``name`` that are missing."""
        if not self.store.capabilities.native_dirs:
            return
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            found = self.store.find(folder)
            if found is None:
                self.store.make_dir(folder)
            elif not found.is_dir:
                raise NotADirectory(folder, "a file is where a folder of the path should be")

    def _write(self, entry: TrashEntry) -> None:
        upload = self.store.start_upload(
            self._record(entry.id), spool_dir=None, spool_memory=1 << 20
        )
        try:
            upload.file.write(entry.encode())
            upload.commit()
        except BaseException:
            upload.abort()
            raise

    def _read(self, entry_id: str) -> TrashEntry:
        if "/" in entry_id or not entry_id or entry_id.startswith("."):
            raise InvalidPath(entry_id, "not a trash entry id")
        try:
            with self.store.open_read(self._record(entry_id)) as stream:
                raw = stream.read()
        except (NotFound, NotADirectory):
            raise NotFound(entry_id, "no such entry in the trash") from None
        try:
            return TrashEntry.decode(raw)
        except (ValueError, TypeError) as exc:
            raise Conflict(entry_id, f"the trash record is damaged: {exc}") from exc

    def _move(self, source: str, target: str, is_dir: bool, files: tuple[ObjectInfo, ...]) -> None:
        """Move ``source`` to ``target`` in the store: rename, or copy then delete."""
        store = self.store
        if store.capabilities.rename:
            store.rename(source, target)
        elif not is_dir:
            store.copy(source, target)
            store.delete(source)
        else:
            # Streamed both ways, however big: every file copied, then the source removed.
            try:
                trees.copy(store, source, target)
                trees.remove(store, source)
            except PartlyDone as exc:
                raise exc.failures[0][1] from exc  # the caller rolls the whole move back

    def _remove_content(self, name: str) -> None:
        """Remove file or folder ``name`` of the trash, whatever is there of it."""
        found = self.store.find(name)
        if found is None:
            return
        if not found.is_dir:
            self.store.delete(name)
            return
        try:
            trees.remove(self.store, name)
        except PartlyRemoved as exc:
            raise exc.failures[0][1] from exc  # the next purge removes what is left

    def _drop(self, entry_id: str) -> None:
        """Remove an entry: its record first (then it is no entry), then its content."""
        with contextlib.suppress(NotFound):
            self.store.delete(self._record(entry_id))
        self._remove_content(self._entry_folder(entry_id))

    # -- recovery --------------------------------------------------------------------

    def _settle(self, entry: TrashEntry) -> str:
        """Finish or roll back an entry left ``moving`` or ``restoring``; returns what
        was done (``"finished"``, ``"rolled back"``, ``"kept"``)."""
        content = self._content(entry.id)
        if entry.state == RESTORING:
            if self.store.find(content) is not None:
                self._write(dataclasses.replace(entry, state=DONE))
                return "kept"
            self._drop(entry.id)  # the restore moved it all
            return "finished"
        if entry.kind == REPLACED:
            # A version is a copy (or, restoring onto a file, a move) of what was
            # replaced: kept when the copy is whole, else there is nothing to keep.
            if self.store.find(content) is not None:
                self._write(dataclasses.replace(entry, state=DONE))
                return "finished"
            self._drop(entry.id)
            return "rolled back"
        if entry.is_dir and not entry.files:
            return self._settle_folder(entry)
        names = self._names(entry)
        found = [self.store.find(n) for n in names]
        left = [n for i, n in enumerate(names) if self._is_original(entry, i, found[i])]
        if not left:
            self._write(dataclasses.replace(entry, state=DONE))
            return "finished"
        # Roll back: what is missing at the original path comes back from the trash. A
        # file made since at one of the names stays, and so does the entry then (what it
        # holds of that name is nowhere else): copies rather than a loss.
        newcomer = False
        for name, here in zip(names, found, strict=True):
            if name in left:
                continue
            if here is not None:
                newcomer = True
                continue
            kept = content + name[len(entry.path) :]
            if self.store.find(kept) is None:
                logger.error("trash entry %s: %r is in neither place", entry.id, name)
                continue
            self._make_parents(name)
            self.store.copy(kept, name)
        if newcomer:
            self._write(dataclasses.replace(entry, state=DONE))
            return "kept"
        self._drop(entry.id)
        return "rolled back"

    def _names(self, entry: TrashEntry) -> list[str]:
        """The original names of what ``entry`` moved (the file, or the folder's files)."""
        return [entry.path] if not entry.is_dir else [join(entry.path, f) for f in entry.files]

    @staticmethod
    def _is_original(entry: TrashEntry, index: int, found: ObjectInfo | None) -> bool:
        """Whether ``found``, at the ``index``-th name of ``entry``, is what the entry
        moved (not yet gone from its path) rather than a file made there since: not
        another etag (where both are known) and not modified after the entry was made
        (where the store tells); when the store tells neither, it is taken for the
        original. A mistake either way loses nothing: an original taken for a newcomer
        stays where it is and in the trash; a newcomer taken for the original has its
        etag, its content."""
        if found is None or found.is_dir:
            return False
        etag = entry.etags[index] if index < len(entry.etags) else None
        if etag is not None and found.etag is not None and found.etag != etag:
            return False
        if found.mtime is not None:
            return found.mtime <= entry.when
        return True

    def _finished(self, entry: TrashEntry) -> bool:
        """Whether the move of an :attr:`~TrashEntry.inferred` entry is over: every file
        in the trash, none left at its path (another process may still be moving it)."""
        content = self._content(entry.id)
        for index, name in enumerate(self._names(entry)):
            if self.store.find(content + name[len(entry.path) :]) is None:
                return False
            if self._is_original(entry, index, self.store.find(name)):
                return False
        return True

    def _settled(self, entry: TrashEntry) -> TrashEntry:
        """``entry``, done when it is an :attr:`~TrashEntry.inferred` entry whose move is
        over (its record then marked done, once: later readers ask nothing)."""
        if entry.state != MOVING or not entry.inferred:
            return entry
        with self._lock:
            if entry.id in self._moving:
                return entry
        if not self._finished(entry):
            return entry
        done = dataclasses.replace(entry, state=DONE)
        try:
            self._write(done)
        except DavstoreError:
            logger.exception("could not mark the trash entry %s done", entry.id)
        return done

    def _settle_folder(self, entry: TrashEntry) -> str:
        """:meth:`_settle` of a folder's delete, walking the trees (never holding them): no
        file left at the original path finishes the move; otherwise what the trash's copy
        holds that is missing there is copied back, and the copy goes."""
        content = self._content(entry.id)
        if self.store.find(content) is None:  # nothing moved yet (no rename, no copy)
            self._drop(entry.id)
            return "rolled back"

        def kept() -> Iterator[str]:
            for found in trees.walk(self.store, content):
                if not found.is_dir:
                    yield found.name[len(content) + 1 :]

        try:
            left = any(not found.is_dir for found in trees.walk(self.store, entry.path))
        except (NotFound, NotADirectory):
            left = False
        if not left:
            self._write(dataclasses.replace(entry, state=DONE))
            return "finished"
        for name in kept():
            original = join(entry.path, name)
            if self.store.find(original) is None:
                self._make_parents(original)
                self.store.copy(join(content, name), original)
        self._drop(entry.id)
        return "rolled back"

    def recover(self, *, everything: bool = False) -> int:
        """Settle the records left ``moving``/``restoring`` by a crash (older than
        ``stale_after``, or all with ``everything``) and remove contents left without a
        record. Returns how many entries were settled."""
        settled = 0
        for entry in self._scan(orphans=True):
            if entry.state == DONE:
                continue
            with self._lock:
                if entry.id in self._moving:
                    continue
            if self._settled(entry).state == DONE:
                settled += 1  # a delete whose end is inferred: not left by a crash
                continue
            if not everything and self.clock() - entry.when < self.stale_after:
                continue
            try:
                how = self._settle(entry)
            except DavstoreError:
                logger.exception("could not settle the trash entry %s", entry.id)
                continue
            logger.warning(
                "trash entry %s of %r left %s: %s", entry.id, entry.path, entry.state, how
            )
            settled += 1
        return settled

    # -- listing ---------------------------------------------------------------------

    def _scan(self, *, orphans: bool = False) -> Iterator[TrashEntry]:
        try:
            names = list(self.store.list(TRASH_FOLDER))
        except (NotFound, NotADirectory):
            return
        records = {e.basename[: -len(_RECORD)] for e in names if e.basename.endswith(_RECORD)}
        if orphans:
            for e in names:
                if e.is_dir and e.basename not in records:
                    logger.info("removing trash content %s left without a record", e.basename)
                    try:
                        self._remove_content(e.name)
                    except DavstoreError:
                        logger.exception("could not remove %s", e.name)
        for entry_id in sorted(records):
            try:
                yield self._read(entry_id)
            except NotFound:
                continue  # purged meanwhile
            except Conflict:
                logger.exception("skipping the trash entry %s", entry_id)

    def entries(self) -> list[TrashEntry]:
        """The entries of the trash, oldest first (those being moved included)."""
        entries = sorted((self._settled(e) for e in self._scan()), key=lambda e: (e.when, e.id))
        self.figures = (len(entries), sum(e.size for e in entries))
        return entries

    def _counted(self, entries: int, size: int) -> None:
        with self._lock:
            if self.figures is not None:
                self.figures = (self.figures[0] + entries, self.figures[1] + size)

    def size(self) -> int:
        """Bytes the trash holds (the sizes its records give)."""
        return sum(e.size for e in self.entries())

    # -- restore ---------------------------------------------------------------------

    def restore(self, entry_id: str, to: str | None = None) -> TrashEntry:
        """Put entry ``entry_id`` back at its path, or at ``to``; returns the entry.

        The folders above are made where missing. A file already at the name is kept
        first, as a ``replaced`` entry of the trash (restorable in turn); a folder at the
        name, or a file where a folder is restored, is refused (AlreadyExists: restore
        elsewhere with ``to``). A file restored over a file is new content at that name,
        as any overwrite: it runs inside the VFS's ``REPLACE`` policies (the site guard
        may refuse it, :class:`~davstore.vfs.policy.RefusedContent` naming the rows, and
        then nothing changes). Raises NotFound (no such entry), Conflict (being moved),
        ReadOnly, InvalidPath, what a policy raises, and the store's errors.
        """
        entry = self._settled(self._read(entry_id))
        if entry.state != DONE:
            raise Conflict(entry_id, f"the entry is {entry.state}; try again later")
        target = self.vfs.normalize(entry.path if to is None else to)
        self.vfs._check_writable(target)
        if not target:
            raise InvalidPath(target, "cannot restore onto the share root")
        existing = self.store.find(target)
        if existing is not None and (existing.is_dir or entry.is_dir):
            what = "a folder" if existing.is_dir else "a file"
            raise AlreadyExists(
                target, f"{what} is at {target!r} now; restore elsewhere with --to PATH"
            )
        content = self._content(entry.id)

        def put_back() -> None:
            self._make_parents(target)
            restoring = dataclasses.replace(entry, state=RESTORING)
            self._write(restoring)
            try:
                self._move(content, target, entry.is_dir, ())
            except BaseException:
                with contextlib.suppress(DavstoreError):
                    self._settle(restoring)
                raise

        try:
            if existing is None:
                put_back()  # nothing is replaced (the name, as it was, comes back)
            else:
                self._replace_with(target, existing, content, put_back)
        finally:
            self.vfs.invalidate(parent(target))
        try:
            self._drop(entry.id)
        except DavstoreError:
            logger.exception("trash entry %s restored but its record stays", entry.id)
        self._counted(-1, -entry.size)
        with self._lock:
            made = self._made.get(entry.path)
            if made is not None:
                self._made[entry.path] = collections.deque(e for e in made if e.id != entry.id)
        self.vfs._emit(
            Action.FOLDER_CREATED if entry.is_dir else Action.CREATED, target, is_dir=entry.is_dir
        )
        logger.info(
            "share %s: trash entry %s restored to %r", self.vfs.describe(), entry.id, target
        )
        return dataclasses.replace(entry, path=target)

    def _replace_with(
        self, target: str, existing: ObjectInfo, content: str, put_back: Callable[[], None]
    ) -> None:
        """``put_back`` (the restore's move of ``content`` onto file ``target``) as a
        ``REPLACE`` of ``target`` through the VFS's policies, the file there kept first as
        a ``replaced`` entry (by this trash: the trash among the policies lets this one
        through)."""
        actor = current_actor()
        found = self.store.find(content)
        if found is None:
            raise NotFound(content, "the trash entry's content is missing")
        source = self.vfs._content(content, found)
        token = _restoring.set(target)
        try:
            self.vfs._apply(
                Kind.REPLACE,
                target,
                lambda: self._keep_version(target, existing, actor, put_back),
                source=source,
            )
        finally:
            _restoring.reset(token)
            source.close()

    def entry(self, entry_id: str) -> TrashEntry:
        """The entry ``entry_id``. Raises NotFound, InvalidPath (not an id), Conflict (a
        damaged record)."""
        return self._settled(self._read(entry_id))

    def open_content(self, entry_id: str) -> tuple[TrashEntry, BinaryIO]:
        """What file entry ``entry_id`` keeps, to read (the admin's download of a deleted
        file or a previous version), with the entry. Raises NotFound, IsADirectory (a
        folder's entry: restore it to see what it holds), Conflict (being moved or
        restored), InvalidPath, and the store's errors."""
        entry = self._settled(self._read(entry_id))
        if entry.state != DONE:
            raise Conflict(entry_id, f"the entry is {entry.state}; try again later")
        if entry.is_dir:
            raise IsADirectory(entry.path, "a folder's entry: restore it to see what it holds")
        return entry, self.store.open_read(self._content(entry.id))

    def remove(self, entry_id: str) -> TrashEntry:
        """Purge entry ``entry_id`` now, whatever retention says (the admin's "Purge");
        returns it. Its record goes first, then its content. Raises NotFound, Conflict
        (being moved or restored), InvalidPath, and the store's errors."""
        entry = self._settled(self._read(entry_id))
        if entry.state != DONE:
            raise Conflict(entry_id, f"the entry is {entry.state}; try again later")
        self._drop(entry.id)
        self._counted(-1, -entry.size)
        with self._lock:
            made = self._made.get(entry.path)
            if made is not None:
                self._made[entry.path] = collections.deque(e for e in made if e.id != entry.id)
        logger.info(
            "share %s: trash entry %s of %r purged", self.vfs.describe(), entry.id, entry.path
        )
        return entry

    # -- retention -------------------------------------------------------------------

    def due(
        self, entries: list[TrashEntry] | None = None, *, everything: bool = False
    ) -> list[TrashEntry]:
        """The entries retention says go, oldest first."""
        entries = self.entries() if entries is None else entries
        done = [e for e in entries if e.state == DONE]
        if everything:
            return done
        now, keep = self.clock(), self.retention
        due: dict[str, TrashEntry] = {}
        for e in done:
            if now - e.when > keep.days * 86400:
                due[e.id] = e
        by_path: dict[str, list[TrashEntry]] = {}
        for e in done:
            by_path.setdefault(e.path, []).append(e)
        for versions in by_path.values():
            for e in versions[: max(len(versions) - keep.versions, 0)]:
                due[e.id] = e
        if keep.max_size is not None:
            total = sum(e.size for e in done if e.id not in due)
            for e in done:
                if total <= keep.max_size:
                    break
                if e.id not in due:
                    due[e.id] = e
                    total -= e.size
        return sorted(due.values(), key=lambda e: (e.when, e.id))

    def purge(
        self,
        *,
        budget: float | None = None,
        everything: bool = False,
        progress: Progress = NO_PROGRESS,
    ) -> PurgeResult:
        """Settle what a crash left, then remove the entries retention says go (all with
        ``everything``), oldest first, until ``budget`` seconds have passed. ``progress``
        counts the entries due as each is handled."""
        started = time.monotonic()
        self.recover()
        entries = self.entries()
        removed = freed = 0
        complete = True
        due = self.due(entries, everything=everything)
        progress.total(len(due))
        for entry in due:
            progress.advance()
            if budget is not None and time.monotonic() - started > budget:
                complete = False
                break
            try:
                self._drop(entry.id)
            except DavstoreError:
                logger.exception("could not purge the trash entry %s", entry.id)
                complete = False
                continue
            removed += 1
            freed += entry.size
        left = len(entries) - removed
        size = sum(e.size for e in entries) - freed
        self.figures = (left, size)
        if removed:
            logger.info("trash purge: %d entries, %d bytes removed", removed, freed)
        return PurgeResult(removed, freed, complete, left, size)

    def start_purging(
        self,
        interval: float = 600.0,
        budget: float = 10.0,
        first_after: float = 60.0,
        *,
        state_dir: Path | None = None,
    ) -> None:
        """Purge every ``interval`` seconds on a thread of its own (at most ``budget``
        seconds each time), the first time ``first_after`` seconds from now: a server or
        mount that just started answers its first requests without the purge's store
        calls beside them (entries left moving are settled only once older than
        ``stale_after`` anyway). :meth:`close` stops it.

        With ``state_dir`` (the share's state folder), one process of the host purges:
        the one holding the ``flock`` on :data:`PURGE_LOCK` there, taken without waiting
        at its first round and kept until :meth:`close` (or its end). The others (the
        workers of ``serve --workers N``, a mount and a server of the same share) skip
        each round while it is held and try again at the next, so when the purging
        process stops, another takes over. Without it, every round purges."""
        if self._purger is not None:
            return

        def run() -> None:
            self._stop.wait(first_after)
            while not self._stop.is_set():
                if self._purges_here(state_dir):
                    try:
                        self.purge(budget=budget)
                    except Exception:  # a store's error or a bug: the next round tries again
                        logger.exception("the trash purge failed")
                self._stop.wait(interval)

        self._purger = threading.Thread(target=run, name="davstore-trash-purge", daemon=True)
        self._purger.start()

    def _purges_here(self, state_dir: Path | None) -> bool:
        """Whether this process purges the trash this round: it holds the purge lock of
        ``state_dir``, or takes it now (see :meth:`start_purging`). A state folder where
        no ``flock`` can be had (an error other than "held elsewhere") purges, as without
        one: a trash purged twice loses nothing, a trash never purged fills up."""
        if state_dir is None or self._purge_lock is not None:
            return True
        try:
            fd = os.open(state_dir / PURGE_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            logger.warning("cannot open the trash's purge lock in %s (%s): purging", state_dir, exc)
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # another process of the host purges
            return False
        except OSError as exc:
            os.close(fd)
            logger.warning("cannot lock the trash's purge lock in %s (%s): purging", state_dir, exc)
            return True
        self._purge_lock = fd
        logger.info("share %s: this process purges the trash", self.vfs.describe())
        return True

    def close(self) -> None:
        """Stop the purging thread and let go of the purge lock (the trash itself stays
        usable)."""
        self._stop.set()
        if self._purger is not None:
            self._purger.join(timeout=5)
            self._purger = None
        if self._purge_lock is not None:
            os.close(self._purge_lock)  # the lock goes with the last descriptor
            self._purge_lock = None


def trash_of(vfs: VFS) -> Trash | None:
    """The trash installed on ``vfs``, if any."""
    for policy in vfs._policies.get(Kind.DELETE, ()):
        if isinstance(policy, Trash):
            return policy
    return None
