"""The POSIX probes (tests/fuse/probes.py): each in a native folder and in a mount of each
store kind, in the same run; the answers must be the same, or the documented one."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.mounting import REPO, MountProcess
from tests.fuse.posix_mounts import mounted
from tests.fuse.probes import PROBES, STORE_KINDS, Probe

_FOLDERS = itertools.count()


@pytest.fixture(scope="module", params=STORE_KINDS)
def probe_mount(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, MountProcess]]:
    kind = str(request.param)
    with mounted(kind, tmp_path_factory.mktemp(f"probes-{kind}")) as mount:
        yield kind, mount


@pytest.mark.parametrize("probe", PROBES.values(), ids=list(PROBES))
def test_probe_answers_as_a_native_folder(
    probe: Probe, probe_mount: tuple[str, MountProcess], tmp_path: Path
) -> None:
    kind, mount = probe_mount
    native = tmp_path / "native"
    native.mkdir()
    inside = mount.mountpoint / f"probe{next(_FOLDERS)}"
    inside.mkdir()
    expected = probe.run(native)
    got = probe.run(inside)
    if kind in probe.documented:
        assert got == probe.documented[kind], f"documented ({probe.reason}): {expected!r}"
        assert got != expected, "the documented answer is now the native one: drop it"
    else:
        assert got == expected


def test_every_documented_answer_is_a_row_of_fuse_md() -> None:
    rows = documented_reasons()
    for probe in PROBES.values():
        assert probe.reason is None or probe.reason in rows, probe.name


def documented_reasons() -> set[str]:
    """The row ids of docs/FUSE.md's table of documented refusals (`` `id` `` first)."""
    text = (REPO / "docs" / "FUSE.md").read_text()
    table = text.split("## Documented refusals", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
