"""wsgidav's own directory browser, deferred by davstore.frontends.webdav.dir_browser: not
imported (nor Jinja2) by davstore's frontend, and still working where a wsgidav
application uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.process import davstore_env

#: In a fresh process: import davstore's frontend, then serve a folder with wsgidav's
#: default middleware stack and GET its listing as a browser would.
PROBE = """
import io, sys
import davstore.frontends.webdav
assert "jinja2" not in sys.modules, "jinja2 imported by the frontend"
from wsgidav.wsgidav_app import WsgiDAVApp
from wsgiref.util import setup_testing_defaults
app = WsgiDAVApp({
    "provider_mapping": {"/": sys.argv[1]},
    "simple_dc": {"user_mapping": {"*": True}},
    "logging": {"enable": False},
    "verbose": 0,
})
environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "HTTP_ACCEPT": "text/html"}
setup_testing_defaults(environ)
status = []
body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
print(status[0], "jinja2" in sys.modules, b"listed.txt" in body)
"""


def test_wsgidavs_directory_browser_is_imported_when_used(tmp_path: Path) -> None:
    (tmp_path / "listed.txt").write_text("x")
    result = subprocess.run(
        [sys.executable, "-P", "-c", PROBE, str(tmp_path)],
        cwd=tmp_path,
        env=davstore_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["200", "OK", "True", "True"]
