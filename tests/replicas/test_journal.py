"""The share's change journal (journal.py): processes of one host forget exactly the paths
another one changed, a reader that fell behind the retention forgets everything, and the
journal keeps its records and numbers across restarts."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import FileSystemStorage

from davstore.store import adapt
from davstore.vfs import VFS
from davstore.vfs.host_peers import FILE_NAME as PEERS_FILE
from davstore.vfs.host_peers import HostPeers, share_with_host_peers
from davstore.vfs.journal import FILE_NAME, Journal, JournalReader, Record


def _vfs(root: Path) -> VFS:
    return VFS(adapt(FileSystemStorage(location=str(root))), cache_ttl=600)


def _write(vfs: VFS, path: str, data: bytes) -> None:
    with vfs.open_write(path) as handle:
        handle.write(data)


def test_a_peer_forgets_the_changed_path_and_keeps_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "kept.txt").write_bytes(b"kept")
    writer, reader = _vfs(root), _vfs(root)
    for vfs in (writer, reader):
        assert share_with_host_peers(vfs, tmp_path / "state") is not None
    assert reader.lookup("new.txt") is None  # a cached absence
    assert reader.stat("kept.txt").size == 4
    _write(writer, "new.txt", b"hello")
    assert reader.stat("new.txt").size == 5  # at once, TTL 600 s
    assert reader.cache.get_stat("kept.txt") is not None  # not the whole cache
    journal = Journal(tmp_path / "state" / FILE_NAME)
    records, lost = journal.since(0)
    assert not lost
    assert [(r.action, r.path) for r in records] == [("created", "new.txt")]


def test_a_reader_behind_the_retention_forgets_everything(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    journal = Journal(tmp_path / FILE_NAME, retention=10)
    vfs = _vfs(root)
    reader = JournalReader(journal, vfs)
    assert reader.catch_up() is False  # nothing new
    for number in range(200):  # far beyond the retention, none of them about a.txt
        journal.append(Record("created", f"other-{number}.txt", writer="elsewhere"))
    records, lost = journal.since(reader.cursor)
    assert lost and records[0].seq > reader.cursor + 1
    assert reader.catch_up() is True  # the caller forgets the whole cache
    assert reader.cursor == journal.last()
    assert reader.catch_up() is False  # and then follows from there


def test_the_journal_survives_a_restart_and_never_reuses_a_number(tmp_path: Path) -> None:
    first = Journal(tmp_path / FILE_NAME, retention=10)
    numbers = [first.append(Record("deleted", f"{n}.txt", writer="w")) for n in range(150)]
    assert numbers == list(range(1, 151))
    first.close()
    again = Journal(tmp_path / FILE_NAME, retention=10)
    assert again.last() == 150
    assert again.append(Record("created", "after.txt", writer="w")) == 151
    records, _ = again.since(140)
    assert [r.seq for r in records] == list(range(141, 152))
    assert records[-1].path == "after.txt"


def test_a_record_appended_and_announced_by_another_process_is_applied(tmp_path: Path) -> None:
    """What the site does (davstore.site.announce): append, then announce."""
    root = tmp_path / "files"
    root.mkdir()
    state = tmp_path / "state"
    vfs = _vfs(root)
    assert share_with_host_peers(vfs, state) is not None
    assert vfs.lookup("site.txt") is None
    (root / "site.txt").write_bytes(b"by the site")
    Journal(state / FILE_NAME).append(Record("created", "site.txt", origin="site", writer="site"))
    HostPeers(state / PEERS_FILE).announce()
    assert vfs.stat("site.txt").size == 11


def test_a_folder_change_keeps_its_files_and_an_older_journal_opens(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / FILE_NAME)  # a journal from before records named files
    old.execute(
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,"
        " action TEXT NOT NULL, path TEXT NOT NULL, target TEXT, is_dir INTEGER NOT NULL,"
        " origin TEXT, user TEXT, writer TEXT NOT NULL)"
    )
    old.execute(
        "INSERT INTO changes (at, action, path, is_dir, writer) VALUES (1, 'deleted', 'x', 0, 'w')"
    )
    old.commit()
    old.close()
    journal = Journal(tmp_path / FILE_NAME)
    journal.append(Record("moved", "d", target="e", is_dir=True, files=("d/a", "d/s/b")))
    records, lost = journal.since(0)
    assert not lost
    assert [(r.action, r.path, r.files) for r in records] == [
        ("deleted", "x", None),
        ("moved", "d", ("d/a", "d/s/b")),
    ]
