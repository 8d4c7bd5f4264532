"""A real ``davstore serve`` process: defaults, authentication, read-only, Django
settings, state folders and a clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.process import ServeProcess, davstore_env, start_serve

PROPFIND_ROOT = '<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>'


def propfind(
    server: ServeProcess, auth: tuple[str, str] | None, path: str = ""
) -> requests.Response:
    return requests.request(
        "PROPFIND",
        server.url + path,
        auth=auth,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        data=PROPFIND_ROOT,
        timeout=10,
    )


@pytest.fixture
def served_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "hello.txt").write_bytes(b"hello")
    return folder


def test_default_serves_media_with_a_generated_password(tmp_path: Path) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    with start_serve([], cwd=cwd, env=davstore_env(tmp_path)) as server:
        assert (cwd / "media").is_dir()
        out = server.stdout
        assert f"URL:      {server.url}" in out
        assert "User:     davstore" in out
        credentials = server.credentials
        assert credentials is not None
        user, password = credentials
        assert user == "davstore"
        assert len(password) >= 12

        assert requests.get(server.url, timeout=10).status_code == 401
        assert propfind(server, None).status_code == 401
        assert requests.get(server.url, auth=(user, "wrong"), timeout=10).status_code == 401
        assert requests.get(server.url, auth=credentials, timeout=10).status_code == 200
        assert propfind(server, credentials).status_code == 207

        put = requests.put(server.url + "new.txt", data=b"written", auth=credentials, timeout=10)
        assert put.status_code in (201, 204)
        assert (cwd / "media" / "new.txt").read_bytes() == b"written"
        got = requests.get(server.url + "new.txt", auth=credentials, timeout=10)
        assert got.content == b"written"

        # the share's state folder sits under $XDG_STATE_HOME, one per share
        states = list((tmp_path / "xdg-state" / "davstore").iterdir())
        assert [p.name.split("-")[0] for p in states] == ["media"]
        assert f"State:    {states[0]}" in out
        assert password not in server.stderr
        assert server.stop() == 0


def test_each_generated_password_differs(tmp_path: Path, served_folder: Path) -> None:
    with (
        start_serve([str(served_folder)], cwd=tmp_path) as first,
        start_serve([str(served_folder)], cwd=tmp_path) as second,
    ):
        assert first.credentials is not None
        assert second.credentials is not None
        assert first.credentials[1] != second.credentials[1]
        assert requests.get(first.url, auth=second.credentials, timeout=10).status_code == 401


def test_anonymous(tmp_path: Path, served_folder: Path) -> None:
    with start_serve(["--anonymous", str(served_folder)], cwd=tmp_path) as server:
        assert server.credentials is None
        assert "Auth:     none" in server.stdout
        assert requests.get(server.url + "hello.txt", timeout=10).content == b"hello"
        # The listing names the share by its folder; one share alone: no list of shares.
        page = requests.get(server.url, timeout=10).text
        assert "<title>share — /</title>" in page and ">Shares<" not in page
        assert propfind(server, None).status_code == 207
        put = requests.put(server.url + "anon.txt", data=b"x", timeout=10)
        assert put.status_code in (201, 204)
        assert (served_folder / "anon.txt").read_bytes() == b"x"


def test_named_users(tmp_path: Path, served_folder: Path) -> None:
    args = ["--user", "alice:wonder:land", "--user", "bob:builder", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        assert server.credentials is None
        assert "Users:    alice, bob" in server.stdout
        assert "wonder" not in server.stdout
        get = requests.get
        assert get(server.url, timeout=10).status_code == 401
        assert get(server.url, auth=("alice", "wonder:land"), timeout=10).status_code == 200
        assert get(server.url, auth=("bob", "builder"), timeout=10).status_code == 200
        assert get(server.url, auth=("bob", "wonder:land"), timeout=10).status_code == 401


def test_read_only_refuses_put(tmp_path: Path, served_folder: Path) -> None:
    with start_serve(["--anonymous", "--read-only", str(served_folder)], cwd=tmp_path) as server:
        assert "(read-only)" in server.stdout
        assert requests.get(server.url + "hello.txt", timeout=10).content == b"hello"
        put = requests.put(server.url + "hello.txt", data=b"changed", timeout=10)
        assert put.status_code == 403
        assert requests.put(server.url + "new.txt", data=b"x", timeout=10).status_code == 403
        assert requests.delete(server.url + "hello.txt", timeout=10).status_code == 403
        assert (served_folder / "hello.txt").read_bytes() == b"hello"
        assert sorted(p.name for p in served_folder.iterdir()) == ["hello.txt"]


@pytest.fixture
def django_site(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A settings module (on a private PYTHONPATH entry) whose default storage is a
    FileSystemStorage on ``files/``; yields (python path entry, files folder)."""
    site = tmp_path / "site"
    site.mkdir()
    files = tmp_path / "files"
    files.mkdir()
    (files / "from-django.txt").write_bytes(b"site content")
    (site / "mysite_settings.py").write_text(
        "USE_TZ = True\n"
        "SECRET_KEY = 'test'\n"
        "INSTALLED_APPS = []\n"
        "DATABASES = {}\n"
        "STORAGES = {\n"
        "    'default': {\n"
        "        'BACKEND': 'django.core.files.storage.FileSystemStorage',\n"
        f"        'OPTIONS': {{'location': {str(files)!r}}},\n"
        "    },\n"
        "    'scratch': {'BACKEND': 'django.core.files.storage.InMemoryStorage'},\n"
        "}\n"
    )
    yield site, files


