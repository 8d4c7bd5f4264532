"""Receivers for the site's frameworks, connected only when the framework is installed."""

from __future__ import annotations

__all__: list[str] = []
