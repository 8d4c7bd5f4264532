"""Accelerator for django-storages' ``S3Storage`` (boto3): the S3 API used directly.

Everything goes through the storage's own configuration: its bucket, ``location`` prefix
(``storage._normalize_name``), endpoint, credentials and botocore client config (the
low-level client of ``storage.connection``), and its write parameters for new objects
(``object_parameters`` / ``get_object_parameters``, ``default_acl``, a content type guessed
from the name). What each operation costs, in requests:

- ``head``: one ListObjectsV2 (``Prefix=key``, no delimiter, up to 1000 keys) that answers
  "file", "folder" and "missing" at once with the same size, time and ETag a listing gives
  (HeadObject times have whole seconds, listings milliseconds: one source keeps them equal).
  When the page holds every key below a folder, the folder's entry carries its listing
  (``ObjectInfo.children``): a stat then a listing (PROPFIND Depth 1, ``ls -l``) is one
  request for a folder of up to 1000 keys.
- ``list``: one ListObjectsV2 per 1000 children, keeping size, mtime and ETag; no HEAD.
  Prefixes are folders; davstore's ``.davstore-folder`` markers and other tools' ``name/``
  zero-byte markers make a folder exist and are never listed.
- ``open_read``: ranged GetObject in windows that grow while the reader goes on
  sequentially (1 MiB, doubling up to 64 MiB; :mod:`davstore.store.ranged`): reads a
  little out of order are served from the bytes kept, a short forward jump reads through,
  the next window is fetched ahead on a background thread, a far jump reopens at the new
  offset. Later windows carry ``If-Match`` with the first ETag, so a reader never stitches
  two versions together; ``stream_info`` comes from the first answer (no request). Never
  ``storage.open()``.
- uploads: a bounded spool (memory, then disk); on commit one PutObject below the storage's
  ``transfer_config.multipart_threshold``, else a multipart upload streamed part by part
  from the spool, aborted (AbortMultipartUpload) on any failure. S3 replaces objects
  atomically, so a failed write leaves the old object as it was.
- ``copy``: CopyObject (multipart UploadPartCopy for sources over 5 GiB) then the ``head``
  of the copy; ``delete``: DeleteObject; ``delete_many``: DeleteObjects per 1000 names;
  ``make_dir``: one PutObject of the marker; ``remove_dir``: one DeleteObjects of both
  marker kinds.

``file_overwrite`` does not matter here: davstore always stores under the exact name asked
for, and an S3 PUT replaces in place. Threads: boto3 resources are not thread-safe, but
low-level clients are; the adapter takes the client of the storage's connection once and
shares it between all threads (the storage's ``client_config`` sizes its connection pool).
"""

from __future__ import annotations

import functools
import io
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
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
    from storages.backends.s3 import S3Storage

__all__ = ["S3Store", "translate_error"]

logger = logging.getLogger(__name__)

#: The longest object key S3 takes (UTF-8 bytes).
_MAX_KEY_BYTES = 1024
T = TypeVar("T")

MiB = 1 << 20

#: ListObjectsV2 page size of ``head`` (S3's largest): every key under a folder of up to
#: 1000 keys, and the siblings that sort between ``name`` and ``name/`` (``name.bak``).
_HEAD_PAGE = 1000
#: Largest object CopyObject copies in one call; bigger ones use UploadPartCopy.
_COPY_LIMIT = 5 << 30
#: S3's smallest part (all but the last) and most parts in one multipart upload.
_MIN_PART = 5 * MiB
_MAX_PARTS = 10_000
#: Parameters that describe an SSE-C key or the payer, needed again on reads and parts.
_KEY_PARAMETERS = (
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSECustomerKeyMD5",
    "RequestPayer",
    "ExpectedBucketOwner",
)

#: What CompleteMultipartUpload takes of each part's answer.
_PART_FIELDS = {
    "ETag",
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
}

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
#: S3 refused the credentials davstore was configured with: a gateway problem (502).
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_UNAVAILABLE = {
    "SlowDown",
    "503",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "502",
    "BadGateway",
}
_TIMEOUT = {"RequestTimeout", "RequestTimeTooSkewed", "504", "GatewayTimeout"}


