"""pjdfstest and fsx on real mounts (local disk and S3 on moto, with ``--allow-other``).

pjdfstest: every test file of the directories below runs in a folder of its own in the
mount; a file with a failing subtest must be listed in ``pjdfstest_expected_failures.txt``
with its reason, a row of docs/FUSE.md's "Documented refusals". A failure not listed fails
the test; a listed file that now passes is reported at the end of the run (terminal
summary), to be taken off the list. The ~1 PB truncates (``ftruncate/12.t``,
``truncate/12.t``) run only on a local-disk mount whose store and spool live on a 64 MiB
tmpfs: a regression that writes the zeros fills that, not the machine's disk.

fsx: ``-N 10000`` random reads, writes, truncates and mapped I/O against a shadow copy,
plus the same with a close and reopen after about one operation in ten (``-c 10``).

The sources come from ../shared/third_party (tests/fuse/posix_suites.sh builds them and
says where to get them); these tests fail, never skip, where they cannot run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.mounting import REPO, MountProcess
from tests.fuse.posix_mounts import NOW_PASSING, mounted
from tests.fuse.test_probes import documented_reasons

SCRIPT = REPO / "tests" / "fuse" / "posix_suites.sh"
EXPECTED = Path(__file__).with_name("pjdfstest_expected_failures.txt")
DIRECTORIES = (
    *("chmod", "chown", "ftruncate", "link", "mkdir", "open"),
    *("rename", "rmdir", "unlink", "utimensat"),
)
#: Grow a file to ~1 PB: only on the small tmpfs mount.
HUGE = ("ftruncate/12.t", "truncate/12.t")
#: Test files run at once (each forks pjdfstest per subtest; the mount serves them all).
_WORKERS = 3
_TMPFS_SIZE = "64m"


@pytest.fixture(scope="module")
def build() -> Path:
    """The folder pjdfstest and fsx are built in."""
    if os.geteuid() != 0:
        pytest.fail("pjdfstest runs as root (it switches to other users)")
    command = ["bash", str(SCRIPT), "build"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{SCRIPT.name} build failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def expected_failures() -> dict[tuple[str, str], str]:
    """``(store, test file) -> reason`` from the expected-failures file."""
    expected = {}
    for line in EXPECTED.read_text().splitlines():
        row = line.split("#", 1)[0].strip()
        if not row:
            continue
        test, stores, reason = row.split()
        for store in stores.split(","):
            expected[store, test] = reason
    return expected


def test_every_expected_failure_has_a_documented_reason() -> None:
    rows = documented_reasons()
    for (store, test), reason in expected_failures().items():
        assert store in {"filesystem", "s3", "tmpfs"}, (store, test)
        assert reason in rows, f"{test} on {store}: {reason} is not a row of docs/FUSE.md"


def suite_files(build: Path, directories: tuple[str, ...]) -> list[str]:
    tests = build / "pjdfstest" / "tests"
    found = [t.relative_to(tests) for d in directories for t in sorted((tests / d).glob("*.t"))]
    return [str(t) for t in found if str(t) not in HUGE]


#: ``test file -> (subtests passed, subtests planned, the first failing subtest's line)``.
Results = dict[str, tuple[int, int, str]]


def run_pjdfstest(build: Path, folder: Path, tests: list[str]) -> Results:
    """Run each test file in a folder of its own in ``folder``, a few at a time."""
    suite = build / "pjdfstest" / "tests"

    def run(test: str) -> tuple[str, tuple[int, int, str]]:
        inside = folder / test.replace("/", "-")
        inside.mkdir()
        try:
            done = subprocess.run(
                ["sh", str(suite / test)],
                cwd=inside,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=600,
                check=False,
            )
            output = done.stdout
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        planned = re.search(r"^1\.\.(\d+)$", output, flags=re.MULTILINE)
        # A failing subtest marked TODO (the suite's own "POSIX allows either") passes.
        passed = len(re.findall(r"^(?:ok \d+|not ok \d+ # TODO)", output, flags=re.MULTILINE))
        failed = re.search(r"^(?:not ok \d+(?! # TODO).*|Bail out!.*)$", output, flags=re.MULTILINE)
        first = failed.group(0)[:300] if failed else output[-300:]
        return test, (passed, int(planned.group(1)) if planned else -1, first)

    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
        return dict(pool.map(run, tests))


def check_against_the_list(store: str, results: Results, mount: MountProcess | None = None) -> None:
    """Fail on a test file failing that the list does not name (with the end of the
    mount's log, which a module-wide mount would otherwise show nowhere)."""
    expected = expected_failures()
    table: dict[str, list[int]] = {}
    for test, (passed, planned, _) in results.items():
        counts = table.setdefault(test.split("/")[0], [0, 0])
        counts[0] += passed
        counts[1] += max(planned, 0)
    print(f"pjdfstest on {store}: " + ", ".join(f"{d} {p}/{t}" for d, (p, t) in table.items()))
    failing = {test for test, (passed, planned, _) in results.items() if passed != planned}
    unexpected = [f"{t}: {results[t][2]}" for t in sorted(failing) if (store, t) not in expected]
    NOW_PASSING.extend(
        f"pjdfstest {test} now passes on {store}: take it off {EXPECTED.name}"
        for test in sorted(results)
        if test not in failing and (store, test) in expected
    )
    log = f"\n--- the mount's log ---\n{mount.output()[-5000:]}" if mount else ""
    assert not unexpected, (
        f"pjdfstest files failing on {store}, not listed:\n" + "\n".join(unexpected) + log
    )


@pytest.fixture(scope="module")
def disk_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountProcess]:
    with mounted("filesystem", tmp_path_factory.mktemp("pjd-disk")) as mount:
        yield mount


