"""Replicas on two hosts (two state folders) sharing Redis share one activity log: the
stream ``<prefix>activity`` holds both replicas' changes in order, while each host's file
keeps its own (issue 22, item 6)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from davstore.frontends.webdav.state.redis_state import activity_stream
from davstore.vfs.activity import ActivityLog
from tests.process import start_serve


def test_replicas_sharing_redis_share_the_activity_log(tmp_path: Path, redis_url: str) -> None:
    """Failed before: each replica's log held its own changes only."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "old.txt").write_bytes(b"old")
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                _replica(user, host, shared, redis_url, "--property-storage", redis_url)
            )
            for user, host in zip(("ann", "bob"), hosts, strict=True)
        ]
        a, b = servers
        put = requests.put(
            a.url + "new.txt", data=b"12345", auth=("ann", "secret-pass"), timeout=10
        )
        assert put.status_code == 201, put.text
        gone = requests.delete(b.url + "old.txt", auth=("bob", "secret-pass"), timeout=10)
        assert gone.status_code == 204, gone.text
    stream = activity_stream(redis_url)
    assert stream is not None
    shown = [
        (r["user"], r["action"], r["path"]) for r in ActivityLog(hosts[0], stream=stream).read()
    ]
    assert shown == [("ann", "created", "new.txt"), ("bob", "deleted", "old.txt")]
    assert [r["user"] for r in ActivityLog(hosts[0], stream=stream).read(limit=1)] == ["bob"]
    # Each host's own file: its own changes (what a reader without Redis sees).
    assert [r["user"] for r in ActivityLog(hosts[0]).read()] == ["ann"]
    assert [r["user"] for r in ActivityLog(hosts[1]).read()] == ["bob"]


def test_davstore_activity_reads_the_stream_with_lock_storage(
    tmp_path: Path, redis_url: str
) -> None:
    """Failed before (no such option): ``davstore activity`` read only this host's file."""
    shared = tmp_path / "shared"
    shared.mkdir()
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for user, host in zip(("ann", "bob"), hosts, strict=True):
        with _replica(user, host, shared, redis_url) as server:
            put = requests.put(
                server.url + f"{user}.txt", data=b"1", auth=(user, "secret-pass"), timeout=10
            )
            assert put.status_code == 201, put.text

    def shown(*more: str) -> list[tuple[str, str]]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "davstore",
                "activity",
                "--json",
                "--state-dir",
                str(hosts[0]),
                *more,
                str(shared),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=True,
        )
        return [(r["user"], r["path"]) for r in json.loads(done.stdout)]

    assert shown("--lock-storage", redis_url) == [("ann", "ann.txt"), ("bob", "bob.txt")]
    assert shown() == [("ann", "ann.txt")]  # the host's own file


def _replica(
    user: str, host: Path, shared: Path, redis_url: str, *more: str
) -> contextlib.AbstractContextManager[Any]:
    """A server of ``shared`` as ``user`` on a host whose state folder is ``host``, its
    locks (and ``more``) in Redis."""
    return start_serve(
        [
            "--user",
            f"{user}:secret-pass",
            "--lock-storage",
            redis_url,
            *more,
            "--state-dir",
            str(host),
            str(shared),
        ],
        cwd=shared.parent,
        timeout=60,
    )
