"""The Django app's models: the site guard's reference index (:mod:`davstore.site.models`)."""

from __future__ import annotations

from davstore.site.models import IndexState, Reference

__all__ = ["IndexState", "Reference"]
