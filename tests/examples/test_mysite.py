"""The example project (examples/mysite) passes Django's checks, and a file its upload view
stores is listed by the ``media`` share where Django put it."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

MYSITE = Path(__file__).resolve().parents[2] / "examples" / "mysite"


def run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYSITE_DATA_DIR": str(data_dir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=MYSITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_check_passes(tmp_path: Path) -> None:
    result = run(["manage.py", "check", "--fail-level", "WARNING"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_migrations_match_the_models(tmp_path: Path) -> None:
    result = run(["manage.py", "makemigrations", "--check", "--dry-run"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_upload_view_stores_a_file_the_share_lists(tmp_path: Path) -> None:
    result = run([str(Path(__file__).with_name("upload_check.py"))], tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["status"] == 302
    month = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m")
    assert seen["file"] == f"documents/{month}/report_2024.txt"
    assert seen["listing"] == [seen["file"]]
    assert seen["pictures"] == ["pictures/red.png"] == [seen["picture"]]
    assert seen["content"] == "quarterly numbers\n"
    assert (tmp_path / "media" / seen["file"]).read_text() == "quarterly numbers\n"
