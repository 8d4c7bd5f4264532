"""A share served over WebDAV in-process, for tests: davstore's HTTP server on 127.0.0.1 in
a thread, stopped at the end of the ``with`` block whatever the test did.

::

    with serve_share(storage, tmp_path / "state") as share:
        share.request("PUT", "a.txt", data=b"hello")
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests
from django.core.files.storage import Storage

from davstore.frontends.webdav import DavstoreApp, create_app, make_server
from davstore.store import adapt
from davstore.vfs import VFS

__all__ = ["PASSWORD", "USER", "Share", "free_port", "serve_in_thread", "serve_share"]

#: The account :func:`serve_share` creates unless told otherwise.
USER, PASSWORD = "alice", "s3cret"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(
    app: Callable[..., Any], *, threads: int = 8
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Serve the WSGI ``app``; yield ``(base_url, stop)``. The server stops at the end of
    the block anyway."""
    port = free_port()
    server = make_server(app, "127.0.0.1", port, threads=threads, timeout=30)
    server.prepare()
    thread = threading.Thread(target=server.serve, name=f"http-{port}", daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.stop()
            thread.join(10)

    try:
        yield f"http://127.0.0.1:{port}", stop
    finally:
        stop()


@dataclasses.dataclass
class Share:
    """One served share: its URL, an authenticated session, and what is behind it."""

    url: str
    session: requests.Session
    storage: Storage
    vfs: VFS
    app: DavstoreApp

    def __call__(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self(path), **kwargs)


@contextlib.contextmanager
def serve_share(
    storage: Storage,
    state_dir: pathlib.Path,
    *,
    read_only: bool = False,
    users: dict[str, str] | None = None,
    anonymous: bool = False,
    cache_ttl: float = 1.0,
    **app_options: Any,
) -> Iterator[Share]:
    """Serve ``storage`` (its locks and properties in ``state_dir``) as a share; the
    session logs in as the first of ``users`` (default: :data:`USER`)."""
    vfs = VFS(adapt(storage), read_only=read_only, cache_ttl=cache_ttl)
    if users is None and not anonymous:
        users = {USER: PASSWORD}
    app = create_app(vfs, users=users, state_dir=state_dir, **app_options)
    try:
        with serve_in_thread(app) as (url, _stop), requests.Session() as session:
            if users:
                name, password = next(iter(users.items()))
                session.auth = (name, password)
            yield Share(url, session, storage, vfs, app)
    finally:
        app.close()
