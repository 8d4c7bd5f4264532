"""Real WebDAV clients against a served share: cadaver, rclone, curl and davfs2.

Each client comes from its Debian package (tests/run.sh installs them); a missing client
fails its test, it is never skipped. Every test ends by checking the store itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from tests.webdav.serving import PASSWORD, USER, Share, serve_share

AWKWARD = [
    "sp ace.txt",
    "hash#1.txt",
    "pct%41.txt",
    "q?uery.txt",
    "plus+amp&.txt",
    "quote'\".txt",
    "Ελληνικά.txt",
    "日本語.txt",
    "emoji-\U0001f600.txt",
]


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (tests/run.sh installs it with apt-get)")
    return path


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        args, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def make_tree(root: Path, files: int) -> dict[str, str]:
    """A tree of ``files`` files in nested folders, awkward names included; name -> sha256."""
    sums = {}
    for i in range(files):
        folder = root / f"dir{i % 7}" / f"sub{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        name = AWKWARD[i % len(AWKWARD)].replace(".txt", f"-{i}.bin")
        data = os.urandom(i * 37 % 5000)
        (folder / name).write_bytes(data)
        sums[str((folder / name).relative_to(root))] = hashlib.sha256(data).hexdigest()
    return sums


def tree_sums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    with serve_share(storage, tmp_path / "state") as served:
        yield served


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


# -- curl ----------------------------------------------------------------------------------


def test_curl_put_get_range_and_delete(share: Share, media: Path, tmp_path: Path) -> None:
    curl = need("curl")
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(200_000))
    auth = f"{USER}:{PASSWORD}"
    put = run(
        curl, "-sS", "-f", "-u", auth, "-T", str(body), share("up load.bin").replace(" ", "%20")
    )
    assert put.returncode == 0, put.stderr
    assert (media / "up load.bin").read_bytes() == body.read_bytes()
    got = run(
        curl,
        "-sS",
        "-f",
        "-u",
        auth,
        "-r",
        "1000-1999",
        "-o",
        str(tmp_path / "part"),
        share("up%20load.bin"),
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "part").read_bytes() == body.read_bytes()[1000:2000]
    chunked = run(
        curl,
        "-sS",
        "-f",
        "-u",
        auth,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        f"@{body}",
        "-X",
        "PUT",
        share("chunked.bin"),
    )
    assert chunked.returncode == 0, chunked.stderr
    assert (media / "chunked.bin").read_bytes() == body.read_bytes()
    denied = run(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", share("chunked.bin"))
    assert denied.stdout == "401"
    deleted = run(curl, "-sS", "-f", "-u", auth, "-X", "DELETE", share("chunked.bin"))
    assert deleted.returncode == 0, deleted.stderr
    assert sorted(os.listdir(media)) == ["up load.bin"]


# -- cadaver -------------------------------------------------------------------------------


def test_cadaver_scripted_session(share: Share, media: Path, tmp_path: Path) -> None:
    cadaver = need("cadaver")
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {PASSWORD}\n")
    netrc.chmod(0o600)
    local = tmp_path / "local.txt"
    local.write_text("from cadaver\n")
    script = "\n".join(
        [
            "mkcol docs",
            f"put {local} docs/a.txt",
            "move docs/a.txt docs/b.txt",
            "copy docs/b.txt docs/c.txt",
            "lock docs/c.txt",
            "unlock docs/c.txt",
            "propset docs/c.txt colour blue",
            "propget docs/c.txt colour",
            f"get docs/c.txt {tmp_path / 'back.txt'}",
            "mkcol trash",
            "rmcol trash",
            "quit",
            "",
        ]
    )
    result = run(cadaver, share.url + "/", input=script, env={**os.environ, "HOME": str(home)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "failed" not in out.lower(), out
    assert "Value of colour is: blue" in out, out
    assert (tmp_path / "back.txt").read_text() == "from cadaver\n"
    assert sorted(os.listdir(media)) == ["docs"]
    assert sorted(os.listdir(media / "docs")) == ["b.txt", "c.txt"]
    assert (media / "docs" / "c.txt").read_text() == "from cadaver\n"


# -- rclone --------------------------------------------------------------------------------


def rclone_remote(share: Share) -> list[str]:
    rclone = need("rclone")
    obscured = run(rclone, "obscure", PASSWORD).stdout.strip()
    return [
        "--webdav-url",
        share.url,
        "--webdav-user",
        USER,
        "--webdav-pass",
        obscured,
        "--webdav-vendor",
        "other",
        "--config",
        "/dev/null",
        "-q",
    ]


def test_rclone_copy_and_check_both_ways(share: Share, media: Path, tmp_path: Path) -> None:
    rclone = need("rclone")
    remote = rclone_remote(share)
    source = tmp_path / "source"
    sums = make_tree(source, 300)
    up = run(rclone, "copy", str(source), ":webdav:tree", *remote)
    assert up.returncode == 0, up.stderr
    assert tree_sums(media / "tree") == sums
    check = run(rclone, "check", str(source), ":webdav:tree", *remote)
    assert check.returncode == 0, check.stderr
    again = run(rclone, "copy", "-v", str(source), ":webdav:tree", *remote[:-1])
    assert "Copied" not in again.stderr, "a second copy transfers nothing"
    back = tmp_path / "back"
    down = run(rclone, "copy", ":webdav:tree", str(back), *remote)
    assert down.returncode == 0, down.stderr
    assert tree_sums(back) == sums
    check_back = run(rclone, "check", ":webdav:tree", str(back), *remote)
    assert check_back.returncode == 0, check_back.stderr


# -- davfs2 --------------------------------------------------------------------------------


@pytest.fixture
def davfs(share: Share, tmp_path: Path) -> Iterator[Path]:
    """The share mounted with davfs2 (as root); always unmounted."""
    need("mount.davfs")
    conf_dir = tmp_path / "davfs"
    conf_dir.mkdir()
    secrets = conf_dir / "secrets"
    secrets.write_text(f"{share.url}/ {USER} {PASSWORD}\n")
    secrets.chmod(0o600)
    conf = conf_dir / "davfs2.conf"
    conf.write_text(f"secrets {secrets}\nuse_locks 1\ndelay_upload 0\nask_auth 0\n")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = run(
        "mount",
        "-t",
        "davfs",
        share.url + "/",
        str(mountpoint),
        "-o",
        f"conf={conf}",
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield mountpoint
    finally:
        if os.path.ismount(mountpoint) and run("umount", str(mountpoint)).returncode != 0:
            run("umount", "-l", str(mountpoint))


def test_davfs2_copy_in_edit_and_read_back(davfs: Path, media: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    sums = make_tree(source, 40)
    copied = run("cp", "-r", str(source), str(davfs / "tree"))
    assert copied.returncode == 0, copied.stderr
    (davfs / "notes.txt").write_text("first\n")
    with open(davfs / "notes.txt", "a") as notes:
        notes.write("second\n")
    for name, digest in sums.items():
        assert hashlib.sha256((davfs / "tree" / name).read_bytes()).hexdigest() == digest
    subprocess.run(["umount", str(davfs)], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 10
    while tree_sums(media / "tree") != sums and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tree_sums(media / "tree") == sums
    assert (media / "notes.txt").read_text() == "first\nsecond\n"


# -- awkward names through curl and cadaver --------------------------------------------------

LONG = "long-" + "ü" * 100 + ".txt"  # 206 bytes of UTF-8, under the 255-byte limit


def test_curl_awkward_names_round_trip(share: Share, media: Path, tmp_path: Path) -> None:
    from urllib.parse import quote

    curl = need("curl")
    auth = f"{USER}:{PASSWORD}"
    for i, name in enumerate([*AWKWARD, LONG]):
        body = tmp_path / f"body{i}"
        body.write_bytes(name.encode() + os.urandom(64))
        url = share(quote(name))
        put = run(curl, "-sS", "-f", "-u", auth, "-T", str(body), url)
        assert put.returncode == 0, (name, put.stderr)
        assert (media / name).read_bytes() == body.read_bytes(), name
        back = tmp_path / f"back{i}"
        got = run(curl, "-sS", "-f", "-u", auth, "-o", str(back), url)
        assert got.returncode == 0, (name, got.stderr)
        assert back.read_bytes() == body.read_bytes(), name
    assert sorted(os.listdir(media)) == sorted([*AWKWARD, LONG])


def test_cadaver_awkward_names_round_trip(share: Share, media: Path, tmp_path: Path) -> None:
    cadaver = need("cadaver")
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {PASSWORD}\n")
    netrc.chmod(0o600)
    names = [n for n in AWKWARD if '"' not in n and "'" not in n]  # cadaver's own quoting
    lines = []
    for i, name in enumerate(names):
        local = tmp_path / f"in{i}"
        local.write_bytes(name.encode() + b"\n")
        lines += [f'put {local} "{name}"', f'get "{name}" {tmp_path / f"out{i}"}']
    lines += [f'move "{names[0]}" "{names[1]}.moved"', "quit", ""]
    result = run(
        cadaver, share.url + "/", input="\n".join(lines), env={**os.environ, "HOME": str(home)}
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "failed" not in out.lower(), out
    for i, name in enumerate(names):
        assert (tmp_path / f"out{i}").read_bytes() == name.encode() + b"\n", name
    expected = {*names[1:], names[1] + ".moved"}
    assert set(os.listdir(media)) == expected
    assert (media / (names[1] + ".moved")).read_bytes() == names[0].encode() + b"\n"


def test_davfs2_awkward_names_by_name_and_the_readdir_limitation(
    davfs: Path, media: Path, tmp_path: Path
) -> None:
    """Copy-in and read-by-name work for every awkward name. Listing the mount (readdir)
    fails with EINVAL in this environment, against rclone's server as well: a limitation
    of davfs2 here, not of the share (checked below so a fixed environment shows up)."""
    for name in AWKWARD:
        (davfs / name).write_bytes(name.encode())
    subprocess.run(["sync"], check=False)
    for name in AWKWARD:
        assert (davfs / name).read_bytes() == name.encode(), name
    try:
        listed: list[str] | None = os.listdir(davfs)
    except OSError as exc:
        assert exc.errno == 22, exc  # EINVAL, the known limitation
        print("davfs2 readdir: EINVAL (environment limitation)")
        listed = None
    if listed is not None:
        assert set(AWKWARD) <= set(listed)
    subprocess.run(["umount", str(davfs)], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 10
    while set(os.listdir(media)) != set(AWKWARD) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in AWKWARD:
        assert (media / name).read_bytes() == name.encode(), name
