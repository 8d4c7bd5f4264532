"""A throw-away Django project in a temporary folder, run in subprocesses.

:func:`make_project` writes a settings module (SQLite database, FileSystemStorage media,
``davstore`` installed, ``DAVSTORE`` as given) and migrates it; :meth:`Project.run` runs a
``django-admin`` command with it, :meth:`Project.serve` starts ``davstore serve``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.process import ServeProcess, davstore_env

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Project:
    root: Path
    module: str
    media: Path

    def env(self) -> dict[str, str]:
        extra = {"DJANGO_SETTINGS_MODULE": self.module}
        return davstore_env(self.root, extra, pythonpath=[self.root, REPO])

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "django", *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in ``manage.py shell`` (the site's process)."""
        return self.run("shell", "--verbosity", "0", "-c", code)

    def serve(self, *args: str, timeout: float = 60, cwd: Path | None = None) -> ServeProcess:
        port = free_port()
        stdout = tempfile.TemporaryFile()  # noqa: SIM115 -- owned by the ServeProcess
        stderr = tempfile.TemporaryFile()  # noqa: SIM115
        proc = subprocess.Popen(
            [
                *self.command("davstore", "serve", *args),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd or self.root,
            env=self.env(),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
        server = ServeProcess(proc, "127.0.0.1", port, stdout, stderr)
        try:
            server.wait_until_answers(timeout)
        except BaseException:
            server.close()
            raise
        return server


def make_project(
    root: Path,
    *,
    davstore: dict[str, Any] | None = None,
    storages: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    migrate: bool = True,
) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    media = root / "media"
    media.mkdir(exist_ok=True)
    module = f"project_{abs(hash(str(root))) % 10**8}"
    values = {
        "SECRET_KEY": "davstore-test-project",
        "USE_TZ": True,
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "davstore",
        ],
        "DATABASES": {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(root / "db.sqlite3")}
        },
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
        "STORAGES": {
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(media), "base_url": "/media/"},
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            **(storages or {}),
        },
        "DAVSTORE": {"STATE_DIR": str(root / "state"), **(davstore or {})},
        **(settings or {}),
    }
    text = "".join(f"{key} = {value!r}\n" for key, value in values.items())
    (root / f"{module}.py").write_text(text)
    project = Project(root, module, media)
    if migrate:
        done = project.run("migrate", "--verbosity", "0")
        assert done.returncode == 0, done.stderr
    return project
