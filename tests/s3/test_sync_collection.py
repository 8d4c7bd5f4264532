"""WebDAV sync-collection (RFC 6578) on S3 (moto's server): the same client flow as on
disk and in memory (tests/webdav/test_sync_collection.py), with folders as prefixes and
markers, a move as copies and deletes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import Storage

from davstore.store import adapt
from davstore.store.s3 import S3Store
from tests.webdav.serving import Share
from tests.webdav.test_sync_collection import (
    served_with_journal,
    test_a_delete_is_a_404_response,
    test_a_limit_truncates_with_507_and_a_token_to_go_on,
    test_a_move_is_a_delete_and_an_add,
    test_a_token_gives_only_what_changed_since,
    test_a_token_older_than_the_journals_retention_is_403,
    test_an_invalid_token_is_403_valid_sync_token,
    test_changes_by_another_process_of_the_share_are_reported,
    test_collections_carry_sync_token_and_supported_report_set,
    test_initial_sync_lists_the_members_per_sync_level_and_a_uri_token,
    test_sync_level_1_reports_direct_members_only,
    test_the_collection_itself_replaced_invalidates_its_tokens,
)

__all__ = [
    "synced",
    "test_a_delete_is_a_404_response",
    "test_a_limit_truncates_with_507_and_a_token_to_go_on",
    "test_a_move_is_a_delete_and_an_add",
    "test_a_token_gives_only_what_changed_since",
    "test_a_token_older_than_the_journals_retention_is_403",
    "test_an_invalid_token_is_403_valid_sync_token",
    "test_changes_by_another_process_of_the_share_are_reported",
    "test_collections_carry_sync_token_and_supported_report_set",
    "test_initial_sync_lists_the_members_per_sync_level_and_a_uri_token",
    "test_sync_level_1_reports_direct_members_only",
    "test_the_collection_itself_replaced_invalidates_its_tokens",
]


@pytest.fixture
def synced(storage: Storage, tmp_path: Path) -> Iterator[Share]:
    """The served share of those tests, on the emulator's bucket."""
    assert isinstance(adapt(storage), S3Store)
    with served_with_journal(storage, tmp_path) as share:
        yield share
