"""What the site guard costs: its check per DELETE / MOVE, with many referencing rows.

Run from the repository root: ``python benchmarks/guard.py [--rows 1000000] [--reps 2000]``
and ``python benchmarks/guard.py --hot-path`` (no Django database: the 1 KiB PUT and GET
of a VFS with no policy, to compare trees before and after the hooks with ``PYTHONPATH``).

The site is tests/django/siteapp (``Photo.image`` in a FileSystemStorage shared as
``media``) in a SQLite file; ``--rows`` photos name files under ``photos/`` (made with one
``INSERT`` each, the index filled by ``manage.py davstore index``'s rebuild, timed). Rows:

- ``check, table``: the guard's whole ``around`` (thread hop, index lookup) with a store
  call that does nothing, for a file nobody names: the cost the guard adds to a DELETE or
  a MOVE, the index trusted;
- ``check, fields``: the same with the index not built: queries on the file field itself
  (its column has no index: a scan of the table);
- ``folder check``: the same for a folder (``photos/`` prefix, range on the index);
- ``MOVE + rewrite``: a referenced file renamed there and back through the VFS (store
  rename, one row updated, one transaction), against the same renames unguarded;
- ``1 KiB PUT``: ``VFS.put_file`` of a new 1 KiB file, unguarded: the yardstick of the
  "under 10 % of a 1 KiB PUT" target.
"""

from __future__ import annotations

import argparse
import os
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


def guarded(rows: int, reps: int) -> None:
    import django
    from django.conf import settings

    work = Path(tempfile.mkdtemp(prefix="davstore-guard-bench-"))
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
    from django.core.management import call_command
    from django.db import connection, transaction

    from davstore.models import IndexState
    from davstore.shares import get_share
    from davstore.site.guard import Guard, index_for
    from davstore.store import adapt
    from davstore.vfs import VFS
    from davstore.vfs.policy import Kind, Operation

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

    def check(path: str, *, folder: bool = False) -> Callable[[], None]:
        op = Operation(Kind.DELETE, path, folder)
        return lambda: guard.around(op, lambda: None)

    table_s = per_op(check("free/nobody.txt"), reps)
    folder_s = per_op(check("free", folder=True), reps)
    IndexState.objects.all().delete()
    index._built = False
    field_reps = max(3, reps // 200)
    fields_s = per_op(check("free/nobody.txt"), field_reps, rounds=3)
    index.rebuild()

    (media / "photos" / "0000" / "0000001.jpg").parent.mkdir(parents=True, exist_ok=True)
    (media / "photos" / "0000" / "0000001.jpg").write_bytes(b"x")
    vfs = share.vfs
    plain = VFS(adapt(share.storage), cache_ttl=0)
    vfs.cache.ttl = 0  # both ask the store each time

    def there_and_back(v: VFS) -> Callable[[], None]:
        def move() -> None:
            v.rename("photos/0000/0000001.jpg", "photos/0000/moved.jpg")
            v.rename("photos/0000/moved.jpg", "photos/0000/0000001.jpg")

        return move

    move_reps = max(10, reps // 10)
    guarded_move = per_op(there_and_back(vfs), move_reps) / 2
    plain_move = per_op(there_and_back(plain), move_reps) / 2
    data = os.urandom(1024)
    names = iter(range(10**9))
    put_s = per_op(lambda: plain.put_file(f"free/p{next(names)}.bin", data), reps)

    print(f"rows: {rows:,} (inserted in {made:.1f} s; index rebuilt in {rebuilt:.1f} s)")
    print(f"1 KiB PUT, unguarded:             {put_s * 1e6:9.1f} µs")
    print(
        f"check, table (file):              {table_s * 1e6:9.1f} µs"
        f"  ({table_s / put_s:.0%} of the PUT)"
    )
    print(f"check, table (folder prefix):     {folder_s * 1e6:9.1f} µs")
    print(f"check, fields (index not built):  {fields_s * 1e6:9.1f} µs")
    print(
        f"MOVE of a referenced file:        {guarded_move * 1e6:9.1f} µs guarded (1 row"
        f" rewritten), {plain_move * 1e6:.1f} µs unguarded"
    )
    guard.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--hot-path", action="store_true")
    args = parser.parse_args()
    if args.hot_path:
        hot_path(args.reps)
    else:
        guarded(args.rows, args.reps)


if __name__ == "__main__":
    main()
