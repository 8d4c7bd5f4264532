"""KeptListings: listings kept by folder, bounded by their total entries."""

from __future__ import annotations

from davstore.frontends.fuse.kept import KeptListings


def test_the_oldest_folders_go_first_when_the_entries_exceed_the_limit() -> None:
    kept: KeptListings[str, list[int]] = KeptListings(5, len)
    kept.put("a", [1, 2])
    kept.put("b", [1, 2])
    kept.put("a", [1])  # renewed: now the newest
    assert kept.entries == 3
    kept.put("c", [1, 2, 3])
    assert kept.get("b") is None
    assert kept.get("a") == [1]
    assert kept.get("c") == [1, 2, 3]
    assert kept.entries == 4
    assert len(kept) == 2


def test_the_newest_folder_is_kept_whatever_its_size() -> None:
    kept: KeptListings[str, list[int]] = KeptListings(2, len)
    kept.put("small", [1])
    big = list(range(10))
    kept.put("big", big)
    assert kept.get("big") is big
    assert kept.get("small") is None
    assert kept.entries == 10
