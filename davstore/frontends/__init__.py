"""The protocol frontends: WebDAV (:mod:`~davstore.frontends.webdav`) and FUSE
(:mod:`~davstore.frontends.fuse`), each translating its protocol to VFS calls."""

from __future__ import annotations

__all__: list[str] = []
