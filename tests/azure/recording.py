"""Count (and fail) the HTTP requests an Azure adapter makes, at its client's transport."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Call:
    kind: str
    method: str
    url: str
    headers: dict[str, str]


def kind_of(method: str, url: str, headers: dict[str, str]) -> str:
    """list, get (download), properties, put, block, blocklist, copy, delete, batch."""
    query = parse_qs(urlsplit(url).query)
    comp = query.get("comp", [""])[0]
    if comp == "list":
        return "list"
    if comp == "batch":
        return "batch"
    if comp in ("block", "blocklist"):
        return comp
    if method == "PUT" and "x-ms-copy-source" in {k.lower() for k in headers}:
        return "copy"
    return {"GET": "get", "HEAD": "properties", "PUT": "put", "DELETE": "delete"}.get(
        method, method
    )


@dataclasses.dataclass
class Recorder:
    calls: list[Call] = dataclasses.field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(call.kind for call in self.calls)

    def of(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


@contextmanager
def recording(
    container_client: Any, fail: Callable[[Call, int], BaseException | None] | None = None
) -> Iterator[Recorder]:
    """Record every request sent through ``container_client``'s transport (shared by the
    blob clients it makes); ``fail(call, n)`` may return an error to raise instead."""
    transport = container_client._pipeline._transport
    send = transport.send
    recorder = Recorder()

    def record(request: Any, **kwargs: Any) -> Any:
        headers = {str(k): str(v) for k, v in request.headers.items()}
        call = Call(
            kind_of(request.method, request.url, headers), request.method, request.url, headers
        )
        recorder.calls.append(call)
        if fail is not None:
            error = fail(call, len(recorder.calls))
            if error is not None:
                raise error
        return send(request, **kwargs)

    transport.send = record
    try:
        yield recorder
    finally:
        del transport.send
