"""URLs of a tiny site for the WSGI helper test: save and read through default_storage."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def save(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(default_storage.save(name, ContentFile(request.body)))


def read(request: HttpRequest, name: str) -> HttpResponse:
    if not default_storage.exists(name):
        return HttpResponse("missing", status=404)
    with default_storage.open(name) as stream:
        return HttpResponse(stream.read(), content_type="application/octet-stream")


urlpatterns = [path("save/<path:name>", save), path("read/<path:name>", read)]
