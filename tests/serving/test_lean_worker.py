"""A plain local-disk share's serving process imports nothing it never uses: no cloud
SDK, no Django ORM, URLs, templates or admin, no Pillow, no Redis (memory at rest: each
of those is megabytes in every worker; see benchmarks/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.process import davstore_env

#: ``davstore serve`` as a worker runs it, up to the point it would serve: instead, print
#: the modules imported by then (the served process's own ``sys.modules``).
PROBE = """
import json, sys
import davstore.cli.serve
serve_module = sys.modules["davstore.cli.serve"]

def report(*args, **kwargs):
    print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
    return 0

serve_module.run_until_signalled = report
from davstore.cli import main
sys.exit(main(sys.argv[1:]))
"""

NEVER = [
    "boto3",
    "botocore",
    "storages",
    "google.cloud",
    "azure",
    "PIL",
    "redis",
    "mfusepy",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.db.models",
    "django.urls",
    "django.template",
    "django.forms",
    "django.http",
]


def test_a_plain_local_share_imports_no_sdk_orm_admin_or_pillow(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = subprocess.run(
        [sys.executable, "-P", "-c", PROBE, "serve", str(root), "--anonymous", "--port", "0"],
        cwd=tmp_path,
        env=davstore_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("MODULES ")]
    modules = set(json.loads(line.removeprefix("MODULES ")))
    assert "davstore.frontends.webdav.app" in modules  # the app was built as serve does
    loaded = sorted(m for m in modules for n in NEVER if m == n or m.startswith(n + "."))
    assert loaded == []
