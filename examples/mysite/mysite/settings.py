"""Settings of the example project: a small site whose uploads davstore shares.

Everything the project writes lives in ``MYSITE_DATA_DIR`` (default ``examples/mysite/var``):
the SQLite database, ``media/`` (uploads, the ``media`` share) and ``static/``
(``collectstatic`` output, the read-only ``static`` share). Not for production: the secret
key is a placeholder and ``DEBUG`` is on unless ``MYSITE_DEBUG=0``.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("MYSITE_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("MYSITE_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("MYSITE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "davstore",
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"
# The site with the shares under /dav/ (davstore.wsgi.with_davstore); runserver uses it too.
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_URL = "/static/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# What davstore shares, and with whom (see davstore.conf for every key).
DAVSTORE = {
    "SHARES": {
        # The site's uploads: staff users read and write, over WebDAV, FUSE and the admin.
        "media": {"STORAGE": "default", "WRITE": ["staff"]},
        # collectstatic output, read-only for everyone, readable by staff.
        "static": {"STORAGE": "staticfiles", "READ_ONLY": True, "READ": ["staff"]},
    },
    "CACHE_TTL": 1.0,
    "STATE_DIR": DATA_DIR / "davstore-state",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"gallery": {"handlers": ["console"], "level": "INFO"}},
}
