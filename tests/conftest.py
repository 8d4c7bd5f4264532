"""Test set-up shared by every layer: Django settings, storages, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from tests.minimal_storages import LimitedStorage, MinimalStorage

# The conformance kit's assertions explain themselves like the tests' own (this must run
# before a test module imports the kit).
pytest.register_assert_rewrite("davstore.testing")

#: A scratch folder for the test database (tests/django migrates it once per session).
_DB_DIR = Path(tempfile.mkdtemp(prefix="davstore-test-db-"))


def pytest_configure(config: pytest.Config) -> None:
    # Shares built in-process keep their state (the change file of host peers among it)
    # under the default state root: a scratch one, never the home folder's.
    os.environ.setdefault("XDG_STATE_HOME", tempfile.mkdtemp(prefix="davstore-test-state-"))
    if not settings.configured:
        settings.configure(
            USE_TZ=True,
            SECRET_KEY="davstore-tests",
            MEDIA_ROOT="/nonexistent-media-root",
            MEDIA_URL="/media/",
            INSTALLED_APPS=[
                "django.contrib.admin",
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "django.contrib.messages",
                "davstore",
                "tests.django.siteapp",
            ],
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(_DB_DIR / "db.sqlite3"),
                }
            },
            # Fast hashing: the Django tests create and log in many users.
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {
                        "context_processors": [
                            "django.template.context_processors.request",
                            "django.contrib.auth.context_processors.auth",
                            "django.contrib.messages.context_processors.messages",
                        ]
                    },
                }
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ],
        )
        django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DB_DIR, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


StorageFactory = Callable[[], Storage]

#: The stores the conformance suites run against (all behave the same through the VFS).
STORE_KINDS = ["filesystem", "memory", "minimal"]


def make_storage(kind: str, tmp_path: Path) -> Storage:
    if kind == "filesystem":
        return FileSystemStorage(location=str(tmp_path / "media"), base_url="/media/")
    if kind == "memory":
        return InMemoryStorage(location="/mem", base_url="/media/")
    if kind == "minimal":
        return MinimalStorage()
    if kind == "limited":
        return LimitedStorage()
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(store_kind: str, tmp_path: Path) -> Iterator[Storage]:
    yield make_storage(store_kind, tmp_path)
