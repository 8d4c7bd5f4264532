"""CPU time per call of the local disk store's small-request primitives, in a tight loop.

    python benchmarks/store_calls.py [FOLDER] [CALLS]

``read_small`` (every small GET of a local share), ``head``, ``open_read`` (+ close) and a
1 KiB upload (``start_upload`` + write + ``commit``), on a file at the top of the root and
one three folders down, in a fresh folder under FOLDER (default /dev/shm). Best of 15 runs
of CALLS calls (a tenth for uploads), process CPU time (on a shared machine the wall clock
measures the neighbours). Figures: benchmarks/README.md, *Resolving beneath the root*.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable


def main() -> None:
    import django
    from django.conf import settings

    settings.configure(USE_TZ=True)
    django.setup()
    from django.core.files.storage import FileSystemStorage

    from davstore.store.filesystem import FileSystemStore

    where = sys.argv[1] if len(sys.argv) > 1 else "/dev/shm"
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    root = tempfile.mkdtemp(dir=where)
    os.makedirs(f"{root}/a/b/c")
    for name in ("top.txt", "a/b/c/f.txt"):
        with open(f"{root}/{name}", "wb") as f:
            f.write(b"x" * 1024)
    store = FileSystemStore(FileSystemStorage(location=root))

    def put(name: str) -> None:
        upload = store.start_upload(name, spool_dir=None, spool_memory=0)
        upload.file.write(b"y" * 1024)
        upload.commit()

    for name in ("top.txt", "a/b/c/f.txt"):
        cases: list[tuple[str, Callable[[], object], int]] = [
            ("read_small", lambda n=name: store.read_small(n, 65536), calls),
            ("head", lambda n=name: store.head(n), calls),
            ("open_read", lambda n=name: store.open_read(n).close(), calls),
            ("upload", lambda n=name: put(n), calls // 10),
        ]
        for label, call, count in cases:
            call()
            best = float("inf")
            for _ in range(15):
                start = time.process_time()
                for _ in range(count):
                    call()
                best = min(best, (time.process_time() - start) / count)
            print(f"{label:10} {name:12} {best * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
