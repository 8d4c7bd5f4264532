"""The site guard: a person's change never leaves a row naming a missing or broken file.

:func:`protect` adds a :class:`Guard` to a share's VFS when some model field stores names in
the share's Storage (:mod:`davstore.site.references`). Per share in ``DAVSTORE``:

- ``ON_DELETE_REFERENCED``: ``"refuse"`` (default) | ``"allow"``. Deleting a file some row
  names, or a folder holding one, is refused (:class:`~davstore.vfs.policy.Refused`,
  ``EACCES``) with the rows: the first 20 (model, pk, field, admin URL) and the count.
- ``ON_MOVE_REFERENCED``: ``"rewrite"`` (default) | ``"refuse"`` | ``"allow"``. Moving or
  renaming such a file or folder updates the rows to the new names in one database
  transaction with the store move: the rows are updated, the store moves, then the
  transaction commits; a failed move rolls the transaction back, a failed commit moves the
  entry back. A new name longer than the field's ``max_length`` is refused.
- ``ON_REPLACE_REFERENCED``: ``"validate"`` (default) | ``"allow"``. New content at a name
  an ``ImageField`` row names (an overwrite, a copy or a move over it, a new file where the
  rows named a missing one) must be an image Pillow opens, else it is refused
  (:class:`~davstore.vfs.policy.RefusedContent`, ``EINVAL``; WebDAV 415) before the store
  is touched, and the old content stays; once stored, the rows' ``width_field`` and
  ``height_field`` are set to the new size. Whatever this says, new content at a
  referenced name sends :data:`davstore.signals.file_replaced` with the rows.

**Editors' safe saves.** Word, LibreOffice, vim, gedit and Finder save by moving the
original to a backup or temporary name in the same folder (:func:`is_backup_name`), putting
the new file at the original name, then deleting the backup. With ``rewrite``, the move to
the backup name rewrites the rows as any move does (they never name a missing file), and
the guard remembers it for :data:`SAFE_SAVE_WINDOW` seconds: new content at the original
name within that time (a new file, or a move onto it) moves the rows back to the original
name, in the transaction of that change, and counts as a replacement (validated, signal
sent). The backup, which then no row names, can be deleted. The memory is kept in the
share's state folder (:mod:`davstore.site.safe_saves`): a sequence whose steps reach
different processes of the host (several ``serve --workers``, a mount and a server) ends
as on one. Without a state folder it is the process's own.

The guard's database work runs on the calling thread where Python started it (the WebDAV
server's and the admin's threads: Django's per-thread connections live as long as they do),
and on one thread the guard owns where the caller is a thread Python did not start (FUSE's
callbacks: each may come on a fresh thread state, where a connection would never be closed)
or runs an event loop (Django refuses synchronous queries there): guarded changes through
a mount run one at a time. Each refusal is logged once
(``davstore.site``).

There is no superuser override: a superuser sees the rows in the refusal and changes them
(or the share's policy) first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from django.db import DatabaseError, connections, models, router, transaction

from davstore.site.references import (
    FileRef,
    Found,
    GuardedField,
    ReferenceIndex,
    fields_for,
    same_storage,
)
from davstore.site.safe_saves import SafeSaves
from davstore.vfs.paths import parent
from davstore.vfs.policy import Kind, Operation, Proceed, Refused, RefusedContent

if TYPE_CHECKING:
    from davstore.shares import Share
    from davstore.vfs import VFS

__all__ = [
    "SAFE_SAVE_WINDOW",
    "Guard",
    "OnDelete",
    "OnMove",
    "OnReplace",
    "connect_signals",
    "index_for",
    "indexes",
    "is_backup_name",
    "on_post_delete",
    "on_post_save",
    "protect",
    "reset",
]

logger = logging.getLogger("davstore.site")

T = TypeVar("T")

#: Seconds a move of a referenced file to a backup name waits for new content at the
#: original name (an editor's safe save takes well under a second; a person, longer).
SAFE_SAVE_WINDOW = 30.0

#: The names editors move an original to while they save (the last path component):
#: Word ``~WRL0001.tmp``, vim, gedit and emacs ``name~``, LibreOffice's lock
#: ``.~lock.name#``, GIO's ``.goutputstream-XXXXXX``, Apple's safe save
#: ``name.sb-xxxxxxxx-XXXXXX``, and vim's write probe ``4913``.
_BACKUP_NAME = re.compile(
    r"~WR[A-Z]\w*\.tmp|.+~|\.~lock\..+#|\.goutputstream-\w+|.+\.sb-[\w-]+|4913",
    re.IGNORECASE,
)


def is_backup_name(path: str) -> bool:
    """Whether ``path``'s last component is a name editors save through."""
    return _BACKUP_NAME.fullmatch(path.rpartition("/")[2]) is not None


