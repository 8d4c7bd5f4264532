"""A store that wraps another: every primitive goes to ``inner`` through one hook.

Wrappers (worker threads, metrics) subclass :class:`StoreWrapper` and override
:meth:`StoreWrapper._call` (how one call runs), and where they need to,
:meth:`StoreWrapper._wrap_stream` and :meth:`StoreWrapper._wrap_upload` (what the caller
gets back from ``open_read`` and ``start_upload``). A primitive added to
:class:`~davstore.store.ObjectStore` is added here once and every wrapper passes it through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from davstore.store.base import Capabilities, ObjectInfo, ObjectStore, Upload, Usage

__all__ = ["StoreWrapper", "WrappedUpload", "unwrap_stream"]

T = TypeVar("T")


def unwrap_stream(stream: BinaryIO) -> BinaryIO:
    """The stream the innermost store handed out, below any wrapper's stream."""
    while (inner := getattr(stream, "wrapped_stream", None)) is not None:
        stream = inner
    return stream


class StoreWrapper(ObjectStore):
    """``inner`` with every call made through :meth:`_call`."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.capabilities: Capabilities = inner.capabilities

    def _call(self, kind: str, func: Callable[[], T]) -> T:
        """Run one call of ``kind`` (``"head"``, ``"list"``, ``"commit"``...)."""
        return func()

    def _wrap_stream(self, stream: BinaryIO) -> BinaryIO:
        return stream

    def _wrap_upload(self, upload: Upload) -> Upload:
        return WrappedUpload(upload, self)

    def close(self) -> None:
        """Release what the wrapper holds; the inner store is the VFS's to close."""

    def head(self, name: str) -> ObjectInfo:
        return self._call("head", lambda: self.inner.head(name))

    def find(self, name: str) -> ObjectInfo | None:
        return self._call("find", lambda: self.inner.find(name))

    def find_with_parent(self, name: str) -> tuple[ObjectInfo | None, ObjectInfo | None]:
        return self._call("find", lambda: self.inner.find_with_parent(name))

    def list(self, name: str) -> Iterator[ObjectInfo]:
        return iter(self._call("list", lambda: list(self.inner.list(name))))

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        stream = self._call("open_read", lambda: self.inner.open_read(name, offset))
        return self._wrap_stream(stream)

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        raw = unwrap_stream(stream)
        return self._call("stream_info", lambda: self.inner.stream_info(name, raw))

    def open_cached(self, name: str) -> BinaryIO | None:
        stream = self._call("open_read", lambda: self.inner.open_cached(name))
        return None if stream is None else self._wrap_stream(stream)

    def stream_fd(self, name: str, stream: BinaryIO) -> int | None:
        # Not a call to the backend (no I/O, no answer to count): straight to the inner store.
        return self.inner.stream_fd(name, unwrap_stream(stream))

    def read_small(self, name: str, limit: int) -> tuple[ObjectInfo, bytes] | None:
        return self._call("read_small", lambda: self.inner.read_small(name, limit))

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        upload = self._call(
            "start_upload",
            lambda: self.inner.start_upload(name, spool_dir=spool_dir, spool_memory=spool_memory),
        )
        return self._wrap_upload(upload)

    def delete(self, name: str) -> None:
        self._call("delete", lambda: self.inner.delete(name))

    def delete_many(self, names: Sequence[str]) -> None:
        self._call("delete_many", lambda: self.inner.delete_many(names))

    def make_dir(self, name: str) -> None:
        self._call("make_dir", lambda: self.inner.make_dir(name))

    def remove_dir(self, name: str) -> None:
        self._call("remove_dir", lambda: self.inner.remove_dir(name))

    def copy(self, source: str, target: str) -> ObjectInfo:
        return self._call("copy", lambda: self.inner.copy(source, target))

    def rename(self, source: str, target: str) -> None:
        self._call("rename", lambda: self.inner.rename(source, target))

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        self._call("set_mtime", lambda: self.inner.set_mtime(name, mtime_ns))

    def url(self, name: str) -> str:
        return self._call("url", lambda: self.inner.url(name))

    def usage(self) -> Usage:
        return self._call("usage", self.inner.usage)

    def root_exists(self) -> bool:
        return self._call("root_exists", self.inner.root_exists)

    def describe(self) -> str:
        return self.inner.describe()


class WrappedUpload(Upload):
    """An upload whose ``commit`` and ``abort`` go through a wrapper's call hook."""

    def __init__(self, upload: Upload, wrapper: StoreWrapper) -> None:
        self._upload = upload
        self._wrapper = wrapper
        self.file = upload.file

    def commit(self) -> ObjectInfo:
        return self._wrapper._call("commit", self._upload.commit)

    def abort(self) -> None:
        self._wrapper._call("abort", self._upload.abort)
