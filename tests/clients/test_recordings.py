"""Recorded request sequences of desktop clients (tests/clients/recordings/*.json), replayed.

Each recording is what a client does, written from its documented behaviour: steps of
``method``, ``path`` (percent-encoded, from the share root), ``headers``, ``body`` and the
status the client ``expect``\\s. ``{token}`` is the Lock-Token captured by a step with
``capture: "token"``, ``{base}`` the share's URL. ``auth: false`` sends no credentials,
``chunked: true`` sends the body chunked without Content-Length. ``setup`` files exist
before the replay; afterwards the store must hold exactly ``store`` (a ``None`` value is a
folder), file by file, with the modification times in ``mtimes``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from tests.webdav.serving import Share, serve_share

RECORDINGS = Path(__file__).parent / "recordings"


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def store_contents(media: Path) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for path in media.rglob("*"):
        name = str(path.relative_to(media))
        found[name + "/" if path.is_dir() else name] = (
            None if path.is_dir() else path.read_bytes().decode("utf-8")
        )
    return found


def replay(share: Share, recording: dict[str, Any]) -> None:
    values = {"base": share.url}
    for number, step in enumerate(recording["steps"], 1):
        headers = {k: fill(v, values) for k, v in step["headers"].items()}
        body = fill(step["body"], values).encode("utf-8")
        data: Any = (
            iter([body[: len(body) // 2], body[len(body) // 2 :]]) if step.get("chunked") else body
        )
        if step.get("auth", True):
            response = share.request(step["method"], step["path"], headers=headers, data=data)
        else:
            response = requests.request(
                step["method"], share(step["path"]), headers=headers, data=data, timeout=30
            )
        where = f"step {number}: {step['method']} {step['path']}"
        assert response.status_code == step["expect"], (where, response.text[:500])
        for header, value in step.get("expect_headers", {}).items():
            assert response.headers.get(header) == value, where
        for text in step.get("expect_text", []):
            assert text in response.text, where
        for text in step.get("expect_absent", []):
            assert text not in response.text, where
        if step.get("capture"):
            values[step["capture"]] = response.headers["Lock-Token"].strip("<>")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Share, Path]]:
    media = tmp_path / "media"
    media.mkdir()
    with serve_share(FileSystemStorage(location=str(media)), tmp_path / "state") as share:
        yield share, media


@pytest.mark.parametrize("name", sorted(p.name for p in RECORDINGS.glob("*.json")))
def test_recorded_client_sequence(name: str, served: tuple[Share, Path]) -> None:
    share, media = served
    recording = load(name)
    for path, content in recording.get("setup", {}).items():
        (media / path).write_text(content, encoding="utf-8")
    replay(share, recording)
    assert store_contents(media) == recording["store"]
    for path, stamp in recording.get("mtimes", {}).items():
        assert formatdate(os.stat(media / path).st_mtime, usegmt=True) == stamp


def test_every_client_has_a_recording() -> None:
    names = {p.stem for p in RECORDINGS.glob("*.json")}
    assert {"explorer_upload", "finder_copy", "word_save", "libreoffice_save"} <= names
