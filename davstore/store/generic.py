"""The generic adapter: any Django Storage through its public API alone.

Capabilities are read off the class: a method the subclass did not override from
``django.core.files.storage.Storage`` raises ``NotImplementedError`` there, so the
matching operation is reported as not supported up front instead of failing later.

Costs on a generic store: a listing is one ``listdir`` plus one ``size`` and one
``get_modified_time`` per file; ``head`` lists the parent. Accelerators exist for the
stores where that is too slow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, TypeVar, cast

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage

from davstore.errors import (
    DavstoreError,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    StoreError,
    from_exception,
)
from davstore.store.base import (
    DIRECTORY_MARKER,
    INTERNAL_PREFIX,
    Capabilities,
    ObjectInfo,
    ObjectStore,
    Upload,
    extend_file,
    is_internal_name,
)
from davstore.store.own import OWN_CALL

__all__ = [
    "GenericStore",
    "SpooledUpload",
    "derived_etag",
    "folder_children",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def folder_children(
    name: str, prefix: str, keys: Iterable[tuple[str, ObjectInfo | None]]
) -> tuple[ObjectInfo, ...]:
    """The direct children of folder ``name`` on an object store, from keys under its
    ``prefix`` (at any depth; a key ending in ``/`` is a folder), each with the entry of
    the object it names (``None`` for a prefix), as ``list`` gives them: folders first,
    a folder hides a same-named file, markers and internal names left out. Object stores
    use it for ``list`` and for a ``head`` that is a listing (``ObjectInfo.children``)."""
    base = f"{name}/" if name else ""
    folders: dict[str, ObjectInfo] = {}
    files: dict[str, ObjectInfo] = {}
    for key, entry in keys:
        rest = key[len(prefix) :]
        child, slash, _ = rest.partition("/")
        if not child or is_internal_name(child):
            continue
        if slash or entry is None:
            folders.setdefault(child, ObjectInfo(base + child, True))
        else:
            files[child] = dataclasses.replace(entry, name=base + child)
    return (*folders.values(), *(e for c, e in files.items() if c not in folders))


def _overrides(storage: Storage, method: str) -> bool:
    return getattr(type(storage), method, None) is not getattr(Storage, method)


def _split(name: str) -> tuple[str, str]:
    parent, _, base = name.rpartition("/")
    return parent, base


def derived_etag(name: str, size: int | None, mtime: float | None) -> str | None:
    """An ETag from metadata alone; ``None`` when the store gives neither size nor time."""
    if size is None and mtime is None:
        return None
    digest = hashlib.blake2b(f"{name}\0{size}\0{mtime!r}".encode(), digest_size=12)
    return digest.hexdigest()


class GenericStore(ObjectStore):
    """Adapter for any ``Storage``; accelerators subclass it and override what they can."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.capabilities = self._detect_capabilities()

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            listdir=_overrides(self.storage, "listdir"),
            delete=_overrides(self.storage, "delete"),
            size=_overrides(self.storage, "size"),
            mtime=_overrides(self.storage, "get_modified_time"),
            url=_overrides(self.storage, "url"),
        )

    def describe(self) -> str:
        cls = type(self.storage)
        location = getattr(self.storage, "location", None) or getattr(
            self.storage, "bucket_name", None
        )
        where = f" at {location}" if location else ""
        return f"{cls.__module__}.{cls.__qualname__}{where}"

    def root_exists(self) -> bool:
        """A ``FileSystemStorage`` (and its subclasses: ``StaticFilesStorage``) has its
        location as its root; any other Storage has none of its own (True)."""
        if not isinstance(self.storage, FileSystemStorage):
            return True
        try:
            root = self.storage.path("")
        except Exception:  # StaticFilesStorage without STATIC_ROOT: ImproperlyConfigured
            return False
        return os.path.isdir(root)

    def _call(self, name: str, func: Callable[[], T]) -> T:
        """Run one backend call, translating whatever it raises. The call is marked as
        davstore's own (:func:`~davstore.store.own.own_call`): the site's journaled
        Storage does not record it a second time."""
        token = OWN_CALL.set(True)
        try:
            return func()
        except DavstoreError:
            raise
        except Exception as exc:
            error = from_exception(exc, name)
            if isinstance(error, StoreError):
                logger.warning("store call failed for %r: %s", name, exc)
            raise error from exc
        finally:
            OWN_CALL.reset(token)

    def _require(self, capability: str, name: str) -> None:
        if not getattr(self.capabilities, capability):
            cls = type(self.storage).__name__
            raise NotSupported(name, f"{cls} does not implement {capability}")

    # -- metadata --------------------------------------------------------------------

    def _file_info(self, name: str) -> ObjectInfo:
        size = mtime = None
        if self.capabilities.size:
            with contextlib.suppress(NotSupported):
                size = self._call(name, lambda: int(self.storage.size(name)))
        if self.capabilities.mtime:
            with contextlib.suppress(NotSupported):
                mtime = self._call(name, lambda: self.storage.get_modified_time(name).timestamp())
        return ObjectInfo(name, False, size, mtime, derived_etag(name, size, mtime))

    def _listdir(self, name: str) -> tuple[list[str], list[str]]:
        self._require("listdir", name)
        try:
            dirs, files = self._call(name, lambda: self.storage.listdir(name))
        except (NotADirectory, IsADirectory):
            raise
        except DavstoreError as exc:
            # InMemoryStorage reports "is a file" as FileExistsError.
            if isinstance(exc, FileExistsError):
                raise NotADirectory(name) from exc
            raise
        return list(dirs), list(files)

    def head(self, name: str) -> ObjectInfo:
        if not name:
            return ObjectInfo("", True)
        parent, base = _split(name)
        if not self.capabilities.listdir:
            if self._call(name, lambda: self.storage.exists(name)):
                return self._file_info(name)
            raise NotFound(name)
        try:
            dirs, files = self._listdir(parent)
        except (NotFound, NotADirectory) as exc:
            raise NotFound(name) from exc
        if base in dirs:
            return ObjectInfo(name, True)
        if base in files:
            return self._file_info(name)
        raise NotFound(name)

    def list(self, name: str) -> Iterator[ObjectInfo]:
        dirs, files = self._listdir(name)
        prefix = f"{name}/" if name else ""
        seen = set()
        for base in dirs:
            if not is_internal_name(base):
                seen.add(base)
                yield ObjectInfo(prefix + base, True)
        for base in files:
            if base not in seen and not is_internal_name(base):
                yield self._file_info(prefix + base)

    # -- content ---------------------------------------------------------------------

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        stream = cast(BinaryIO, self._call(name, lambda: self.storage.open(name, "rb")))
        try:
            if offset:
                if stream.seekable():
                    stream.seek(offset)
                else:
                    _skip(stream, offset)
        except Exception as exc:
            stream.close()
            raise from_exception(exc, name) from exc
        return stream

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        def put(spool: BinaryIO, size: int) -> ObjectInfo:
            self.save_exact(name, spool)
            return self.head(name)

        return SpooledUpload(put, spool_dir=spool_dir, spool_memory=spool_memory)

    def save_exact(self, name: str, content: BinaryIO) -> None:
        """Save ``content`` under exactly ``name``, overwriting, or fail and change nothing.

        A storage that overwrites in place (``get_available_name`` keeps the name, as
        django-storages' object stores do with ``file_overwrite``) gets one ``save``. One that
        would pick another name for an existing file (FileSystemStorage, InMemoryStorage
        through the generic adapter) cannot replace in one step: the old content is kept in a
        spool, deleted, the new content saved, and the old content put back if that fails.
        """
        storage = self.storage

        def save() -> None:
            content.seek(0)
            saved = storage.save(name, File(content, name=_split(name)[1]))
            if saved != name:
                if self.capabilities.delete:
                    storage.delete(saved)
                raise StoreError(name, f"the storage saved under another name ({saved!r})")

        replace = self._call(
            name, lambda: storage.exists(name) and storage.get_available_name(name) != name
        )
        if not replace:
            self._call(name, save)
            return
        self._require("delete", name)
        with tempfile.SpooledTemporaryFile(max_size=8 << 20, prefix=INTERNAL_PREFIX) as backup:
            with self.open_read(name) as old:
                while chunk := old.read(1 << 20):
                    backup.write(chunk)
            self._call(name, lambda: storage.delete(name))
            try:
                self._call(name, save)
            except BaseException:
                backup.seek(0)
                try:
                    self._call(name, lambda: storage.save(name, File(backup, name=name)))
                except DavstoreError:
                    logger.exception("could not restore %r after a failed overwrite", name)
                raise

    def delete(self, name: str) -> None:
        self._require("delete", name)
        self._call(name, lambda: self.storage.delete(name))

    def make_dir(self, name: str) -> None:
        marker = f"{name}/{DIRECTORY_MARKER}"
        with tempfile.SpooledTemporaryFile() as empty:
            self.save_exact(marker, empty)  # type: ignore[arg-type]

    def remove_dir(self, name: str) -> None:
        self._require("delete", name)
        marker = f"{name}/{DIRECTORY_MARKER}"
        if self._call(marker, lambda: self.storage.exists(marker)):
            self._call(marker, lambda: self.storage.delete(marker))

    def url(self, name: str) -> str:
        self._require("url", name)
        return str(self._call(name, lambda: self.storage.url(name)))


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)


