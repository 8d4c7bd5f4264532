"""Store calls run on davstore's own long-lived threads: per-thread clients survive
between FUSE callbacks, and slow calls for different files overlap."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tests.fuse.conftest import MountFactory


def _events(log: Path, kind: str) -> list[tuple[int, float]]:
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(int(r[1]), float(r[2])) for r in rows if r[0] == kind]


def test_per_thread_clients_survive_between_callbacks(
    mount_share: MountFactory, tmp_path: Path
) -> None:
    root, log = tmp_path / "slow", tmp_path / "calls.log"
    root.mkdir()
    for i in range(40):
        (root / f"f{i}").write_bytes(b"x" * i)
    share = mount_share(
        "tests.fuse.storages.SlowStorage",
        "--option", f"location={root}", "--option", f"log={log}", "--cache-ttl", "0",
    )  # fmt: skip
    for i in range(40):
        assert (share.path / f"f{i}").read_bytes() == b"x" * i
        os.listdir(share.path)
    calls = _events(log, "open-start") + _events(log, "listdir")
    clients = _events(log, "client")
    assert len(calls) >= 80
    assert 1 <= len(clients) <= 16  # one per worker thread, not one per callback
    assert {ident for ident, _ in calls} <= {ident for ident, _ in clients}


def test_slow_reads_of_different_files_overlap(mount_share: MountFactory, tmp_path: Path) -> None:
    root, log = tmp_path / "slow", tmp_path / "calls.log"
    root.mkdir()
    (root / "a").write_bytes(b"A" * 1000)
    (root / "b").write_bytes(b"B" * 1000)
    share = mount_share(
        "tests.fuse.storages.SlowStorage",
        "--option", f"location={root}", "--option", "delay=1.0", "--option", f"log={log}",
    )  # fmt: skip
    results: dict[str, bytes] = {}

    def read(name: str) -> None:
        results[name] = (share.path / name).read_bytes()

    threads = [threading.Thread(target=read, args=(name,)) for name in "ab"]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    took = time.monotonic() - start
    assert results == {"a": b"A" * 1000, "b": b"B" * 1000}
    assert took < 1.8, f"two 1 s reads took {took:.2f} s: they did not overlap"
    starts = sorted(t for _, t in _events(log, "open-start"))
    ends = sorted(t for _, t in _events(log, "open-end"))
    assert len(starts) == 2 and starts[1] < ends[0]


def test_callback_threads_stay_a_bounded_pool(mount_share: MountFactory) -> None:
    """Each libfuse worker keeps its Python thread state (binding.py), which is only
    sound while the workers are a bounded pool that does not come and go."""
    share = mount_share("memory")
    for i in range(24):
        (share.path / f"f{i}").write_bytes(bytes(1 << 20))
    tasks = Path(f"/proc/{share.process.pid}/task")
    counts, alive_after_round = [], []

    def work(i: int) -> None:
        for round_ in range(3):
            assert (share.path / f"f{i}").read_bytes() == bytes(1 << 20)
            (share.path / f"g{i}-{round_}").write_bytes(b"x")

    for _ in range(3):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            counts.append(len(list(tasks.iterdir())))
            time.sleep(0.01)
        for thread in threads:
            thread.join(30)
        alive_after_round.append({task.name for task in tasks.iterdir()})
    assert max(counts) <= 24  # libfuse 3: at most 10 workers, plus davstore's own threads
    assert alive_after_round[0] <= alive_after_round[-1]  # no worker ended
