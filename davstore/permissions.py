"""Who may read and who may write a share (the rules are described in :mod:`davstore.conf`).

Both functions take any user object Django hands out (a ``User``, a custom user model,
``AnonymousUser``) and a :class:`~davstore.shares.Share` or its
:class:`~davstore.conf.ShareConfig`. Permission rules go through ``user.has_perm``, so the
project's authentication backends decide; group rules query the user's groups.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from davstore.conf import ShareConfig

if TYPE_CHECKING:
    from davstore.shares import Share

__all__ = ["can_read", "can_write", "matches"]


def _config(share: Share | ShareConfig) -> ShareConfig:
    return share if isinstance(share, ShareConfig) else share.config


def can_read(user: Any, share: Share | ShareConfig) -> bool:
    """Whether ``user`` may list and download the share: an active superuser, or an active
    user matching a ``READ`` or a ``WRITE`` rule."""
    config = _config(share)
    if not _active(user):
        return False
    return bool(getattr(user, "is_superuser", False)) or matches(
        user, (*config.read, *config.write)
    )


def can_write(user: Any, share: Share | ShareConfig) -> bool:
    """Whether ``user`` may change the share: never on a read-only share; else an active
    superuser, or an active user matching a ``WRITE`` rule."""
    config = _config(share)
    if config.read_only or not _active(user):
        return False
    return bool(getattr(user, "is_superuser", False)) or matches(user, config.write)


def matches(user: Any, rules: Iterable[str]) -> bool:
    """Whether ``user`` satisfies any of ``rules`` (activity and superuser status aside)."""
    groups: set[str] | None = None
    for rule in rules:
        if rule == "authenticated":
            return True
        if rule == "staff":
            if getattr(user, "is_staff", False):
                return True
        elif rule.startswith("group:"):
            if groups is None:
                groups = _group_names(user)
            if rule[len("group:") :] in groups:
                return True
        elif user.has_perm(rule):
            return True
    return False


def _active(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
    )


def _group_names(user: Any) -> set[str]:
    cached: set[str] | None = getattr(user, "_davstore_groups", None)
    if cached is None:
        groups = getattr(user, "groups", None)
        cached = set(groups.values_list("name", flat=True)) if groups is not None else set()
        with contextlib.suppress(AttributeError):
            user._davstore_groups = cached
    return cached
