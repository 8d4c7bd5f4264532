"""A document with a file and an optional picture; Django names the stored files."""

from __future__ import annotations

from django.db import models


class Document(models.Model):
    title = models.CharField(max_length=200)
    # Stored as documents/<year>/<month>/<name>, renamed by Django on a collision.
    file = models.FileField(upload_to="documents/%Y/%m/")
    picture = models.ImageField(upload_to="pictures/", blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return self.title
