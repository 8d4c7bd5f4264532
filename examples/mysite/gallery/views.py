"""The site's one page: upload a document, see the ones uploaded so far."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from gallery.forms import DocumentForm
from gallery.models import Document


def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = DocumentForm(request.POST, request.FILES)
        if form.is_valid():
            form.save()
            return redirect("upload")
    else:
        form = DocumentForm()
    documents = Document.objects.all()[:50]
    return render(request, "gallery/upload.html", {"form": form, "documents": documents})
