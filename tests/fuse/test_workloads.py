"""Real work on a real mount: the tools people use, run as they run them."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from tests.fuse.conftest import MountFactory, Share
from tests.fuse.mounting import wait_until


def make_tree(root: Path) -> None:
    """A small project: nested folders, empty files and folders, a 3 MiB binary."""
    (root / "src" / "pkg" / "deep").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "src" / "pkg" / "__init__.py").write_text("")
    (root / "src" / "pkg" / "mod.py").write_text("print('hi')\n" * 100)
    (root / "src" / "pkg" / "deep" / "data.bin").write_bytes(os.urandom(3 << 20))
    (root / "README.md").write_text("# tree\n")
    (root / "name with spaces & ünïcode.txt").write_text("ok")
    for i in range(30):
        (root / "src" / f"file{i:02}.txt").write_text(f"file {i}\n" * i)


def checksums(root: Path) -> dict[str, str]:
    """Relative path -> sha256 for files, "dir" for folders."""
    sums = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            sums[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                sums[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return sums


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_cp_r_in_and_out_keeps_every_byte(share: Share, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    run("cp", "-r", source, share.path / "tree")
    run("cp", "-r", share.path / "tree", tmp_path / "back")
    assert checksums(share.path / "tree") == checksums(source) == checksums(tmp_path / "back")


def test_rsync_twice_transfers_nothing_the_second_time(fs_share: Share, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    first = run("rsync", "-a", "--stats", f"{source}/", f"{fs_share.path}/copy/")
    assert "Number of regular files transferred: 35" in first
    second = run("rsync", "-a", "-i", "--stats", f"{source}/", f"{fs_share.path}/copy/")
    assert "Number of regular files transferred: 0" in second
    assert not [line for line in second.splitlines() if re.match(r"^[<>ch.][fd]", line)]
    assert checksums(fs_share.path / "copy") == checksums(source)


def test_tar_extract_and_create(share: Share, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    run("tar", "-cf", tmp_path / "in.tar", "-C", source, ".")
    run("tar", "-xf", tmp_path / "in.tar", "-C", share.path)
    assert checksums(share.path) == checksums(source)
    run("tar", "-cf", tmp_path / "out.tar", "-C", share.path, ".")
    (tmp_path / "out").mkdir()
    run("tar", "-xf", tmp_path / "out.tar", "-C", tmp_path / "out")
    assert checksums(tmp_path / "out") == checksums(source)


@pytest.mark.parametrize("kind", ["filesystem", "memory"])
def test_git_clone_and_status_clean(mount_share: MountFactory, tmp_path: Path, kind: str) -> None:
    share = mount_share(kind)
    repo = tmp_path / "repo"
    make_tree(repo)
    env = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    run("git", *env, "init", "-q", repo)
    run("git", "-C", repo, "add", "-A")
    run("git", *env, "-C", repo, "commit", "-q", "-m", "initial")
    run("git", "clone", "-q", repo, share.path / "clone")
    clone = share.path / "clone"
    assert run("git", "-C", clone, "status", "--porcelain") == ""
    (clone / "README.md").write_text("# changed\n")
    assert run("git", "-C", clone, "status", "--porcelain").strip() == "M README.md"
    run("git", *env, "-C", clone, "commit", "-qam", "change")
    assert run("git", "-C", clone, "status", "--porcelain") == ""
    assert "change" in run("git", "-C", clone, "log", "--oneline")
    run("git", "-C", clone, "fsck", "--no-progress")


def test_editor_safe_save(share: Share) -> None:
    """Write a temp file, fsync, rename over the original; swap, backup and lock files."""
    doc = share.path / "doc.txt"
    doc.write_text("version 1\n")
    lock = share.path / ".~lock.doc.txt#"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"user,host,12345;")
    os.close(fd)
    swap = share.path / ".doc.txt.swp"
    fd = os.open(swap, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.pwrite(fd, b"\0" * 4096, 0)
    os.pwrite(fd, b"b0VIM", 0)
    os.fsync(fd)
    os.rename(doc, share.path / "doc.txt~")
    temp = share.path / ".doc.txt.tmp123"
    with open(temp, "w") as out:
        out.write("version 2\n")
        out.flush()
        os.fsync(out.fileno())
    os.rename(temp, doc)
    os.close(fd)
    os.unlink(swap)
    os.unlink(share.path / "doc.txt~")
    os.unlink(lock)
    assert doc.read_text() == "version 2\n"
    assert os.listdir(share.path) == ["doc.txt"]


def test_vim_edits_with_a_swap_file(share: Share) -> None:
    """vim makes ``.notes.txt.swp`` (O_EXCL, chmod), writes the file, removes the swap."""
    if shutil.which("vim") is None:
        pytest.fail("vim is not installed (tests/run.sh installs it)")
    doc = share.path / "notes.txt"
    doc.write_text("alpha\nbeta\n")
    vim = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "set swapfile"]
    run(*vim, "-c", "%s/beta/gamma/", "-c", "wq", doc, cwd=share.path)
    assert doc.read_text() == "alpha\ngamma\n"
    assert os.listdir(share.path) == ["notes.txt"]


def test_mv_folder_with_files(share: Share, tmp_path: Path) -> None:
    make_tree(share.path / "project")
    before = checksums(share.path / "project")
    run("mv", share.path / "project", share.path / "renamed")
    assert os.listdir(share.path) == ["renamed"]
    assert checksums(share.path / "renamed") == before


def test_find_du_ls(share: Share, tmp_path: Path) -> None:
    make_tree(share.path / "t")
    found = run("find", share.path / "t", "-type", "f").splitlines()
    assert len(found) == 35
    kib = int(run("du", "-sk", share.path / "t").split()[0])
    assert 3 * 1024 <= kib <= 3 * 1024 + 200
    listing = run("ls", "-lR", share.path / "t")
    assert "data.bin" in listing and "3145728" in listing


def test_django_write_shows_within_the_cache_ttl(mount_share: MountFactory) -> None:
    share = mount_share("filesystem", "--cache-ttl", "1")
    assert share.root is not None
    assert os.listdir(share.path) == []  # the empty listing is now cached
    storage = FileSystemStorage(location=str(share.root))
    storage.save("from-django.txt", ContentFile(b"saved by Django"))
    took = wait_until(lambda: "from-django.txt" in os.listdir(share.path), timeout=5)
    assert took <= 1.5
    assert (share.path / "from-django.txt").read_bytes() == b"saved by Django"


def test_listed_sizes_follow_django_writes_within_the_cache_ttl(
    mount_share: MountFactory,
) -> None:
    """Listings hand the kernel each entry's attributes (readdirplus); they expire with
    the TTL like any other."""
    share = mount_share("filesystem", "--cache-ttl", "1")
    assert share.root is not None
    storage = FileSystemStorage(location=str(share.root))
    storage.save("report.txt", ContentFile(b"one"))

    def sizes() -> dict[str, int]:
        return {entry.name: entry.stat().st_size for entry in os.scandir(share.path)}

    assert sizes() == {"report.txt": 3}
    storage.delete("report.txt")
    storage.save("report.txt", ContentFile(b"version two"))
    took = wait_until(lambda: sizes() == {"report.txt": 11}, timeout=5)
    assert took <= 1.5
    assert (share.path / "report.txt").read_bytes() == b"version two"


def test_mount_write_is_read_back_by_the_storage_api(fs_share: Share) -> None:
    assert fs_share.root is not None
    data = os.urandom(200_000)
    (fs_share.path / "sub").mkdir()
    (fs_share.path / "sub" / "up.bin").write_bytes(data)
    storage = FileSystemStorage(location=str(fs_share.root))
    with storage.open("sub/up.bin", "rb") as stored:
        assert stored.read() == data
    assert storage.listdir("sub") == ([], ["up.bin"])
