"""Accelerator for django-storages' ``AzureStorage``: the Blob service API used directly.

Everything goes through the storage's own configuration and client: its container client
(``connection_string``, account key, SAS token or token credential, ``client_options``),
``location`` prefix (``storage._normalize_name``), server-side ``timeout``, and its content
settings for new blobs (``_get_content_settings_parameters``: a content type guessed from
the name, ``cache_control``, ``object_parameters``). What each operation costs, in requests:

- ``head``: one List Blobs (``prefix=key``, no delimiter, up to 5000 blobs) that answers
  "file", "folder" and "missing" at once with the same size, time and ETag a listing
  gives; a folder's entry carries its listing (``ObjectInfo.children``) when the page
  holds all of it. A second list (or a Get Blob Properties) only when 5000 siblings sort
  between ``key`` and ``key/``.
- ``list``: one List Blobs per 5000 children (the service's largest page), keeping size,
  Last-Modified and ETag; no per-blob request. Prefixes are folders; ``.davstore-folder``
  markers and other tools' ``name/`` blobs make a folder and are never listed.
- ``open_read``: ranged Get Blob in windows of 1 MiB doubling to 16 MiB
  (:mod:`davstore.store.ranged`; the SDK holds a window in memory, so windows stay small);
  later windows carry ``If-Match`` with the first ETag; the next window is fetched ahead
  while reading on; ``stream_info`` comes from the first answer. Never ``storage.open()``.
- uploads: a bounded spool; on commit one Put Blob up to :attr:`AzureStore.block_size`, else
  one Put Block per block read from the spool and one Put Block List. A blob changes only
  when its block list is committed, so a failed write leaves the old blob (uncommitted
  blocks are dropped by the service). The answer's ETag and time are the new metadata.
- ``copy``: Copy Blob (server side; waits while the service reports it pending) and a
  ``head`` of the copy; ``delete``: Delete Blob; ``delete_many`` and ``remove_dir``: one
  Blob Batch request per 256 names; ``make_dir``: one Put Blob of the marker.

Names: a blob name has at most 1024 characters and 254 ``/``; longer names are refused
(``NameTooLong``/``InvalidPath``) before any request. Names are kept exactly: unlike
``AzureStorage``'s own methods, leading dots are not stripped (``.hidden`` stays
``.hidden``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from django.core.exceptions import SuspiciousOperation

from davstore.errors import (
    Conflict,
    DavstoreError,
    FileTooLarge,
    InvalidPath,
    NameTooLong,
    NotADirectory,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    from_exception,
)
from davstore.store.base import DIRECTORY_MARKER, Capabilities, ObjectInfo, Upload
from davstore.store.generic import (
    GenericStore,
    SpooledUpload,
    folder_children,
)
from davstore.store.ranged import RangedReader, RangeResponse, Windows, reader_info

if TYPE_CHECKING:
    from storages.backends.azure_storage import AzureStorage

__all__ = ["AzureStore", "translate_error"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MiB = 1 << 20

#: The service's largest List Blobs page, and the most sub-requests in one Blob Batch.
_LIST_PAGE = 5000
_BATCH = 256
#: The most blocks in one blob, and the longest name and deepest path the service takes.
_MAX_BLOCKS = 50_000
_MAX_NAME = 1024
_MAX_SLASHES = 254

_BAD_CREDENTIALS = {"AuthenticationFailed", "InvalidAuthenticationInfo"}
_TIMEOUT_CODES = {"OperationTimedOut"}
_BUSY_CODES = {"ServerBusy", "InternalError"}


def translate_error(exc: BaseException, name: str = "", *, container: str = "") -> DavstoreError:
    """Translate what azure-core and azure-storage-blob raise (the one place it is done).

    ==============================================  ======================================
    azure                                           davstore
    ==============================================  ======================================
    404 BlobNotFound                                NotFound
    404 ContainerNotFound                           StoreUnavailable naming the container
    AuthenticationFailed (refused key, bad SAS)     StoreUnavailable naming the cause
    other 403 (AuthorizationPermissionMismatch)     PermissionDenied (WebDAV 403, EACCES)
    429, 502, 503 ServerBusy, connection refused    StoreUnavailable (WebDAV 502)
    or lost mid-transfer
    504, 500 OperationTimedOut, socket timeouts     StoreTimeout (WebDAV 504)
    412 ConditionNotMet (blob changed mid-read)     Conflict
    413 RequestBodyTooLarge                         FileTooLarge
    anything else                                   StoreError with the code and message
    ==============================================  ======================================
    """
    if isinstance(exc, DavstoreError):
        return exc
    from azure.core import exceptions as az

    if isinstance(exc, az.ServiceRequestTimeoutError | az.ServiceResponseTimeoutError):
        return StoreTimeout(name, f"Azure did not answer in time: {exc}")
    if isinstance(exc, az.HttpResponseError) and not isinstance(exc, az.DecodeError):
        raw_code = getattr(exc, "error_code", None) or ""
        code = str(getattr(raw_code, "value", raw_code))  # the SDK gives an enum or a str
        status = int(exc.status_code or 0)
        reason = f"Azure: {status} {code}".strip()
        # Azure says AuthenticationFailed for a refused key or signature, Azurite
        # AuthorizationFailure; both with this message.
        refused = code in _BAD_CREDENTIALS or "failed to authenticate" in str(exc.message)
        if code == "ContainerNotFound":
            return StoreUnavailable(name, f"the container {container!r} does not exist")
        if status == 404:
            return NotFound(name)
        if refused or isinstance(exc, az.ClientAuthenticationError):
            return StoreUnavailable(name, f"Azure refused the credentials: {reason}")
        if status == 403:
            return PermissionDenied(name, reason)
        if status == 412:
            return Conflict(name, "the blob changed while it was being read")
        if status == 413:
            return FileTooLarge(name, reason)
        if status == 504 or code in _TIMEOUT_CODES:
            return StoreTimeout(name, reason)
        if status in (429, 502, 503) or code in _BUSY_CODES:
            return StoreUnavailable(name, reason)
        return StoreError(name, reason)
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError | az.DecodeError):
        inner = getattr(exc, "inner_exception", None)
        if "timed out" in str(exc).lower() or isinstance(inner, TimeoutError):
            return StoreTimeout(name, f"Azure did not answer in time: {exc}")
        return StoreUnavailable(name, f"Azure is unreachable: {exc}")
    if isinstance(exc, az.ClientAuthenticationError):
        return StoreUnavailable(name, f"Azure credentials failed: {exc}")
    if isinstance(exc, SuspiciousOperation):
        return InvalidPath(name, f"refused by the storage: {exc}")
    return from_exception(exc, name)


class AzureStore(GenericStore):
    """django-storages' ``AzureStorage`` through the Blob service; see the module."""

    storage: AzureStorage

    windows: Windows = Windows(largest=16 * MiB)
    #: Blobs ``head`` reads in its one request (the service's largest page): a folder with
    #: up to this many blobs below it is listed by its ``head`` as well.
    head_page: int = _LIST_PAGE
    #: Uploads up to this size are one Put Blob; bigger ones go in blocks of (at least) it.
    block_size: int = 8 * MiB
    #: Seconds between looks at a copy the service reports pending, at most.
    copy_poll: float = 1.0

    def __init__(self, storage: AzureStorage) -> None:
        super().__init__(storage)
        self.container_name = str(storage.azure_container)

    def _detect_capabilities(self) -> Capabilities:
        prefix = len(self._key(""))
        return Capabilities(
            server_side_copy=True,
            ranged_reads=True,
            atomic_replace=True,
            max_file_size=50_000 * (4000 << 20),  # a block blob: 50 000 blocks of 4000 MiB
            # Blob names hold at most 1024 characters, the storage's location included
            # (counted in characters, not bytes).
            max_path_bytes=4096,
            max_path_chars=_MAX_NAME - prefix,
        )

    def describe(self) -> str:
        cls = type(self.storage)
        where = f"{self.storage.account_name}/{self.container_name}/{self.storage.location or ''}"
        return f"{cls.__module__}.{cls.__qualname__} at azure://{where}"

    # -- plumbing --------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The storage's container client (thread-safe; shared by every thread)."""
        return self._call("", lambda: self.storage.client)

    @property
    def timeout(self) -> int:
        """The storage's server-side timeout for one operation, in seconds."""
        return int(self.storage.timeout or 20)

    def _call(self, name: str, func: Callable[[], T]) -> T:
        try:
            return func()
        except DavstoreError:
            raise
        except Exception as exc:
            raise self._error(name, exc) from exc

    def _error(self, name: str, exc: Exception) -> DavstoreError:
        """``exc`` translated, logged when it is a store failure."""
        error = translate_error(exc, name, container=self.container_name)
        if isinstance(error, StoreError):
            logger.warning("Azure call failed for %r: %s", name, exc)
        return error

    def _key(self, name: str) -> str:
        try:
            key = str(self.storage._normalize_name(name))
        except Exception as exc:
            raise translate_error(exc, name) from exc
        if len(key) > _MAX_NAME:
            raise NameTooLong(name, f"Azure blob names have at most {_MAX_NAME} characters")
        if key.count("/") > _MAX_SLASHES:
            raise InvalidPath(name, f"Azure blob names have at most {_MAX_SLASHES} '/'")
        return key

    def _prefix(self, name: str) -> str:
        return self._key(f"{name}/") if name else self._key("")

    def _entry(self, name: str, item: Any) -> ObjectInfo:
        modified = item.last_modified
        mtime = modified.timestamp() if modified is not None else None
        etag = str(item.etag or "").strip('"') or None
        return ObjectInfo(name, False, int(item.size or 0), mtime, etag)

    def _pages(self, prefix: str, size: int) -> Any:
        return self.client.walk_blobs(
            name_starts_with=prefix or None,
            delimiter="/",
            results_per_page=size,
            timeout=self.timeout,
        ).by_page()

    @staticmethod
    def _split(items: Any) -> tuple[list[Any], set[str]]:
        from azure.storage.blob import BlobPrefix

        blobs: list[Any] = []
        prefixes: set[str] = set()
        for item in items:
            if isinstance(item, BlobPrefix):
                prefixes.add(str(item.name))
            else:
                blobs.append(item)
        return blobs, prefixes

    def _first_page(
        self, name: str, prefix: str, size: int, *, delimited: bool = True
    ) -> tuple[list[Any], set[str], bool]:
        def fetch() -> tuple[list[Any], set[str], bool]:
            if delimited:
                pages = self._pages(prefix, size)
            else:
                pages = self.client.list_blobs(
                    name_starts_with=prefix, results_per_page=size, timeout=self.timeout
                ).by_page()
            blobs, prefixes = self._split(next(pages))
            return blobs, prefixes, bool(pages.continuation_token)

        return self._call(name, fetch)

    # -- metadata --------------------------------------------------------------------

    def head(self, name: str) -> ObjectInfo:
        """One List Blobs of up to :attr:`head_page` blobs under ``prefix=key`` (no
        delimiter), read as S3's ``head`` reads its page: ``key`` itself is a file, blobs
        under ``key/`` make a folder, and when the page holds all of them the folder's
        entry carries its listing (``children``). A second list only when siblings that
        sort between ``key`` and ``key/`` fill the page."""
        if not name:
            return ObjectInfo("", True)
        key = self._key(name)
        folder = key + "/"
        blobs, _, more = self._first_page(name, key, self.head_page, delimited=False)
        found = next((blob for blob in blobs if blob.name == key), None)
        inside = [blob for blob in blobs if str(blob.name).startswith(folder)]
        if inside:
            if more and str(blobs[-1].name).startswith(folder):
                return ObjectInfo(name, True)  # more blobs below: the VFS lists it
            return ObjectInfo(name, True, children=self._children(name, folder, inside, ()))
        if more and (not blobs or str(blobs[-1].name) < folder):
            # Siblings sorted between ``key`` and ``key/`` filled the page: ask directly.
            below, prefixes, truncated = self._first_page(name, folder, _LIST_PAGE)
            if below or prefixes:
                if truncated:
                    return ObjectInfo(name, True)
                return ObjectInfo(
                    name, True, children=self._children(name, folder, below, prefixes)
                )
            if found is None:
                properties = self._call(
                    name,
                    lambda: self.client.get_blob_client(key).get_blob_properties(
                        timeout=self.timeout
                    ),
                )
                return self._entry(name, properties)
        if found is None:
            raise NotFound(name)
        return self._entry(name, found)

    def _children(
        self, name: str, prefix: str, blobs: Sequence[Any], prefixes: Iterable[str]
    ) -> tuple[ObjectInfo, ...]:
        keys: list[tuple[str, ObjectInfo | None]] = [
            (str(b.name), self._entry(str(b.name), b)) for b in blobs
        ]
        keys += [(str(p), None) for p in sorted(prefixes)]
        return folder_children(name, prefix, keys)

    def list(self, name: str) -> Iterator[ObjectInfo]:
        prefix = self._prefix(name)

        def fetch() -> tuple[list[Any], set[str]]:
            blobs: list[Any] = []
            prefixes: set[str] = set()
            for page in self._pages(prefix, _LIST_PAGE):
                more_blobs, more_prefixes = self._split(page)
                blobs += more_blobs
                prefixes |= more_prefixes
            return blobs, prefixes

        blobs, prefixes = self._call(name, fetch)
        if not blobs and not prefixes and name and not self.head(name).is_dir:
            raise NotADirectory(name)
        keys: list[tuple[str, ObjectInfo | None]] = [(p, None) for p in sorted(prefixes)]
        keys += [(str(blob.name), self._entry(str(blob.name), blob)) for blob in blobs]
        yield from folder_children(name, prefix, keys)

    # -- content ---------------------------------------------------------------------

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        source = _AzureRange(self, name, self._key(name))
        return cast(BinaryIO, RangedReader(source, name, offset, self.windows, label="Azure"))

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        """From the first window's answer (Content-Range, ETag, Last-Modified): no request."""
        return reader_info(name, stream)

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        return SpooledUpload(
            lambda spool, size: self.put(name, spool, size),
            spool_dir=spool_dir,
            spool_memory=spool_memory,
        )

    def _content_settings(self, key: str) -> Any:
        from azure.storage.blob import ContentSettings

        return ContentSettings(**self.storage._get_content_settings_parameters(key))

    def put(self, name: str, spool: BinaryIO, size: int) -> ObjectInfo:
        """Store ``size`` bytes of ``spool`` (from its start) under exactly ``name``."""
        key = self._key(name)
        blob = self.client.get_blob_client(key)
        settings = self._content_settings(key)
        if size <= self.block_size:
            spool.seek(0)
            data = spool.read(size)
            answer = self._call(
                name,
                lambda: blob.upload_blob(
                    data,
                    length=size,
                    overwrite=True,
                    content_settings=settings,
                    timeout=self.timeout,
                ),
            )
        else:
            answer = self._put_blocks(name, blob, spool, size, settings)
        modified = answer.get("last_modified")
        etag = str(answer.get("etag") or "").strip('"') or None
        return ObjectInfo(name, False, size, modified.timestamp() if modified else None, etag)

    def _put_blocks(
        self, name: str, blob: Any, spool: BinaryIO, size: int, settings: Any
    ) -> dict[str, Any]:
        from azure.storage.blob import BlobBlock

        block_size = max(self.block_size, math.ceil(size / _MAX_BLOCKS))
        blocks = []
        for number, start in enumerate(range(0, size, block_size)):
            block_id = base64.b64encode(b"davstore-%08d" % number).decode()
            spool.seek(start)
            chunk = spool.read(min(block_size, size - start))
            stage = functools.partial(
                blob.stage_block, block_id, chunk, length=len(chunk), timeout=self.timeout
            )
            self._call(name, stage)
            blocks.append(BlobBlock(block_id=block_id))
        return dict(
            self._call(
                name,
                lambda: blob.commit_block_list(
                    blocks, content_settings=settings, timeout=self.timeout
                ),
            )
        )

    def copy(self, source: str, target: str) -> ObjectInfo:
        source_url = self.client.get_blob_client(self._key(source)).url
        target_blob = self.client.get_blob_client(self._key(target))
        answer = self._call(
            source, lambda: target_blob.start_copy_from_url(source_url, timeout=self.timeout)
        )
        status = str(answer.get("copy_status") or "success")
        wait = 0.05
        while status == "pending":
            time.sleep(wait)
            wait = min(wait * 2, self.copy_poll)
            properties = self._call(
                target, lambda: target_blob.get_blob_properties(timeout=self.timeout)
            )
            status = str(properties.copy.status or "success")
        if status != "success":
            raise StoreError(target, f"Azure copy from {source!r} ended {status}")
        return self.head(target)

    # -- removing and folders --------------------------------------------------------

    def delete(self, name: str) -> None:
        key = self._key(name)
        self._call(name, lambda: self.client.delete_blob(key, timeout=self.timeout))

    def delete_many(self, names: Sequence[str]) -> None:
        """Delete files with Blob Batch requests of 256 deletes each."""
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            self._delete_keys(batch[0], [self._key(n) for n in batch])

    def _delete_keys(self, name: str, keys: Sequence[str]) -> None:
        if len(keys) == 1:
            with contextlib.suppress(NotFound):
                self._call(name, lambda: self.client.delete_blob(keys[0], timeout=self.timeout))
            return
        responses = self._call(
            name,
            lambda: list(
                self.client.delete_blobs(*keys, raise_on_any_failure=False, timeout=self.timeout)
            ),
        )
        for key, response in zip(keys, responses, strict=False):
            status = int(getattr(response, "status_code", 202))
            if status >= 300 and status != 404:
                from azure.core.exceptions import HttpResponseError

                failure = HttpResponseError(message=f"batch delete of {key!r}", response=response)
                raise translate_error(failure, name, container=self.container_name)

    def make_dir(self, name: str) -> None:
        self.put(f"{name}/{DIRECTORY_MARKER}", io.BytesIO(), 0)

    def remove_dir(self, name: str) -> None:
        prefix = self._prefix(name)
        self._delete_keys(name, [prefix + DIRECTORY_MARKER, prefix])


