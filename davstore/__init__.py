"""davstore: any Django Storage as a WebDAV share and a FUSE filesystem."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
