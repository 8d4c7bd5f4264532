"""A folder COPY, and a folder MOVE on a store without rename, of any size: the VFS copies
the tree while it walks it (Apache and nginx copy and move such folders too; they were
refused 501 past 10,000 entries), in one change; members that fail are each in a 207
(RFC 4918 9.8.8), and a move that could not copy everything keeps its source whole. A
folder COPY onto an existing folder too: the folder becomes the copy (9.8.4), its tree's
dead properties the source's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from davstore.errors import PermissionDenied
from davstore.frontends.webdav.provider import VfsProvider
from davstore.http.wsgi import Environ
from davstore.store.base import ObjectInfo, ObjectStore
from davstore.store.wrapper import StoreWrapper
from davstore.vfs import VFS, Entry, trees
from davstore.vfs.events import Action, Change
from tests.vfs_trees import lay_out
from tests.webdav.serving import Share, serve_share

#: More than the 10,000 entries a folder COPY or MOVE was refused past (501).
ENTRIES = 12_000
FOLDERS = 12


class Faulty(StoreWrapper):
    """Refuses to copy, or to delete, names holding ``stuck`` (when told to)."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.refuse_copy = False
        self.refuse_delete = False

    def copy(self, source: str, target: str) -> ObjectInfo:
        if self.refuse_copy and "stuck" in source:
            raise PermissionDenied(source, "injected: cannot copy this one")
        return super().copy(source, target)

    def delete_many(self, names: list[str]) -> None:  # type: ignore[override]
        if self.refuse_delete and any("stuck" in name for name in names):
            raise PermissionDenied(names[0], "injected: cannot remove these")
        super().delete_many(names)

    def delete(self, name: str) -> None:
        if self.refuse_delete and "stuck" in name:
            raise PermissionDenied(name, "injected: cannot remove this one")
        super().delete(name)


