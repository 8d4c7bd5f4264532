"""The activity log's file: one JSON line per record, rotated past its size, shared by
the processes of a host (each may rotate it)."""

from __future__ import annotations

import json
from pathlib import Path

from davstore.vfs.activity import ACTIVITY_FILE, ActivityLog
from davstore.vfs.events import Action, Actor, Change


def _change(path: str) -> Change:
    return Change(Action.CREATED, path, is_dir=False, actor=Actor(user="ann", origin="webdav"))


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_record_is_one_line_with_its_keys_sorted(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path)
    log.record(_change("a.txt"), size=3, trash_id="t1")
    text = (tmp_path / ACTIVITY_FILE).read_text()
    assert text.count("\n") == 1
    record = json.loads(text)
    assert list(record) == sorted(record)
    assert text == json.dumps(record, sort_keys=True) + "\n"
    assert {k: v for k, v in record.items() if k != "when"} == {
        "action": "created",
        "is_dir": False,
        "origin": "webdav",
        "path": "a.txt",
        "size": 3,
        "target": None,
        "trash_id": "t1",
        "user": "ann",
    }
    log.close()


def test_past_its_size_the_file_is_rotated_once(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path, max_bytes=600)
    for number in range(6):
        log.record(_change(f"f{number}.txt"))
    older = _lines(tmp_path / (ACTIVITY_FILE + ".1"))
    newer = _lines(tmp_path / ACTIVITY_FILE)
    assert [r["path"] for r in older + newer][-len(older + newer) :] == [
        f"f{n}.txt" for n in range(6 - len(older + newer), 6)
    ]
    assert older and newer
    assert [r["path"] for r in log.read()] == [r["path"] for r in older + newer]
    log.close()


def test_a_file_another_process_rotated_or_removed_is_not_written_to(tmp_path: Path) -> None:
    ours, theirs = ActivityLog(tmp_path), ActivityLog(tmp_path, max_bytes=1)
    ours.record(_change("one.txt"))
    theirs.record(_change("two.txt"))  # past its size: the file becomes .1
    ours.record(_change("three.txt"))
    assert [r["path"] for r in _lines(tmp_path / (ACTIVITY_FILE + ".1"))] == ["one.txt"]
    assert [r["path"] for r in _lines(tmp_path / ACTIVITY_FILE)] == ["two.txt", "three.txt"]
    (tmp_path / ACTIVITY_FILE).unlink()
    (tmp_path / (ACTIVITY_FILE + ".1")).unlink()
    ours.record(_change("four.txt"))
    assert [r["path"] for r in _lines(tmp_path / ACTIVITY_FILE)] == ["four.txt"]
    ours.close()
    theirs.close()


def test_a_missing_state_folder_is_made(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "state")
    log.record(_change("a.txt"))
    assert [r["path"] for r in log.read()] == ["a.txt"]
    log.close()
