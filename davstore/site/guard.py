"""The site guard: a person's delete or move never leaves a row naming a missing file.

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

The guard's database work runs on one thread the guard owns (FUSE calls back on fresh
thread states, where Django's per-thread connections would never be closed): guarded
changes of one share run one at a time. Each refusal is logged once (``davstore.site``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import enum
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DatabaseError, connections, router, transaction

from davstore.site.references import FileRef, Found, GuardedField, ReferenceIndex, fields_for
from davstore.vfs.policy import Kind, Operation, Proceed, Refused

if TYPE_CHECKING:
    from davstore.shares import Share
    from davstore.vfs import VFS

__all__ = [
    "Guard",
    "OnDelete",
    "OnMove",
    "connect_signals",
    "index_for",
    "indexes",
    "on_post_delete",
    "on_post_save",
    "protect",
    "reset",
]

logger = logging.getLogger("davstore.site")

T = TypeVar("T")


class OnDelete(enum.Enum):
    REFUSE = "refuse"
    ALLOW = "allow"


class OnMove(enum.Enum):
    REWRITE = "rewrite"
    REFUSE = "refuse"
    ALLOW = "allow"


class Guard:
    """The delete and move policies of one share (see the module docstring)."""

    def __init__(self, index: ReferenceIndex, *, on_delete: OnDelete, on_move: OnMove) -> None:
        self.index = index
        self.on_delete = on_delete
        self.on_move = on_move
        kinds = set()
        if on_delete is not OnDelete.ALLOW:
            kinds.add(Kind.DELETE)
        if on_move is not OnMove.ALLOW:
            kinds.add(Kind.MOVE)
        self.kinds = frozenset(kinds)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"davstore-guard-{index.share}"
        )

    def __repr__(self) -> str:
        return f"<Guard of share {self.index.share!r}>"

    def around(self, op: Operation, proceed: Proceed) -> None:
        if threading.current_thread().name.startswith("davstore-guard-"):
            self._around(op, proceed)  # already on a guard's thread
            return
        context = contextvars.copy_context()
        self._executor.submit(context.run, self._in_thread, op, proceed).result()

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    def _in_thread(self, op: Operation, proceed: Proceed) -> None:
        # The thread keeps its connections (CONN_MAX_AGE would close them after every
        # call: ~15 ms each on SQLite); a database error drops them for the next call.
        try:
            self._around(op, proceed)
        except DatabaseError:
            connections.close_all()
            raise

    def _around(self, op: Operation, proceed: Proceed) -> None:
        folder = op.is_dir
        if op.kind is Kind.DELETE:
            found = self.index.find(op.path, folder=folder)
            if found:
                raise self._refused(op, found, "delete", "ON_DELETE_REFERENCED")
            proceed()
            return
        assert op.kind is Kind.MOVE and op.target is not None
        if self.on_move is OnMove.REFUSE:
            found = self.index.find(op.path, folder=folder)
            if found:
                raise self._refused(op, found, "move", "ON_MOVE_REFERENCED")
            proceed()
            return
        refs = self.index.all_under(op.path, folder=folder)
        if not refs:
            proceed()
            return
        self._check_lengths(op, refs)
        databases = {router.db_for_write(self.index.by_label[_label(r)].model) for r in refs}
        moved = False
        try:
            with contextlib.ExitStack() as stack:
                for db in sorted(databases):
                    stack.enter_context(transaction.atomic(using=db))
                self.index.rewrite(refs, op.path, op.target, folder=folder)
                proceed()
                moved = True
        except BaseException:
            if moved and op.undo is not None:
                logger.error(
                    "the rows of %r could not be committed: moving %r back",
                    op.path,
                    op.target,
                )
                op.undo()
            raise
        logger.info(
            "share %r: %d rows now name %r instead of %r",
            self.index.share,
            len(refs),
            op.target,
            op.path,
        )

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


# -- one index per share, and the signals that keep them -------------------------------

_lock = threading.Lock()
_indexes: dict[str, ReferenceIndex] | None = None
_by_model: dict[type, list[tuple[ReferenceIndex, GuardedField]]] | None = None


def indexes() -> dict[str, ReferenceIndex]:
    """The reference index of every configured share that has guarded fields."""
    global _indexes, _by_model
    with _lock:
        if _indexes is None:
            from davstore.shares import get_shares

            built: dict[str, ReferenceIndex] = {}
            by_model: dict[type, list[tuple[ReferenceIndex, GuardedField]]] = {}
            for share in get_shares().values():
                fields = fields_for(share.storage)
                if not fields:
                    continue
                index = built[share.name] = ReferenceIndex(share.name, fields)
                for gf in fields:
                    by_model.setdefault(gf.model, []).append((index, gf))
            _indexes, _by_model = built, by_model
        return dict(_indexes)


def index_for(share: Share) -> ReferenceIndex | None:
    return indexes().get(share.name)


def reset() -> None:
    """Forget the indexes (after a settings change)."""
    global _indexes, _by_model  # noqa: PLW0603
    with _lock:
        _indexes = _by_model = None


def protect(share: Share, vfs: VFS) -> Guard | None:
    """Add the guard to ``vfs`` (a VFS of ``share``) when the share has guarded fields
    and its policies are not all ``allow``; returns it."""
    index = index_for(share)
    if index is None:
        return None
    guard = Guard(
        index,
        on_delete=OnDelete(share.config.on_delete_referenced),
        on_move=OnMove(share.config.on_move_referenced),
    )
    if not guard.kinds:
        guard.close()
        return None
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