class SpooledUpload(Upload):
    """Stage in a bounded spool (memory, then disk); on commit ``put(spool, size)`` stores
    the ``size`` bytes of the spool (rewound to its start) under the exact name and answers
    the new metadata. The generic adapter and the S3, GCS and Azure ones use it."""

    def __init__(
        self,
        put: Callable[[BinaryIO, int], ObjectInfo],
        *,
        spool_dir: str | None,
        spool_memory: int,
    ) -> None:
        self._put = put
        self._memory = spool_memory
        self.file = tempfile.SpooledTemporaryFile(  # type: ignore[assignment]  # noqa: SIM115
            max_size=spool_memory, dir=spool_dir, prefix=INTERNAL_PREFIX
        )

    def commit(self) -> ObjectInfo:
        try:
            size = self.file.seek(0, io.SEEK_END)
            self.file.seek(0)
            return self._put(self.file, size)
        finally:
            self.file.close()

    def abort(self) -> None:
        self.file.close()

    def extend(self, size: int) -> None:
        """Up to the spool's memory part, zeros in memory; past it, the spool goes to its
        file (``fileno`` rolls it over) and grows there sparsely, room checked."""
        if size > self._memory:
            extend_file(self.file, size)
            return
        current = self.file.seek(0, io.SEEK_END)
        if size > current:
            self.file.write(bytes(size - current))