@pytest.fixture(scope="module")
def s3_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountProcess]:
    with mounted("s3", tmp_path_factory.mktemp("pjd-s3")) as mount:
        yield mount


def test_pjdfstest_on_local_disk(build: Path, disk_mount: MountProcess) -> None:
    results = run_pjdfstest(build, disk_mount.mountpoint, suite_files(build, DIRECTORIES))
    check_against_the_list("filesystem", results, disk_mount)


def test_pjdfstest_on_s3(build: Path, s3_mount: MountProcess) -> None:
    results = run_pjdfstest(build, s3_mount.mountpoint, suite_files(build, DIRECTORIES))
    check_against_the_list("s3", results, s3_mount)


@contextlib.contextmanager
def small_tmpfs(path: Path) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_TMPFS_SIZE}", "davstore-test", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_pjdfstest_huge_truncates_on_a_small_tmpfs(build: Path, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small") as small:
        spool = small / "spool"
        spool.mkdir()
        with mounted("filesystem", small / "share", env={"TMPDIR": str(spool)}) as mount:
            results = run_pjdfstest(build, mount.mountpoint, list(HUGE))
            assert mount.alive()
    check_against_the_list("tmpfs", results)


@pytest.mark.parametrize("kind", ["filesystem", "s3"])
@pytest.mark.parametrize("reopen", [False, True], ids=["one-open", "close-reopen"])
def test_fsx(
    build: Path, kind: str, reopen: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = "disk_mount" if kind == "filesystem" else "s3_mount"
    mount: MountProcess = request.getfixturevalue(fixture)
    target = mount.mountpoint / f"fsx-{'reopen' if reopen else 'open'}.bin"
    options = ["-N", "10000", "-S", "1", "-P", str(tmp_path), *(["-c", "10"] if reopen else [])]
    done = subprocess.run(
        [str(build / "fsx"), *options, str(target)],
        cwd=mount.mountpoint,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"fsx {' '.join(options)} on {kind}:\n{done.stdout[-5000:]}"
