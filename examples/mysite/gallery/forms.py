from __future__ import annotations

from django import forms

from gallery.models import Document


class DocumentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Document
        fields = ["title", "file", "picture"]