@pytest.mark.parametrize("how", ["flags", "environment", "default-alias"])
def test_django_storage_alias(tmp_path: Path, django_site: tuple[Path, Path], how: str) -> None:
    site, files = django_site
    env = davstore_env(tmp_path, pythonpath=[site])
    args = ["--anonymous"]
    if how == "flags":
        args += ["--storage", "default", "--settings", "mysite_settings"]
    elif how == "environment":
        env["DJANGO_SETTINGS_MODULE"] = "mysite_settings"
        args += ["--storage", "default"]
    else:
        args += ["--settings", "mysite_settings"]
    with start_serve(args, cwd=tmp_path, env=env) as server:
        assert str(files) in server.stdout
        got = requests.get(server.url + "from-django.txt", timeout=10)
        assert got.content == b"site content"
        assert "<title>default — /</title>" in requests.get(server.url, timeout=10).text
        requests.put(server.url + "via-dav.txt", data=b"dav", timeout=10).raise_for_status()
        assert (files / "via-dav.txt").read_bytes() == b"dav"
    assert not (tmp_path / "media").exists()


def test_state_dirs_differ_per_share(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        with start_serve(["--anonymous", str(tmp_path / name)], cwd=tmp_path):
            pass
    states = sorted(p.name for p in (tmp_path / "xdg-state" / "davstore").iterdir())
    assert [s.split("-")[0] for s in states] == ["one", "two"]


def test_explicit_state_dir(tmp_path: Path, served_folder: Path) -> None:
    state = tmp_path / "my-state"
    args = ["--anonymous", "--state-dir", str(state), str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        assert state.is_dir()
        assert f"State:    {state}" in server.stdout
    assert not (tmp_path / "xdg-state").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(tmp_path: Path, served_folder: Path, sig: signal.Signals) -> None:
    with start_serve(["--anonymous", str(served_folder)], cwd=tmp_path) as server:
        # a keep-alive connection stays open across the stop
        session = requests.Session()
        assert session.get(server.url + "hello.txt", timeout=10).status_code == 200
        started = time.monotonic()
        assert server.stop(sig, timeout=10) == 0
        assert time.monotonic() - started < 8
        assert "Traceback" not in server.stderr
        assert "stopped" in server.stderr
        assert not server.answers(timeout=1)
        session.close()


def test_logging_options(tmp_path: Path, served_folder: Path) -> None:
    args = ["--anonymous", "--log-level", "warning", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        assert server.stop() == 0
        assert "INFO" not in server.stderr
    with start_serve(["--anonymous", "-v", str(served_folder)], cwd=tmp_path) as server:
        assert server.stop() == 0
        assert "DEBUG" in server.stderr


def test_tls(tmp_path: Path, served_folder: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("needs the openssl command (tests/run.sh installs it)")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    args = ["--tls-cert", "cert.pem", "--tls-key", "key.pem", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        assert server.url.startswith("https://")
        assert f"URL:      {server.url}" in server.stdout
        got = requests.get(
            server.url + "hello.txt",
            auth=server.credentials,
            verify=str(tmp_path / "cert.pem"),
            timeout=10,
        )
        assert got.content == b"hello"


def test_stop_during_an_upload_keeps_the_old_content(tmp_path: Path, served_folder: Path) -> None:
    args = ["--anonymous", "--grace-period", "2", str(served_folder)]
    with start_serve(args, cwd=tmp_path) as server:
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            head = (
                f"PUT /hello.txt HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                f"Content-Length: {1 << 20}\r\n\r\n"
            )
            sock.sendall(head.encode() + b"x" * 4096)
            time.sleep(0.5)  # the upload is under way
            started = time.monotonic()
            assert server.stop(signal.SIGTERM, timeout=15) == 0
            assert time.monotonic() - started < 10
        assert "Traceback" not in server.stderr
    assert (served_folder / "hello.txt").read_bytes() == b"hello"
    assert sorted(p.name for p in served_folder.iterdir()) == ["hello.txt"]