@pytest.fixture(params=["filesystem", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "filesystem":
        return FileSystemStorage(location=str(tmp_path / "media"))
    return InMemoryStorage()


@pytest.fixture
def memory() -> Storage:
    return InMemoryStorage()  # no native rename: a folder's move is a copy then a delete


@pytest.fixture
def share(storage: Storage, tmp_path: Path) -> Iterator[tuple[Share, Faulty, list[Change]]]:
    yield from _served(storage, tmp_path)


@pytest.fixture
def memory_share(memory: Storage, tmp_path: Path) -> Iterator[tuple[Share, Faulty, list[Change]]]:
    yield from _served(memory, tmp_path)


def _served(storage: Storage, tmp_path: Path) -> Iterator[tuple[Share, Faulty, list[Change]]]:
    with serve_share(storage, tmp_path / "state", cache_ttl=0) as served:
        faulty: list[Faulty] = []
        served.vfs.wrap_store(lambda inner: faulty.append(Faulty(inner)) or faulty[-1])
        changes: list[Change] = []
        served.vfs.subscribe(changes.append)
        yield served, faulty[0], changes


def fill(vfs: VFS, storage: Storage, count: int = ENTRIES) -> set[str]:
    """``big/`` with ``count`` entries (FOLDERS folders of files, each file's bytes its
    name), written straight to the store; answers the files' names below ``big/``."""
    vfs.mkdir("big")
    per_folder = count // FOLDERS - 1
    names = set()
    for folder in range(FOLDERS):
        vfs.mkdir(f"big/{folder:02}")
        for n in range(per_folder):
            name = f"{folder:02}/{n:05}.txt"
            names.add(name)
            if isinstance(storage, FileSystemStorage):
                (Path(storage.location) / "big" / name).write_bytes(name.encode())
            else:
                vfs.write_file(f"big/{name}", name.encode())
    return names


def contents(vfs: VFS, folder: str) -> dict[str, bytes]:
    """Every file below ``folder`` in the store, by its name below it, with its bytes."""
    found = {}
    for entry in trees.walk(vfs.store, folder):
        if not entry.is_dir:
            with vfs.store.open_read(entry.name) as stream:
                found[entry.name[len(folder) + 1 :]] = stream.read()
    return found


def failed_members(answer: requests.Response) -> dict[str, str | None]:
    assert answer.status_code == 207, answer.text[:300]
    body = ET.fromstring(answer.content)
    return {
        r.findtext("{DAV:}href", "").lstrip("/"): r.findtext("{DAV:}status")
        for r in body.iter("{DAV:}response")
    }


def test_a_folder_of_12000_entries_is_copied_whole_in_one_change(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, changes = share
    names = fill(served.vfs, served.storage)
    del changes[:]
    answer = served.request("COPY", "big", headers={"Destination": served("copy")})
    assert answer.status_code == 201
    expected = {name: name.encode() for name in names}
    assert contents(served.vfs, "copy") == expected
    assert contents(served.vfs, "big") == expected  # the source stays
    # One change for the folder (a journal entry, not one per member); past the VFS's
    # bound it names no files.
    assert [(c.action, c.path, c.is_dir, c.target, c.files) for c in changes] == [
        (Action.COPIED, "big", True, "copy", None)
    ]


def test_a_folder_of_12000_entries_is_moved_on_a_store_without_rename(
    memory_share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, changes = memory_share
    assert not served.vfs.capabilities.rename
    names = fill(served.vfs, served.storage)
    del changes[:]
    answer = served.request("MOVE", "big", headers={"Destination": served("moved")})
    assert answer.status_code == 201
    assert contents(served.vfs, "moved") == {name: name.encode() for name in names}
    assert served.request("PROPFIND", "big", headers={"Depth": "0"}).status_code == 404
    assert [e.name for e in served.vfs.listdir("")] == ["moved"]
    assert [(c.action, c.path, c.target, c.files) for c in changes] == [
        (Action.MOVED, "big", "moved", None)
    ]


def test_a_big_copy_names_each_member_it_could_not_copy_and_copies_the_rest(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, changes = share
    vfs = served.vfs
    names = fill(vfs, served.storage)
    vfs.write_file("big/00/stuck one.txt", b"keep")
    vfs.write_file("big/07/stuck.txt", b"keep")
    faulty.refuse_copy = True
    del changes[:]
    answer = served.request("COPY", "big", headers={"Destination": served("copy")})
    assert failed_members(answer) == {
        "big/00/stuck%20one.txt": "HTTP/1.1 403 Forbidden",
        "big/07/stuck.txt": "HTTP/1.1 403 Forbidden",
    }
    assert contents(vfs, "copy") == {name: name.encode() for name in names}
    assert len(contents(vfs, "big")) == len(names) + 2
    # One change for what was copied (the journal's), as for a copy that all succeeded.
    assert [(c.action, c.path, c.target) for c in changes] == [(Action.COPIED, "big", "copy")]


def test_a_big_move_that_cannot_copy_every_member_keeps_its_source_whole(
    memory_share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, changes = memory_share
    vfs = served.vfs
    names = fill(vfs, served.storage)
    vfs.mkdir("big/03/inner")
    vfs.write_file("big/03/inner/stuck.txt", b"keep")
    vfs.write_file("big/11/stuck.txt", b"keep")
    faulty.refuse_copy = True
    del changes[:]
    answer = served.request("MOVE", "big", headers={"Destination": served("moved")})
    assert failed_members(answer) == {
        "big/03/inner/stuck.txt": "HTTP/1.1 403 Forbidden",
        "big/11/stuck.txt": "HTTP/1.1 403 Forbidden",
    }
    expected = {name: name.encode() for name in names}
    expected |= {"03/inner/stuck.txt": b"keep", "11/stuck.txt": b"keep"}
    assert contents(vfs, "big") == expected  # nothing of the source was removed
    # ... and nothing is left at the destination: what the copy made there went again.
    assert served.request("PROPFIND", "moved", headers={"Depth": "0"}).status_code == 404
    assert [e.name for e in vfs.store.list("")] == ["big"]
    # The copy and its removal: two changes that cancel out (past the bound, unnamed).
    assert [(c.action, c.path, c.target, c.files) for c in changes] == [
        (Action.COPIED, "big", "moved", None),
        (Action.FOLDER_DELETED, "moved", None, None),
    ]
    # Once the store copies again, the same MOVE moves everything.
    faulty.refuse_copy = False
    answer = served.request("MOVE", "big", headers={"Destination": served("moved")})
    assert answer.status_code == 201
    assert contents(vfs, "moved") == expected
    assert not vfs.exists("big")


def test_a_failed_move_onto_an_existing_folder_leaves_nothing_at_the_destination(
    memory_share: tuple[Share, Faulty, list[Change]],
) -> None:
    """Overwrite: T deletes the destination before the move (RFC 4918 section 9.9.3): that
    delete stands when the move fails (a share's trash keeps what it took, as for any
    DELETE); the move's partial copy goes."""
    served, faulty, changes = memory_share
    vfs = served.vfs
    names = fill(vfs, served.storage, count=2 * FOLDERS)
    vfs.write_file("big/04/stuck.txt", b"keep")
    vfs.mkdir("old")
    vfs.write_file("old/x.txt", b"old")
    faulty.refuse_copy = True
    del changes[:]
    answer = served.request("MOVE", "big", headers={"Destination": served("old")})
    assert failed_members(answer) == {"big/04/stuck.txt": "HTTP/1.1 403 Forbidden"}
    assert not vfs.exists("old")
    expected = {name: name.encode() for name in names} | {"04/stuck.txt": b"keep"}
    assert contents(vfs, "big") == expected
    assert [(c.action, c.path) for c in changes] == [
        (Action.FOLDER_DELETED, "old"),  # the destination's DELETE
        (Action.COPIED, "big"),
        (Action.FOLDER_DELETED, "old"),  # the move's copy, undone
    ]


def test_a_failed_move_names_what_it_could_not_remove_at_the_destination(
    memory_share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, changes = memory_share
    vfs = served.vfs
    names = fill(vfs, served.storage, count=2 * FOLDERS)
    vfs.write_file("big/02/stuck.txt", b"keep")
    faulty.refuse_copy = True
    faulty.refuse_delete = True  # every name at the destination below holds "stuck"
    del changes[:]
    answer = served.request("MOVE", "big", headers={"Destination": served("stuck-moved")})
    # The member not copied, at the source; each one copied and not removed again, at
    # the destination.
    assert failed_members(answer) == {"big/02/stuck.txt": "HTTP/1.1 403 Forbidden"} | {
        f"stuck-moved/{name}": "HTTP/1.1 403 Forbidden" for name in names
    }
    expected = {name: name.encode() for name in names}
    assert contents(vfs, "stuck-moved") == expected
    assert contents(vfs, "big") == expected | {"02/stuck.txt": b"keep"}
    # What the copy made is there still: its change stands alone.
    assert [(c.action, c.path, c.target) for c in changes] == [
        (Action.COPIED, "big", "stuck-moved")
    ]


def test_a_move_whose_source_cannot_all_be_removed_stands_and_names_what_is_left(
    memory_share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, changes = memory_share
    vfs = served.vfs
    names = fill(vfs, served.storage, count=2 * FOLDERS)
    vfs.write_file("big/05/stuck.txt", b"keep")
    faulty.refuse_delete = True
    del changes[:]
    answer = served.request("MOVE", "big", headers={"Destination": served("moved")})
    assert failed_members(answer) == {"big/05/stuck.txt": "HTTP/1.1 403 Forbidden"}
    expected = {name: name.encode() for name in names} | {"05/stuck.txt": b"keep"}
    assert contents(vfs, "moved") == expected  # everything arrived
    assert contents(vfs, "big") == {"05/stuck.txt": b"keep"}  # what could not go, kept
    # The move, then what is left at the source, as made (readers took it as gone).
    assert [(c.action, c.path, c.target) for c in changes] == [
        (Action.MOVED, "big", "moved"),
        (Action.FOLDER_CREATED, "big", None),
        (Action.FOLDER_CREATED, "big/05", None),
        (Action.CREATED, "big/05/stuck.txt", None),
    ]


def test_a_folder_delete_that_leaves_members_names_them_and_tells_what_went(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, changes = share
    vfs = served.vfs
    names = fill(vfs, served.storage, count=3 * FOLDERS)
    vfs.write_file("big/01/stuck.txt", b"keep")
    faulty.refuse_delete = True
    del changes[:]
    answer = served.request("DELETE", "big")
    assert failed_members(answer) == {"big/01/stuck.txt": "HTTP/1.1 403 Forbidden"}
    assert contents(vfs, "big") == {"01/stuck.txt": b"keep"}
    # Each folder that went whole, with its files; each file that went from one that stays.
    told = {(c.action, c.path): sorted(c.files or ()) for c in changes}
    gone = {f"{n:02}" for n in range(FOLDERS)} - {"01"}
    assert told == {
        (Action.FOLDER_DELETED, f"big/{folder}"): sorted(
            f"big/{name}" for name in names if name.startswith(folder + "/")
        )
        for folder in gone
    } | {(Action.DELETED, f"big/{name}"): [] for name in names if name.startswith("01/")}


@pytest.mark.parametrize("method", ["COPY", "MOVE", "DELETE"])
def test_a_request_that_fails_in_part_is_one_log_line(
    memory_share: tuple[Share, Faulty, list[Change]],
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    served, faulty, _ = memory_share
    vfs = served.vfs
    fill(vfs, served.storage, count=2 * FOLDERS)
    vfs.write_file("big/03/stuck.txt", b"keep")
    faulty.refuse_copy = faulty.refuse_delete = True
    headers = {} if method == "DELETE" else {"Destination": served("other")}
    with caplog.at_level("INFO", logger="davstore"):
        answer = served.request(method, "big", headers=headers)
    assert failed_members(answer) == {"big/03/stuck.txt": "HTTP/1.1 403 Forbidden"}
    # Every line but the access log's: warnings and errors, and what names the failure.
    told = [
        r.getMessage()
        for r in caplog.records
        if r.name != "davstore.access"
        and (r.levelname != "INFO" or "members" in r.getMessage() or "stuck" in r.getMessage())
    ]
    assert len(told) == 1, told
    assert "big" in told[0] and "1 members" in told[0], told


def colour(served: Share, path: str) -> str | None:
    body = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:prop><Z:colour/></D:prop></D:propfind>"
    )
    answer = served.request("PROPFIND", path, headers={"Depth": "0"}, data=body)
    assert answer.status_code == 207, path
    for propstat in ET.fromstring(answer.content).iter("{DAV:}propstat"):
        if propstat.findtext("{DAV:}status", "").endswith("200 OK"):
            return propstat.findtext(".//{urn:x-test:}colour")
    return None


def test_a_folder_copy_carries_every_member_s_dead_properties(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    # wsgidav's member-by-member COPY (still taken with a property store that cannot copy
    # a tree: shelve) gave the members' properties to no member of the copy.
    served, _, _ = share
    fill(served.vfs, served.storage, count=2 * FOLDERS)
    for path, value in (("big", "red"), ("big/03", "green"), ("big/03/00000.txt", "blue")):
        body = (
            '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
            f"<D:set><D:prop><Z:colour>{value}</Z:colour></D:prop></D:set></D:propertyupdate>"
        )
        assert served.request("PROPPATCH", path, data=body).status_code == 207
    assert served.request("COPY", "big", headers={"Destination": served("copy")}).status_code == 201
    assert [colour(served, p) for p in ("copy", "copy/03", "copy/03/00000.txt")] == [
        "red",
        "green",
        "blue",
    ]
    assert colour(served, "big/03/00000.txt") == "blue"  # the source keeps its own
    assert colour(served, "copy/04/00000.txt") is None
    # Depth 0: the folder and its properties, none of its members.
    answer = served.request("COPY", "big", headers={"Destination": served("bare"), "Depth": "0"})
    assert answer.status_code == 201
    assert colour(served, "bare") == "red" and served.vfs.listdir("bare") == []


def set_colour(served: Share, path: str, value: str) -> None:
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        f"<D:set><D:prop><Z:colour>{value}</Z:colour></D:prop></D:set></D:propertyupdate>"
    )
    assert served.request("PROPPATCH", path, data=body).status_code == 207, path


def two_trees(served: Share) -> None:
    """``src`` and an existing ``dst`` that differ: ``dst`` has a file and a folder the
    source lacks, a file where the source has a folder, and an old ``a.txt``; both carry
    dead properties."""
    vfs = served.vfs
    lay_out(
        vfs,
        {
            "src": None,
            "src/sub": None,
            "src/x": None,
            "dst": None,
            "dst/sub": None,
            "dst/only": None,
            "src/a.txt": b"new a",
            "src/sub/b.txt": b"b",
            "src/x/c.txt": b"c",
            "dst/a.txt": b"old a",
            "dst/gone.txt": b"gone",
            "dst/only/d.txt": b"d",
            "dst/x": b"a file where the source has a folder",
        },
    )
    for path, value in (
        ("src", "red"),
        ("src/a.txt", "green"),
        ("src/sub/b.txt", "blue"),
        ("dst", "old folder"),
        ("dst/a.txt", "old a"),
        ("dst/sub", "old sub"),
        ("dst/gone.txt", "old gone"),
        ("dst/x", "old x"),
    ):
        set_colour(served, path, value)


def test_a_folder_copy_onto_a_folder_makes_it_the_copy_with_the_members_dead_properties(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    # wsgidav's member-by-member COPY onto an existing folder gave the members'
    # properties to no member of the copy (it named them dst//a.txt).
    served, _, changes = share
    two_trees(served)
    answer = served.request("COPY", "src", headers={"Destination": served("dst"), "Overwrite": "F"})
    assert answer.status_code == 412
    del changes[:]
    answer = served.request("COPY", "src", headers={"Destination": served("dst"), "Overwrite": "T"})
    assert answer.status_code == 204, answer.text[:300]
    # One change for the copy; the removals are changes of their own.
    assert sorted((c.action.value, c.path) for c in changes) == [
        ("copied", "src"),
        ("deleted", "dst/gone.txt"),
        ("deleted", "dst/x"),
        ("folder_deleted", "dst/only"),
    ]
    # RFC 4918 9.8.4: as if the destination had been removed first.
    assert contents(served.vfs, "dst") == contents(served.vfs, "src")
    assert sorted(e.name for e in trees.walk(served.vfs.store, "dst")) == [
        "dst/a.txt",
        "dst/sub",
        "dst/sub/b.txt",
        "dst/x",
        "dst/x/c.txt",
    ]
    assert [colour(served, p) for p in ("dst", "dst/a.txt", "dst/sub/b.txt")] == [
        "red",
        "green",
        "blue",
    ]
    assert colour(served, "dst/sub") is None  # the source's folder has none
    assert colour(served, "dst/x") is None
    # What the destination alone had is gone with its properties: a new file there
    # starts without them.
    assert served.request("PUT", "dst/gone.txt", data=b"again").status_code == 201
    assert colour(served, "dst/gone.txt") is None
    assert colour(served, "src/a.txt") == "green"  # the source keeps its own


def test_a_depth_0_copy_onto_a_folder_empties_it(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, _ = share
    two_trees(served)
    answer = served.request("COPY", "src", headers={"Destination": served("dst"), "Depth": "0"})
    assert answer.status_code == 204
    assert served.vfs.listdir("dst") == []
    assert colour(served, "dst") == "red"
    assert len(contents(served.vfs, "src")) == 3


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("source", ["src/sub", "src/sub/b.txt"])
def test_a_copy_or_move_onto_a_folder_holding_the_source_is_refused(
    share: tuple[Share, Faulty, list[Change]], method: str, source: str
) -> None:
    # wsgidav removed the destination first, the source with it, then answered 404.
    served, _, _ = share
    two_trees(served)
    before = contents(served.vfs, "src")
    answer = served.request(method, source, headers={"Destination": served("src")})
    assert answer.status_code == 403
    assert contents(served.vfs, "src") == before
    assert colour(served, "src/sub/b.txt") == "blue"


def test_a_folder_move_onto_a_folder_carries_the_members_dead_properties(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, _ = share
    two_trees(served)
    expected = contents(served.vfs, "src")
    answer = served.request("MOVE", "src", headers={"Destination": served("dst")})
    assert answer.status_code == 204
    assert contents(served.vfs, "dst") == expected
    assert not served.vfs.exists("src")
    assert [colour(served, p) for p in ("dst", "dst/a.txt", "dst/sub/b.txt")] == [
        "red",
        "green",
        "blue",
    ]
    assert colour(served, "dst/sub") is None  # the destination's old ones went
    assert served.request("PUT", "dst/gone.txt", data=b"again").status_code == 201
    assert colour(served, "dst/gone.txt") is None


def test_a_copy_onto_a_folder_names_the_members_it_could_not_copy_and_they_keep_theirs(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, faulty, _ = share
    two_trees(served)
    served.vfs.write_file("src/stuck.txt", b"new stuck")
    served.vfs.write_file("dst/stuck.txt", b"old stuck")
    set_colour(served, "src/stuck.txt", "new")
    set_colour(served, "dst/stuck.txt", "old")
    faulty.refuse_copy = True
    answer = served.request("COPY", "src", headers={"Destination": served("dst")})
    assert failed_members(answer) == {"src/stuck.txt": "HTTP/1.1 403 Forbidden"}
    found = contents(served.vfs, "dst")
    assert found.pop("stuck.txt") == b"old stuck"  # the old content, with its properties
    assert colour(served, "dst/stuck.txt") == "old"
    assert found == {k: v for k, v in contents(served.vfs, "src").items() if k != "stuck.txt"}
    assert colour(served, "dst/a.txt") == "green"


def test_a_copy_onto_a_folder_of_12000_entries_streams(
    share: tuple[Share, Faulty, list[Change]], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, _, changes = share
    vfs = served.vfs
    names = fill(vfs, served.storage)
    assert served.request("COPY", "big", headers={"Destination": served("copy")}).status_code == 201
    vfs.write_file("copy/03/00007.txt", b"changed")
    vfs.write_file("copy/05/extra.txt", b"extra")
    vfs.mkdir("copy/extra")
    vfs.write_file("copy/extra/one.txt", b"one")
    made: list[str] = []
    resource_for = VfsProvider.resource_for

    def counted(self: VfsProvider, path: str, entry: Entry, environ: Environ) -> object:
        made.append(path)
        return resource_for(self, path, entry, environ)

    monkeypatch.setattr(VfsProvider, "resource_for", counted)
    del changes[:]
    answer = served.request("COPY", "big", headers={"Destination": served("copy")})
    assert answer.status_code == 204
    assert contents(vfs, "copy") == {name: name.encode() for name in names}
    assert len(made) < 10  # the request's own resources, none per member
    assert sorted((c.action.value, c.path, c.target, c.files) for c in changes) == [
        ("copied", "big", "copy", None),
        ("deleted", "copy/05/extra.txt", None, None),
        ("folder_deleted", "copy/extra", None, ("copy/extra/one.txt",)),
    ]


LOCK_BODY = (
    '<?xml version="1.0"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def test_a_copy_onto_a_folder_with_a_member_locked_is_423(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, _ = share
    two_trees(served)
    locked = served.request("LOCK", "dst/gone.txt", data=LOCK_BODY, headers={"Depth": "0"})
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    before = contents(served.vfs, "dst")
    answer = served.request("COPY", "src", headers={"Destination": served("dst")})
    assert answer.status_code == 423
    assert contents(served.vfs, "dst") == before
    assert colour(served, "dst/a.txt") == "old a"
    # With the lock's token submitted the copy is made (RFC 4918 section 7.5; wsgidav's
    # own check of a Depth: infinity write refused it, token or not).
    held = f"<{served('dst/gone.txt')}> ({token})"  # a tagged list: the member's lock
    answer = served.request("COPY", "src", headers={"Destination": served("dst"), "If": held})
    assert answer.status_code == 204, answer.text[:300]
    assert contents(served.vfs, "dst") == contents(served.vfs, "src")


def test_a_folder_with_a_member_locked_moves_with_the_lock_s_token_only(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, _ = share
    two_trees(served)
    locked = served.request("LOCK", "dst/a.txt", data=LOCK_BODY, headers={"Depth": "0"})
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    before = contents(served.vfs, "dst")
    held = {"If": f"<{served('dst/a.txt')}> ({token})"}  # a tagged list: the member's lock
    other = {"If": f"<{served('dst/a.txt')}> (<urn:uuid:00000000-0000-0000-0000-000000000000>)"}
    to_moved = {"Destination": served("moved")}
    for headers in ({}, other):
        assert served.request("MOVE", "dst", headers=to_moved | headers).status_code == 423
    assert contents(served.vfs, "dst") == before
    answer = served.request("MOVE", "dst", headers=to_moved | held)
    assert answer.status_code == 201, answer.text[:300]
    assert contents(served.vfs, "moved") == before and not served.vfs.exists("dst")


def test_wsgidav_s_member_by_member_copy_carries_the_members_dead_properties_too(
    tmp_path: Path,
) -> None:
    # A property store without copy_tree/replace_tree (shelve) leaves the copy to
    # wsgidav, which named the members "/new//a.txt": none kept its properties.
    url = f"shelve:///{tmp_path}/props"
    with serve_share(InMemoryStorage(), tmp_path / "state", property_storage=url) as served:
        assert not hasattr(served.app.wsgidav.prop_manager, "copy_tree")
        two_trees(served)
        for destination, status in (("new", 201), ("dst", 204)):
            answer = served.request("COPY", "src", headers={"Destination": served(destination)})
            assert answer.status_code == status
            assert contents(served.vfs, destination) == contents(served.vfs, "src")
            assert [colour(served, f"{destination}/{p}") for p in ("a.txt", "sub/b.txt")] == [
                "green",
                "blue",
            ]
        assert colour(served, "dst/sub") is None


def test_a_folder_copy_onto_a_file_replaces_the_file(
    share: tuple[Share, Faulty, list[Change]],
) -> None:
    served, _, _ = share
    two_trees(served)
    answer = served.request("COPY", "src", headers={"Destination": served("dst/x")})
    assert answer.status_code == 204
    assert contents(served.vfs, "dst/x") == contents(served.vfs, "src")
    assert [colour(served, p) for p in ("dst/x", "dst/x/a.txt")] == ["red", "green"]
