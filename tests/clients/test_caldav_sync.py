"""A real sync client: python-caldav (Debian's ``python3-caldav``; tests/run.sh installs it)
keeps a folder of calendar objects in step with ``objects_by_sync_token`` and ``sync()``,
the RFC 6578 flow, against a share served with its change journal. It runs in Debian's
Python (the package is not in the virtualenv); a missing package fails the test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from davstore.vfs.host_peers import share_with_host_peers
from tests.webdav.serving import PASSWORD, USER, Share, serve_share

SYSTEM_PYTHON = "/usr/bin/python3"

#: Syncs the calendar at argv[1]: the first sync, then one more per line read on stdin.
CLIENT = """
import sys
import caldav

url, user, password = sys.argv[1:4]
client = caldav.DAVClient(url, username=user, password=password)
calendar = caldav.Calendar(client=client, url=url)
objects = calendar.objects_by_sync_token(load_objects=True)
def name(obj):
    return str(obj.url).rstrip("/").rsplit("/", 1)[1]
print("initial", *sorted(name(o) for o in objects), flush=True)
print("token", objects.sync_token, flush=True)
for line in sys.stdin:
    updated, deleted = objects.sync()
    print("updated", *sorted(name(o) for o in updated), flush=True)
    print("deleted", *sorted(name(o) for o in deleted), flush=True)
    print("summaries", *sorted(str(o.icalendar_instance.walk("VEVENT")[0]["SUMMARY"])
                              for o in objects), flush=True)
"""


def event(uid: str, summary: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//davstore tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:20260102T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def calendar(tmp_path: Path) -> Iterator[Share]:
    media = tmp_path / "media"
    (media / "cal").mkdir(parents=True)
    (media / "cal" / "one.ics").write_bytes(event("one", "first"))
    (media / "cal" / "two.ics").write_bytes(event("two", "second"))
    with serve_share(FileSystemStorage(location=str(media)), tmp_path / "state") as share:
        peers = share_with_host_peers(share.vfs, tmp_path / "state")
        assert peers is not None
        try:
            yield share
        finally:
            peers.close()


def test_python_caldav_keeps_a_folder_in_step_by_sync_token(calendar: Share) -> None:
    client = subprocess.Popen(
        [SYSTEM_PYTHON, "-I", "-c", CLIENT, calendar("cal/"), USER, PASSWORD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdin is not None
        assert client.stdout is not None

        def line() -> list[str]:
            text = client.stdout.readline()  # type: ignore[union-attr]
            assert text, client.stderr.read()  # type: ignore[union-attr]
            return text.split()

        assert line() == ["initial", "one.ics", "two.ics"]
        token = line()
        assert token[0] == "token"
        assert token[1].startswith("urn:x-davstore:sync:")
        changed = calendar.request("PUT", "cal/one.ics", data=event("one", "moved-meeting"))
        assert changed.status_code == 204, changed.text
        assert calendar.request("PUT", "cal/three.ics", data=event("three", "third")).ok
        assert calendar.request("DELETE", "cal/two.ics").status_code == 204
        client.stdin.write("sync\n")
        client.stdin.flush()
        assert line() == ["updated", "one.ics", "three.ics"]
        assert line() == ["deleted", "two.ics"]
        assert line() == ["summaries", "moved-meeting", "third"]
        client.stdin.write("sync\n")  # nothing changed since
        client.stdin.flush()
        assert line() == ["updated"]
        assert line() == ["deleted"]
        assert line() == ["summaries", "moved-meeting", "third"]
    finally:
        if client.stdin is not None:
            client.stdin.close()
        try:
            client.wait(timeout=30)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        for stream in (client.stdout, client.stderr):
            if stream is not None:
                stream.close()
    assert client.returncode == 0
