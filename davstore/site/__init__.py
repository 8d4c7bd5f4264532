"""What only a Django site has: the reference index and the site guard (DESIGN.md §3).

The only package of davstore that imports Django models. It plugs into the VFS through
:mod:`davstore.vfs.policy`: :func:`davstore.site.guard.protect` adds the guard to a share's
VFS when some model field stores names in the share's Storage.
"""

__all__: list[str] = []
