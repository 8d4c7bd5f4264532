"""Count the S3 requests an adapter makes, with botocore's event hooks on its client."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass
class Call:
    operation: str
    headers: dict[str, str]


@dataclasses.dataclass
class Recorder:
    calls: list[Call] = dataclasses.field(default_factory=list)

    def note(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        headers = {str(k): str(v) for k, v in params.get("headers", {}).items()}
        self.calls.append(Call(model.name, headers))

    @property
    def counts(self) -> Counter[str]:
        return Counter(call.operation for call in self.calls)

    def of(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    def clear(self) -> None:
        self.calls.clear()


@contextmanager
def recording(client: Any) -> Iterator[Recorder]:
    """Record every request ``client`` makes inside the block (``before-call.s3``)."""
    recorder = Recorder()
    client.meta.events.register("before-call.s3", recorder.note, unique_id="davstore-recorder")
    try:
        yield recorder
    finally:
        client.meta.events.unregister("before-call.s3", unique_id="davstore-recorder")


@contextmanager
def failing(
    client: Any, operation: str, fail: Callable[[int], BaseException | None]
) -> Iterator[None]:
    """Make ``operation`` raise ``fail(n)`` on its n-th call (1-based) when that is not None."""
    seen = 0

    def hook(**_: Any) -> None:
        nonlocal seen
        seen += 1
        error = fail(seen)
        if error is not None:
            raise error

    event = f"before-call.s3.{operation}"
    client.meta.events.register(event, hook, unique_id="davstore-failing")
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id="davstore-failing")
