"""A Hypothesis state machine checks the VFS against a reference model, on every store.

The model is a dict of files and a set of folders with the rules of docs/SEMANTICS.md
written the plain way. Every step runs the same operation on the model and on the VFS,
compares the outcome (the error class, or success), and then compares the whole tree.
The cache TTL is long, so any stale entry left by a missed invalidation shows up.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from davstore.errors import (
    AlreadyExists,
    DavstoreError,
    DirectoryNotEmpty,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
)
from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.paths import is_within, parent
from tests.minimal_storages import MinimalStorage

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
contents = st.binary(max_size=64)


class Model:
    """Reference semantics: files and folders, the plain way."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {""}

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def children(self, path: str) -> list[str]:
        return [p for p in [*self.files, *self.dirs] if p and parent(p) == path]

    def require_folder(self, path: str) -> None:
        if path in self.files:
            raise NotADirectory(path)
        if path not in self.dirs:
            raise NotFound(path)

    def mkdir(self, path: str) -> None:
        if self.exists(path):
            raise AlreadyExists(path)
        self.require_folder(parent(path))
        self.dirs.add(path)

    def write(self, path: str, data: bytes) -> None:
        if path in self.dirs:
            raise IsADirectory(path)
        if path not in self.files:
            self.require_folder(parent(path))
        self.files[path] = data

    def remove(self, path: str) -> None:
        if path in self.dirs:
            raise IsADirectory(path)
        if path not in self.files:
            raise NotFound(path)
        del self.files[path]

    def rmdir(self, path: str) -> None:
        if path in self.files:
            raise NotADirectory(path)
        if path not in self.dirs:
            raise NotFound(path)
        if self.children(path):
            raise DirectoryNotEmpty(path)
        self.dirs.discard(path)

    def remove_tree(self, path: str) -> None:
        if not self.exists(path):
            raise NotFound(path)
        self.files = {p: d for p, d in self.files.items() if not is_within(p, path)}
        self.dirs = {p for p in self.dirs if not p or not is_within(p, path)}

    def _prepare_target(self, source: str, target: str, verb: str) -> None:
        source_is_dir = source in self.dirs
        if source_is_dir and is_within(target, source):
            raise InvalidPath(target)
        self.require_folder(parent(target))
        if not self.exists(target):
            return
        if target in self.dirs and not source_is_dir:
            raise IsADirectory(target)
        if target in self.files and source_is_dir:
            raise NotADirectory(target)
        if target in self.dirs:
            self.rmdir(target)

    def _tree(self, source: str) -> tuple[dict[str, bytes], set[str]]:
        files = {p: d for p, d in self.files.items() if is_within(p, source)}
        dirs = {p for p in self.dirs if p and is_within(p, source)}
        return files, dirs

    def _place(self, source: str, target: str) -> None:
        files, dirs = self._tree(source)
        for p, d in files.items():
            self.files[target + p[len(source) :]] = d
        for p in dirs:
            self.dirs.add(target + p[len(source) :])

    def rename(self, source: str, target: str) -> None:
        if not self.exists(source):
            raise NotFound(source)
        if source == target:
            return
        self._prepare_target(source, target, "move")
        files, dirs = self._tree(source)
        for p in files:
            del self.files[p]
        self.dirs -= dirs
        for p, d in files.items():
            self.files[target + p[len(source) :]] = d
        for p in dirs:
            self.dirs.add(target + p[len(source) :])

    def copy(self, source: str, target: str) -> None:
        if not self.exists(source):
            raise NotFound(source)
        if source == target:
            raise AlreadyExists(target)
        self._prepare_target(source, target, "copy")
        self._place(source, target)


def outcome(func: object, *args: object) -> type[DavstoreError] | None:
    try:
        func(*args)  # type: ignore[operator]
    except DavstoreError as exc:
        return type(exc)
    return None