class OnDelete(enum.Enum):
    REFUSE = "refuse"
    ALLOW = "allow"


class OnMove(enum.Enum):
    REWRITE = "rewrite"
    REFUSE = "refuse"
    ALLOW = "allow"


class OnReplace(enum.Enum):
    VALIDATE = "validate"
    ALLOW = "allow"


class Guard:
    """The policies of one share (see the module docstring).

    :param state_dir: the share's state folder, where the safe saves under way are kept
        for every process of the host; None: this process remembers its own.
    """

    def __init__(
        self,
        index: ReferenceIndex,
        *,
        on_delete: OnDelete,
        on_move: OnMove,
        on_replace: OnReplace = OnReplace.VALIDATE,
        share: Share | None = None,
        clock: Callable[[], float] = time.monotonic,
        state_dir: Path | None = None,
    ) -> None:
        self.index = index
        self.on_delete = on_delete
        self.on_move = on_move
        self.on_replace = on_replace
        self.share = share
        self._clock = clock
        # Moves and replacements are always watched: new content at a referenced name
        # sends file_replaced whatever the policies.
        kinds = {Kind.MOVE, Kind.REPLACE, Kind.CREATE}
        if on_delete is not OnDelete.ALLOW:
            kinds.add(Kind.DELETE)
        self.kinds = frozenset(kinds)
        #: Safe saves under way.
        self._saves = SafeSaves(state_dir, self._now, SAFE_SAVE_WINDOW)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"davstore-guard-{index.share}"
        )

    def __repr__(self) -> str:
        return f"<Guard of share {self.index.share!r}>"

    def _now(self) -> float:
        return self._clock()  # read through the attribute: tests move the clock

    def around(self, op: Operation, proceed: Proceed) -> None:
        if self.lets_through(op.kind, op.path, op.is_dir, op.target):
            proceed()  # what the index remembers says so: no database, no hop
            return
        # A thread Python started keeps its Django connections (closed with the request or
        # the thread): work there, no hop (benchmarks/README.md). A foreign thread (a FUSE
        # callback) hops to the guard's own thread, and so does an event loop's thread
        # (the HTTP server's inline small PUTs), where Django refuses synchronous queries.
        if (
            not isinstance(threading.current_thread(), threading._DummyThread)
            and asyncio._get_running_loop() is None
        ):
            self._around(op, proceed)
            return
        context = contextvars.copy_context()
        self._executor.submit(context.run, self._in_thread, op, proceed).result()

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self._saves.close()

    def lets_through(self, kind: Kind, path: str, is_dir: bool, target: str | None) -> bool:
        """Whether the change touches no name a row names, known without the database (the
        index's memory of what no row names), and no safe save is under way at its names:
        then the guard only lets it through (:mod:`davstore.vfs.policy`)."""
        index, saves = self.index, self._saves
        if kind is Kind.MOVE:
            return (
                target is not None
                and index.known_unused(path, folder=is_dir)
                and (is_dir or (saves.backup_of(target) is None and index.known_unused(target)))
            )
        if kind is Kind.DELETE:
            return index.known_unused(path, folder=is_dir)
        return saves.backup_of(path) is None and index.known_unused(path)

    def _in_thread(self, op: Operation, proceed: Proceed) -> None:
        # The thread keeps its connections (CONN_MAX_AGE would close them after every
        # call: ~15 ms each on SQLite); a database error drops them for the next call.
        try:
            self._around(op, proceed)
        except DatabaseError:
            connections.close_all()
            raise

    def _around(self, op: Operation, proceed: Proceed) -> None:
        if op.kind is Kind.DELETE:
            if self.index.used(op.path, folder=op.is_dir):
                found = self.index.find(op.path, folder=op.is_dir)
                raise self._refused(op, found, "delete", "ON_DELETE_REFERENCED")
            proceed()
        elif op.kind is Kind.MOVE:
            self._move(op, proceed)
        else:
            self._replace(op, proceed)

    # -- moves -----------------------------------------------------------------------

    def _move(self, op: Operation, proceed: Proceed) -> None:
        assert op.target is not None
        source, target, folder = op.path, op.target, op.is_dir
        # The rows of a safe save under way whose new file this move brings back.
        backup = None if folder else self._save_of(target)
        if backup == source:
            backup = None  # the backup itself moved back: an ordinary move
        source_used = self.index.used(source, folder=folder)
        target_used = not folder and (backup is not None or self.index.used(target))
        if not source_used and not target_used:
            proceed()
            return
        if source_used and self.on_move is OnMove.REFUSE:
            found = self.index.find(source, folder=folder)
            raise self._refused(op, found, "move", "ON_MOVE_REFERENCED")
        refs = []
        if source_used and self.on_move is OnMove.REWRITE:
            refs = self.index.all_under(source, folder=folder)
            self._check_lengths(op, refs)
        back = self.index.all_under(backup, folder=False) if backup is not None else []
        kept = self.index.all_under(target, folder=False) if target_used else []
        replaced = back + kept
        size = self._validate(op, target, replaced) if replaced else None
        moved = False
        try:
            with self._atomic(refs + replaced):
                if refs:
                    self.index.rewrite(refs, source, target, folder=folder)
                if back:
                    assert backup is not None
                    self.index.rewrite(back, backup, target, folder=False)
                proceed()
                moved = True
                self._set_size(replaced, size)
        except BaseException:
            if moved and op.undo is not None:
                logger.error(
                    "the rows of %r could not be committed: moving %r back", source, target
                )
                op.undo()
            raise
        if refs:
            logger.info(
                "share %r: %d rows now name %r instead of %r",
                self.index.share,
                len(refs),
                target,
                source,
            )
            if (
                not folder
                and self.on_move is OnMove.REWRITE
                and parent(source) == parent(target)
                and is_backup_name(target)
            ):
                self._remember(source, target)
        if backup is not None:
            self._forget(target)
            if back:
                logger.info(
                    "share %r: safe save of %r: %d rows name it again (not %r)",
                    self.index.share,
                    target,
                    len(back),
                    backup,
                )
        if replaced:
            self._replaced(op, target)

    # -- new content -----------------------------------------------------------------

    def _replace(self, op: Operation, proceed: Proceed) -> None:
        path = op.path
        backup = self._save_of(path)
        if backup is None and not self.index.used(path):
            proceed()
            return
        back = self.index.all_under(backup, folder=False) if backup is not None else []
        kept = self.index.all_under(path, folder=False)
        replaced = back + kept
        if not replaced:
            if backup is not None:
                self._forget(path)
            proceed()
            return
        size = self._validate(op, path, replaced)
        with self._atomic(replaced):
            if back:
                assert backup is not None
                self.index.rewrite(back, backup, path, folder=False)
            proceed()
            self._set_size(replaced, size)
        if backup is not None:
            self._forget(path)
            if back:
                logger.info(
                    "share %r: safe save of %r: %d rows name it again (not %r)",
                    self.index.share,
                    path,
                    len(back),
                    backup,
                )
        self._replaced(op, path)

    def _images(self, refs: list[FileRef]) -> list[tuple[FileRef, models.ImageField]]:
        found = []
        for ref in refs:
            field = self.index.by_label[_label(ref)].field
            if isinstance(field, models.ImageField):
                found.append((ref, field))
        return found

    def _validate(self, op: Operation, path: str, refs: list[FileRef]) -> tuple[int, int] | None:
        """With ``validate``, when an ``ImageField`` row names ``path``: the new content's
        size (width, height), or :class:`RefusedContent` if Pillow cannot open it."""
        if self.on_replace is not OnReplace.VALIDATE or op.source is None:
            return None
        images = self._images(refs)
        if not images:
            return None
        try:
            return _image_size(op.source)
        except Exception as exc:  # Pillow raises many kinds for a file it cannot read
            found = Found(tuple(ref for ref, _ in images[:20]), len(images))
            reason = (
                f"{found.describe(path)} as an image; the new content is not an image "
                f"({type(exc).__name__}: {exc}); the old content is kept "
                "(or set ON_REPLACE_REFERENCED)"
            )
            who = op.actor.user if op.actor is not None else None
            origin = op.actor.origin if op.actor is not None else None
            logger.warning(
                "share %r: refused new content for %r from %s via %s: not an image",
                self.index.share,
                path,
                who,
                origin,
            )
            raise RefusedContent(
                path, reason, references=[r.as_dict() for r in found.rows], count=found.count
            ) from exc

    def _set_size(self, refs: list[FileRef], size: tuple[int, int] | None) -> None:
        """Set the ``width_field``/``height_field`` of the ``ImageField`` rows (no
        ``save()``: ``QuerySet.update``, in the caller's transaction)."""
        if size is None:
            return
        width, height = size
        for ref, field in self._images(refs):
            values = {}
            width_field = getattr(field, "width_field", None)
            height_field = getattr(field, "height_field", None)
            if width_field:
                values[width_field] = width
            if height_field:
                values[height_field] = height
            if values:
                gf = self.index.by_label[_label(ref)]
                pk = gf.model._meta.pk.to_python(ref.pk)
                gf.model._default_manager.filter(pk=pk).update(**values)

    def _replaced(self, op: Operation, path: str) -> None:
        if self.share is None:
            return
        from davstore.signals import send_replaced

        refs = self.index.all_under(path, folder=False)
        if refs:
            send_replaced(self.share, path, refs, op.actor)

    # -- safe saves ------------------------------------------------------------------

    def _remember(self, original: str, backup: str) -> None:
        self._saves.remember(original, backup)

    def _save_of(self, original: str) -> str | None:
        """The backup name of a safe save of ``original`` under way, or None."""
        return self._saves.backup_of(original)

    def _forget(self, original: str) -> None:
        self._saves.forget(original)

    # -- helpers ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _atomic(self, refs: list[FileRef]) -> Iterator[None]:
        """One transaction on each database the rows of ``refs`` are written to."""
        databases = {router.db_for_write(self.index.by_label[_label(r)].model) for r in refs}
        with contextlib.ExitStack() as stack:
            for db in sorted(databases):
                stack.enter_context(transaction.atomic(using=db))
            yield

    def _check_lengths(self, op: Operation, refs: list[FileRef]) -> None:
        assert op.target is not None
        too_long = []
        for ref in refs:
            new = op.target + ref.name[len(op.path) :]
            limit = self.index.by_label[_label(ref)].max_length
            if limit is not None and len(new) > limit:
                too_long.append(ref)
        if too_long:
            found = Found(tuple(too_long[:20]), len(too_long))
            limit = self.index.by_label[_label(too_long[0])].max_length
            reason = (
                f"{found.describe(op.path)}; the new name would be longer than "
                f"the field's max_length ({limit})"
            )
            logger.warning("share %r: refused to move %r: %s", self.index.share, op.path, reason)
            raise Refused(
                op.path, reason, references=[r.as_dict() for r in found.rows], count=found.count
            )

    def _refused(self, op: Operation, found: Found, verb: str, key: str) -> Refused:
        reason = f"{found.describe(op.path)}; change them first (or set {key})"
        who = op.actor.user if op.actor is not None else None
        origin = op.actor.origin if op.actor is not None else None
        logger.warning(
            "share %r: refused to %s %r for %s via %s: used by %d rows",
            self.index.share,
            verb,
            op.path,
            who,
            origin,
            found.count,
        )
        return Refused(
            op.path, reason, references=[r.as_dict() for r in found.rows], count=found.count
        )


