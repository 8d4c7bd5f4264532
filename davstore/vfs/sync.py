"""What changed under a folder since a point in the share's change journal.

Sync clients (WebDAV ``sync-collection``, RFC 6578) keep a :class:`Position` and ask for
the members of a folder that changed since it, instead of listing the whole tree again.
This module answers from the change journal every process of the share writes to
(:mod:`davstore.vfs.journal` on one host, :mod:`davstore.vfs.journal_redis` across hosts):
changes people made through any frontend of any process, and the site's own writes through
its Storage (:mod:`davstore.site.announce`). Frontends call :func:`position`,
:func:`listing` and :func:`changes_since`; they never read a journal themselves.

A journal offers itself to the VFS as a :class:`ChangeFeed` (``vfs.change_feed``): the
one a VFS follows across hosts wins over the one of its host (:func:`offer`). A VFS with
no journal (no usable state folder) has none, and these functions raise
:class:`~davstore.errors.NotSupported`.

What counts as a change of a member (``folder`` is the folder asked about; *depth 1* asks
for its direct members, *infinite* for everything below it):

- a file created, written, touched or deleted, a folder made or removed: that path, and its
  parent folder (whose modification time moved), when they are members;
- a move: the source removed and the target added; a copy: the target added. A folder
  moved or copied in is added with everything it holds (infinite), listed as it is now;
- a folder removed or moved away is reported once: what it held went with it;
- ``folder`` itself or a folder above it removed, moved away, or replaced by a move or
  copy onto its name: the changes cannot be told member by member, and
  :class:`~davstore.errors.ChangesLost` is raised, as for a position older than the
  journal's retention or of another journal (the caller starts again from a listing);
- davstore's own names (``.davstore-*``: trash, versions) are never members.

A member that changed is reported as it is now (an :class:`Entry`), or as removed when it
no longer exists, whatever happened to it in between. The new position covers exactly
the records read: a change that lands while the answer is made is reported (again, at
worst) next time, never lost. Answers may report a member that did not change in the end
(created then deleted); RFC 6578 allows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

from davstore.errors import ChangesLost, InvalidPath, NotADirectory, NotFound, NotSupported
from davstore.vfs import VFS, Entry
from davstore.vfs.events import Action
from davstore.vfs.journal import Record, forget
from davstore.vfs.paths import is_within, parent

__all__ = [
    "ChangeFeed",
    "Delta",
    "Position",
    "changes_since",
    "listing",
    "offer",
    "position",
]


class ChangeFeed(Protocol):
    """A change journal as :mod:`davstore.vfs.sync` reads it. Cursors are opaque text."""

    #: True for a journal that holds the changes of every host (Redis), False for one host.
    spans_hosts: bool

    def ident(self) -> str:
        """The journal's identity: a cursor means something only to the journal that made
        it (a journal made again, or another share's, has another)."""

    def cursor(self) -> str:
        """The cursor after the newest record now."""

    def after(self, cursor: str, until: str) -> Iterator[tuple[str, Record]]:
        """The records after ``cursor`` up to and including ``until``, the oldest first,
        each with the cursor just after it. Raises ChangesLost when ``cursor`` is not one
        of this journal's or records after it are gone (trimmed past the retention)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """A point in a share's change journal: ``cursor`` in the journal ``journal``."""

    journal: str
    cursor: str


@dataclasses.dataclass(frozen=True, slots=True)
class Delta:
    """The members of a folder that changed (or all of them, for a :func:`listing`).

    ``changed`` are the members as they are now; ``removed`` the paths (with whether each
    was a folder) of members that no longer exist; ``position`` is where to ask from next
    time. ``truncated``: more changes came after ``position`` than ``limit`` allowed (none
    may be in this answer when the first change alone has more members than the limit).
    """

    changed: list[Entry]
    removed: list[tuple[str, bool]]
    position: Position
    truncated: bool = False


def offer(vfs: VFS, feed: ChangeFeed) -> None:
    """Make ``feed`` the journal ``vfs`` answers sync questions from, unless it already
    has one that spans more hosts."""
    current = vfs.change_feed
    if current is None or feed.spans_hosts or not current.spans_hosts:
        vfs.change_feed = feed


def _feed(vfs: VFS) -> ChangeFeed:
    feed = vfs.change_feed
    if feed is None:
        raise NotSupported("", "this share has no change journal")
    return feed


def position(vfs: VFS) -> Position:
    """The position after the newest change. Raises NotSupported (no journal), StoreError
    (the journal cannot be read)."""
    feed = _feed(vfs)
    return Position(feed.ident(), feed.cursor())


def listing(vfs: VFS, folder: str, *, infinite: bool, limit: int | None = None) -> Delta:
    """Every member of ``folder`` now (the direct ones, or all below it with ``infinite``)
    and the position to ask for changes from. The position is taken before the folder is
    listed: what changes meanwhile is reported next time. More members than ``limit``:
    ``truncated`` and none. Raises NotFound, NotADirectory, NotSupported, StoreError."""
    folder = vfs.normalize(folder)
    start = position(vfs)
    if not vfs.stat(folder).is_dir:
        raise NotADirectory(folder)
    members: list[Entry] = []
    for entry in vfs.walk(folder) if infinite else iter(vfs.listdir(folder)):
        members.append(entry)
        if limit is not None and len(members) > limit:
            return Delta([], [], start, truncated=True)
    return Delta(members, [], start)


def changes_since(
    vfs: VFS, since: Position, folder: str, *, infinite: bool, limit: int | None = None
) -> Delta:
    """The members of ``folder`` that changed after ``since``, as the module docstring
    counts them. With ``limit``, stops before the first change whose members would pass
    it (``truncated``; the position is then just before that change).

    Raises ChangesLost (start again from :func:`listing`), NotFound, NotADirectory,
    NotSupported, StoreError.
    """
    folder = vfs.normalize(folder)
    feed = _feed(vfs)
    if since.journal != feed.ident():
        raise ChangesLost(folder, "the position is of another change journal")
    until = feed.cursor()
    if not vfs.stat(folder).is_dir:
        raise NotADirectory(folder)
    members: dict[str, bool] = {}  # path -> whether it is a folder (for a removed one)
    cursor = since.cursor
    truncated = False
    for after, record in feed.after(since.cursor, until):
        forget(vfs, record)  # a follower thread may not have applied it yet
        touched = _touched(vfs, record, folder, infinite=infinite)
        new = {path: is_dir for path, is_dir in touched.items() if path not in members}
        if limit is not None and len(members) + len(new) > limit:
            truncated = True
            break
        members.update(new)
        cursor = after
    else:
        cursor = until
    changed: list[Entry] = []
    removed: list[tuple[str, bool]] = []
    for path, is_dir in members.items():
        entry = vfs.lookup(path)
        if entry is None:
            removed.append((path, is_dir))
        else:
            changed.append(entry)
    return Delta(changed, removed, Position(since.journal, cursor), truncated)


def _canonical(vfs: VFS, path: str | None) -> str | None:
    """The canonical share path a record names, or None (davstore's own names, or a name
    no share may hold: the site's Storage may have taken one)."""
    if not path:
        return None
    try:
        return vfs.normalize(path)
    except InvalidPath:
        return None


def _touched(vfs: VFS, record: Record, folder: str, *, infinite: bool) -> dict[str, bool]:
    """The members of ``folder`` ``record`` changed, each with whether it is a folder."""
    action = record.action
    path = _canonical(vfs, record.path)
    target = _canonical(vfs, record.target)
    moved = action == Action.MOVED.value
    copied = action == Action.COPIED.value
    gone = moved or action in (Action.DELETED.value, Action.FOLDER_DELETED.value)
    if path is not None and gone and is_within(folder, path):
        raise ChangesLost(folder, f"{path!r} was removed or moved away")
    if target is not None and (moved or copied) and is_within(folder, target):
        raise ChangesLost(folder, f"{target!r} was replaced")
    named: dict[str, bool] = {}
    if path is not None and not copied:
        named[path] = record.is_dir
    if target is not None and (moved or copied):
        named[target] = record.is_dir
        if record.is_dir and infinite and is_within(target, folder):
            named.update(_tree(vfs, target))
    touched: dict[str, bool] = {}
    for name, is_dir in named.items():
        for member, member_is_dir in ((name, is_dir), (parent(name), True)):
            if member == folder or not is_within(member, folder):
                continue
            if infinite or parent(member) == folder:
                touched.setdefault(member, member_is_dir)
    return touched


def _tree(vfs: VFS, folder: str) -> dict[str, bool]:
    """What ``folder`` holds now (a folder moved or copied in), or nothing when it is gone."""
    try:
        return {entry.name: entry.is_dir for entry in vfs.walk(folder)}
    except (NotFound, NotADirectory):
        return {}
