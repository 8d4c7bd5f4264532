"""S3 requests per minute of an idle share that ten clients keep refreshing (issue 23, item 4).

Run from the repository root: ``python benchmarks/idle_share.py [--clients 10]
[--period 2] [--seconds 120] [--files 100] [--quick]``.

One ``moto_server`` on 127.0.0.1 holds a bucket with a folder ``shared/`` of ``--files``
1 KiB objects. For each configuration a fresh ``davstore serve`` of the bucket runs
(``--backend storages.backends.s3.S3Storage``); after one PROPFIND to warm it, ``--clients``
threads each send ``PROPFIND Depth: 1`` on ``/shared/`` every ``--period`` seconds (their
starts spread over one period) for ``--seconds``, while moto's request recorder counts the
S3 requests davstore makes. Nothing changes in the bucket meanwhile: the share is idle.

Configurations:

- ``before``: ``--cache-ttl 1 --revalidate 0``, the defaults before the long cache (every
  refresh after the TTL is a LIST again);
- ``after``: the defaults (``--cache-ttl 3600``, ``--revalidate 60``): changes made
  through davstore and the site come through the change journal; each revalidation round
  lists the folder again, once, for changes behind everyone's back.

``--quick``: 20 files, 30 s per configuration (a revalidation round may or may not fall in
it). Everything listens on 127.0.0.1; the temporary folder is removed at the end (unless
``--keep``); every wait is bounded.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Child, free_port, machine_info, save_results, wait_until, workdir
from rawhttp import Connection
from s3 import BUCKET, HOST, Moto, backend_args, davstore_env, davstore_prefix

CONFIGS: dict[str, list[str]] = {
    "before": ["--cache-ttl", "1", "--revalidate", "0"],
    "after": [],
}
FOLDER = "shared"


def fill(moto: Moto, files: int) -> None:
    client = moto.client()
    client.create_bucket(Bucket=BUCKET)
    for index in range(files):
        client.put_object(Bucket=BUCKET, Key=f"{FOLDER}/file-{index:04d}.txt", Body=b"x" * 1024)


def serve(base: Path, moto: Moto, extra: list[str], name: str) -> tuple[Child, int]:
    port = free_port()
    state = base / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [*davstore_prefix(), "serve", *backend_args(moto), "--anonymous", *extra]
    cmd += ["--host", HOST, "--port", str(port), "--state-dir", str(state)]
    child = Child(
        f"davstore serve ({name})", cmd, base / f"serve-{name}.log", env=davstore_env(base)
    )
    child.start()

    def ready() -> bool:
        conn = Connection(HOST, port, timeout=30)
        try:
            return conn.request("OPTIONS", "/").status < 500
        finally:
            conn.close()

    wait_until(ready, 60, "starting", child)
    return child, port


def refresh(port: int) -> int:
    conn = Connection(HOST, port, timeout=60)
    try:
        answer = conn.request("PROPFIND", f"/{FOLDER}/", headers={"Depth": "1"})
    finally:
        conn.close()
    return answer.status


def clients(port: int, count: int, period: float, seconds: float) -> tuple[int, int]:
    """Run the clients; (refreshes answered 207, other answers)."""
    done = Counter[str]()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        time.sleep(period * index / count)
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                status = refresh(port)
            except OSError:
                status = 0
            with lock:
                done["ok" if status == 207 else "bad"] += 1
            time.sleep(max(0.0, period - (time.monotonic() - started)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + period + 120)
    return done["ok"], done["bad"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--period", type=float, default=2.0, help="seconds between refreshes")
    parser.add_argument("--seconds", type=float, default=120.0, help="per configuration")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.files, args.seconds = 20, 30.0

    results: dict[str, dict[str, object]] = {}
    with workdir("davstore-bench-idle-", keep=args.keep) as base:
        moto = Moto(base)
        moto.start()
        try:
            fill(moto, args.files)
            for name, extra in CONFIGS.items():
                child, port = serve(base, moto, extra, name)
                try:
                    if refresh(port) != 207:
                        raise SystemExit(f"{name}: the first PROPFIND failed:\n{child.log_tail()}")
                    with moto.recording() as counts:
                        ok, bad = clients(port, args.clients, args.period, args.seconds)
                finally:
                    child.stop(timeout=30)
                total = sum(counts.values())
                results[name] = {
                    "flags": " ".join(extra) or "(defaults)",
                    "refreshes": ok,
                    "failed": bad,
                    "s3_requests": total,
                    "s3_per_minute": round(total * 60 / args.seconds, 1),
                    "by_operation": dict(counts),
                }
        finally:
            moto.child.stop()

    print(
        f"{args.clients} clients, PROPFIND Depth 1 of {args.files} objects every "
        f"{args.period:g} s, {args.seconds:g} s per configuration"
    )
    print(f"{'config':8} {'flags':34} {'refreshes':>9} {'S3 req':>7} {'req/min':>8}  by operation")
    for name, row in results.items():
        print(
            f"{name:8} {row['flags']!s:34} {row['refreshes']!s:>9} {row['s3_requests']!s:>7} "
            f"{row['s3_per_minute']!s:>8}  {row['by_operation']}"
        )
    payload = {"machine": machine_info(), "args": vars(args) | {"results_dir": None}}
    payload["results"] = results
    path = save_results("idle_share", payload, args.results_dir)
    print(f"saved {path}")
    return 0 if all(row["failed"] == 0 for row in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