class _AzureRange:
    """Ranged Get Blob of one blob (a :class:`~davstore.store.ranged.RangeSource`)."""

    def __init__(self, store: AzureStore, name: str, key: str) -> None:
        self._store = store
        self._name = name
        self._key = key

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        store = self._store
        conditions: dict[str, Any] = {}
        if version is not None:
            conditions = {"etag": version, "match_condition": MatchConditions.IfNotModified}
        try:
            download = store.client.download_blob(
                self._key,
                offset=start,
                length=length,
                max_concurrency=1,
                timeout=store.timeout,
                **conditions,
            )
        except HttpResponseError as exc:
            if exc.status_code == 416:
                return None
            raise store._error(self._name, exc) from exc
        except Exception as exc:
            raise store._error(self._name, exc) from exc
        properties = download.properties
        content_range = str(properties.content_range or "")
        span, _, total = content_range.removeprefix("bytes ").partition("/")
        if total.isdigit():
            size, first = int(total), int(span.partition("-")[0] or 0)
        else:
            size, first = int(download.size), 0
        modified = properties.last_modified
        return RangeResponse(
            _Body(download),
            first,
            int(download.size),
            size,
            properties.etag,
            etag=str(properties.etag or "").strip('"') or None,
            mtime=modified.timestamp() if modified is not None else None,
        )

    def body_error(self, exc: Exception) -> DavstoreError:
        return translate_error(exc, self._name, container=self._store.container_name)


class _Body:
    """A download's bytes (the SDK fetched the window; nothing to release on close)."""

    def __init__(self, download: Any) -> None:
        self._download = download

    def read(self, size: int = -1, /) -> bytes:
        return bytes(self._download.read(size))

    def close(self) -> None:
        self._download = _Drained()


class _Drained:
    def read(self, size: int = -1, /) -> bytes:
        return b""
