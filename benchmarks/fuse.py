"""davstore's FUSE mount side by side with rclone mount and the native folder.

Run (as root, /dev/fuse usable): ``python benchmarks/fuse.py [--size-mib 1024] [--files 5000]
[--quick]``

Each mount gets its own copy of the same dataset in one temporary folder on the same disk; all
are mounted at once and every measurement visits them in turn. Columns:

- ``davstore``: ``davstore mount MNT ROOT --foreground``;
- ``rclone``: ``rclone mount ROOT MNT`` with its defaults (``--vfs-cache-mode off``: writes go
  straight to the store, so "closed" means "stored", as with davstore). The targets of issue 3
  are judged against this column;
- ``rclone-writes``: ``--vfs-cache-mode writes``, the mode rclone recommends for applications
  that edit files (random writes, O_RDWR). Its writes land in a local cache and are uploaded
  after ``--vfs-write-back`` (5 s), so the table also shows when the bytes reached the store;
- ``native``: the folder itself, no FUSE.

Reads of the big file start with the backing file in the page cache and the mount's own cache
empty (a fresh mount, or caches dropped and the backing file re-read), so they measure the
FUSE path, not the disk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Child,
    Metric,
    MiB,
    RssSampler,
    chunk,
    chunk_ok,
    drop_caches,
    machine_info,
    print_table,
    save_results,
    timed_ls_l,
    tool_version,
    tree_rss,
    venv_tool,
    wait_until,
    workdir,
    write_big_file,
    write_small_files,
)

MOUNTS = ("davstore", "rclone", "rclone-writes", "native")
BIG = "big.bin"
MANY = "many"
SMALL = "small"

METRICS = [
    Metric("read_mbps", "sequential read big file", "MB/s", True, ("ratio", 3.0), "rclone"),
    Metric("write_mbps", "sequential write, to close", "MB/s", True, ("ratio", 1.5), "rclone"),
    Metric("write_stored_mbps", "sequential write, to store", "MB/s", True, None, "rclone"),
    Metric("rss_read_mib", "RSS growth during read", "MiB", False, ("max", 64.0), digits=1),
    Metric("rss_write_mib", "RSS growth during write", "MiB", False, ("max", 64.0), digits=1),
    Metric("ls_cold_s", "ls -l many files, cold", "s", False, ("ratio", 1.0), "rclone", 3),
    Metric("ls_warm_s", "ls -l many files, warm", "s", False, ("ratio", 1.0), "rclone", 3),
    Metric("create_rps", "create 1 KiB files", "files/s", True, ("ratio", 1.0), "rclone", 0),
    Metric("create_stored_s", "small files all in store", "s", False, None, "rclone", 2),
    Metric("rss_idle_mib", "RSS after mount (base of growth)", "MiB", False, None, digits=1),
]


class Mount:
    """One mounted copy of the dataset (or the native folder)."""

    def __init__(self, name: str, base: Path, cmd: list[str] | None, env: dict[str, str]) -> None:
        self.name = name
        self.root = base / name / "root"
        self.mnt = self.root if cmd is None else base / name / "mnt"
        self.child = (
            Child(name, cmd, base / name / "mount.log", env=env) if cmd is not None else None
        )
        self.results: dict[str, float | None] = {}
        self.notes: list[str] = []
        self.idle_rss: int | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def start(self, timeout: float = 60.0) -> None:
        if self.child is None:
            return
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.child.start()
        wait_until(lambda: os.path.ismount(self.mnt), timeout, "mounting", self.child)

    def stop(self) -> None:
        if self.child is None:
            return
        if os.path.ismount(self.mnt):
            for flags in (["-u"], ["-uz"]):
                done = subprocess.run(
                    ["fusermount3", *flags, str(self.mnt)],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
                if done.returncode == 0:
                    break
        self.child.stop(timeout=30)
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True, check=False)


def davstore_mount_prefix() -> list[str] | None:
    """How to call ``davstore mount``, or None while the command does not exist."""
    for cmd in ([venv_tool("davstore") or "davstore"], [sys.executable, "-m", "davstore"]):
        try:
            out = subprocess.run(
                [*cmd, "mount", "--help"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return cmd
    return None


def make_mounts(base: Path, seed: Path, names: list[str]) -> tuple[list[Mount], list[str]]:
    env = dict(os.environ)
    (base / "rclone.conf").touch()
    env["RCLONE_CONFIG"] = str(base / "rclone.conf")
    mounts, skipped = [], []
    for name in names:
        cmd: list[str] | None
        mnt = base / name / "mnt"
        root = base / name / "root"
        if name == "davstore":
            prefix = davstore_mount_prefix()
            if prefix is None:
                skipped.append("davstore: `davstore mount` is not available yet")
                continue
            cmd = [*prefix, "mount", str(mnt), str(root), "--foreground"]
        elif name in ("rclone", "rclone-writes"):
            mode = "writes" if name == "rclone-writes" else "off"
            cmd = ["rclone", "mount", str(root), str(mnt), "--vfs-cache-mode", mode]
            cmd += ["--cache-dir", str(base / name / "cache")]
        elif name == "native":
            cmd = None
        else:
            raise SystemExit(f"unknown mount {name!r}")
        shutil.copytree(seed, root, copy_function=shutil.copyfile)
        mounts.append(Mount(name, base, cmd, env))
    return mounts, skipped


# --------------------------------------------------------------------------- measurements


def warm_backing(path: Path) -> None:
    """Read a file natively so that it sits in the page cache."""
    buf = bytearray(MiB)
    with path.open("rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass


def _sampler(stack: contextlib.ExitStack, mount: Mount) -> RssSampler | None:
    if mount.pid is None:
        return None
    return stack.enter_context(RssSampler(mount.pid, baseline=mount.idle_rss))


def read_file(mount: Mount, size: int) -> tuple[float, int]:
    buf = bytearray(MiB)
    view = memoryview(buf)
    with contextlib.ExitStack() as stack:
        rss = _sampler(stack, mount)
        start = time.perf_counter()
        got, index, bad = 0, 0, 0
        with (mount.mnt / BIG).open("rb", buffering=0) as fh:
            while True:
                filled = 0
                while filled < MiB:
                    n = fh.readinto(view[filled:])
                    if not n:
                        break
                    filled += n
                if not filled:
                    break
                if not chunk_ok(index, view[:filled]):
                    bad += 1
                got += filled
                index += 1
                if filled < MiB:
                    break
        seconds = time.perf_counter() - start
    if got != size or bad:
        raise OSError(f"{mount.name}: read {got} bytes of {size}, {bad} bad MiB blocks")
    return seconds, rss.growth if rss else 0


def wait_stored(path: Path, size: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if path.stat().st_size == size:
                return True
        time.sleep(0.02)
    return False


def write_file(mount: Mount, size: int, name: str) -> tuple[float, float | None, int]:
    """Write ``size`` bytes in 1 MiB blocks; returns seconds to close, to store, RSS growth."""
    buf = bytearray(chunk(0))
    view = memoryview(buf)
    with contextlib.ExitStack() as stack:
        rss = _sampler(stack, mount)
        start = time.perf_counter()
        with (mount.mnt / name).open("wb", buffering=0) as fh:
            left, index = size, 0
            while left > 0:
                buf[:8] = index.to_bytes(8, "big")
                n = min(MiB, left)
                done = 0
                while done < n:
                    done += fh.write(view[done:n])
                left -= n
                index += 1
        closed = time.perf_counter() - start
        stored_ok = wait_stored(mount.root / name, size, timeout=120)
        stored = time.perf_counter() - start if stored_ok else None
    backing = mount.root / name
    if stored_ok:
        with backing.open("rb") as fh:
            last = (size - 1) // MiB
            for index in {0, last // 2, last}:
                fh.seek(index * MiB)
                if not chunk_ok(index, fh.read(8)):
                    raise OSError(f"{mount.name}: the store holds wrong bytes in MiB {index}")
    else:
        mount.notes.append(f"{name} did not reach the store in full within 120 s")
    return closed, stored, rss.growth if rss else 0


def ls_l(mount: Mount, files: int) -> float:
    return timed_ls_l(mount.mnt / MANY, files, mount.name, timeout=300)


def create_small(mount: Mount, count: int, max_seconds: float) -> tuple[float, float | None]:
    """Create up to ``count`` 1 KiB files; returns the rate and seconds until all are stored."""
    body = b"c" * 1024
    folder = mount.mnt / SMALL
    start = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    made = 0
    while made < count and time.monotonic() < deadline:
        with (folder / f"f-{made:05d}.txt").open("wb") as fh:
            fh.write(body)
        made += 1
    seconds = time.perf_counter() - start
    last = mount.root / SMALL / f"f-{made - 1:05d}.txt"
    stored_all = wait_stored(last, 1024, timeout=120) and all(
        wait_stored(mount.root / SMALL / f"f-{i:05d}.txt", 1024, timeout=30) for i in range(made)
    )
    stored = time.perf_counter() - start if stored_all else None
    if made < count:
        mount.notes.append(f"created only {made} of {count} small files in {max_seconds:g} s")
    return made / seconds, stored


# --------------------------------------------------------------------------- driver


def run(args: argparse.Namespace) -> int:
    if not Path("/dev/fuse").exists():
        print("no /dev/fuse: nothing to measure")
        return 1
    size = args.size_mib * MiB
    names = [s.strip() for s in args.mounts.split(",") if s.strip()]
    print(
        f"davstore FUSE benchmark: {args.size_mib} MiB file, {args.files} files per folder, "
        f"{args.small_count} small files, {os.cpu_count()} CPUs"
    )
    failures: list[str] = []
    with workdir("davstore-bench-fuse-", keep=args.keep, parent=args.data_dir) as base:
        seed = base / "seed"
        seed.mkdir()
        write_big_file(seed / BIG, size)
        write_small_files(seed / MANY, args.files, 1024)
        (seed / SMALL).mkdir()
        mounts, skipped = make_mounts(base, seed, names)
        shutil.rmtree(seed)
        active: list[Mount] = []
        try:
            for mount in mounts:
                try:
                    mount.start()
                    active.append(mount)
                    if mount.pid:
                        mount.idle_rss = tree_rss(mount.pid)
                        mount.results["rss_idle_mib"] = mount.idle_rss / MiB
                except RuntimeError as exc:
                    failures.append(f"{mount.name} did not mount: {exc}")
                    mount.stop()
            _measure(active, args, size, failures)
        finally:
            for mount in mounts:
                try:
                    mount.stop()
                except (OSError, subprocess.SubprocessError) as exc:
                    failures.append(f"{mount.name}: unmount: {exc}")
        results = {m.name: m.results for m in mounts}
        columns = [n for n in names if n in results or n == "davstore"]
        refs = [("davstore", c) for c in ("rclone", "rclone-writes", "native") if c in columns]
        print()
        rows = print_table(METRICS, results, columns, refs)
        print(
            "MB = 10^6 bytes; ratios of times (s) are better below 1, of rates above 1.\n"
            "Targets are judged against `rclone` = rclone mount defaults (--vfs-cache-mode off);\n"
            "`rclone-writes` (--vfs-cache-mode writes, for editing apps) closes files before\n"
            "they are stored (write-back after 5 s): compare its 'to store' rows."
        )
        for mount in mounts:
            for note in mount.notes:
                print(f"note: {mount.name}: {note}")
        for line in skipped:
            print(f"SKIPPED: {line}")
        for failure in failures:
            print(f"FAILED: {failure}")
        payload: dict[str, Any] = {
            "benchmark": "fuse",
            "parameters": vars(args),
            "machine": machine_info(),
            "versions": {"rclone": tool_version(["rclone", "version"])},
            "commands": {m.name: m.child.cmd if m.child else None for m in mounts},
            "results": results,
            "rows": rows,
            "notes": {m.name: m.notes for m in mounts},
            "skipped": skipped,
            "failures": failures,
        }
        path = save_results("fuse", payload, args.results_dir)
        print(f"results written to {path}")
    return 1 if failures else 0


def _attempt(failures: list[str], mount: Mount, what: str, fn: Any, *fn_args: Any) -> Any:
    if mount.child is not None and not mount.child.alive():
        return None
    try:
        return fn(*fn_args)
    except (OSError, subprocess.SubprocessError) as exc:
        failures.append(f"{mount.name}: {what}: {exc}")
        if mount.child is not None and not mount.child.alive():
            failures.append(f"{mount.name} died:\n{mount.child.log_tail()}")
    return None


def _measure(mounts: list[Mount], args: argparse.Namespace, size: int, failures: list[str]) -> None:
    if not drop_caches():
        print("cannot drop caches (not root?): cold figures are only cold for the mounts")
    print(f"ls -l of {args.files} files: cold (first listing, caches dropped), then warm x3")
    for mount in mounts:
        drop_caches()  # also waits for the writeback of the dataset just copied
        seconds = _attempt(failures, mount, "ls cold", ls_l, mount, args.files)
        if seconds is not None:
            mount.results["ls_cold_s"] = seconds
    warm: dict[str, list[float]] = {m.name: [] for m in mounts}
    for _ in range(3):
        for mount in mounts:
            seconds = _attempt(failures, mount, "ls warm", ls_l, mount, args.files)
            if seconds is not None:
                warm[mount.name].append(seconds)
    for mount in mounts:
        if warm[mount.name]:
            mount.results["ls_warm_s"] = min(warm[mount.name])
        print(
            f"  {mount.name:13} cold {mount.results.get('ls_cold_s') or 0:.3f} s, "
            f"warm {mount.results.get('ls_warm_s') or 0:.3f} s"
        )

    print(f"sequential read of {args.size_mib} MiB")
    for mount in mounts:
        warm_backing(mount.root / BIG)
        res = _attempt(failures, mount, "read", read_file, mount, size)
        if res is not None:
            seconds, growth = res
            mount.results["read_mbps"] = size / seconds / 1e6
            mount.results["rss_read_mib"] = growth / MiB if mount.pid else None
            mbps = size / seconds / 1e6
            print(f"  {mount.name:13} {mbps:8.1f} MB/s, RSS +{growth / MiB:.1f} MiB")

    print(f"sequential write of {args.size_mib} MiB")
    for mount in mounts:
        os.sync()
        res = _attempt(failures, mount, "write", write_file, mount, size, "written.bin")
        if res is None:
            continue
        closed, stored, growth = res
        mount.results["write_mbps"] = size / closed / 1e6
        mount.results["write_stored_mbps"] = size / stored / 1e6 if stored else None
        mount.results["rss_write_mib"] = growth / MiB if mount.pid else None
        print(
            f"  {mount.name:13} to close {size / closed / 1e6:8.1f} MB/s, to store "
            f"{size / stored / 1e6 if stored else 0:8.1f} MB/s, RSS +{growth / MiB:.1f} MiB"
        )

    print(f"create {args.small_count} files of 1 KiB (at most {args.small_seconds:g} s)")
    for mount in mounts:
        res = _attempt(
            failures, mount, "create", create_small, mount, args.small_count, args.small_seconds
        )
        if res is None:
            continue
        rate, stored = res
        mount.results["create_rps"] = rate
        mount.results["create_stored_s"] = stored
        print(f"  {mount.name:13} {rate:8.0f} files/s, all stored after {stored or 0:.2f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke test (~1 min)")
    p.add_argument("--size-mib", type=int, help="size of the big file (default 1024; quick 64)")
    p.add_argument("--files", type=int, help="files in the ls folder (default 5000; quick 500)")
    p.add_argument("--small-count", type=int, help="files to create (default 1000; quick 200)")
    p.add_argument("--small-seconds", type=float, help="time limit for them (default 60; quick 10)")
    p.add_argument(
        "--mounts",
        default=",".join(MOUNTS),
        help="comma-separated: davstore, rclone (cache mode off), rclone-writes, native",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--data-dir", type=Path, help="where the temporary dataset goes (/tmp)")
    p.add_argument("--results-dir", type=Path, help="where the JSON goes (benchmarks/results)")
    args = p.parse_args(argv)
    defaults = {
        "size_mib": (1024, 64),
        "files": (5000, 500),
        "small_count": (1000, 200),
        "small_seconds": (60.0, 10.0),
    }
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
