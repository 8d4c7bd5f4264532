"""``rm -r`` in a mount is kept in the share's trash: each file removed is one entry
(the kernel unlinks them one by one), the trash never shows in the mount, and
``davstore trash restore`` brings a file back where the mount sees it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.fuse.conftest import MountFactory
from tests.fuse.mounting import wait_until
from tests.process import davstore_env, run_davstore


def test_rm_r_in_a_mount_goes_to_the_trash_and_restores(
    mount_share: MountFactory, tmp_path: Path
) -> None:
    share = mount_share("filesystem", "--cache-ttl", "0")
    assert share.root is not None
    (share.path / "project" / "src").mkdir(parents=True)
    (share.path / "project" / "README").write_bytes(b"read me")
    (share.path / "project" / "src" / "main.c").write_bytes(b"int main;")
    subprocess.run(["rm", "-r", str(share.path / "project")], check=True, timeout=30)
    assert os.listdir(share.path) == []
    assert sorted(os.listdir(share.root)) == [".davstore-trash"]  # reserved: not in the mount

    env = davstore_env(tmp_path)
    listed = run_davstore(["trash", "list", str(share.root), "--json"], cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    entries = {e["path"]: e for e in json.loads(listed.stdout)}
    assert sorted(entries) == ["project/README", "project/src/main.c"]
    assert {e["origin"] for e in entries.values()} == {"fuse"}
    assert entries["project/README"]["size"] == 7

    restored = run_davstore(
        ["trash", "restore", entries["project/src/main.c"]["id"], str(share.root)],
        cwd=tmp_path,
        env=env,
    )
    assert restored.returncode == 0, restored.stderr
    main_c = share.path / "project" / "src" / "main.c"
    wait_until(main_c.exists)  # the kernel may keep its negative entry a moment
    assert main_c.read_bytes() == b"int main;"


def test_the_mount_keeps_an_activity_log(mount_share: MountFactory, tmp_path: Path) -> None:
    share = mount_share("filesystem", "--cache-ttl", "0")
    assert share.root is not None
    (share.path / "notes.txt").write_bytes(b"draft")
    (share.path / "notes.txt").unlink()
    env = davstore_env(tmp_path)
    shown = run_davstore(["activity", str(share.root), "--json"], cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    actions = [(r["action"], r["path"], r["origin"]) for r in json.loads(shown.stdout)]
    assert actions[0] == ("created", "notes.txt", "fuse")
    assert actions[-1] == ("deleted", "notes.txt", "fuse")