class VFSMachine(RuleBasedStateMachine):
    storage_factory: staticmethod = staticmethod(InMemoryStorage)

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="davstore-model-")
        self.vfs = VFS(adapt(self.make_storage(self.tmp)), cache_ttl=60)
        self.model = Model()

    def make_storage(self, tmp: str) -> Storage:
        raise NotImplementedError

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def same(self, model_op: object, vfs_op: object, *args: object) -> None:
        expected = outcome(model_op, *args)
        got = outcome(vfs_op, *args)
        assert got == expected, f"{args}: model {expected}, vfs {got}"

    @rule(path=paths)
    def mkdir(self, path: str) -> None:
        self.same(self.model.mkdir, self.vfs.mkdir, path)

    @rule(path=paths, data=contents)
    def write(self, path: str, data: bytes) -> None:
        self.same(self.model.write, self.vfs.write_file, path, data)

    @rule(path=paths)
    def remove(self, path: str) -> None:
        self.same(self.model.remove, self.vfs.remove, path)

    @rule(path=paths)
    def rmdir(self, path: str) -> None:
        self.same(self.model.rmdir, self.vfs.rmdir, path)

    @rule(path=paths)
    def remove_tree(self, path: str) -> None:
        self.same(self.model.remove_tree, self.vfs.remove_tree, path)

    @rule(source=paths, dest=paths)
    def rename(self, source: str, dest: str) -> None:
        self.same(self.model.rename, self.vfs.rename, source, dest)

    @rule(source=paths, dest=paths)
    def copy(self, source: str, dest: str) -> None:
        self.same(self.model.copy, self.vfs.copy, source, dest)

    @rule(path=paths, data=contents, offset=st.integers(0, 80), cut=st.none() | st.integers(0, 80))
    def patch_in_place(self, path: str, data: bytes, offset: int, cut: int | None) -> None:
        """Open without truncating, write at an offset, maybe truncate, then close."""
        if path not in self.model.files:
            return
        old = self.model.files[path]
        with self.vfs.open_write(path, truncate=False) as handle:
            handle.pwrite(data, offset)
            buf = bytearray(old)
            if offset > len(buf) and data:
                buf.extend(b"\0" * (offset - len(buf)))
            buf[offset : offset + len(data)] = data
            if cut is not None:
                handle.truncate(cut)
                del buf[cut:]
                buf.extend(b"\0" * (cut - len(buf)))
            assert self.vfs.stat(path).size == len(buf), "stat shows the uncommitted size"
            with self.vfs.open_read(path) as reader:
                assert reader.read() == old, "readers see committed content until commit"
        self.model.files[path] = bytes(buf)

    @rule(path=paths, data=contents)
    def aborted_write(self, path: str, data: bytes) -> None:
        """A write that is aborted leaves the old content (or no file) behind."""
        try:
            handle = self.vfs.open_write(path)
        except DavstoreError:
            return
        handle.write(data)
        handle.abort()

    @invariant()
    def trees_match(self) -> None:
        files: dict[str, bytes] = {}
        dirs = {""}
        for entry in self.vfs.walk(""):
            if entry.is_dir:
                dirs.add(entry.name)
            else:
                with self.vfs.open_read(entry.name) as handle:
                    files[entry.name] = handle.read()
                assert entry.size == len(files[entry.name])
        assert dirs == self.model.dirs
        assert files == self.model.files


class FileSystemMachine(VFSMachine):
    def make_storage(self, tmp: str) -> Storage:
        return FileSystemStorage(location=tmp)


class MemoryMachine(VFSMachine):
    def make_storage(self, tmp: str) -> Storage:
        return InMemoryStorage(location="/model")


class MinimalMachine(VFSMachine):
    def make_storage(self, tmp: str) -> Storage:
        return MinimalStorage()


machine_settings = settings(
    max_examples=int(os.environ.get("DAVSTORE_MODEL_EXAMPLES", "40")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("machine", [FileSystemMachine, MemoryMachine, MinimalMachine])
def test_vfs_matches_the_model(machine: type[VFSMachine]) -> None:
    test_case = machine.TestCase
    test_case.settings = machine_settings
    test_case().runTest()
