"""Site write -> visible over WebDAV or in a FUSE mount, metadata cache TTL 60 s (issue 23).

Run from the repository root:
``python benchmarks/site_journal.py [--writes 300] [--redis] [--mount]``.

A throwaway Django project (a FileSystemStorage shared as ``media``) is set up in this
process, which plays the site; ``manage.py davstore serve --cache-ttl 60`` of the same
project runs as another process. For each write, the script first asks the server for the
new file's name (PROPFIND Depth 0: a 404, and the absence cached for 60 s), then saves the
file with ``default_storage.save`` and asks again until the server answers 207: the time
from the start of the save to that answer is the figure (p50, p99, max). Without the
journal every answer would take up to the TTL.

``--redis``: the share's state in a redis-server of its own (started here) and the server
given another state folder: the change takes the Redis journal stream, as across hosts.

``--mount``: ``manage.py davstore mount media MOUNTPOINT --cache-ttl 60`` instead of the
server (needs /dev/fuse): each name is first ``stat``-ed in the mount (ENOENT, which the
kernel keeps as a negative entry for the mount's long entry timeout), then saved, then
``stat``-ed until it is there: the kernel only asks again because the mount told it
(:mod:`davstore.frontends.fuse.notify`).
Everything listens on 127.0.0.1; the temporary folder is removed at the end; the loop is
bounded by ``--writes`` and each wait by 10 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--redis", action="store_true", help="the share's state in Redis")
    parser.add_argument("--mount", action="store_true", help="a FUSE mount, not a server")
    args = parser.parse_args()
    mountpoint: Path | None = None

    root = Path(tempfile.mkdtemp(prefix="davstore-bench-journal-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        (root / "media").mkdir()
        share: dict[str, object] = {"STORAGE": "default"}
        if args.redis:
            redis_port = free_port()
            children.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--dir",
                        str(root),
                    ],
                    stdout=subprocess.DEVNULL,
                )
            )
            share["LOCK_STORAGE"] = f"redis://127.0.0.1:{redis_port}/0"
        settings = {
            "SECRET_KEY": "bench",
            "USE_TZ": True,
            "INSTALLED_APPS": ["django.contrib.auth", "django.contrib.contenttypes", "davstore"],
            "DATABASES": {
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(root / "db.sqlite3"),
                }
            },
            "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
            "STORAGES": {
                "default": {
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(root / "media")},
                },
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            },
            "DAVSTORE": {"SHARES": {"media": share}, "STATE_DIR": str(root / "state")},
        }
        (root / "bench_settings.py").write_text(
            "".join(f"{key} = {value!r}\n" for key, value in settings.items())
        )
        sys.path.insert(0, str(root))
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        os.environ["XDG_STATE_HOME"] = str(root / "xdg")
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        User.objects.create_user("alice", password="pw", is_staff=True)

        import requests

        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO)]))
        state = ["--state-dir", str(root / "elsewhere")] if args.redis else []
        if args.mount:
            mountpoint = root / "mnt"
            mountpoint.mkdir()
            command = [sys.executable, "-m", "django", "davstore", "mount", "media"]
            command += [str(mountpoint), "--foreground", "--cache-ttl", "60"]
            mount_env = env
            if args.redis:  # another host: the same settings but a state folder of its own
                (root / "bench_other_host.py").write_text(
                    "from bench_settings import *  # noqa: F403\n"
                    f"DAVSTORE = {{**DAVSTORE, 'STATE_DIR': {str(root / 'elsewhere')!r}}}\n"
                )
                mount_env = dict(env, DJANGO_SETTINGS_MODULE="bench_other_host")
            children.append(
                subprocess.Popen(
                    command,
                    cwd=root,
                    env=mount_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                )
            )
            wait(lambda: os.path.ismount(mountpoint), 60, "the mount")
            folder = mountpoint

            def visible(name: str) -> bool:
                try:
                    os.stat(folder / name)
                except FileNotFoundError:
                    return False
                return True

            door = "in a FUSE mount"
        else:
            import requests

            port = free_port()
            serve = [sys.executable, "-m", "django", "davstore", "serve", "--cache-ttl", "60"]
            serve += ["--host", "127.0.0.1", "--port", str(port), *state]
            children.append(
                subprocess.Popen(
                    serve, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            session = requests.Session()
            session.auth = ("alice", "pw")
            base = f"http://127.0.0.1:{port}/media/"
            wait(lambda: session.request("PROPFIND", base, headers={"Depth": "0"}).ok, 60, "serve")

            def visible(name: str) -> bool:
                answer = session.request("PROPFIND", base + name, headers={"Depth": "0"})
                return answer.status_code == 207

            door = "over WebDAV"

        seconds: list[float] = []
        extra = 0  # looks after the first one that still did not find it
        for number in range(args.writes):
            name = f"w{number:05d}.txt"
            assert not visible(name)  # the absence is cached now, for 60 s (or the kernel's)
            started = time.perf_counter()
            default_storage.save(name, ContentFile(b"x" * 1024))
            deadline = time.monotonic() + 10
            while not visible(name):
                extra += 1
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} not visible after 10 s")
                if args.mount:
                    time.sleep(0.0005)  # a kernel-cached ENOENT is instant: leave the CPU
            seconds.append(time.perf_counter() - started)
        seconds.sort()
        p50 = statistics.median(seconds)
        p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
        where = "Redis stream, another state folder" if args.redis else "one host, state folder"
        print(f"site write -> visible {door} ({where}), TTL 60 s, {len(seconds)} writes:")
        print(f"  looks that still did not find it after a save: {extra}")
        print(
            f"  p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  max {seconds[-1] * 1000:.1f} ms"
        )
        return 0
    finally:
        if mountpoint is not None and os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, timeout=30)
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
