"""Change events: one :class:`Change` per successful change made through a VFS.

Listeners subscribe with :meth:`davstore.vfs.VFS.subscribe`; the Django app turns changes
into signals, replicas publish them to invalidate each other's caches. A listener runs on
the thread that made the change, after the change is in the store; what it raises is logged
and never undoes or fails the change.

Who made a change is carried by a context variable that frontends set around each request
or callback with :func:`acting_as`; the VFS copies it into every :class:`Change`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
from collections.abc import Callable, Iterator

__all__ = ["Action", "Actor", "Change", "Listener", "Watcher", "acting_as", "current_actor"]


class Action(enum.Enum):
    """What happened to ``Change.path``."""

    CREATED = "created"  # a new file
    MODIFIED = "modified"  # new content for an existing file
    DELETED = "deleted"  # a file removed
    FOLDER_CREATED = "folder_created"
    FOLDER_DELETED = "folder_deleted"  # a folder removed, with what it held
    MOVED = "moved"  # file or folder moved to ``Change.target``
    COPIED = "copied"  # file or folder copied to ``Change.target``
    TOUCHED = "touched"  # modification time set


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change and through which door (``"webdav"``, ``"fuse"``, ``"admin"``)."""

    user: str | None
    origin: str


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One change made through the VFS. Paths are canonical share paths.

    ``files``: for a folder removed (``FOLDER_DELETED``), moved (``MOVED``) or copied
    (``COPIED``), the paths of the files it held, below it at any depth, as the VFS found
    them when it made the change (before it: a move's files are named at ``path``; each
    one's new path is ``target`` + what follows ``path``). None for every other change,
    and for a folder of more than the VFS's ``max_tree_entries`` entries: the VFS never
    holds a whole tree. A folder copied, or moved by a copy (stores without rename), is
    named as the copy walks it (for a copy that failed in part: the files it copied); one
    removed (the delete streams, or the trash takes it whole) or moved natively (the store
    renames it whole) is walked for the event.
    """

    action: Action
    path: str
    is_dir: bool = False
    target: str | None = None
    actor: Actor | None = None
    files: tuple[str, ...] | None = None


Listener = Callable[[Change], None]
#: Told ``(path, tree)`` when a VFS forgets ``path`` (``tree``: and below) for a change
#: made elsewhere (:meth:`davstore.vfs.VFS.watch`).
Watcher = Callable[[str, bool], None]

_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "davstore_actor", default=None
)


def current_actor() -> Actor | None:
    """The actor set by the innermost :func:`acting_as`, if any."""
    return _actor.get()


@contextlib.contextmanager
def acting_as(user: str | None, origin: str) -> Iterator[Actor]:
    """Attribute the VFS changes made inside the block to ``user`` coming through ``origin``."""
    actor = Actor(user, origin)
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)
