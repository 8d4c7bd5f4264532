"""What the trash costs: a trashed DELETE (and a versioned overwrite) against a plain one.

Run from the repository root: ``python benchmarks/trash.py [--reps 300] [--s3-reps 60]``.

In-process, through ``VFS.remove`` / ``VFS.put_file`` (no HTTP: the difference is the
trash's alone), of 1 KiB files, on a FileSystemStorage folder (tmpfs or disk, wherever
``tempfile`` puts it) and on S3 (moto's server on loopback, tests/s3/moto.py, one bucket).
Each row: mean time per operation, median of 5 rounds (each file made before a round,
outside the timing), and on S3 the requests one operation makes (counted by botocore's
``before-call`` events). ``plain`` is a VFS with no policy; ``trash`` one with the trash.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KIB = b"x" * 1024


def timed(vfs: Any, op: str, reps: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean seconds of ``reps`` ops (``delete`` or
    ``overwrite``) of fresh 1 KiB files."""
    results = []
    for round_ in range(rounds):
        names = [f"r{round_}-f{n}" for n in range(reps)]
        for name in names:
            vfs.put_file(name, KIB)
            vfs.stat(name)
        start = time.perf_counter()
        for name in names:
            if op == "delete":
                vfs.remove(name)
            else:
                vfs.put_file(name, KIB)
        results.append((time.perf_counter() - start) / reps)
        for name in names:
            if vfs.lookup(name) is not None:
                vfs.remove(name)
    return statistics.median(results)


def requests(vfs: Any, client: Any, op: str) -> Counter[str]:
    from tests.s3.recording import recording

    vfs.put_file("counted", KIB)
    vfs.stat("counted")
    with recording(client) as calls:
        if op == "delete":
            vfs.remove("counted")
        else:
            vfs.put_file("counted", KIB)
    if vfs.lookup("counted") is not None:
        vfs.remove("counted")
    return Counter(calls.counts)


def row(store: str, op: str, plain: float, trashed: float, extra: str = "") -> None:
    print(
        f"| {store} | {op} | {plain * 1e3:.3f} ms | {trashed * 1e3:.3f} ms | "
        f"+{(trashed - plain) * 1e3:.3f} ms | {extra} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--s3-reps", type=int, default=60)
    args = parser.parse_args()

    import django
    from django.conf import settings

    settings.configure(USE_TZ=True)
    django.setup()
    from django.core.files.storage import FileSystemStorage

    from davstore.store import adapt
    from davstore.vfs import VFS
    from davstore.vfs.trash import Retention, Trash

    def both(storage: Any) -> tuple[VFS, VFS]:
        plain = VFS(adapt(storage))
        trashed = VFS(adapt(storage))
        # Retention off the table: nothing is purged while measuring.
        Trash(trashed, Retention(versions=1_000_000)).install()
        return plain, trashed

    print("| store | operation | plain | with the trash | added | requests (plain → trash) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        plain, trashed = both(FileSystemStorage(location=root))
        for op in ("delete", "overwrite"):
            row("disk", op, timed(plain, op, args.reps), timed(trashed, op, args.reps))

    from tests.s3.conftest import s3_storage
    from tests.s3.moto import MotoServer, new_bucket

    server = MotoServer()
    server.start()
    try:
        storage = s3_storage(server, new_bucket(server))
        plain, trashed = both(storage)
        client = plain.store.client  # type: ignore[attr-defined]
        for op in ("delete", "overwrite"):
            before = requests(plain, client, op)
            after = requests(trashed, trashed.store.client, op)  # type: ignore[attr-defined]
            counts = (
                f"{sum(before.values())} ({dict(before)}) → {sum(after.values())} ({dict(after)})"
            )
            row(
                "S3 (moto)",
                op,
                timed(plain, op, args.s3_reps),
                timed(trashed, op, args.s3_reps),
                counts,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