def _label(ref: FileRef) -> str:
    return f"{ref.model}.{ref.field}"


def _image_size(source: BinaryIO) -> tuple[int, int]:
    """The (width, height) of the image in ``source``; raises what Pillow raises when it
    cannot read one (as Django's ``ImageField`` validation: open, then ``verify``)."""
    from PIL import Image

    source.seek(0)
    with Image.open(source) as image:
        size = image.size
        image.verify()
    return int(size[0]), int(size[1])


# -- one index per share, and the signals that keep them -------------------------------

_lock = threading.Lock()
_indexes: dict[str, ReferenceIndex] | None = None
_by_model: dict[type, list[tuple[ReferenceIndex, GuardedField]]] | None = None


def indexes() -> dict[str, ReferenceIndex]:
    """The reference index of every configured share that has guarded fields; none while
    the ``DAVSTORE`` setting is wrong (the site's saves go on; ``manage.py check`` names
    the mistakes, and serving the shares refuses to start)."""
    global _indexes, _by_model
    with _lock:
        if _indexes is None:
            from django.core.exceptions import ImproperlyConfigured

            from davstore.shares import get_shares

            built: dict[str, ReferenceIndex] = {}
            by_model: dict[type, list[tuple[ReferenceIndex, GuardedField]]] = {}
            storages: dict[str, Any] = {}
            try:
                shares = get_shares()
            except ImproperlyConfigured:
                return {}
            for share in shares.values():
                fields = fields_for(share.storage)
                if not fields:
                    continue
                index = built[share.name] = ReferenceIndex(share.name, fields)
                storages[share.name] = share.storage
                for gf in fields:
                    by_model.setdefault(gf.model, []).append((index, gf))
            for name, index in built.items():
                index.shares = tuple(
                    other for other in built if same_storage(storages[other], storages[name])
                )
                index.related = tuple(built[other] for other in index.shares)
                share = shares[name]
                if not _state_in_redis(share):
                    index.follow(share.state_dir(), lazily=True)
            _indexes, _by_model = built, by_model
        return dict(_indexes)


