"""Run inside the example project (cwd ``examples/mysite``, ``MYSITE_DATA_DIR`` set):
migrate, upload a document with a picture through the site's upload view, and print as JSON
what the ``media`` share lists where Django stored them."""

from __future__ import annotations

import io
import json
import os
import sys

import django


def main() -> None:
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from gallery.models import Document
    from PIL import Image

    from davstore.shares import get_share
    from davstore.vfs.paths import parent

    setup_test_environment()
    call_command("migrate", verbosity=0, interactive=False)
    picture = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(picture, "PNG")
    response = Client().post(
        "/",
        {
            "title": "Report",
            "file": SimpleUploadedFile("report 2024.txt", b"quarterly numbers\n"),
            "picture": SimpleUploadedFile("red.png", picture.getvalue(), "image/png"),
        },
    )
    document = Document.objects.get()
    vfs = get_share("media").vfs
    result = {
        "status": response.status_code,
        "file": document.file.name,
        "picture": document.picture.name,
        "listing": sorted(e.name for e in vfs.listdir(parent(document.file.name))),
        "pictures": sorted(e.name for e in vfs.listdir("pictures")),
        "content": vfs.open_read(document.file.name).read().decode(),
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
