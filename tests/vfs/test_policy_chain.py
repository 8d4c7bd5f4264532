"""The policy chain's ``lets_through`` (davstore/vfs/policy.py): when every policy of a
kind knows at once that it would only call ``proceed``, the VFS does the change without
calling the chain; one that does not know (or has no ``lets_through``) is called, and the
others with it."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import FileSystemStorage

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.policy import Kind, Operation, Proceed


class Watching:
    """A policy that records each call; ``through`` answers its ``lets_through``."""

    kinds = frozenset(Kind)

    def __init__(self, through: bool | None) -> None:
        self.through = through
        self.asked: list[tuple[Kind, str, bool, str | None]] = []
        self.called: list[tuple[Kind, str]] = []
        if through is None:
            self.lets_through = None  # type: ignore[assignment]

    def lets_through(self, kind: Kind, path: str, is_dir: bool, target: str | None) -> bool:
        self.asked.append((kind, path, is_dir, target))
        return bool(self.through)

    def around(self, op: Operation, proceed: Proceed) -> None:
        self.called.append((op.kind, op.path))
        proceed()


class Bare:
    """A policy without ``lets_through``."""

    kinds = frozenset(Kind)

    def __init__(self) -> None:
        self.called: list[tuple[Kind, str]] = []

    def around(self, op: Operation, proceed: Proceed) -> None:
        self.called.append((op.kind, op.path))
        proceed()


def vfs_with(tmp_path: Path, *policies: object) -> VFS:
    vfs = VFS(adapt(FileSystemStorage(location=str(tmp_path))), cache_ttl=1.0)
    vfs.mkdir("docs")
    for policy in policies:
        vfs.add_policy(policy)  # type: ignore[arg-type]
    return vfs


def changes(vfs: VFS) -> None:
    vfs.put_file("docs/a.txt", b"new")
    vfs.put_file("docs/a.txt", b"again")
    vfs.rename("docs/a.txt", "docs/b.txt")
    vfs.remove("docs/b.txt")


def test_a_chain_that_lets_everything_through_is_not_called(tmp_path: Path) -> None:
    first, second = Watching(True), Watching(True)
    vfs = vfs_with(tmp_path, first, second)
    changes(vfs)
    assert first.called == second.called == []
    assert (
        first.asked
        == second.asked
        == [
            (Kind.CREATE, "docs/a.txt", False, None),
            (Kind.REPLACE, "docs/a.txt", False, None),
            (Kind.MOVE, "docs/a.txt", False, "docs/b.txt"),
            (Kind.DELETE, "docs/b.txt", False, None),
        ]
    )
    assert not (tmp_path / "docs" / "b.txt").exists()


def test_one_policy_in_doubt_or_without_lets_through_runs_the_whole_chain(
    tmp_path: Path,
) -> None:
    for doubting in (Watching(False), Bare()):
        sure = Watching(True)
        vfs = vfs_with(tmp_path / type(doubting).__name__, sure, doubting)
        changes(vfs)
        expected = [
            (Kind.CREATE, "docs/a.txt"),
            (Kind.REPLACE, "docs/a.txt"),
            (Kind.MOVE, "docs/a.txt"),
            (Kind.DELETE, "docs/b.txt"),
        ]
        assert sure.called == doubting.called == expected