def translate_error(exc: BaseException, name: str = "", *, bucket: str = "") -> DavstoreError:
    """Translate what boto3/botocore raise into the davstore tree (the one place it is done).

    ==============================================  ======================================
    botocore                                        davstore
    ==============================================  ======================================
    NoSuchKey, 404                                  NotFound
    AccessDenied, 403, no credentials at all        PermissionDenied (WebDAV 403, EACCES)
    NoSuchBucket, refused keys or signature         StoreUnavailable naming the cause
    SlowDown, 503, Throttling, connection refused   StoreUnavailable (WebDAV 502)
    or lost mid-transfer
    timeouts (connect, read, RequestTimeout, 504)   StoreTimeout (WebDAV 504)
    PreconditionFailed (object changed under us)    Conflict
    KeyTooLongError                                 NameTooLong
    EntityTooLarge                                  FileTooLarge
    anything else                                   StoreError with the code and message
    ==============================================  ======================================
    """
    if isinstance(exc, DavstoreError):
        return exc
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = str(error.get("Message", "") or code)
        reason = f"S3 {exc.operation_name}: {code} {message}".strip()
        if code in _NOT_FOUND or (status == "404" and code != "NoSuchBucket"):
            return NotFound(name)
        if code == "NoSuchBucket":
            missing = bucket or error.get("BucketName")
            return StoreUnavailable(name, f"the bucket {missing!r} does not exist")
        if code in _BAD_CREDENTIALS:
            return StoreUnavailable(name, f"S3 refused the credentials: {reason}")
        if code in _DENIED or status == "403":
            return PermissionDenied(name, reason)
        if code in _TIMEOUT or status == "504":
            return StoreTimeout(name, reason)
        if code in _UNAVAILABLE or status in ("502", "503"):
            return StoreUnavailable(name, reason)
        if code in ("PreconditionFailed", "412"):
            return Conflict(name, "the object changed while it was being read")
        if code == "KeyTooLongError":
            return NameTooLong(name, reason)
        if code == "EntityTooLarge":
            return FileTooLarge(name, reason)
        return StoreError(name, reason)
    if isinstance(exc, boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return StoreTimeout(name, f"S3 did not answer in time: {exc}")
    if isinstance(
        exc,
        boto.EndpointConnectionError
        | boto.ConnectionClosedError
        | boto.ResponseStreamingError
        | boto.IncompleteReadError
        | boto.ProxyConnectionError,
    ):
        return StoreUnavailable(name, f"S3 is unreachable: {exc}")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return PermissionDenied(name, f"no S3 credentials: {exc}")
    if isinstance(exc, boto.ParamValidationError):
        return InvalidPath(name, f"refused by boto3: {exc}")
    if isinstance(exc, SuspiciousOperation):
        return InvalidPath(name, f"refused by the storage: {exc}")
    if isinstance(exc, boto.BotoCoreError):
        return StoreError(name, f"{type(exc).__name__}: {exc}")
    return from_exception(exc, name)


class S3Store(GenericStore):
    """django-storages' ``S3Storage`` through the S3 API; see the module docstring."""

    storage: S3Storage

    #: Keys ``head`` reads in its one request (S3 gives at most 1000): a folder with up to
    #: this many keys below it is listed by its ``head`` as well.
    head_page: int = _HEAD_PAGE
    #: The first read window and the largest one (it doubles while reading on).
    read_window: int = 1 * MiB
    max_read_window: int = 64 * MiB
    #: A forward jump up to this far reads through the open stream instead of a new request.
    skip_limit: int = 2 * MiB
    #: Sources bigger than this are copied with UploadPartCopy, in parts of this size.
    copy_limit: int = _COPY_LIMIT
    copy_part_size: int = 512 * MiB

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(storage)
        self.bucket_name = str(storage.bucket_name)
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _detect_capabilities(self) -> Capabilities:
        return Capabilities(
            native_dirs=False,
            server_side_copy=True,
            ranged_reads=True,
            atomic_replace=True,
            max_file_size=5 << 40,  # S3's limit for one object: 5 TiB
            # Object keys hold at most 1024 bytes, the storage's location included.
            max_path_bytes=_MAX_KEY_BYTES - len(self._key("").encode()),
        )

    def describe(self) -> str:
        cls = type(self.storage)
        where = f"s3://{self.bucket_name}/{self.storage.location or ''}"
        endpoint = getattr(self.storage, "endpoint_url", None)
        return f"{cls.__module__}.{cls.__qualname__} at {where}" + (
            f" ({endpoint})" if endpoint else ""
        )

    # -- plumbing --------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The botocore S3 client of the storage's connection, shared by every thread."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._call("", lambda: self.storage.connection.meta.client)
        return self._client

    def _call(self, name: str, func: Callable[[], T]) -> T:
        try:
            return func()
        except DavstoreError:
            raise
        except Exception as exc:
            error = translate_error(exc, name, bucket=self.bucket_name)
            if isinstance(error, StoreError):
                logger.warning("S3 call failed for %r: %s", name, exc)
            raise error from exc

    def _key(self, name: str) -> str:
        """The object key of share name ``name`` (the storage's ``location`` in front)."""
        try:
            return str(self.storage._normalize_name(name))
        except Exception as exc:
            raise translate_error(exc, name) from exc

    def _prefix(self, name: str) -> str:
        """The key prefix of everything in folder ``name`` (ends with ``/`` or is empty)."""
        return self._key(f"{name}/") if name else self._key("")

    def _key_parameters(self, key: str) -> dict[str, Any]:
        params = self.storage.get_object_parameters(key)
        return {k: v for k, v in params.items() if k in _KEY_PARAMETERS}

    def _write_parameters(self, key: str) -> dict[str, Any]:
        get = getattr(self.storage, "_get_write_parameters", None)
        if get is not None:
            return dict(get(key))
        params = dict(self.storage.get_object_parameters(key))
        params.setdefault("ContentType", self.storage.default_content_type)
        if self.storage.default_acl and "ACL" not in params:
            params["ACL"] = self.storage.default_acl
        return params

    def _entry(self, name: str, item: dict[str, Any]) -> ObjectInfo:
        modified = item.get("LastModified")
        mtime = modified.timestamp() if modified is not None else None
        etag = str(item.get("ETag", "")).strip('"') or None
        return ObjectInfo(name, False, int(item.get("Size", 0)), mtime, etag)

    # -- metadata --------------------------------------------------------------------

    def head(self, name: str) -> ObjectInfo:
        """One ListObjectsV2 of up to :attr:`head_page` keys under ``Prefix=key`` (no
        delimiter): the first key is ``key`` itself when it is a file, keys under ``key/``
        make it a folder, and when the page holds everything under ``key/`` the folder's
        entry carries its complete listing (``children``), so the VFS needs no second
        request to list it. A second list only when siblings that sort between ``key`` and
        ``key/`` (``key.bak``, ``key copy``) fill the page."""
        if not name:
            return ObjectInfo("", True)
        key = self._key(name)
        page = self._call(
            name,
            lambda: self.client.list_objects_v2(
                Bucket=self.bucket_name, Prefix=key, MaxKeys=self.head_page
            ),
        )
        contents = page.get("Contents", ())
        folder = key + "/"
        found = next((item for item in contents if item["Key"] == key), None)
        inside = [item for item in contents if str(item["Key"]).startswith(folder)]
        if inside:
            last = str(contents[-1]["Key"])
            if page.get("IsTruncated") and last.startswith(folder):
                return ObjectInfo(name, True)  # more keys below: the VFS lists it
            return ObjectInfo(name, True, children=self._children(name, folder, inside))
        if page.get("IsTruncated") and (not contents or str(contents[-1]["Key"]) < folder):
            # Siblings sorted between ``key`` and ``key/`` filled the page: ask directly.
            listing = self._call(
                name,
                lambda: self.client.list_objects_v2(
                    Bucket=self.bucket_name, Prefix=folder, Delimiter="/"
                ),
            )
            if listing.get("KeyCount") or listing.get("Contents") or listing.get("CommonPrefixes"):
                if listing.get("IsTruncated"):
                    return ObjectInfo(name, True)
                return ObjectInfo(name, True, children=self._page_children(name, folder, listing))
            if found is None:
                return self._head_object(name, key)
        if found is None:
            raise NotFound(name)
        return self._entry(name, found)

    def _children(
        self, name: str, prefix: str, items: Sequence[dict[str, Any]]
    ) -> tuple[ObjectInfo, ...]:
        """The direct children of folder ``name`` from every key under ``prefix`` (deeper
        keys make subfolders; an item without ``Size`` is a common prefix), as :meth:`list`
        gives them."""
        keys = [(str(i["Key"]), self._entry("", i) if "Size" in i else None) for i in items]
        return folder_children(name, prefix, keys)

    def _page_children(
        self, name: str, prefix: str, page: dict[str, Any]
    ) -> tuple[ObjectInfo, ...]:
        """The children of folder ``name`` from one delimited ListObjectsV2 page."""
        return self._children(name, prefix, _page_items(page))

    def _head_object(self, name: str, key: str) -> ObjectInfo:
        response = self._call(
            name,
            lambda: self.client.head_object(
                Bucket=self.bucket_name, Key=key, **self._key_parameters(key)
            ),
        )
        item = {
            "Size": response.get("ContentLength", 0),
            "LastModified": response.get("LastModified"),
            "ETag": response.get("ETag"),
        }
        return self._entry(name, item)

    def list(self, name: str) -> Iterator[ObjectInfo]:
        prefix = self._prefix(name)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket_name, Prefix=prefix, Delimiter="/")
        items: list[dict[str, Any]] = []
        for page in self._call(name, lambda: list(pages)):
            items += _page_items(page)
        if not items and name and not self.head(name).is_dir:
            raise NotADirectory(name)
        yield from self._children(name, prefix, items)

    # -- content ---------------------------------------------------------------------

    def open_read(self, name: str, offset: int = 0) -> BinaryIO:
        windows = Windows(self.read_window, self.max_read_window, self.skip_limit)
        reader = RangedReader(_S3Range(self, name), name, offset, windows, label="S3")
        return cast(BinaryIO, reader)

    def stream_info(self, name: str, stream: BinaryIO) -> ObjectInfo | None:
        """From the first window's answer (Content-Range, ETag, Last-Modified): no request."""
        return reader_info(name, stream)

    def start_upload(self, name: str, *, spool_dir: str | None, spool_memory: int) -> Upload:
        return SpooledUpload(
            lambda spool, size: self._put_described(name, spool, size),
            spool_dir=spool_dir,
            spool_memory=spool_memory,
        )

    def _put_described(self, name: str, spool: BinaryIO, size: int) -> ObjectInfo:
        """:meth:`put`, then the stored object's metadata (a HEAD: the PUT's answer has no
        size or time); when the HEAD fails, what is known."""
        self.put(name, spool, size)
        try:
            return self.head(name)
        except (StoreError, NotFound):
            logger.warning("stored %r but could not read its metadata back", name)
            return ObjectInfo(name, False, size)

    def put(self, name: str, spool: BinaryIO, size: int) -> None:
        """Store ``size`` bytes of ``spool`` (from its start) under exactly ``name``."""
        key = self._key(name)
        params = self._write_parameters(key)
        config = getattr(self.storage, "transfer_config", None)
        threshold = int(getattr(config, "multipart_threshold", 8 * MiB))
        if size < max(threshold, _MIN_PART):
            self._call(
                name,
                lambda: self.client.put_object(
                    Bucket=self.bucket_name, Key=key, Body=_Window(spool, 0, size), **params
                ),
            )
            return
        chunk = int(getattr(config, "multipart_chunksize", 8 * MiB))
        part_size = max(chunk, _MIN_PART, math.ceil(size / _MAX_PARTS))

        def upload_part(upload_id: str, number: int, start: int) -> dict[str, Any]:
            length = min(part_size, size - start)
            response = self.client.upload_part(
                Bucket=self.bucket_name,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=_Window(spool, start, length),
                **self._key_parameters(key),
            )
            return dict(response)

        self._multipart(
            name, key=key, params=params, size=size, part_size=part_size, upload_part=upload_part
        )

    def _multipart(
        self,
        name: str,
        *,
        key: str,
        params: dict[str, Any],
        size: int,
        part_size: int,
        upload_part: Callable[[str, int, int], dict[str, Any]],
    ) -> None:
        """Create a multipart upload, add one part per ``part_size`` bytes, complete it;
        abort it when anything fails, so no part stays behind and the old object stays."""
        created = self._call(
            name,
            lambda: self.client.create_multipart_upload(Bucket=self.bucket_name, Key=key, **params),
        )
        upload_id = str(created["UploadId"])
        try:
            parts = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                response = self._call(
                    name, functools.partial(upload_part, upload_id, number, start)
                )
                result = response.get("CopyPartResult", response)
                part = {k: v for k, v in result.items() if k in _PART_FIELDS}
                part["PartNumber"] = number
                parts.append(part)
            self._call(
                name,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket_name,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **self._key_parameters(key),
                ),
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket_name, Key=key, UploadId=upload_id
                )
            except Exception as exc:  # one line: the upload's own error follows
                logger.error(
                    "could not abort the multipart upload of %r (%s: %s); the bucket's "
                    "incomplete-upload lifecycle rule, if any, removes its parts",
                    name,
                    type(exc).__name__,
                    " ".join(str(exc).split()),
                )
            raise

    def copy(self, source: str, target: str) -> ObjectInfo:
        source_key, target_key = self._key(source), self._key(target)
        params = self._write_parameters(target_key)
        copy_source = {"Bucket": self.bucket_name, "Key": source_key}
        for parameter, value in self._key_parameters(source_key).items():
            if parameter.startswith("SSECustomer"):
                params[f"CopySource{parameter}"] = value
        size = None
        if self.copy_limit < _COPY_LIMIT:  # configured lower (tests): check first
            size = self._head_object(source, source_key).size
        try:
            if size is None or size <= self.copy_limit:
                self._call(
                    source,
                    lambda: self.client.copy_object(
                        Bucket=self.bucket_name,
                        Key=target_key,
                        CopySource=copy_source,
                        MetadataDirective="REPLACE",
                        **params,
                    ),
                )
                return self.head(target)
        except StoreError as exc:
            if "larger than the maximum allowable size" not in exc.reason:
                raise
            size = None
        if size is None:
            size = self._head_object(source, source_key).size or 0
        self._copy_in_parts(target, target_key, copy_source, params, size)
        return self.head(target)

    def _copy_in_parts(
        self,
        target: str,
        key: str,
        copy_source: dict[str, str],
        params: dict[str, Any],
        size: int,
    ) -> None:
        part_size = max(self.copy_part_size, _MIN_PART, math.ceil(size / _MAX_PARTS))
        create = {k: v for k, v in params.items() if not k.startswith("CopySource")}
        source_keys = {k: v for k, v in params.items() if k.startswith("CopySource")}

        def copy_part(upload_id: str, number: int, start: int) -> dict[str, Any]:
            end = min(start + part_size, size) - 1
            response = self.client.upload_part_copy(
                Bucket=self.bucket_name,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceRange=f"bytes={start}-{end}",
                **source_keys,
                **self._key_parameters(key),
            )
            return dict(response)

        self._multipart(
            target, key=key, params=create, size=size, part_size=part_size, upload_part=copy_part
        )

    # -- removing and folders --------------------------------------------------------

    def delete(self, name: str) -> None:
        """Delete the object ``name``; S3 does not tell whether it existed (the VFS checks)."""
        key = self._key(name)
        self._call(name, lambda: self.client.delete_object(Bucket=self.bucket_name, Key=key))

    def delete_many(self, names: Sequence[str]) -> None:
        """Delete files with DeleteObjects, 1000 names per request."""
        for start in range(0, len(names), 1000):
            batch = names[start : start + 1000]
            self._delete_keys(batch[0], [self._key(n) for n in batch])

    def _delete_keys(self, name: str, keys: Sequence[str]) -> None:
        objects = [{"Key": key} for key in keys]
        response = self._call(
            name,
            lambda: self.client.delete_objects(
                Bucket=self.bucket_name, Delete={"Objects": objects, "Quiet": True}
            ),
        )
        errors = [e for e in response.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
        if errors:
            first = errors[0]
            from botocore.exceptions import ClientError

            failure = ClientError({"Error": first}, "DeleteObjects")
            raise translate_error(failure, str(first.get("Key", name)), bucket=self.bucket_name)

    def make_dir(self, name: str) -> None:
        key = self._key(f"{name}/{DIRECTORY_MARKER}")
        self._call(
            name,
            lambda: self.client.put_object(
                Bucket=self.bucket_name, Key=key, Body=b"", **self._key_parameters(key)
            ),
        )

    def remove_dir(self, name: str) -> None:
        prefix = self._prefix(name)
        self._delete_keys(name, [prefix + DIRECTORY_MARKER, prefix])


class _S3Range:
    """Ranged GetObject of one object (a :class:`~davstore.store.ranged.RangeSource`)."""

    def __init__(self, store: S3Store, name: str) -> None:
        self._store = store
        self._name = name
        self._key = store._key(name)

    def open_range(self, start: int, length: int, version: str | None) -> RangeResponse | None:
        store = self._store
        params: dict[str, Any] = {
            "Bucket": store.bucket_name,
            "Key": self._key,
            "Range": f"bytes={start}-{start + length - 1}",
            **store._key_parameters(self._key),
        }
        if version is not None:
            params["IfMatch"] = version
        from botocore.exceptions import ClientError

        try:
            response = store.client.get_object(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return None
            error = translate_error(exc, self._name, bucket=store.bucket_name)
            if isinstance(error, StoreError):
                logger.warning("S3 read of %r failed: %s", self._name, exc)
            raise error from exc
        except Exception as exc:
            raise translate_error(exc, self._name, bucket=store.bucket_name) from exc
        length = int(response.get("ContentLength", 0))
        content_range = str(response.get("ContentRange") or "")
        if content_range:
            size = int(content_range.rpartition("/")[2])
        else:  # the whole object came back
            size, start = length, 0
        version = response.get("ETag")
        modified = response.get("LastModified")
        return RangeResponse(
            response["Body"],
            start,
            length,
            size,
            version,
            etag=str(version or "").strip('"') or None,
            mtime=modified.timestamp() if modified is not None else None,
        )

    def body_error(self, exc: Exception) -> DavstoreError:
        return translate_error(exc, self._name, bucket=self._store.bucket_name)


class _Window:
    """``length`` bytes of ``file`` from ``start``, as a file of its own (a request body:
    botocore reads it for the checksum, seeks back, and sends it; retries seek again)."""

    def __init__(self, file: BinaryIO, start: int, length: int) -> None:
        self._file = file
        self._start = start
        self._length = length
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._pos
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        self._file.seek(self._start + self._pos)
        data = self._file.read(size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self._length
        self._pos = min(max(0, offset), self._length)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._length


def _page_items(page: dict[str, Any]) -> list[dict[str, Any]]:
    """A ListObjectsV2 page's objects, then its common prefixes as ``{"Key": prefix}``."""
    items = [*page.get("Contents", ())]
    items += [{"Key": str(p["Prefix"])} for p in page.get("CommonPrefixes", ())]
    return items
