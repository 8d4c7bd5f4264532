"""Fixtures for the replica tests: a real redis-server (fails, never skips, without one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replicas.redis_server import RedisServer, RedisServerError


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (the test may stop and restart it)."""
    server = RedisServer(tmp_path / "redis-data")
    server.directory.mkdir()
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()
