"""Bad command-line input: a real ``davstore`` process exits non-zero with one line on
stderr and no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.process import davstore_env, run_davstore


def fails_cleanly(argv: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> str:
    """Run ``davstore ARGV``; check it failed with one line and no traceback; return it."""
    result = run_davstore(argv, cwd=cwd, env=env or davstore_env(cwd))
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("davstore")
    assert "Password" not in result.stdout
    return result.stderr


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "badsettings.py").write_text("import no_such_dependency_xyz\n")
    (folder / "goodsettings.py").write_text(
        "USE_TZ = True\nSECRET_KEY = 'x'\nINSTALLED_APPS = []\nDATABASES = {}\n"
        f"STORAGES = {{'default': {{'BACKEND': "
        f"'django.core.files.storage.FileSystemStorage', 'OPTIONS': "
        f"{{'location': {str(tmp_path / 'files')!r}}}}}}}\n"
    )
    return folder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "no_such_module.Storage"], "unknown backend 'no_such_module.Storage'"),
        (["--backend", "os.path.join"], "is not a Django Storage class"),
        (["--backend", "django.core.files.storage.FileSystemStorage", "-o", "x"], "KEY=VALUE"),
        (["--backend", "django.core.files.storage.FileSystemStorage", "-o", "nope=1"], "nope"),
        (["-o", "location=/tmp"], "--option needs ROOT or --backend"),
        (["missing-folder"], "no such folder"),
        (["--storage", "media"], "--storage needs Django settings"),
        (["--port", "http"], "not a port number"),
        (["--user", "nocolon"], "NAME:PASSWORD"),
        (["--user", "a:b", "--anonymous"], "not allowed with"),
        (["--max-upload-size", "lots"], "not a size"),
        (["--cache-ttl", "-1"], "must be 0 or more"),
        (["--busy-poll", "-5"], "must be 0 or more"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--anonymous", "--lock-storage", "bogus://x"], "unknown state storage 'bogus://x'"),
        (["--anonymous", "--property-storage", "ftp://x"], "unknown state storage 'ftp://x'"),
    ],
)
def test_bad_arguments(tmp_path: Path, argv: list[str], message: str) -> None:
    line = fails_cleanly(["serve", *argv], tmp_path)
    assert message in line


def test_no_command(tmp_path: Path) -> None:
    assert "COMMAND" in fails_cleanly([], tmp_path)


def test_unknown_alias(tmp_path: Path, settings_dir: Path) -> None:
    env = davstore_env(tmp_path, pythonpath=[settings_dir])
    line = fails_cleanly(
        ["serve", "--storage", "nope", "--settings", "goodsettings"], tmp_path, env=env
    )
    assert "no storage 'nope' in STORAGES of goodsettings (known: default)" in line


def test_settings_module_that_cannot_import(tmp_path: Path, settings_dir: Path) -> None:
    env = davstore_env(tmp_path, pythonpath=[settings_dir])
    line = fails_cleanly(["serve", "--settings", "badsettings"], tmp_path, env=env)
    assert "cannot import the Django settings module 'badsettings'" in line
    assert "no_such_dependency_xyz" in line
    line = fails_cleanly(["serve", "--settings", "no_such_settings"], tmp_path, env=env)
    assert "'no_such_settings'" in line


def test_bad_settings_from_the_environment(tmp_path: Path) -> None:
    env = davstore_env(tmp_path, {"DJANGO_SETTINGS_MODULE": "no_such_settings"})
    assert "no_such_settings" in fails_cleanly(["serve"], tmp_path, env=env)


def test_unwritable_state_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    result = run_davstore(
        ["serve", "--anonymous", "--state-dir", str(tmp_path / "file" / "state")],
        cwd=tmp_path,
        env=davstore_env(tmp_path),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "state directory" in result.stderr
    assert "not writable" in result.stderr


def test_unwritable_default_state_root(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    env = davstore_env(tmp_path, {"XDG_STATE_HOME": str(tmp_path / "file")})
    line = fails_cleanly(["serve", "--anonymous"], tmp_path, env=env)
    assert "not writable" in line


def test_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        line = fails_cleanly(
            ["serve", "--anonymous", "--host", "127.0.0.1", "--port", str(port)], tmp_path
        )
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "address already in use" in line.lower()


def test_tls_files_that_are_not_pem(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    line = fails_cleanly(
        ["serve", "--anonymous", "--tls-cert", "cert.pem", "--tls-key", "key.pem"], tmp_path
    )
    assert "cannot use the TLS certificate and key" in line
    assert "no such file: nope.pem" in fails_cleanly(
        ["serve", "--tls-cert", "cert.pem", "--tls-key", "nope.pem"], tmp_path
    )
