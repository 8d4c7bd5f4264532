"""The README's example of the conformance kit (examples/conformance: a project's own
DictStorage and its one-line test class) passes when run the way a project runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "conformance"


def test_the_kit_example_runs_every_rule_on_the_projects_storage() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        check=False,
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # 25 rules x 3 frontends, and the check of the declared features.
    assert result.stdout.splitlines()[-1].startswith("76 passed"), result.stdout
