"""litmus, the WebDAV compliance suite, against a served share: every test must pass.

litmus comes from the Debian package ``litmus`` (CI installs it). A missing binary fails
the test: it is never skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_storage
from tests.webdav.serving import PASSWORD, USER, serve_share

SUITES = ["basic", "copymove", "props", "locks", "http"]
SUMMARY = re.compile(
    r"<- summary for `(?P<suite>\w+)': of (?P<run>\d+) tests run: "
    r"(?P<passed>\d+) passed, (?P<failed>\d+) failed"
)


#: The one warning litmus may print. ``delete_fragment`` sends ``DELETE /litmus/frag/#ment``:
#: a fragment is never part of what an HTTP server sees (RFC 9110 section 7.1; davstore's
#: server drops it while parsing the request line, as Apache and nginx do), so the request
#: names ``/litmus/frag/`` and deletes it. litmus counts the test as passed and warns; a
#: server that kept ``#ment`` in the path would answer 404 instead.
ACCEPTED_WARNING = "delete_fragment....... WARNING: DELETE removed collection resource"


def litmus_problems(output: str) -> list[str]:
    """The FAIL and WARNING lines of a litmus run, but the accepted warning."""
    return [
        line
        for line in output.splitlines()
        if ("FAIL" in line or "WARNING" in line) and ACCEPTED_WARNING not in line
    ]


def run_litmus(url: str, workdir: Path) -> str:
    binary = shutil.which("litmus")
    if binary is None:
        pytest.fail("litmus is not installed (apt-get install litmus)")
    result = subprocess.run(
        [binary, url, USER, PASSWORD],
        cwd=workdir,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    return result.stdout + result.stderr


@pytest.mark.litmus
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["filesystem", "memory", "minimal"])
def test_litmus_passes_completely(kind: str, tmp_path: Path) -> None:
    storage = make_storage(kind, tmp_path)
    with serve_share(storage, tmp_path / "state") as share:
        output = run_litmus(share.url + "/", tmp_path)
    summaries = {m["suite"]: m for m in SUMMARY.finditer(output)}
    problems = litmus_problems(output)
    assert sorted(summaries) == sorted(SUITES), output[-3000:]
    assert problems == [], "\n".join(problems)
    for suite, summary in summaries.items():
        assert summary["failed"] == "0", suite
        assert summary["run"] == summary["passed"], suite
    assert sum(int(s["passed"]) for s in summaries.values()) == 104, output[-3000:]
