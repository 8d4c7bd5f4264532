"""Accelerator for django-storages' ``GoogleCloudStorage``: the GCS JSON API used directly.

Everything goes through the storage's own configuration and client: its ``client``
(project, credentials; ``STORAGE_EMULATOR_HOST`` is honoured by google-cloud-storage),
``bucket``, ``location`` prefix (``storage._normalize_name``), and its write parameters
(``get_object_parameters``, ``default_acl``, a content type guessed from the name,
``blob_chunk_size`` for resumable uploads). What each operation costs, in requests:

- ``head``: one objects.list (``prefix=key``, no delimiter, up to 1000 objects) that
  answers "file", "folder" and "missing" at once with the same size, time and ETag a
  listing gives; a folder's entry carries its listing (``ObjectInfo.children``) when the
  page holds all of it. A second list (or a metadata GET) only when 1000 siblings sort
  between ``key`` and ``key/``.
- ``list``: one objects.list per 1000 children, keeping size, ``updated`` and ETag; no
  per-object GET. Prefixes are folders; ``.davstore-folder`` markers and other tools'
  ``name/`` markers (the console's "create folder") make a folder and are never listed.
- ``open_read``: ranged media downloads streamed from the storage client's HTTP session, in
  windows of 1 MiB doubling to 64 MiB (:mod:`davstore.store.ranged`); later windows carry
  ``ifGenerationMatch`` with the first window's generation; the next window is fetched
  ahead while reading on; ``stream_info`` comes from the first answer's headers. Never
  ``storage.open()``.
- uploads: a bounded spool; on commit one multipart upload up to 8 MiB, else a resumable
  upload in ``blob_chunk_size`` pieces (8 MiB by default). GCS replaces an object only when
  an upload finishes, so a failed write leaves the old object. The upload's answer carries
  the new metadata: no request to read it back.
- ``copy``: objects.rewrite (server side; one call unless GCS asks to continue);
  ``delete``: one DELETE; ``delete_many`` and ``remove_dir``: one batch request per 100 names;
  ``make_dir``: one upload of the marker.

google-cloud-storage retries idempotent calls for up to two minutes by default; davstore
gives up after :attr:`GCSStore.retry_deadline` seconds so a WebDAV or FUSE caller hears
about an outage (502/504, EIO) while it still waits.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import logging
import mimetypes
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from django.core.exceptions import SuspiciousOperation

from davstore.errors import (
    Conflict,
    DavstoreError,
    FileTooLarge,
    InvalidPath,
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
    from storages.backends.gcloud import GoogleCloudStorage

__all__ = ["GCSStore", "translate_error"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MiB = 1 << 20

#: GCS's page limit for objects.list, and the most calls it takes in one batch request.
_LIST_PAGE = 1000
#: The longest object name Cloud Storage takes (UTF-8 bytes).
_MAX_NAME_BYTES = 1024
_BATCH = 100


def translate_error(
    exc: BaseException, name: str = "", *, bucket: str = "", listing: bool = False
) -> DavstoreError:
    """Translate what google-cloud-storage, google-auth and requests raise (the one place).

    ==============================================  ======================================
    google / requests                               davstore
    ==============================================  ======================================
    404 on an object                                NotFound
    404 while listing (the bucket is missing)       StoreUnavailable naming the bucket
    403 Forbidden                                   PermissionDenied (WebDAV 403, EACCES)
    401, credentials that cannot be refreshed       StoreUnavailable naming the cause
    429, 502, 503, connection refused or lost       StoreUnavailable (WebDAV 502)
    504, connect/read timeouts                      StoreTimeout (WebDAV 504)
    412 (the object changed while being read)       Conflict
    413                                             FileTooLarge
    a retry deadline exceeded                       what its last error translates to
    anything else                                   StoreError with the status and message
    ==============================================  ======================================
    """
    if isinstance(exc, DavstoreError):
        return exc
    import requests
    import urllib3.exceptions
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.RetryError) and exc.cause is not None:
        return translate_error(exc.cause, name, bucket=bucket, listing=listing)
    if isinstance(exc, api.GoogleAPICallError):
        reason = f"GCS: {exc.code} {exc.message}".strip()
        if isinstance(exc, api.NotFound):
            if listing:
                return StoreUnavailable(name, f"the bucket {bucket!r} does not exist")
            return NotFound(name)
        if isinstance(exc, api.Unauthorized):
            return StoreUnavailable(name, f"GCS refused the credentials: {reason}")
        if isinstance(exc, api.Forbidden):
            return PermissionDenied(name, reason)
        if isinstance(exc, api.PreconditionFailed):
            return Conflict(name, "the object changed while it was being read")
        if isinstance(exc, api.GatewayTimeout):
            return StoreTimeout(name, reason)
        if isinstance(exc, api.TooManyRequests | api.ServiceUnavailable | api.BadGateway):
            return StoreUnavailable(name, reason)
        if exc.code == 413:
            return FileTooLarge(name, reason)
        return StoreError(name, reason)
    if isinstance(
        exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError | auth.TimeoutError
    ):
        return StoreTimeout(name, f"GCS did not answer in time: {exc}")
    if isinstance(exc, auth.RefreshError | auth.DefaultCredentialsError):
        return StoreUnavailable(name, f"GCS credentials failed: {exc}")
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.ProtocolError
        | urllib3.exceptions.HTTPError
        | auth.TransportError
        | ConnectionError,
    ):
        return StoreUnavailable(name, f"GCS is unreachable: {exc}")
    if isinstance(exc, SuspiciousOperation):
        return InvalidPath(name, f"refused by the storage: {exc}")
    return from_exception(exc, name)


class GCSStore(GenericStore):
    """django-storages' ``GoogleCloudStorage`` through the GCS JSON API; see the module."""

    storage: GoogleCloudStorage

    windows: Windows = Windows()
    #: Objects ``head`` reads in its one request (GCS's page limit): a folder with up to
    #: this many objects below it is listed by its ``head`` as well.
    head_page: int = _LIST_PAGE
    #: Seconds for connecting and for each read of an answer.
    timeout: float = 60.0
    #: Seconds google's retries may go on for an idempotent call; 0 for no retries.
    retry_deadline: float = 30.0
    #: Resumable upload pieces when the storage sets no ``blob_chunk_size``.
    upload_chunk_size: int = 8 * MiB

    def __init__(self, storage: GoogleCloudStorage) -> None:
        super().__init__(storage)
        self.bucket_name = str(storage.bucket_name)
        self._bucket: Any = None
        self._lock = threading.Lock()

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            server_side_copy=True,
            ranged_reads=True,
            atomic_replace=True,
            max_file_size=5 << 40,  # Cloud Storage's limit for one object: 5 TiB
            # Object names hold at most 1024 bytes, the storage's location included.
            max_path_bytes=_MAX_NAME_BYTES - len(self._key("").encode()),
        )

    def describe(self) -> str:
        cls = type(self.storage)
        return f"{cls.__module__}.{cls.__qualname__} at gs://{self.bucket_name}/" + (
            self.storage.location or ""
        )

    # -- plumbing --------------------------------------------------------------------

    @property
    def bucket(self) -> Any:
        """The storage's bucket (and so its client), shared by every thread."""
        if self._bucket is None:
            with self._lock:
                if self._bucket is None:
                    self._bucket = self._call("", lambda: self.storage.bucket)
        return self._bucket

    @property
    def retry(self) -> Any:
        if not self.retry_deadline:
            return None
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.retry_deadline)

    def _call(self, name: str, func: Callable[[], T], *, listing: bool = False) -> T:
        try:
            return func()
        except DavstoreError:
            raise
        except Exception as exc:
            error = translate_error(exc, name, bucket=self.bucket_name, listing=listing)
            if isinstance(error, StoreError):
                logger.warning("GCS call failed for %r: %s", name, exc)
            raise error from exc

    def _key(self, name: str) -> str:
        try:
            return str(self.storage._normalize_name(name))
        except Exception as exc:
            raise translate_error(exc, name) from exc

    def _prefix(self, name: str) -> str:
        return self._key(f"{name}/") if name else self._key("")

    def _entry(self, name: str, blob: Any) -> ObjectInfo:
        updated = blob.updated
        mtime = updated.timestamp() if updated is not None else None
        return ObjectInfo(name, False, int(blob.size or 0), mtime, blob.etag or None)

    def _first_page(
        self, name: str, prefix: str, size: int, *, delimiter: str | None = "/"
    ) -> tuple[list[Any], set[str], bool]:
        """Blobs, prefixes and "more follow" of one objects.list request."""

        def fetch() -> tuple[list[Any], set[str], bool]:
            iterator = self.bucket.list_blobs(
                prefix=prefix,
                delimiter=delimiter,
                max_results=size,
                timeout=self.timeout,
                retry=self.retry,
            )
            page = next(iterator.pages)
            blobs = list(page)
            return blobs, set(page.prefixes), bool(iterator.next_page_token)

        return self._call(name, fetch, listing=True)

    # -- metadata --------------------------------------------------------------------

    def head(self, name: str) -> ObjectInfo:
        """One objects.list of up to :attr:`head_page` objects under ``prefix=key`` (no
        delimiter), read as S3's ``head`` reads its page: ``key`` itself is a file, objects
        under ``key/`` make a folder, and when the page holds all of them the folder's
        entry carries its listing (``children``). A second list only when siblings that
        sort between ``key`` and ``key/`` fill the page."""
        if not name:
            return ObjectInfo("", True)
        key = self._key(name)
        folder = key + "/"
        blobs, _, more = self._first_page(name, key, self.head_page, delimiter=None)
        found = next((blob for blob in blobs if blob.name == key), None)
        inside = [blob for blob in blobs if str(blob.name).startswith(folder)]
        if inside:
            if more and str(blobs[-1].name).startswith(folder):
                return ObjectInfo(name, True)  # more objects below: the VFS lists it
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
                blob = self._call(
                    name,
                    lambda: self.bucket.get_blob(key, timeout=self.timeout, retry=self.retry),
                )
                if blob is None:
                    raise NotFound(name)
                return self._entry(name, blob)
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
            iterator = self.bucket.list_blobs(
                prefix=prefix,
                delimiter="/",
                page_size=_LIST_PAGE,
                timeout=self.timeout,
                retry=self.retry,
            )
            blobs: list[Any] = []
            prefixes: set[str] = set()
            for page in iterator.pages:
                blobs.extend(page)
                prefixes.update(page.prefixes)
            return blobs, prefixes

        blobs, prefixes = self._call(name, fetch, listing=True)
        if not blobs and not prefixes and name and not self.head(name).is_dir:
            raise NotADirectory(name)
        keys: list[tuple[str, ObjectInfo | None]] = [(p, None) for p in sorted(prefixes)]
        keys += [(str(blob.name), self._entry(str(blob.name), blob)) for blob in blobs]
        yield from folder_children(name, prefix, keys)

    # -- content ---------------------------------------------------------------------

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        source = _GCSRange(self, name, self._key(name))
        return cast(BinaryIO, RangedReader(source, name, offset, self.windows, label="GCS"))

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        """From the first window's answer (Content-Range, ETag, Last-Modified): no request."""
        return reader_info(name, stream)

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        return SpooledUpload(
            lambda spool, size: self.put(name, spool, size),
            spool_dir=spool_dir,
            spool_memory=spool_memory,
        )

    def _new_blob(self, key: str) -> tuple[Any, dict[str, Any]]:
        """A blob for ``key`` with the storage's object parameters set, and the upload
        arguments (content type, ACL), as ``GoogleCloudStorage._save`` makes them."""
        chunk = self.storage.blob_chunk_size or self.upload_chunk_size
        blob = self.bucket.blob(key, chunk_size=chunk)
        params = dict(self.storage.get_object_parameters(key))
        content_type, encoding = mimetypes.guess_type(key)
        if encoding and "content_encoding" not in params:
            params["content_encoding"] = encoding
        upload = {
            "predefined_acl": params.pop("acl", self.storage.default_acl),
            "content_type": params.pop("content_type", content_type),
        }
        for prop, value in params.items():
            setattr(blob, prop, value)
        return blob, upload

    def put(self, name: str, spool: BinaryIO, size: int) -> ObjectInfo:
        """Store ``size`` bytes of ``spool`` under exactly ``name``; the new metadata."""
        key = self._key(name)
        blob, upload = self._new_blob(key)
        self._call(
            name,
            lambda: blob.upload_from_file(
                spool,
                rewind=True,
                size=size,
                timeout=self.timeout,
                retry=self.retry,
                **upload,
            ),
        )
        return self._entry(name, blob)

    def copy(self, source: str, target: str) -> ObjectInfo:
        source_blob = self.bucket.blob(self._key(source))
        target_blob, upload = self._new_blob(self._key(target))
        if upload["content_type"]:
            target_blob.content_type = upload["content_type"]

        def rewrite() -> None:
            token = None
            while True:
                token, _, _ = target_blob.rewrite(
                    source_blob, token=token, timeout=self.timeout, retry=self.retry
                )
                if token is None:
                    return

        self._call(source, rewrite)
        return self._entry(target, target_blob)

    # -- removing and folders --------------------------------------------------------

    def delete(self, name: str) -> None:
        key = self._key(name)
        self._call(
            name, lambda: self.bucket.delete_blob(key, timeout=self.timeout, retry=self.retry)
        )

    def delete_many(self, names: Sequence[str]) -> None:
        """Delete files with batch requests of 100 deletes each."""
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            self._delete_keys(batch[0], [self._key(n) for n in batch])

    def _delete_keys(self, name: str, keys: Sequence[str]) -> None:
        if len(keys) == 1:
            with contextlib.suppress(NotFound):
                self._call(
                    name,
                    lambda: self.bucket.delete_blob(
                        keys[0], timeout=self.timeout, retry=self.retry
                    ),
                )
            return

        def send() -> list[Any]:
            client = self.bucket.client
            with client.batch(raise_exception=False) as batch:
                for key in keys:
                    self.bucket.delete_blob(key, timeout=self.timeout)
            return list(getattr(batch, "_responses", ()))

        responses = self._call(name, send)
        for key, response in zip(keys, responses, strict=False):
            status = int(getattr(response, "status_code", 200))
            if status >= 300 and status != 404:
                from google.api_core.exceptions import from_http_status

                failure = from_http_status(status, f"batch delete of {key!r} failed")
                raise translate_error(failure, name, bucket=self.bucket_name)

    def make_dir(self, name: str) -> None:
        self.put(f"{name}/{DIRECTORY_MARKER}", io.BytesIO(), 0)

    def remove_dir(self, name: str) -> None:
        prefix = self._prefix(name)
        self._delete_keys(name, [prefix + DIRECTORY_MARKER, prefix])


