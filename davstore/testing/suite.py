"""The conformance suite: the same behaviour through every frontend and on every store.

Subclass :class:`ConformanceSuite` and provide a ``driver`` fixture that yields a
:class:`~davstore.testing.drivers.Driver` on an empty share (or use
:class:`~davstore.testing.StorageConformance`, which provides it for a Storage). Each test
states one rule of docs/SEMANTICS.md.

A store that cannot do something says so through the ``features`` fixture (by default the
class's ``store_features``): a test of what it cannot do then checks the documented refusal
(``ENOSYS``, WebDAV 501, and nothing lost) instead of the operation. Nothing is skipped.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Callable
from typing import ClassVar

import pytest

from davstore.testing.drivers import Driver

__all__ = ["BLOB", "ConformanceSuite", "Features", "assert_not_supported"]

#: The content of the bigger files the suite writes (more than one read chunk).
BLOB = os.urandom(300_000) + b"tail"


@dataclasses.dataclass(frozen=True, slots=True)
class Features:
    """What the store behind a share can do, as far as the suite's rules depend on it.

    ``delete``: the Storage deletes (Django's base ``Storage.delete`` raises
    ``NotImplementedError``). Without it, removing, moving, and replacing a file that exists
    (an overwrite, a copy onto it) answer *not supported* and leave everything as it was.
    """

    delete: bool = True


def assert_not_supported(call: Callable[..., object], *args: object) -> None:
    """``call(*args)`` fails with ``ENOSYS`` (WebDAV 501): the store cannot do it."""
    with pytest.raises(OSError) as raised:
        call(*args)
    assert raised.value.errno == errno.ENOSYS, repr(raised.value)


class ConformanceSuite:
    """Rules every (frontend, store) pair keeps.

    Needs a ``driver`` fixture (an empty share). ``store_features`` (or the ``features``
    fixture, where it depends on a parameter) says what the store can do.
    """

    #: What the store can do; the ``features`` fixture's value unless it is overridden.
    store_features: ClassVar[Features] = Features()

    @pytest.fixture
    def features(self) -> Features:
        """What the store behind ``driver`` can do."""
        return self.store_features

    # -- files ------------------------------------------------------------------------

    def test_write_then_read_gives_the_same_bytes(self, driver: Driver) -> None:
        driver.write("a.bin", BLOB)
        assert driver.read("a.bin") == BLOB
        assert driver.stat("a.bin") == (False, len(BLOB))

    def test_empty_file(self, driver: Driver) -> None:
        driver.write("empty", b"")
        assert driver.read("empty") == b""
        assert driver.stat("empty") == (False, 0)

    def test_overwrite_replaces_the_whole_content(self, driver: Driver, features: Features) -> None:
        driver.write("f.txt", b"a long first version")
        if not features.delete:
            assert_not_supported(driver.write, "f.txt", b"short")
            assert driver.read("f.txt") == b"a long first version"
            return
        driver.write("f.txt", b"short")
        assert driver.read("f.txt") == b"short"
        assert driver.listdir("") == {"f.txt": False}

    def test_overwrite_keeps_the_exact_name(self, driver: Driver, features: Features) -> None:
        """Storage.save() renaming on collision (get_available_name) never leaks out."""
        driver.write("same.txt", b"v0")
        for version in range(1, 3):
            if features.delete:
                driver.write("same.txt", b"v%d" % version)
            else:
                assert_not_supported(driver.write, "same.txt", b"v%d" % version)
        assert driver.listdir("") == {"same.txt": False}
        assert driver.read("same.txt") == (b"v2" if features.delete else b"v0")

    def test_ranged_read(self, driver: Driver) -> None:
        driver.write("r.bin", BLOB)
        assert driver.read_range("r.bin", 0, 10) == BLOB[:10]
        assert driver.read_range("r.bin", 123_456, 1000) == BLOB[123_456:124_456]
        assert driver.read_range("r.bin", len(BLOB) - 4, 100) == b"tail"

    def test_read_missing_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.read("nope.txt")
        with pytest.raises(FileNotFoundError):
            driver.stat("nope.txt")

    def test_write_without_parent_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.write("no/such/folder.txt", b"x")
        assert driver.listdir("") == {}

    def test_remove_file(self, driver: Driver, features: Features) -> None:
        driver.write("gone.txt", b"x")
        if not features.delete:
            assert_not_supported(driver.remove, "gone.txt")
            assert driver.read("gone.txt") == b"x"
            return
        driver.remove("gone.txt")
        assert driver.listdir("") == {}
        with pytest.raises(FileNotFoundError):
            driver.read("gone.txt")

    def test_remove_missing_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.remove("missing.txt")

    def test_unicode_names_are_nfc(self, driver: Driver) -> None:
        nfd = "cafe\u0301.txt"
        driver.write(nfd, b"x")
        assert driver.read("caf\u00e9.txt") == b"x"
        assert list(driver.listdir("")) == ["caf\u00e9.txt"]

    def test_awkward_names_round_trip(self, driver: Driver) -> None:
        names = [
            "sp ace.txt",
            "hash#.txt",
            "pct%20.txt",
            "plus+amp&.txt",
            "quote'.txt",
            "Ελληνικά.txt",
            "emoji-\U0001f600.txt",
            "x" * 200,
        ]
        for name in names:
            driver.write(name, name.encode())
        assert driver.listdir("") == dict.fromkeys(names, False)
        for name in names:
            assert driver.read(name) == name.encode()

    # -- folders ----------------------------------------------------------------------

    def test_mkdir_and_list(self, driver: Driver) -> None:
        driver.mkdir("d")
        driver.mkdir("d/e")
        driver.write("d/f.txt", b"12345")
        assert driver.listdir("d") == {"e": True, "f.txt": False}
        assert driver.stat("d") == (True, 0)
        assert driver.listdir("d/e") == {}

    def test_empty_folder_survives(self, driver: Driver) -> None:
        driver.mkdir("empty")
        assert driver.listdir("") == {"empty": True}
        assert driver.listdir("empty") == {}

    def test_mkdir_existing_is_refused(self, driver: Driver) -> None:
        driver.mkdir("d")
        with pytest.raises(FileExistsError):
            driver.mkdir("d")
        driver.write("f", b"")
        with pytest.raises(FileExistsError):
            driver.mkdir("f")

    def test_mkdir_without_parent_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.mkdir("a/b")

    def test_list_missing_folder_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.listdir("nowhere")

    def test_rmtree(self, driver: Driver, features: Features) -> None:
        driver.mkdir("t")
        driver.mkdir("t/u")
        driver.write("t/u/v.txt", b"v")
        driver.write("t/w.txt", b"w")
        if not features.delete:
            assert_not_supported(driver.rmtree, "t")
            assert driver.listdir("t") == {"u": True, "w.txt": False}
            assert driver.read("t/u/v.txt") == b"v"
            return
        driver.rmtree("t")
        assert driver.listdir("") == {}
        with pytest.raises(FileNotFoundError):
            driver.listdir("t")

    # -- rename and copy --------------------------------------------------------------

    def test_rename_file(self, driver: Driver, features: Features) -> None:
        driver.write("a.txt", b"A")
        if not features.delete:
            assert_not_supported(driver.rename, "a.txt", "b.txt")
            assert driver.listdir("") == {"a.txt": False}
            return
        driver.rename("a.txt", "b.txt")
        assert driver.listdir("") == {"b.txt": False}
        assert driver.read("b.txt") == b"A"

    def test_rename_replaces_a_file(self, driver: Driver, features: Features) -> None:
        driver.write("a.txt", b"new")
        driver.write("b.txt", b"old")
        if not features.delete:
            assert_not_supported(driver.rename, "a.txt", "b.txt")
            assert (driver.read("a.txt"), driver.read("b.txt")) == (b"new", b"old")
            return
        driver.rename("a.txt", "b.txt")
        assert driver.listdir("") == {"b.txt": False}
        assert driver.read("b.txt") == b"new"

    def test_rename_folder_with_content(self, driver: Driver, features: Features) -> None:
        driver.mkdir("src")
        driver.mkdir("src/sub")
        driver.write("src/sub/x.bin", BLOB)
        driver.write("src/y.txt", b"y")
        if not features.delete:
            assert_not_supported(driver.rename, "src", "dst")
            assert driver.listdir("") == {"src": True}
            assert driver.read("src/sub/x.bin") == BLOB
            return
        driver.rename("src", "dst")
        assert driver.listdir("") == {"dst": True}
        assert driver.listdir("dst") == {"sub": True, "y.txt": False}
        assert driver.read("dst/sub/x.bin") == BLOB

    def test_rename_into_another_folder(self, driver: Driver, features: Features) -> None:
        driver.mkdir("d")
        driver.write("f.txt", b"f")
        if not features.delete:
            assert_not_supported(driver.rename, "f.txt", "d/f.txt")
            assert driver.listdir("d") == {}
            return
        driver.rename("f.txt", "d/f.txt")
        assert driver.listdir("d") == {"f.txt": False}
        assert driver.listdir("") == {"d": True}

    def test_rename_missing_is_not_found(self, driver: Driver) -> None:
        with pytest.raises(FileNotFoundError):
            driver.rename("missing", "other")

    def test_copy_file(self, driver: Driver) -> None:
        driver.write("a.bin", BLOB)
        driver.copy("a.bin", "b.bin")
        assert driver.read("b.bin") == BLOB
        assert driver.read("a.bin") == BLOB

    def test_copy_replaces_a_file(self, driver: Driver, features: Features) -> None:
        driver.write("a.txt", b"new")
        driver.write("b.txt", b"older and longer")
        if not features.delete:
            assert_not_supported(driver.copy, "a.txt", "b.txt")
            assert driver.read("b.txt") == b"older and longer"
            return
        driver.copy("a.txt", "b.txt")
        assert driver.read("b.txt") == b"new"

    def test_copy_folder_tree(self, driver: Driver) -> None:
        driver.mkdir("s")
        driver.mkdir("s/empty")
        driver.write("s/f.txt", b"f")
        driver.copy("s", "c")
        assert driver.listdir("c") == {"empty": True, "f.txt": False}
        assert driver.read("c/f.txt") == b"f"
        assert driver.listdir("s") == {"empty": True, "f.txt": False}
