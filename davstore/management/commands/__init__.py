"""Django management commands of the davstore app."""

from __future__ import annotations

__all__: list[str] = []