def _state_in_redis(share: Share) -> bool:
    """Whether the share's state is in Redis (replicas on several hosts)."""
    from davstore.frontends.webdav.state import is_redis_url  # redis itself is an extra

    config = share.config
    return is_redis_url(config.lock_storage) or is_redis_url(config.property_storage)


def index_for(share: Share) -> ReferenceIndex | None:
    return indexes().get(share.name)


def reset() -> None:
    """Forget the indexes (after a settings change)."""
    global _indexes, _by_model  # noqa: PLW0603
    with _lock:
        _indexes = _by_model = None  # their shared files are unmapped with them


def protect(share: Share, vfs: VFS, state_dir: Path | None = None) -> Guard | None:
    """Add the guard to ``vfs`` (a VFS of ``share``) when the share has guarded fields
    (also when its policies are all ``allow``: it still sends ``file_replaced``). The safe
    saves under way are kept in ``state_dir`` (default: the share's state folder)."""
    index = index_for(share)
    if index is None:
        return None
    guard = Guard(
        index,
        on_delete=OnDelete(share.config.on_delete_referenced),
        on_move=OnMove(share.config.on_move_referenced),
        on_replace=OnReplace(share.config.on_replace_referenced),
        share=share,
        state_dir=share.state_dir() if state_dir is None else state_dir,
    )
    vfs.add_policy(guard)
    return guard


def _models() -> dict[type, list[tuple[ReferenceIndex, GuardedField]]]:
    if _by_model is None:
        indexes()
    return _by_model or {}


def on_post_save(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    for index, gf in _models().get(sender, ()):
        index.saved(gf, instance, using)


def on_post_delete(sender: type, instance: Any, **kwargs: Any) -> None:
    for index, gf in _models().get(sender, ()):
        index.deleted(gf, instance)


def connect_signals() -> Callable[[], None]:
    """Keep the indexes with ``post_save``/``post_delete`` (from ``AppConfig.ready``)."""
    from django.db.models.signals import post_delete, post_save

    post_save.connect(on_post_save, dispatch_uid="davstore-index-save")
    post_delete.connect(on_post_delete, dispatch_uid="davstore-index-delete")

    def disconnect() -> None:
        post_save.disconnect(dispatch_uid="davstore-index-save")
        post_delete.disconnect(dispatch_uid="davstore-index-delete")

    return disconnect
