"""What the site guard costs: each guarded change, with many referencing rows.

Run from the repository root: ``python benchmarks/guard.py [--rows 1000000] [--reps 2000]``
and ``python benchmarks/guard.py --hot-path`` (no Django database: the 1 KiB PUT and GET
of a VFS with no policy, to compare trees before and after the hooks with ``PYTHONPATH``).

The site is tests/django/siteapp (``Photo.image`` in a FileSystemStorage shared as
``media``) in a SQLite file; ``--rows`` photos name files under ``photos/`` (made with one
``INSERT`` each, the index filled by ``manage.py davstore index``'s rebuild, timed). Each
row is measured through four VFSs of the share (``Share.build_vfs``: the ``file_changed``
listener, the activity log), the cache off in all, taking turns call by call (medians):
the share's own (``all``: the guard and the trash), one with the guard only, one with the
trash only and one with no policy (``neither``). What the guard adds is the second minus
the last, what the trash adds (an overwrite or a delete keeps the old content) the third
minus the last, each also as a share of the same operation with no policy (the trash's
copies are milliseconds that swing with the disk: measured apart, they do not hide the
guard's microseconds):

- ``1 KiB PUT, new file`` / ``over a file``: ``VFS.put_file`` of 1 KiB at a name nobody
  names (the guard's CREATE / REPLACE check), the yardstick of the "under 2 ms and under
  10 % of a 1 KiB PUT" target;
- ``DELETE of a file``: ``VFS.remove`` of a 1 KiB file nobody names;
- ``MOVE of a file``: a file nobody names renamed there and back;
- ``MOVE of a referenced file``: renamed there and back, its row rewritten each time in
  one transaction with the store move;
- ``PUT over a referenced image``: a 1 KiB PNG over the file a row names: checked by
  Pillow, the row's size set, ``file_replaced`` sent (guarded only);
- ``check``: the guard's ``around`` alone with a store call that does nothing: answered
  from what the index remembers (no row names the file: no query, and no hop from any
  thread); asking the table (nothing remembered) on the calling thread and with the hop
  to the guard's own thread (what a FUSE callback pays), for a file and for a folder (a
  range on the index), and with the index not built (queries on the file field itself:
  its column has no index, a scan of the table);
- ``refused DELETE``: the guard's ``around`` for a file a row names: the check, the rows
  fetched for the refusal (model, pk, field, admin URL) and the log line.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def per_op(call: Callable[[], object], reps: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean seconds per call of ``reps`` calls."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            call()
        results.append((time.perf_counter() - start) / reps)
    return statistics.median(results)


def hot_path(reps: int) -> None:
    import django
    from django.conf import settings

    settings.configure(USE_TZ=True)
    django.setup()
    from django.core.files.storage import FileSystemStorage

    from davstore.store import adapt
    from davstore.vfs import VFS

    with tempfile.TemporaryDirectory() as root:
        vfs = VFS(adapt(FileSystemStorage(location=root)))
        data = os.urandom(1024)
        names = iter(range(10**9))

        def put() -> None:
            vfs.put_file(f"f{next(names)}.bin", data)

        vfs.put_file("read.bin", data)

        def get() -> None:
            got = vfs.read_small("read.bin", 1 << 16)
            assert got is not None

        put_s = per_op(put, reps)
        get_s = per_op(get, reps * 5)
    import davstore

    print(f"tree: {Path(davstore.__file__).parents[1]}")
    print(f"1 KiB PUT (put_file, new file): {put_s * 1e6:8.1f} µs")
    print(f"1 KiB GET (read_small):         {get_s * 1e6:8.1f} µs")


def guarded(rows: int, reps: int, *, keep: bool) -> None:
    import django
    from django.conf import settings

    work = Path(tempfile.mkdtemp(prefix="davstore-guard-bench-"))
    try:
        _guarded(work, rows, reps)
    finally:
        if keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    del django, settings


def _guarded(work: Path, rows: int, reps: int) -> None:
    import django
    from django.conf import settings

    media = work / "media"
    (media / "photos").mkdir(parents=True)
    (media / "free").mkdir()
    settings.configure(
        USE_TZ=True,
        SECRET_KEY="bench",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "davstore",
            "tests.django.siteapp",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(work / "db.sqlite3")}
        },
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "site": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(media)},
            },
        },
        DAVSTORE={"SHARES": {"media": {"STORAGE": "site"}}, "STATE_DIR": str(work / "state")},
    )
    django.setup()
    import contextvars

    from django.core.management import call_command
    from django.db import connection, transaction

    from davstore.models import IndexState
    from davstore.shares import get_share
    from davstore.site.guard import Guard, index_for
    from davstore.vfs import VFS
    from davstore.vfs.policy import Kind, Operation, Refused

    call_command("migrate", run_syncdb=True, verbosity=0)
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO siteapp_photo (title, image) VALUES ('', %s)",
            ((f"photos/{n // 1000:04}/{n:07}.jpg",) for n in range(rows)),
        )
    made = time.perf_counter() - start
    share = get_share("media")
    index = index_for(share)
    assert index is not None
    start = time.perf_counter()
    index.rebuild()
    rebuilt = time.perf_counter() - start
    guard = next(p for p in share.vfs._policies[Kind.DELETE] if isinstance(p, Guard))

    def check(path: str, *, folder: bool = False, hop: bool = False) -> Callable[[], None]:
        op = Operation(Kind.DELETE, path, folder)
        if not hop:
            return lambda: guard.around(op, lambda: None)
        # What around() does on a thread Python did not start (a FUSE callback).
        return lambda: guard._executor.submit(
            contextvars.copy_context().run, guard._in_thread, op, lambda: None
        ).result()

    def refusal() -> None:
        try:
            guard.around(Operation(Kind.DELETE, "photos/0000/0000002.jpg"), lambda: None)
        except Refused:
            return
        raise AssertionError("the delete of a referenced file went through")

    logging.getLogger("davstore.site").setLevel(logging.ERROR)  # one line per refusal
    refused_s = per_op(refusal, max(10, reps // 10))
    logging.getLogger("davstore.site").setLevel(logging.NOTSET)
    known_s = per_op(check("free/nobody.txt"), reps)
    peers = getattr(index, "_peers", None)  # (None in trees before the memory)
    index._peers = None  # nothing remembered: each check asks
    table_s = per_op(check("free/nobody.txt"), reps)
    hop_s = per_op(check("free/nobody.txt", hop=True), reps)
    folder_s = per_op(check("free", folder=True), reps)
    index._peers = peers
    IndexState.objects.all().delete()
    index._built = False
    field_reps = max(3, reps // 200)
    fields_s = per_op(check("free/nobody.txt"), field_reps, rounds=3)
    index.rebuild()

    vfs = share.vfs
    vfs.cache.ttl = 0  # all ask the store each time

    def keeping(test: Callable[[object], bool]) -> VFS:
        """Another VFS of the share (as the share's), with only the policies ``test`` keeps."""
        other = share.build_vfs(cache_ttl=0)
        kept = {id(p): p for c in other._policies.values() for p in c if test(p)}
        other._policies, other._lets_through = {}, {}
        for policy in kept.values():
            other.add_policy(policy)
        return other

    guard_only = keeping(lambda p: isinstance(p, Guard))
    trash_only = keeping(lambda p: not isinstance(p, Guard))
    plain = keeping(lambda p: False)
    data = os.urandom(1024)
    names = iter(range(10**9))
    results: dict[str, list[float]] = {}

    def pair(label: str, make: Callable[[VFS], Callable[[], object]], count: int) -> None:
        """The four VFSs, call by call in turn: the median time of each (on a shared
        machine a stretch of calls swings with the moment; taking turns call by call
        puts all through the same moments)."""
        calls = [make(v) for v in (vfs, guard_only, trash_only, plain)]
        times: list[list[float]] = [[] for _ in calls]
        clock = time.perf_counter
        for turn in range(count):
            for step in range(len(calls)):  # each first in turn: none gains from warming
                which = (step + turn) % len(calls)
                start = clock()
                calls[which]()
                times[which].append(clock() - start)
        results[label] = [statistics.median(t) for t in times]

    pair("1 KiB PUT, new file", lambda v: lambda: v.put_file(f"free/p{next(names)}", data), reps)
    plain.put_file("free/over.bin", data)
    pair("1 KiB PUT over a file", lambda v: lambda: v.put_file("free/over.bin", data), reps)

    def deletes(v: VFS) -> Callable[[], object]:
        made = [f"free/d{next(names)}" for _ in range(reps)]  # made before the timing
        for name in made:
            plain.put_file(name, data)
        left = iter(made)
        return lambda: v.remove(next(left))

    pair("DELETE of a file", deletes, reps)
    moves = max(10, reps // 10)

    def there_and_back(source: str, target: str) -> Callable[[VFS], Callable[[], object]]:
        def make(v: VFS) -> Callable[[], object]:
            def move() -> None:
                v.rename(source, target)
                v.rename(target, source)

            return move

        return make

    plain.put_file("free/m.bin", data)
    pair("MOVE of a file (x2)", there_and_back("free/m.bin", "free/n.bin"), moves)
    referenced = media / "photos" / "0000" / "0000001.jpg"
    referenced.parent.mkdir(parents=True, exist_ok=True)
    referenced.write_bytes(b"x")
    pair(
        "MOVE of a referenced file (x2)",
        there_and_back("photos/0000/0000001.jpg", "photos/0000/moved.jpg"),
        moves,
    )
    from PIL import Image

    image = io.BytesIO()
    Image.frombytes("L", (16, 16), os.urandom(256)).save(image, "PNG")
    picture = image.getvalue()
    image_s = per_op(lambda: vfs.put_file("photos/0000/0000001.jpg", picture), moves)

    print(f"rows: {rows:,} (inserted in {made:.1f} s; index rebuilt in {rebuilt:.1f} s)")
    print(
        f"{'':31}{'all':>9}{'guard':>10}{'trash':>10}{'neither':>10}"
        f"{'guard adds':>17}{'trash adds':>17}"
    )
    for label, (every, guard_s, trash_s, plain_s) in results.items():
        per = 2 if "(x2)" in label else 1
        guard_added, trash_added = (guard_s - plain_s) / per, (trash_s - plain_s) / per
        print(
            f"{label:31}{every * 1e6:7.1f}µs{guard_s * 1e6:8.1f}µs{trash_s * 1e6:8.1f}µs"
            f"{plain_s * 1e6:8.1f}µs"
            f"{guard_added * 1e6:+9.1f}µs {guard_added * per / plain_s:+5.0%}"
            f"{trash_added * 1e6:+9.1f}µs {trash_added * per / plain_s:+5.0%}"
        )
    print(f"{'PUT over a referenced image':34}{image_s * 1e6:9.1f}µs  (Pillow, size, signal)")
    print(f"check, remembered (file; no hop from any thread): {known_s * 1e6:4.1f} µs")
    print(f"check, table (file), on the caller's thread: {table_s * 1e6:9.1f} µs")
    print(f"check, table (file), hop to the guard thread: {hop_s * 1e6:8.1f} µs")
    print(f"check, table (folder prefix):                {folder_s * 1e6:9.1f} µs")
    print(f"check, fields (index not built):             {fields_s * 1e6:9.1f} µs")
    print(f"refused DELETE of a referenced file (rows):  {refused_s * 1e6:9.1f} µs")
    guard.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--hot-path", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.hot_path:
        hot_path(args.reps)
    else:
        guarded(args.rows, args.reps, keep=args.keep)


if __name__ == "__main__":
    main()
