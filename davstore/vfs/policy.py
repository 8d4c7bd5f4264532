"""Policy hooks: what the site (guard, trash, journal) does around a person's change.

A :class:`Policy` is middleware around one change the VFS is about to make in the store.
The VFS builds an :class:`Operation` (what, where, who), and calls the policies registered
with :meth:`davstore.vfs.VFS.add_policy` for that :class:`Kind`, outermost first; each gets
the operation and ``proceed``, a function that runs the rest of the chain and, at its end,
the store work itself::

    class Guard:
        kinds = frozenset({Kind.DELETE, Kind.MOVE})

        def around(self, op: Operation, proceed: Proceed) -> None:
            rows = referencing(op.path)
            if rows and op.kind is Kind.DELETE:
                raise Refused(op.path, "used by 2 rows", references=rows)   # refuse
            with transaction.atomic():                                     # wrap
                rewrite(rows, op.target)
                proceed()
            # (and undo the move if the commit failed: see below)

Contract (MUST / MAY):

- The hooks run in the VFS after its own checks (path, read-only, existence, target
  conflicts) and **before the store is touched**, for every door alike: WebDAV, FUSE and
  the admin's Files page all call the VFS. Code that uses the Storage directly (the site
  itself) does not pass here.
- A policy MUST call ``proceed()`` at most once. It MAY:
  - **refuse**: raise :class:`Refused` (``EACCES``; a subclass of
    :class:`~davstore.errors.PermissionDenied`) before calling ``proceed``, with the reason
    and, in ``references``, what the refusal is about; or, for new content that is not
    acceptable (read from ``op.source``), :class:`RefusedContent` (``EINVAL``). Each
    frontend renders it its own way (WebDAV 403 or 415 with a ``DAV:error`` body, FUSE
    ``EACCES`` or ``EINVAL``, the admin a message).
  - **replace** the operation: not call ``proceed`` and make another change instead (the
    trash turns a delete into a move into ``.davstore-trash/``). The VFS then treats the
    operation as done (caches invalidated, the change event emitted as for the original).
    A ``CREATE`` or ``REPLACE`` cannot be replaced, only refused or wrapped.
  - **wrap** it: call ``proceed`` inside a transaction. ``proceed`` returns once the store
    holds the change; a store failure raises out of it (roll back and re-raise). When the
    policy's own commit fails after ``proceed`` returned, it MUST call ``op.undo()`` where
    there is one (a move's undo moves the entry back, without policies or events) and
    re-raise: the store and the database never disagree.
  - **record** after success: whatever follows ``proceed()``. A failure there is the
    policy's to log; raising fails the operation the person sees, after the store changed.
- Policies run on the calling thread, inside the caller's :func:`~davstore.vfs.events.acting_as`
  (``op.actor`` is the same). A policy that needs per-thread resources (Django database
  connections under FUSE, where each callback may come on a fresh thread state) runs its
  work on threads it owns.
- A policy MAY have ``lets_through(kind, path, is_dir, target) -> bool``: True when it
  knows at once, without waiting on anything (no database, no network, no disk), that its
  ``around`` would only call ``proceed`` for such a change. When every policy of the
  chain says so, the VFS does the store work without building the :class:`Operation` or
  calling the chain (the site guard, for a file no row names: a new file's PUT pays a
  few dictionary lookups, not the chain). False whenever in doubt: ``around`` decides.
- With no policy registered for a kind the VFS does exactly what it did before: one
  attribute lookup and a truth test on the hot paths (a 1 KiB PUT, a GET: none).

Kinds, and where the VFS raises them: ``DELETE`` (``remove``, ``remove_tree``, ``rmdir``;
``is_dir`` for folders, whose whole tree goes), ``MOVE`` (``rename``; ``target`` set),
``REPLACE`` (new content committed over an existing file: ``put_file``, a write handle's
commit; also a ``copy`` onto an existing file), ``CREATE`` (a new file committed, a copy to
a new name). A ``MOVE`` that replaces an existing file at ``target`` is one ``MOVE``.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, Protocol, TypeVar

from davstore.errors import DavstoreError, PermissionDenied
from davstore.vfs.events import Actor

__all__ = [
    "ORDER_INNERMOST",
    "Kind",
    "LetsThrough",
    "Operation",
    "Policy",
    "Proceed",
    "Refused",
    "RefusedContent",
    "lets_through_of",
    "order_of",
    "run",
]

T = TypeVar("T")

#: The ``order`` of a policy that replaces the operation (the trash): after every other.
ORDER_INNERMOST = 1000

#: Runs the rest of the chain and the store work; returns when the store holds the change.
Proceed = Callable[[], Any]


class Kind(enum.Enum):
    """What a person is about to do to ``Operation.path``."""

    DELETE = "delete"
    MOVE = "move"
    REPLACE = "replace"
    CREATE = "create"


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """One change about to be made. Paths are canonical share paths.

    :param undo: for a ``MOVE``, puts the entry back at ``path`` (store only: no policies,
        no change event); None where a change cannot be undone.
    :param source: the new content, seekable (seek before reading and leave it at any
        position): for ``CREATE`` and ``REPLACE`` of a committed upload the staged bytes,
        for a copy's the copied file, for a ``MOVE`` of a file the moved file (what a
        move over ``target`` puts there); None for folders. A reader of the store is
        opened at its first read: a policy that does not read costs no store call.
    :param prepare: for a ``DELETE``, what the VFS does just before the store is touched
        (open readers keep their version, writers are detached); a policy that replaces
        the operation (the trash) MUST call it before it moves the entry away.
    """

    kind: Kind
    path: str
    is_dir: bool = False
    target: str | None = None
    actor: Actor | None = None
    undo: Callable[[], None] | None = dataclasses.field(default=None, compare=False)
    source: BinaryIO | None = dataclasses.field(default=None, compare=False)
    prepare: Callable[[], None] | None = dataclasses.field(default=None, compare=False)


class Policy(Protocol):
    """A hook around the changes of the kinds it names (see the module docstring)."""

    #: The kinds this policy is called for; the VFS skips it for the others.
    kinds: frozenset[Kind]

    # A policy MAY have an ``order`` (int, default 0): policies run by ascending order,
    # outermost first, and in the order they were added among equals. Refusals (the
    # guard: 0) run before what replaces the operation (the trash: ORDER_INNERMOST), so a
    # refused delete never reaches the trash whatever order they were added in.
    #
    # It MAY have ``lets_through(kind, path, is_dir, target) -> bool`` (see the module
    # docstring): True only when ``around`` would just call ``proceed``.

    def around(self, op: Operation, proceed: Proceed) -> None: ...


class Refused(PermissionDenied):
    """A policy refused the change (``EACCES``).

    ``references`` says what the refusal is about, the first few of ``count`` (the guard:
    rows, each a mapping with ``model``, ``pk``, ``field``, ``name`` and maybe ``url``);
    frontends render them (WebDAV: a ``DAV:error`` body)."""

    def __init__(
        self,
        path: str = "",
        reason: str | None = None,
        *,
        references: Sequence[Mapping[str, str]] = (),
        count: int | None = None,
    ) -> None:
        super().__init__(path, reason)
        self.references = list(references)
        self.count = len(self.references) if count is None else count


class RefusedContent(DavstoreError):
    """A policy refused the new content of a file (``EINVAL``): the site guard, for
    content an ``ImageField`` row would name that is not an image. The old content stays.

    ``references`` and ``count`` as for :class:`Refused`. Frontends render it their own
    way: WebDAV 415 Unsupported Media Type, FUSE ``EINVAL`` (from the ``close`` or
    ``fsync`` that commits), the admin a message."""

    code = errno.EINVAL

    def __init__(
        self,
        path: str = "",
        reason: str | None = None,
        *,
        references: Sequence[Mapping[str, str]] = (),
        count: int | None = None,
    ) -> None:
        super().__init__(path, reason)
        self.references = list(references)
        self.count = len(self.references) if count is None else count


def order_of(policy: Policy) -> int:
    """A policy's place in the chain (its ``order`` attribute, 0 when it has none)."""
    return int(getattr(policy, "order", 0))


#: ``lets_through(kind, path, is_dir, target)`` of a policy (see the module docstring).
LetsThrough = Callable[[Kind, str, bool, "str | None"], bool]


def lets_through_of(chain: Sequence[Policy]) -> tuple[LetsThrough, ...] | None:
    """The ``lets_through`` of every policy of ``chain``; None when one has none."""
    found = tuple(getattr(policy, "lets_through", None) for policy in chain)
    return None if any(f is None for f in found) else found  # type: ignore[return-value]


def run(policies: Sequence[Policy], op: Operation, work: Callable[[], T]) -> T:
    """Run ``work`` (the store change) inside ``policies``, outermost first. Returns what
    ``work`` returned, or None when a policy replaced the operation."""
    result: list[T] = []

    def step(index: int) -> None:
        if index == len(policies):
            result.append(work())
            return
        called = False

        def proceed() -> None:
            nonlocal called
            if called:
                raise RuntimeError(f"{policies[index]!r} called proceed() twice")
            called = True
            step(index + 1)

        policies[index].around(op, proceed)

    step(0)
    return result[0] if result else None  # type: ignore[return-value]
