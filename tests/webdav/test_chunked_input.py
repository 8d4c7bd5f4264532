"""A chunked body the WSGI server did not decode is refused (411), never stored empty."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage

from davstore.frontends.webdav import create_app
from davstore.store import adapt
from davstore.vfs import VFS


def call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
        answer["status"] = status

    body = b"".join(app(environ, start_response))
    return answer["status"], body


def environ_for(method: str, path: str, body: bytes, **extra: Any) -> dict[str, Any]:
    token = base64.b64encode(b"alice:pw").decode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Basic {token}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(extra)
    return environ


def test_undecoded_chunked_put_is_411_and_keeps_the_old_content(tmp_path: Path) -> None:
    media = tmp_path / "media"
    vfs = VFS(adapt(FileSystemStorage(location=str(media))))
    vfs.write_file("doc.txt", b"old content")
    app = create_app(vfs, users={"alice": "pw"}, state_dir=tmp_path / "state")
    try:
        # What wsgiref (Django's runserver) hands over: the raw chunks, no decoding flag.
        raw = b"5\r\nhello\r\n0\r\n\r\n"
        status, _ = call(app, environ_for("PUT", "/doc.txt", raw, HTTP_TRANSFER_ENCODING="chunked"))
        assert status.startswith("411")
        assert (media / "doc.txt").read_bytes() == b"old content"
        # The HTTP server decodes chunked bodies and says so: then the PUT goes through.
        status, _ = call(
            app,
            environ_for(
                "PUT",
                "/doc.txt",
                b"hello",
                HTTP_TRANSFER_ENCODING="chunked",
                **{"wsgi.input_terminated": True},
            ),
        )
        assert status.startswith("204"), status
        assert (media / "doc.txt").read_bytes() == b"hello"
    finally:
        app.close()
