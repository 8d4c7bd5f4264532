"""Where FUSE works, everything a mount needs must be present (fail, never skip)."""

from __future__ import annotations

import shutil

from davstore.frontends.fuse import binding


def test_binding_and_libfuse_are_present() -> None:
    assert binding.BINDING in ("mfusepy", "fusepy")
    assert binding.LIBFUSE_VERSION[0] in (2, 3)
    assert shutil.which("fusermount3") or shutil.which("fusermount")


def test_libfuse3_is_preferred_where_installed() -> None:
    if binding.BINDING == "mfusepy" and binding._libfuse3_path():
        assert binding.LIBFUSE_VERSION[0] == 3
