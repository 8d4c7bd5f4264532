"""Count (and fail) the HTTP requests a GCS adapter makes, at its client's session."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit


@dataclasses.dataclass
class Call:
    kind: str
    method: str
    url: str
    headers: dict[str, str]


def kind_of(method: str, url: str) -> str:
    """list, get (metadata), media (download), upload, rewrite, copy, delete, batch, bucket.

    ``bucket`` is the bucket GET google-cloud-storage (3.x) sends once per client and bucket
    from a background thread for its metadata cache: not a cost of any one operation, so
    :attr:`Recorder.counts` leaves it out.
    """
    parts = urlsplit(url)
    path, query = parts.path, parts.query
    if path.startswith("/batch"):
        return "batch"
    if path.startswith("/upload"):
        return "upload"
    if "/rewriteTo/" in path:
        return "rewrite"
    if "/copyTo/" in path:
        return "copy"
    if method == "DELETE":
        return "delete"
    if "alt=media" in query:
        return "media"
    if method == "GET" and path.endswith("/o"):
        return "list"
    if method == "GET" and "/o/" not in path:
        return "bucket"
    if method == "GET":
        return "get"
    return f"{method} {path}"


@dataclasses.dataclass
class Recorder:
    calls: list[Call] = dataclasses.field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(call.kind for call in self.calls if call.kind != "bucket")

    def of(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


@contextmanager
def recording(
    client: Any, fail: Callable[[Call, int], BaseException | None] | None = None
) -> Iterator[Recorder]:
    """Record every request of ``client`` inside the block; ``fail(call, n)`` may return an
    error to raise instead of sending the n-th request (1-based)."""
    session = client._http
    send = session.request
    recorder = Recorder()

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        call = Call(kind_of(method, url), method, url, headers)
        recorder.calls.append(call)
        if fail is not None:
            error = fail(call, len(recorder.calls))
            if error is not None:
                raise error
        return send(method, url, *args, **kwargs)

    session.request = request
    try:
        yield recorder
    finally:
        del session.request
