"""README's recipe as written: ``cd /path/to/project && davstore serve --settings
mysite.settings --storage default``, run by a console script (whose folder, not the
current one, is first on the path), serves the project's Django users (issue 24 item 1).
The current folder is put on the path for the settings only; a worker of ``--workers`` is
handed it by its absolute path and never looks at its own current folder (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from davstore.serving.selection import project_folder
from tests.process import davstore_env, run_davstore, start_serve, wait_for_workers

#: What pip writes as the ``davstore`` console script (its folder is first on sys.path).
CONSOLE_SCRIPT = "import sys\nfrom davstore.cli import main\nsys.exit(main())\n"


def make_site(root: Path, *, media: Path | None = None, apps: tuple[str, ...] = ()) -> Path:
    """``root/mysite/settings.py`` (auth, SQLite, default storage on ``media``, default
    ``root/media``, and the project's ``apps`` after davstore), migrated, with staff
    ``alice`` and non-staff ``bob``; returns the media folder."""
    media = media or root / "media"
    media.mkdir(parents=True, exist_ok=True)
    (root / "mysite").mkdir(parents=True)
    (root / "mysite" / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text(
        "SECRET_KEY = 'first-day'\n"
        "USE_TZ = True\n"
        "INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes', 'davstore',"
        f" *{list(apps)!r}]\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(root / 'db.sqlite3')!r}}}}}\n"
        "PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']\n"
        "STORAGES = {'default': {'BACKEND': 'django.core.files.storage.FileSystemStorage',"
        f" 'OPTIONS': {{'location': {str(media)!r}}}}},"
        " 'staticfiles': {'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}}\n"
        f"DAVSTORE = {{'STATE_DIR': {str(root / 'state')!r}}}\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    for command in (
        ["migrate", "--run-syncdb", "--verbosity", "0"],
        [
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            "User.objects.create_user('alice', password='pw', is_staff=True);"
            "User.objects.create_user('bob', password='pw')",
        ],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "django", *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return media


@pytest.fixture
def console_script(tmp_path: Path) -> list[str]:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "davstore"
    script.write_text(CONSOLE_SCRIPT)
    return [sys.executable, str(script)]


RECIPE = ["--settings", "mysite.settings", "--storage", "default"]


def test_the_recipe_serves_the_project_to_its_django_users(
    tmp_path: Path, console_script: list[str]
) -> None:
    """Failed before: ``No module named 'mysite'``; then the generated user, not Django's."""
    project = tmp_path / "project"
    media = make_site(project)
    with start_serve(
        RECIPE, cwd=project, env=davstore_env(tmp_path), entry=console_script
    ) as server:
        assert "Django users" in server.stdout
        assert server.credentials is None  # no generated password
        url = server.url + "hello.txt"
        assert requests.get(server.url, timeout=10).status_code == 401
        assert requests.get(server.url, auth=("alice", "wrong"), timeout=10).status_code == 401
        put = requests.put(url, data=b"from alice", auth=("alice", "pw"), timeout=10)
        assert put.status_code == 201, put.text
        assert (media / "hello.txt").read_bytes() == b"from alice"
        # bob is not staff: the default rules (WRITE staff) keep him out, as manage.py does
        assert requests.get(url, auth=("bob", "pw"), timeout=10).status_code == 403
        assert requests.get(url, auth=("alice", "pw"), timeout=10).content == b"from alice"
        metrics = requests.get(server.url + ".davstore/metrics", auth=("alice", "pw"), timeout=10)
        assert metrics.status_code == 200
        assert requests.get(server.url + ".davstore/metrics", timeout=10).status_code == 401
        # OPTIONS before login names REPORT as the root does (the share follows a journal).
        root = requests.options(server.url, auth=("alice", "pw"), timeout=10)
        assert root.headers["Allow"].split(", ")[-1] == "REPORT"
        anonymous = requests.options(url, timeout=10)
        assert anonymous.headers["Allow"].split(", ")[-1] == "REPORT"


@pytest.mark.parametrize("redis_installed", [True, False], ids=["redis", "no-redis"])
def test_the_recipe_guards_the_files_the_sites_rows_name(
    tmp_path: Path, console_script: list[str], redis_installed: bool
) -> None:
    """Failed before: the standalone server built its VFS without the site guard, and a
    DELETE of a file a row names answered 204 (the site's page then broke). Without the
    ``redis`` extra (``import redis`` fails) the guard holds as well: failed before with
    ImportError in the site's save and in the server."""
    env = davstore_env(tmp_path)
    if not redis_installed:
        shim = tmp_path / "no-redis" / "redis"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("raise ImportError('redis is not installed here')\n")
        env = davstore_env(tmp_path, pythonpath=[shim.parent])
    project = tmp_path / "project"
    (project / "notes").mkdir(parents=True)
    (project / "notes" / "__init__.py").write_text("")
    (project / "notes" / "models.py").write_text(
        "from django.db import models\n\n\nclass Doc(models.Model):\n"
        "    file = models.FileField()\n"
    )
    media = make_site(project, apps=("notes",))
    (media / "kept.txt").write_bytes(b"named by a row")
    (media / "loose.txt").write_bytes(b"named by nothing")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "shell",
            "-c",
            "from notes.models import Doc; Doc.objects.create(file='kept.txt')",
        ],
        cwd=project,
        env={**env, "DJANGO_SETTINGS_MODULE": "mysite.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "cannot journal" not in done.stderr, done.stderr
    with start_serve(RECIPE, cwd=project, env=env, entry=console_script) as server:
        alice = ("alice", "pw")
        refused = requests.delete(server.url + "kept.txt", auth=alice, timeout=10)
        assert refused.status_code == 403, refused.text
        assert "notes" in refused.text and "Doc" in refused.text  # names the row
        assert (media / "kept.txt").read_bytes() == b"named by a row"
        assert requests.delete(server.url + "loose.txt", auth=alice, timeout=10).status_code == 204


def test_workers_get_the_project_folder_by_its_path(
    tmp_path: Path, console_script: list[str]
) -> None:
    """The parent put the current folder on its path for the settings; the workers run
    with ``-P`` and are handed the folder in PYTHONPATH, by its absolute path."""
    project = tmp_path / "project"
    make_site(project)
    args = [*RECIPE, "--workers", "2"]
    with start_serve(args, cwd=project, env=davstore_env(tmp_path), entry=console_script) as server:
        pids = wait_for_workers(server, 2)
        for pid in pids:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"-P" in command
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            path = next(v for v in environ if v.startswith(b"PYTHONPATH=")).decode()
            assert str(project) in path[len("PYTHONPATH=") :].split(os.pathsep)
        for _ in range(6):  # new connections: both workers answer
            got = requests.get(server.url, auth=("alice", "pw"), timeout=10)
            assert got.status_code == 200, got.text


def test_a_current_folder_inside_the_share_is_refused(
    tmp_path: Path, console_script: list[str]
) -> None:
    """The project's folder is the shared folder: uploads would be importable code."""
    project = tmp_path / "project"
    make_site(project, media=project)
    done = run_davstore(
        ["serve", *RECIPE], cwd=project, env=davstore_env(tmp_path), entry=console_script
    )
    assert done.returncode == 2, done.stderr
    assert "is inside the shared folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_current_folder_is_only_taken_when_the_settings_are_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "firstdaysite").mkdir()
    (tmp_path / "firstdaysite" / "__init__.py").write_text("")
    assert project_folder("firstdaysite.settings", str(tmp_path)) == str(tmp_path)
    assert project_folder("nowhere_at_all.settings", str(tmp_path)) is None
    assert project_folder("davstore.settings", str(tmp_path)) is None  # found on the path
