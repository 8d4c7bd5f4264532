"""wsgidav's own directory browser, imported only if something uses it.

``wsgidav.wsgidav_app`` imports ``wsgidav.default_conf``, which imports the directory
browser (``WsgiDavDirBrowser``, for its default middleware stack), which imports Jinja2:
over 40 modules in every serving process, for a page davstore draws itself
(:mod:`davstore.frontends.webdav.listing` takes its place in the stack). :func:`defer`,
called before wsgidav's application module is first imported, puts ``wsgidav.dir_browser``
in ``sys.modules`` as a package whose ``WsgiDavDirBrowser`` imports the real one (and
Jinja2) when it is first instantiated; the package's submodules import as they would.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

__all__ = ["defer"]

_PACKAGE = "wsgidav.dir_browser"


def defer() -> None:
    """Make ``wsgidav.dir_browser`` cheap to import (see the module's docstring); nothing
    if it is imported already or wsgidav is not installed."""
    if _PACKAGE in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(_PACKAGE)
        from wsgidav.mw.base_mw import BaseMiddleware
    except ImportError:
        return
    if spec is None or spec.submodule_search_locations is None:
        return

    class WsgiDavDirBrowser(BaseMiddleware):  # type: ignore[misc]
        """Stands for ``wsgidav.dir_browser.WsgiDavDirBrowser``: makes the real one."""

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            from wsgidav.dir_browser._dir_browser import WsgiDavDirBrowser as real

            return real(*args, **kwargs)

    package = types.ModuleType(_PACKAGE, "wsgidav's directory browser (imported when used)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__package__ = _PACKAGE
    package.__file__ = spec.origin
    WsgiDavDirBrowser.__module__ = _PACKAGE
    package.WsgiDavDirBrowser = WsgiDavDirBrowser  # type: ignore[attr-defined]
    sys.modules[_PACKAGE] = package
