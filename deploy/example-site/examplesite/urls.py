"""The example site: / lists the media files davstore shares (and people edit over WebDAV)."""

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.urls import path


def index(request: HttpRequest) -> HttpResponse:
    folders, files = default_storage.listdir("")
    lines = [f"{name}/" for name in folders] + list(files)
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


urlpatterns = [path("", index)]
