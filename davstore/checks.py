"""System checks of the ``DAVSTORE`` setting (``manage.py check``), each mistake its own
message so one run names them all:

- ``davstore.E001``: a mistake in the setting, named by its key
  (:func:`davstore.conf.validate_config`: the validation reading the setting uses too);
- ``davstore.W002``: a ``READ``/``WRITE`` rule ``"app_label.codename"`` that no installed
  model has (``wagtailimages.chang_image``), with the nearest one as the hint. A warning:
  an authentication backend may grant permissions no model declares.

The site guard's checks are in :mod:`davstore.site.checks`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.core import checks

__all__ = ["check_permission_rules", "check_setting", "known_permissions"]

#: A permission rule, as davstore.options.check_rules takes it (anything else is E001).
_PERMISSION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[^\s.][^\s]*\Z")


@checks.register("davstore")
def check_setting(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``davstore.E001``: one error per mistake in ``DAVSTORE``."""
    from django.conf import settings

    from davstore.conf import validate_config

    _, problems = validate_config(
        getattr(settings, "DAVSTORE", None),
        storages=getattr(settings, "STORAGES", {}) or {},
        static_root=getattr(settings, "STATIC_ROOT", None),
    )
    return [
        checks.Error(
            problem,
            hint="See the DAVSTORE setting in davstore's README (davstore/conf.py).",
            id="davstore.E001",
        )
        for problem in problems
    ]


@checks.register("davstore")
def check_permission_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``davstore.W002``: a permission rule of a share that no installed model has."""
    from django.apps import apps
    from django.conf import settings

    known = known_permissions()
    auth = apps.is_installed("django.contrib.auth")
    messages: list[checks.CheckMessage] = []
    for key, rule in _permission_rules(getattr(settings, "DAVSTORE", None)):
        if not auth:
            messages.append(
                checks.Warning(
                    f"{key}: {rule!r} is a permission, but django.contrib.auth is not installed",
                    hint="Install django.contrib.auth, or use 'staff', 'authenticated' or "
                    "'group:NAME'.",
                    id="davstore.W002",
                )
            )
        elif rule not in known:
            near = difflib.get_close_matches(rule, known, n=1, cutoff=0.75)
            hint = f"Did you mean {near[0]!r}?" if near else None
            messages.append(
                checks.Warning(
                    f"{key}: no installed model has the permission {rule!r}: "
                    "nobody gets in through this rule",
                    hint=hint
                    or "Permissions are 'app_label.codename', as user.has_perm takes "
                    "them (e.g. 'wagtailimages.change_image').",
                    id="davstore.W002",
                )
            )
    return messages


def known_permissions() -> set[str]:
    """Every ``"app_label.codename"`` the installed models declare: their default
    permissions (``add``/``change``/``delete``/``view``) and ``Meta.permissions``, as
    ``django.contrib.auth`` creates them (a proxy model's under its own label)."""
    from django.apps import apps

    known = set()
    for model in apps.get_models():
        opts = model._meta
        for action in opts.default_permissions:
            known.add(f"{opts.app_label}.{action}_{opts.model_name}")
        for codename, _name in opts.permissions:
            known.add(f"{opts.app_label}.{codename}")
    return known


def _permission_rules(raw: object) -> Iterator[tuple[str, str]]:
    """``(key, rule)`` for each permission rule in the shares' ``READ`` and ``WRITE``,
    read as far as the setting has the shape (E001 reports the rest)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("SHARES"), Mapping):
        return
    for name, share in raw["SHARES"].items():
        if not isinstance(share, Mapping):
            continue
        for list_key in ("READ", "WRITE"):
            rules = share.get(list_key)
            if not isinstance(rules, list | tuple):
                continue
            for index, rule in enumerate(rules):
                if isinstance(rule, str) and _PERMISSION.match(rule):
                    yield f"DAVSTORE['SHARES'][{name!r}][{list_key!r}][{index}]", rule
