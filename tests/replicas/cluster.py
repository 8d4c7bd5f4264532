"""Several ``davstore serve`` processes on one store and one Redis, for the replica tests."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.process import ServeProcess, start_serve

__all__ = ["checked_body", "replicas", "verify_body"]


@contextlib.contextmanager
def replicas(
    count: int,
    store_args: Sequence[str],
    redis_url: str,
    tmp_path: Path,
    *,
    cache_ttl: float = 30.0,
    extra: Sequence[str] = (),
) -> Iterator[list[ServeProcess]]:
    """``count`` anonymous replicas sharing ``redis_url`` for locks, properties and changes."""
    args = [
        "--anonymous",
        *("--lock-storage", redis_url, "--property-storage", redis_url),
        *("--cache-ttl", str(cache_ttl), "--threads", "24"),
        *extra,
        *store_args,
    ]
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(start_serve(args, cwd=tmp_path, timeout=60)) for _ in range(count)
        ]
        yield servers


def checked_body(counter: int, writer: str, size: int) -> bytes:
    """A self-verifying body: a header with the hash and length of the rest, then the rest."""
    rest = f"{writer}\n".encode() + os.urandom(size)
    digest = hashlib.sha256(rest).hexdigest()
    return f"davstore-test {digest} {counter} {len(rest)}\n".encode() + rest


def verify_body(body: bytes) -> int:
    """The counter of a body made by :func:`checked_body`; AssertionError if it is damaged."""
    head, newline, rest = body.partition(b"\n")
    assert newline, f"no header in {body[:80]!r} ({len(body)} bytes)"
    magic, digest, counter, length = head.decode().split(" ")
    assert magic == "davstore-test"
    assert len(rest) == int(length), f"partial body: {len(rest)} of {length} bytes"
    assert hashlib.sha256(rest).hexdigest() == digest, "damaged body"
    return int(counter)
