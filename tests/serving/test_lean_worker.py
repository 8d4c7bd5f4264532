"""A plain local-disk share's serving process imports nothing it never uses: no cloud
SDK, no Django ORM, URLs, templates or admin, no Pillow, no Redis, no Jinja2 (memory at rest: each
of those is megabytes in every worker; see benchmarks/README.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.process import davstore_env, start_serve, wait_for_workers

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
    "jinja2",
    "wsgidav.dir_browser._dir_browser",
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


#: What the supervising parent of ``--workers`` never maps once the workers run: the
#: extension modules of Django's, wsgidav's and the server's dependencies (it imported
#: them to check the share and print the banner, then became the lean supervisor).
NEVER_IN_THE_PARENT = ["site-packages", "_ssl.", "_sqlite3.", "_asyncio.", "_decimal."]


def test_the_parent_of_workers_supervises_without_the_serving_stack(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    state = tmp_path / "state"
    args = ["--anonymous", "--workers", "2", "--state-dir", str(state), str(root)]
    with start_serve(args, cwd=tmp_path) as server:
        workers = wait_for_workers(server, 2)
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        mapped = sorted({n for n in NEVER_IN_THE_PARENT for line in maps.splitlines() if n in line})
        assert mapped == []
        assert server.stdout.count("davstore is serving") == 1  # the banner, once
        os.kill(workers[0], signal.SIGKILL)  # the supervisor starts it again
        wait_for_workers(server, 2, besides=frozenset({workers[0]}))
        assert (state / "metrics" / str(server.proc.pid)).is_dir()
        assert server.stop(signal.SIGTERM, timeout=30) == 0
        assert "SIGTERM received: workers stopped" in server.stderr
    assert list((state / "metrics").iterdir()) == []  # its metrics folder went with it


def test_the_supervisor_gives_up_on_workers_that_keep_exiting(tmp_path: Path) -> None:
    """The supervisor on its own (as the parent starts it): workers that exit right after
    their start end it with an error; its metrics folder is gone."""
    import socket

    metrics = tmp_path / "metrics" / "123"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.set_inheritable(True)
        spec = {
            "command": [sys.executable, "-c", "import sys; sys.exit(3)"],
            "sockets": [sock.fileno()],
            "metrics_sockets": [],
            "metrics_dir": str(metrics),
            "grace_period": 1.0,
            "level": 20,
            "davstore_level": 20,
            "failure": "CommandError: the workers kept exiting right after their start",
        }
        result = subprocess.run(
            [sys.executable, "-P", "-m", "davstore.serving.supervisor"],
            env={**davstore_env(tmp_path), "DAVSTORE_SUPERVISOR_SPEC": json.dumps(spec)},
            pass_fds=(sock.fileno(),),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert "workers keep exiting right after their start (last: status 3)" in result.stderr
    assert result.stderr.rstrip().endswith("the workers kept exiting right after their start")
    assert not metrics.exists()
