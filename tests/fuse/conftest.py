"""FUSE tests run on real mounts, and never skip silently where FUSE works.

Every test here is marked ``fuse``. Where ``/dev/fuse`` is usable (Linux, read-write
device, and root or a setuid ``fusermount3``), a FUSE test that ends skipped is reported
as a failure: a missing binding, libfuse or tool must break the run, not hide it. Where
``/dev/fuse`` is not usable, the tests skip.

Fixtures give a mounted share of each store kind: ``filesystem`` (a folder on local
disk, FileSystemStorage), ``memory`` (InMemoryStorage, alive only in the mount process)
and ``minimal`` (a flat custom Storage on the generic adapter, like an object store).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fuse.mounting import MountProcess, start_mount

BACKENDS = {
    "memory": ["--backend", "django.core.files.storage.InMemoryStorage"],
    "minimal": ["--backend", "tests.minimal_storages.MinimalStorage"],
}
STORE_KINDS = ["filesystem", "memory", "minimal"]


def fuse_usable() -> bool:
    """True where a FUSE mount can be made: then FUSE tests must run."""
    if not sys.platform.startswith("linux") or not os.path.exists("/dev/fuse"):
        return False
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False
    if os.geteuid() == 0:
        return True
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    return bool(tool) and bool(os.stat(tool).st_mode & 0o4000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.fuse)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and item.get_closest_marker("fuse") and fuse_usable():
        report.outcome = "failed"
        report.longrepr = f"a FUSE test was skipped although /dev/fuse is usable: {report.longrepr}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.fuse.posix_mounts import NOW_PASSING

    if NOW_PASSING:
        terminalreporter.section("expected failures that passed")
        for line in NOW_PASSING:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _need_fuse() -> None:
    if not fuse_usable():
        pytest.skip("/dev/fuse is not usable here")


@dataclass
class Share:
    """A mounted share: ``path`` is the mount point; ``root`` the folder behind it
    (``filesystem`` kind only)."""

    kind: str
    path: Path
    process: MountProcess
    root: Path | None = None


MountFactory = Callable[..., Share]


@pytest.fixture
def mount_share(tmp_path: Path) -> Iterator[MountFactory]:
    """``mount_share(kind, *extra_args, env=None, root=None)``: a mounted share, unmounted
    at the end. ``kind`` is a store kind or the dotted path of a Storage class; ``root``
    is the folder a ``filesystem`` share serves (default: a new empty one)."""
    mounts: list[MountProcess] = []

    def make(
        kind: str, *extra: str, env: dict[str, str] | None = None, root: Path | None = None
    ) -> Share:
        number = len(mounts)
        if kind == "filesystem":
            if root is None:
                root = tmp_path / f"root{number}"
                root.mkdir()
            args = [str(root)]
        else:
            args = list(BACKENDS.get(kind, ["--backend", kind]))
        process = start_mount(tmp_path / f"mnt{number}", [*args, *extra], base=tmp_path, env=env)
        mounts.append(process)
        return Share(kind, process.mountpoint, process, root)

    yield make
    for process in mounts:
        process.stop()
        print(f"--- {process.mountpoint} log ---\n{process.output()}")  # shown on failure


@pytest.fixture(params=STORE_KINDS)
def share(request: pytest.FixtureRequest, mount_share: MountFactory) -> Share:
    """A fresh mount of each store kind."""
    return mount_share(str(request.param))


@pytest.fixture
def fs_share(mount_share: MountFactory) -> Share:
    """A fresh mount of a FileSystemStorage folder."""
    return mount_share("filesystem")
