"""The FUSE frontend: any Django Storage as a local folder, over the same VFS.

``mount`` and ``umount`` need no binding to import; the binding (mfusepy, else fusepy)
and libfuse are loaded when a mount starts (:mod:`davstore.frontends.fuse.binding`).
"""

from __future__ import annotations

from davstore.frontends.fuse.mount import MountOptions, fuse_options, mount, umount

__all__ = ["MountOptions", "fuse_options", "mount", "umount"]
