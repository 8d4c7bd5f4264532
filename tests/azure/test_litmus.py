"""litmus against a share served from Azure Blob Storage (Azurite): every test must pass, as on
FileSystemStorage (tests/clients/test_litmus.py has the runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.test_litmus import SUITES, SUMMARY, litmus_problems, run_litmus
from tests.webdav.serving import serve_share


@pytest.mark.litmus
@pytest.mark.slow
def test_litmus_passes_completely_on_azure(storage: Any, tmp_path: Path) -> None:
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
