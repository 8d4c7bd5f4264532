"""Fixtures for the Django app tests: a migrated SQLite database, users, fresh shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def migrated() -> None:
    """The test database (tests/conftest.py), migrated once per session (tests.django.siteapp
    has no migrations: synced)."""
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)


@pytest.fixture
def make_user(migrated: None) -> Iterator[Callable[..., Any]]:
    """``make_user("alice", password="pw", is_staff=True, perms=["app.codename"],
    groups=["editors"])``; every user and group made is deleted after the test."""
    from django.contrib.auth.models import Group, Permission, User

    made: list[Any] = []

    def make(
        username: str,
        *,
        password: str = "secret",
        perms: tuple[str, ...] | list[str] = (),
        groups: tuple[str, ...] | list[str] = (),
        **fields: Any,
    ) -> Any:
        user = User.objects.create_user(username, password=password, **fields)
        made.append(user)
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        for name in groups:
            group, _ = Group.objects.get_or_create(name=name)
            user.groups.add(group)
        return User.objects.get(pk=user.pk)

    yield make
    User.objects.filter(pk__in=[u.pk for u in made]).delete()
    Group.objects.all().delete()


@pytest.fixture(autouse=True)
def _fresh_shares() -> Iterator[None]:
    from davstore.shares import reset_shares

    reset_shares()
    yield
    reset_shares()
