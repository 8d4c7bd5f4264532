"""``manage.py check`` names every mistake of the ``DAVSTORE`` setting at once
(``davstore.E001``) and a permission rule no installed model has (``davstore.W002``,
issue 24 item 6: ``wagtailimages.chang_image`` passed silently); reading a wrong setting
still raises ImproperlyConfigured with the same messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from davstore.conf import get_config
from tests.django.project import make_project


def davstore_messages(**davstore: Any) -> list[tuple[str, str, str | None]]:
    with override_settings(DAVSTORE=davstore):
        return [
            (m.id or "", m.msg, m.hint)
            for m in run_checks(tags=["davstore"])
            if (m.id or "").startswith("davstore.")
            and m.id != "davstore.W001"  # the reference index's, not the setting's
        ]


def test_a_misspelled_permission_is_a_warning_with_the_nearest_one() -> None:
    messages = davstore_messages(
        SHARES={"media": {"STORAGE": "default", "READ": ["staff"], "WRITE": ["auth.chang_user"]}}
    )
    assert len(messages) == 1, messages
    ident, message, hint = messages[0]
    assert ident == "davstore.W002"
    assert message.startswith("DAVSTORE['SHARES']['media']['WRITE'][0]: ")
    assert "'auth.chang_user'" in message
    assert hint is not None and "'auth.change_user'" in hint


def test_permissions_models_declare_pass() -> None:
    rules = ["auth.change_user", "auth.view_group", "siteapp.view_document", "group:editors"]
    assert davstore_messages(SHARES={"media": {"STORAGE": "default", "WRITE": rules}}) == []


def test_an_unknown_app_label_is_a_warning() -> None:
    messages = davstore_messages(
        SHARES={"media": {"STORAGE": "default", "READ": ["wagtailimages.chang_image"]}}
    )
    assert [m[0] for m in messages] == ["davstore.W002"]


def test_every_mistake_is_reported_at_once() -> None:
    messages = davstore_messages(
        CACHE_TTL=-1,
        REALMS="typo",
        SHARES={
            "media": {"STORAGE": "nope", "READ_ONLY": "yes"},
            "files": {"STORAGE": "default", "WRITE": ["wizards", "auth.chang_user"]},
        },
    )
    errors = sorted(m[1].split(":")[0] for m in messages if m[0] == "davstore.E001")
    assert errors == sorted(
        [
            "DAVSTORE['REALMS']",
            "DAVSTORE['CACHE_TTL']",
            "DAVSTORE['SHARES']['media']['STORAGE']",
            "DAVSTORE['SHARES']['media']['READ_ONLY']",
            "DAVSTORE['SHARES']['files']['WRITE'][0]",
        ]
    ), messages
    assert [m for m in messages if m[0] == "davstore.W002"], messages


def test_reading_a_wrong_setting_names_every_mistake() -> None:
    with (
        override_settings(DAVSTORE={"CACHE_TTL": -1, "SHARES": {"m": {"STORAGE": "nope"}}}),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        get_config()
    text = str(caught.value)
    assert text.startswith("DAVSTORE['CACHE_TTL']: must be a number of seconds")
    assert "DAVSTORE['SHARES']['m']['STORAGE']: unknown storage alias 'nope'" in text


def test_manage_py_check_lists_every_mistake(tmp_path: Path) -> None:
    """Before, ``AppConfig.ready`` raised at the first mistake: ``check`` never ran."""
    project = make_project(
        tmp_path / "site",
        davstore={
            "CACHE_TTL": "soon",
            "SHARES": {"media": {"STORAGE": "default", "WRITE": ["auth.chang_user"]}},
        },
        migrate=False,
    )
    done = project.run("check")
    assert done.returncode != 0
    assert "(davstore.E001) DAVSTORE['CACHE_TTL']: must be a number of seconds" in done.stderr
    assert "(davstore.W002) DAVSTORE['SHARES']['media']['WRITE'][0]" in done.stderr
    assert "HINT: Did you mean 'auth.change_user'?" in done.stderr
    assert "Traceback" not in done.stderr