class _Body:
    """The streamed body of one ranged download (the raw bytes, never decoded)."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def read(self, size: int = -1, /) -> bytes:
        return bytes(self._response.raw.read(None if size < 0 else size, decode_content=False))

    def close(self) -> None:
        self._response.close()


class _GCSRange:
    """Ranged media downloads of one object (a :class:`~davstore.store.ranged.RangeSource`)."""

    def __init__(self, store: GCSStore, name: str, key: str) -> None:
        self._store = store
        self._name = name
        self._key = key

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        store = self._store

        def request() -> Any:
            blob = store.bucket.blob(self._key)
            client = store.bucket.client
            generation = int(version) if version else None
            url = blob._get_download_url(client, if_generation_match=generation)
            headers = {"Range": f"bytes={start}-{start + length - 1}"}
            return client._http.request(
                "GET", url, headers=headers, stream=True, timeout=store.timeout
            )

        response = store._call(self._name, request)
        status = int(response.status_code)
        if status == 416:
            response.close()
            return None
        if status >= 400:
            from google.api_core.exceptions import from_http_response

            try:
                failure = from_http_response(response)
            finally:
                response.close()
            error = translate_error(failure, self._name, bucket=store.bucket_name)
            if isinstance(error, StoreError):
                logger.warning("GCS read of %r failed: %s", self._name, failure)
            raise error from failure
        length = int(response.headers.get("Content-Length", 0))
        content_range = str(response.headers.get("Content-Range") or "")
        if status == 206 and content_range:
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            size = int(total)
            first = int(span.partition("-")[0])
        else:  # the whole object came back
            size, first = length, 0
        if first >= size and start > 0:
            response.close()
            return None
        headers = response.headers
        return RangeResponse(
            _Body(response),
            first,
            length,
            size,
            headers.get("x-goog-generation"),
            etag=str(headers.get("ETag") or "").strip('"') or None,
            mtime=_http_time(headers.get("Last-Modified")),
        )

    def body_error(self, exc: Exception) -> DavstoreError:
        return translate_error(exc, self._name, bucket=self._store.bucket_name)


def _http_time(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP date, ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
