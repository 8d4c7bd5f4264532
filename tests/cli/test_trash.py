"""``davstore serve`` keeps a person's DELETE in the trash, and ``davstore trash
list|restore|purge`` (the storage selection of ``serve``) shows and undoes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

from tests.process import davstore_env, run_davstore, run_on_a_terminal, start_serve

USER = ("ann", "secret-pass")


def test_a_served_delete_is_listed_restored_and_purged(tmp_path: Path) -> None:
    root = tmp_path / "share"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(b"aaaa")
    (root / "b.txt").write_bytes(b"bb")
    env = davstore_env(tmp_path)
    with start_serve([str(root), "--user", "ann:secret-pass"], cwd=tmp_path, env=env) as server:
        for path in ("docs", "b.txt"):
            assert requests.delete(server.url + path, auth=USER, timeout=10).status_code == 204
        # Hidden: not listed, not reachable by path.
        listing = requests.request(
            "PROPFIND", server.url, auth=USER, headers={"Depth": "1"}, timeout=10
        )
        assert listing.status_code == 207 and "davstore-trash" not in listing.text
        metrics = requests.get(server.url + ".davstore/metrics", auth=USER, timeout=10).text
        sizes = [line for line in metrics.splitlines() if line.startswith("davstore_trash_bytes{")]
        assert len(sizes) == 1 and sizes[0].endswith(" 6.0"), sizes  # the trash space
        hidden = requests.get(server.url + ".davstore-trash/", auth=USER, timeout=10)
        assert hidden.status_code == 400  # a reserved name, as every .davstore- name
    assert sorted(p.name for p in root.iterdir()) == [".davstore-trash"]  # only the trash

    listed = run_davstore(["trash", "list", str(root), "--json"], cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [(e["path"], e["kind"], e["user"], e["origin"], e["size"]) for e in entries] == [
        ("docs", "deleted", "ann", "webdav", 4),
        ("b.txt", "deleted", "ann", "webdav", 2),
    ]
    assert {"id", "path", "kind", "when", "user", "origin", "size"} <= set(entries[0])
    by_path = {e["path"]: e for e in entries}

    text = run_davstore(["trash", "list", str(root)], cwd=tmp_path, env=env)
    assert "2 entries, 6 bytes in the trash" in text.stdout

    restored = run_davstore(
        ["trash", "restore", by_path["docs"]["id"], str(root), "--to", "back/docs"],
        cwd=tmp_path,
        env=env,
    )
    assert restored.returncode == 0, restored.stderr
    assert (root / "back" / "docs" / "a.txt").read_bytes() == b"aaaa"

    (root / "b.txt").write_bytes(b"current")
    again = run_davstore(
        ["trash", "restore", by_path["b.txt"]["id"], str(root)], cwd=tmp_path, env=env
    )
    assert again.returncode == 0, again.stderr
    assert (root / "b.txt").read_bytes() == b"bb"
    after = json.loads(
        run_davstore(["trash", "list", str(root), "--json"], cwd=tmp_path, env=env).stdout
    )
    assert [(e["path"], e["kind"], e["size"]) for e in after] == [("b.txt", "replaced", 7)]

    purged = run_davstore(["trash", "purge", str(root), "--all"], cwd=tmp_path, env=env)
    assert purged.returncode == 0 and "purged 1 entries (7 bytes)" in purged.stdout
    empty = run_davstore(["trash", "list", str(root), "--json"], cwd=tmp_path, env=env)
    assert json.loads(empty.stdout) == []


def test_trash_errors_are_one_line(tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    env = davstore_env(tmp_path)
    missing = run_davstore(["trash", "restore", "nope", str(root)], cwd=tmp_path, env=env)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no such entry in the trash" in missing.stderr
    bad = run_davstore(["trash", "purge", str(root), "--trash-days", "0"], cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "must be more than 0" in bad.stderr


def test_the_activity_log_names_who_did_what_and_the_trash_entry(tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    env = davstore_env(tmp_path)
    with start_serve([str(root), "--user", "ann:secret-pass"], cwd=tmp_path, env=env) as server:
        for body in (b"one", b"two!"):
            answer = requests.put(server.url + "c.txt", data=body, auth=USER, timeout=10)
            assert answer.status_code in (201, 204)
        assert requests.delete(server.url + "c.txt", auth=USER, timeout=10).status_code == 204
    shown = run_davstore(["activity", str(root), "--json"], cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    records = json.loads(shown.stdout)
    assert [(r["action"], r["path"], r["user"], r["origin"], r["size"]) for r in records] == [
        ("created", "c.txt", "ann", "webdav", 3),
        ("modified", "c.txt", "ann", "webdav", 4),
        ("deleted", "c.txt", "ann", "webdav", 4),
    ]
    trash = json.loads(
        run_davstore(["trash", "list", str(root), "--json"], cwd=tmp_path, env=env).stdout
    )
    by_id = {e["id"]: e for e in trash}
    assert records[0]["trash_id"] is None
    assert by_id[records[1]["trash_id"]]["kind"] == "replaced"  # "one", kept
    assert by_id[records[2]["trash_id"]]["kind"] == "deleted"
    text = run_davstore(["activity", str(root)], cwd=tmp_path, env=env).stdout
    assert "ann  webdav  deleted  /c.txt  (trash " in text


def test_serve_no_trash_makes_a_delete_final_and_trash_days_is_checked(tmp_path: Path) -> None:
    """``--no-trash`` (davstore/options.py, as on mount and manage.py) turns the trash off
    for what ``serve`` serves; a bad retention flag of ``serve`` is a usage error."""
    root = tmp_path / "share"
    root.mkdir()
    (root / "gone.txt").write_bytes(b"x")
    env = davstore_env(tmp_path)
    with start_serve(
        [str(root), "--user", "ann:secret-pass", "--no-trash"], cwd=tmp_path, env=env
    ) as server:
        assert requests.delete(server.url + "gone.txt", auth=USER, timeout=10).status_code == 204
    assert list(root.iterdir()) == []  # no .davstore-trash: final
    bad = run_davstore(["serve", str(root), "--trash-versions", "0"], cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "must be 1 or more" in bad.stderr


def _trash_two(root: Path, env: dict[str, str], tmp_path: Path, names: tuple[str, str]) -> None:
    for name in names:
        (root / name).write_bytes(b"x" * 10)
    with start_serve([str(root), "--anonymous"], cwd=tmp_path, env=env) as server:
        for name in names:
            assert requests.delete(server.url + name, timeout=10).status_code == 204


def test_purge_shows_progress_on_a_terminal_and_none_in_logs(tmp_path: Path) -> None:
    """Issue 24 item 8: a bar (tqdm) when stdout and stderr are a terminal; piped, the
    output is the one line it always was."""
    root = tmp_path / "share"
    root.mkdir()
    env = davstore_env(tmp_path)
    _trash_two(root, env, tmp_path, ("a.txt", "b.txt"))
    piped = run_davstore(["trash", "purge", str(root), "--all"], cwd=tmp_path, env=env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "purged 2 entries (20 bytes); 0 entries, 0 bytes left\n"
    assert "100%" not in piped.stderr and "entries/s" not in piped.stderr
    assert "\r" not in piped.stdout + piped.stderr

    _trash_two(root, env, tmp_path, ("c.txt", "d.txt"))
    command = [sys.executable, "-m", "davstore", "trash", "purge", str(root), "--all"]
    status, shown = run_on_a_terminal(command, cwd=tmp_path, env=env)
    assert status == 0, shown
    assert "trash purge: 100%" in shown and "2/2" in shown, shown
    assert "purged 2 entries (20 bytes)" in shown
