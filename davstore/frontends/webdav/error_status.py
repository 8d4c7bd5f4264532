"""The one outbound table of the WebDAV frontend: errno -> HTTP status.

Every VFS call made by the provider runs inside :func:`dav_errors`, which turns what the
core raises into wsgidav's :class:`~wsgidav.dav_error.DAVError`:

=============================================  =================================
errno                                          status
=============================================  =================================
ENOENT                                         404 Not Found
EACCES, EPERM, EROFS                           403 Forbidden
EEXIST                                         405 (MKCOL), else 412
ENOTDIR, EISDIR, ENOTEMPTY, EBUSY              409 Conflict
ENOSPC, EDQUOT                                 507 Insufficient Storage
EFBIG                                          413 during a PUT, else 507
ENOSYS, EOPNOTSUPP                             501 Not Implemented
ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ...    502 Bad Gateway
ETIMEDOUT                                      504 Gateway Timeout
EINVAL, ENAMETOOLONG                           400 Bad Request
any other OSError (EIO)                        500, reason logged
anything that is not an OSError                500, traceback logged
=============================================  =================================

A policy's refusal (:class:`davstore.vfs.policy.Refused`) is a 403 whose body is a
``DAV:error`` naming what it is about (RFC 4918 §16 allows other elements in it); a refused
content (:class:`~davstore.vfs.policy.RefusedContent`) is the same with 415 Unsupported
Media Type::

    <D:error xmlns:D="DAV:" xmlns:ds="urn:x-davstore:">
      <ds:referenced count="25">
        <ds:row model="app.Photo" pk="12" field="image" name="photos/a.jpg" url="/admin/.."/>
        ... (the first 20)
      </ds:referenced>
    </D:error>
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator
from typing import Any

from wsgidav.dav_error import DAVError, DAVErrorCondition

from davstore.vfs.policy import Refused, RefusedContent

__all__ = ["HTTP_STATUS_BY_ERRNO", "dav_errors", "status_for", "to_dav_error"]

logger = logging.getLogger(__name__)

HTTP_STATUS_BY_ERRNO: dict[int, int] = {
    errno.ENOENT: 404,
    errno.EACCES: 403,
    errno.EPERM: 403,
    errno.EROFS: 403,
    errno.EEXIST: 412,
    errno.ENOTDIR: 409,
    errno.EISDIR: 409,
    errno.ENOTEMPTY: 409,
    errno.EBUSY: 409,
    errno.ENOSPC: 507,
    errno.EDQUOT: 507,
    errno.EFBIG: 507,
    errno.ENOSYS: 501,
    errno.EOPNOTSUPP: 501,
    errno.ECONNREFUSED: 502,
    errno.ECONNRESET: 502,
    errno.ECONNABORTED: 502,
    errno.EHOSTUNREACH: 502,
    errno.ENETUNREACH: 502,
    errno.EHOSTDOWN: 503,
    errno.ETIMEDOUT: 504,
    errno.EINVAL: 400,
    errno.ENAMETOOLONG: 400,
}


def status_for(exc: OSError, *, method: str = "") -> int:
    """The HTTP status for an ``OSError`` raised while serving ``method``."""
    code = exc.errno or errno.EIO
    if code == errno.EEXIST and method == "MKCOL":
        return 405
    if code == errno.EFBIG and method == "PUT":
        return 413
    return HTTP_STATUS_BY_ERRNO.get(code, 500)


def to_dav_error(exc: BaseException, *, method: str = "") -> DAVError:
    """Translate any exception into a DAVError, logging what the client cannot see."""
    if isinstance(exc, DAVError):
        return exc
    if isinstance(exc, Refused):
        return DAVError(403, str(exc), err_condition=_referenced(exc), src_exception=exc)
    if isinstance(exc, RefusedContent):
        return DAVError(415, str(exc), err_condition=_referenced(exc), src_exception=exc)
    if isinstance(exc, OSError):
        status = status_for(exc, method=method)
        if status >= 500:
            logger.error("%s failed with %s: %s", method or "request", status, exc)
        return DAVError(status, str(exc), src_exception=exc)
    logger.error("%s failed unexpectedly", method or "request", exc_info=exc)
    return DAVError(500, "internal error", src_exception=exc)


@contextlib.contextmanager
def dav_errors(method: str = "") -> Iterator[None]:
    """Run a block of VFS calls; whatever it raises leaves as a DAVError."""
    try:
        yield
    except DAVError:
        raise
    except Exception as exc:
        raise to_dav_error(exc, method=method) from exc


#: The namespace of davstore's own elements in error bodies.
NAMESPACE = "urn:x-davstore:"


def _referenced(refused: Refused | RefusedContent) -> DAVErrorCondition:
    """The ``DAV:error`` body of a refusal: what refused it, row by row. (wsgidav takes
    only ``DAVErrorCondition`` itself, no subclass: its ``as_xml`` is replaced.)"""
    condition = DAVErrorCondition(f"{{{NAMESPACE}}}referenced")

    def as_xml() -> Any:
        from wsgidav.xml_tools import etree

        error = etree.Element("{DAV:}error", nsmap={"D": "DAV:", "ds": NAMESPACE})
        referenced = etree.SubElement(error, condition.condition_code)
        referenced.set("count", str(refused.count))
        for row in refused.references:
            etree.SubElement(referenced, f"{{{NAMESPACE}}}row", {k: str(v) for k, v in row.items()})
        return error

    condition.as_xml = as_xml
    return condition


def _not_a_known_put_failure(record: logging.LogRecord) -> bool:
    """wsgidav logs a traceback for every error raised while a PUT body is written
    ("PUT: byte copy failed"), then answers it. A DAVError raised there was made on
    purpose (413) or by :func:`to_dav_error`, which logged its one line: drop the
    traceback."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, DAVError) and record.msg == "PUT: byte copy failed")


logging.getLogger("wsgidav.request_server").addFilter(_not_a_known_put_failure)


def _name_missing_statuses() -> None:
    """wsgidav answers "413 Status" for codes it has no phrase for; give them their phrase."""
    from http import HTTPStatus

    from wsgidav import dav_error

    for code in {*HTTP_STATUS_BY_ERRNO.values(), 413, 414, 415, 500}:
        dav_error.ERROR_DESCRIPTIONS.setdefault(code, f"{code} {HTTPStatus(code).phrase}")


_name_missing_statuses()
