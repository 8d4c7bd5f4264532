"""Signals of the changes made through a share (WebDAV, FUSE, admin).

``file_changed``: one signal per change made through a share.

Receivers get, besides ``sender`` (the :class:`davstore.shares.Share`):

- ``share``: the share's name (``"media"``);
- ``path``: the changed file or folder, relative to the share's root (``"photos/a.jpg"``),
  which is also its name in the Storage;
- ``action``: a :class:`davstore.vfs.events.Action` (``CREATED``, ``MODIFIED``,
  ``DELETED``, ``FOLDER_CREATED``, ``FOLDER_DELETED``, ``MOVED``, ``COPIED``, ``TOUCHED``);
- ``target``: the new path for ``MOVED`` and ``COPIED``, else None;
- ``is_dir``: whether ``path`` is a folder;
- ``user``: the Django user object when the change came through a door that knows it
  (WebDAV, the admin page), else the user name (FUSE: the user who mounted), or None;
- ``origin``: ``"webdav"``, ``"fuse"``, ``"admin"``, or None when unknown;
- ``files``: for ``FOLDER_DELETED``, and ``MOVED`` and ``COPIED`` of a folder, the list
  of the files the folder held (at any depth, by their paths before the change: a moved
  file's new path is ``target`` + what follows ``path``), as the VFS found them when it
  made the change; None for other changes, and for a folder removed or moved whole by
  the store that held more files than the share's tree limit.

The signal is sent on the thread that made the change, after the change is in the store;
what a receiver raises is logged and never undoes or fails the change. Changes made by the
site itself through the Storage API (``default_storage.save``) send nothing (they are
journaled: :mod:`davstore.site.announce`). Changes people make in the share's other
processes on this host (a ``davstore serve``, a mount) are sent too once the site calls
:func:`davstore.site.follow.follow_journals`, from its follower thread, with the user name
as ``user``.

``file_replaced``: sent by the site guard (:mod:`davstore.site.guard`) when new content is
put at a name some model row references (an overwrite, a copy or a move over it, a new
file at a name whose rows named a missing file, the new file of an editor's safe save), so
the site can drop what it derived from the old content (Wagtail's renditions). Receivers
get, besides ``sender`` (the :class:`davstore.shares.Share`):

- ``share``: the share's name;
- ``path``: the replaced file, relative to the share's root (its name in the Storage);
- ``references``: the rows naming it, a list of :class:`davstore.site.references.FileRef`
  (``model`` label, ``pk``, ``field``, ``name``), every one of them;
- ``user`` and ``origin``: as for ``file_changed``.

It is sent after the store holds the new content (and after an ``ImageField``'s
``width_field``/``height_field`` were updated), on the thread the guard does its database
work on; what a receiver raises is logged and never undoes or fails the change. It is sent
whatever ``ON_REPLACE_REFERENCED`` says (``allow`` only turns the validation off).

Code that changes a share's VFS on behalf of a user wraps the work in
:func:`acting_as_user`, so receivers get that user::

    with acting_as_user(request.user, "admin"):
        share.vfs.remove(path)
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from davstore.vfs.events import Action, Actor, Change, acting_as

if TYPE_CHECKING:
    from davstore.shares import Share
    from davstore.vfs.journal import Record

__all__ = [
    "acting_as_user",
    "file_changed",
    "file_replaced",
    "send_change",
    "send_record",
    "send_replaced",
    "set_current_user",
]

logger = logging.getLogger(__name__)

#: Sent once per change made through a share; see the module docstring for the arguments.
file_changed = Signal()

#: Sent when new content is put at a name model rows reference; see the module docstring.
file_replaced = Signal()

_user: contextvars.ContextVar[Any] = contextvars.ContextVar("davstore_user", default=None)


@contextlib.contextmanager
def acting_as_user(user: Any, origin: str) -> Iterator[Actor]:
    """Attribute the changes made inside the block to Django ``user`` through ``origin``."""
    token = _user.set(user)
    try:
        with acting_as(_username(user), origin) as actor:
            yield actor
    finally:
        _user.reset(token)


def set_current_user(user: Any) -> None:
    """Make ``user`` the one :func:`send_change` reports in the current context (used by
    the WebDAV door, which runs each request in a context of its own)."""
    _user.set(user)


def _username(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.get_username())


def _user_of(actor: Actor | None) -> Any:
    """The Django user behind ``actor`` where the current context knows it, else the
    actor's user name (or None)."""
    username = actor.user if actor is not None else None
    known = _user.get()
    if known is not None and username is not None and _username(known) == username:
        return known
    return username


def send_replaced(share: Share, path: str, references: list[Any], actor: Actor | None) -> None:
    """Send :data:`file_replaced` (the site guard calls it); receivers' errors are logged."""
    responses = file_replaced.send_robust(
        sender=share,
        share=share.name,
        path=path,
        references=references,
        user=_user_of(actor),
        origin=actor.origin if actor is not None else None,
    )
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error("file_replaced receiver %r failed on %s", receiver, path, exc_info=result)


def send_record(share: Share, record: Record, action: Action) -> None:
    """Send :data:`file_changed` for a journal ``record`` of a change made in another
    process (:mod:`davstore.site.follow`): ``user`` is the user name there."""
    responses = file_changed.send_robust(
        sender=share,
        share=share.name,
        path=record.path,
        action=action,
        target=record.target,
        is_dir=record.is_dir,
        user=record.user,
        origin=record.origin,
        files=None if record.files is None else list(record.files),
    )
    _log_failures(responses, action, record.path)


def _log_failures(responses: list[tuple[Any, Any]], action: Action, path: str) -> None:
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error(
                "file_changed receiver %r failed on %s %s",
                receiver,
                action.value,
                path,
                exc_info=result,
            )


def send_change(share: Share, change: Change) -> None:
    """Send :data:`file_changed` for ``change`` made in ``share`` (a VFS listener)."""
    actor = change.actor
    user = _user_of(actor)
    responses = file_changed.send_robust(
        sender=share,
        share=share.name,
        path=change.path,
        action=change.action,
        target=change.target,
        is_dir=change.is_dir,
        user=user,
        origin=actor.origin if actor is not None else None,
        files=None if change.files is None else list(change.files),
    )
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error(
                "file_changed receiver %r failed on %s %s",
                receiver,
                change.action.value,
                change.path,
                exc_info=result,
            )
