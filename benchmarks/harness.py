"""Shared pieces of the benchmarks: datasets, child processes, memory sampling, tables.

Everything here is bounded: every wait has a deadline, every child process is stopped by the
context that started it, and every temporary file lives under one directory in /tmp that is
removed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: The bytes of every big test file: 1 MiB of random data whose first 8 bytes are replaced by
#: the chunk's index, so a client can check each chunk of a download cheaply.
_BASE_CHUNK = os.urandom(MiB)


def chunk(index: int) -> bytes:
    """The ``index``-th MiB of a big test file."""
    return index.to_bytes(8, "big") + _BASE_CHUNK[8:]


def chunk_ok(index: int, data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` starts like the ``index``-th MiB of a big test file."""
    return bytes(data[:8]) == index.to_bytes(8, "big")


def write_big_file(path: Path, size: int) -> None:
    """Write a test file of ``size`` bytes (whole MiB chunks, the last one cut)."""
    with path.open("wb") as fh:
        left, index = size, 0
        while left > 0:
            data = chunk(index)[: min(MiB, left)]
            fh.write(data)
            left -= len(data)
            index += 1


def write_small_files(folder: Path, count: int, size: int = 1024) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = b"x" * size
    for i in range(count):
        (folder / f"file-{i:05d}.txt").write_bytes(body)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def venv_tool(name: str) -> str | None:
    """A console script next to this interpreter, else one on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def git_revision() -> str:
    return tool_version(["git", "-C", str(REPO), "describe", "--always", "--dirty"])


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "davstore_git": git_revision(),
        "load_average_at_start": os.getloadavg(),
    }


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False, parent: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``parent`` (/tmp), removed afterwards (unless ``keep``)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=str(parent or "/tmp")))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def sync_disk() -> None:
    os.sync()


def drop_caches() -> bool:
    """Drop the page, dentry and inode caches (needs root); False when not allowed."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A child process started in its own session, its output in a log file."""

    name: str
    cmd: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_until(check: Callable[[], bool], timeout: float, what: str, child: Child) -> None:
    """Poll ``check`` until it is true; fail with the child's log when it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited while {what}:\n{child.log_tail()}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name}: timed out after {timeout:.0f} s {what}:\n{child.log_tail()}")


# --------------------------------------------------------------------------- memory


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return sorted(set(found))


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants."""
    return sum(_status_kib(p, "VmRSS") for p in process_tree(pid)) * 1024


def tree_pss(pid: int) -> int | None:
    """Proportional resident bytes of ``pid`` and its descendants: each page shared by n
    processes counts 1/n in each (``/proc/PID/smaps_rollup``), so the sum is the memory the
    tree holds, where :func:`tree_rss` counts a shared library's or a forked parent's pages
    once per process. None where the kernel has no ``smaps_rollup`` or hides it."""
    total = 0
    for p in process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
        except FileNotFoundError:
            continue  # the process ended meanwhile
        except OSError:
            return None
        found = [line for line in lines if line.startswith("Pss:")]
        if not found:
            return None
        total += int(found[0].split()[1])
    return total * 1024


class RssSampler:
    """Peak resident memory of a process tree while a block runs.

    Samples VmRSS every ``interval`` seconds in a thread, and also resets and reads each
    process's VmHWM (high-water mark, exact between samples) where the kernel allows it.
    ``growth`` is the peak minus ``baseline`` (default: the resident size when the block
    started; the benchmarks pass the size when the process was idle after start-up).
    """

    def __init__(self, pid: int, interval: float = 0.01, baseline: int | None = None) -> None:
        self.pid = pid
        self.interval = interval
        self._fixed_baseline = baseline
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hwm_reset = False

    def __enter__(self) -> RssSampler:
        pids = process_tree(self.pid)
        try:
            for p in pids:
                Path(f"/proc/{p}/clear_refs").write_text("5\n")
            self._hwm_reset = True
        except OSError:
            self._hwm_reset = False
        self.peak = tree_rss(self.pid)
        self.baseline = self.peak if self._fixed_baseline is None else self._fixed_baseline
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, tree_rss(self.pid))
        if self._hwm_reset:
            hwm = sum(_status_kib(p, "VmHWM") for p in process_tree(self.pid)) * 1024
            self.peak = max(self.peak, hwm)

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)


# --------------------------------------------------------------------------- CPU

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_ticks(pid: int, *, reaped: bool = False) -> int:
    """utime + stime of ``pid`` in clock ticks (fields 14 and 15 of ``/proc/PID/stat``), plus
    cutime + cstime (16 and 17: its children already waited for) when ``reaped``; 0 for a
    process gone meanwhile."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants, from
    ``/proc/PID/stat``; 0.0 for processes gone meanwhile."""
    return sum(_stat_ticks(one) for one in process_tree(pid)) / _TICK


def machine_busy_cpu() -> float:
    """CPU seconds all the machine's CPUs have been busy since boot: user, nice, system, irq
    and softirq of ``/proc/stat``'s ``cpu`` line (guest time is inside user; idle, iowait and
    steal are not work done here)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    if fields[0] != "cpu":
        raise OSError(f"/proc/stat starts with {fields[0]!r}, not the cpu line")
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / _TICK


def client_cpu(services: Iterable[int] = ()) -> float:
    """CPU seconds used so far by this process (all its threads), by its children it waited
    for (``subprocess.run`` of curl, litmus), and by its live descendants outside the process
    trees of ``services`` (servers it started: their CPU is not the client's)."""
    me = os.getpid()
    skip: set[int] = set()
    for pid in services:
        skip.update(process_tree(pid))
    ticks = _stat_ticks(me, reaped=True)
    for pid in process_tree(me):
        if pid != me and pid not in skip:
            ticks += _stat_ticks(pid, reaped=True)
    return ticks / _TICK


class OtherLoad:
    """The rest of the machine's CPU while a block runs, in cores.

    ``cores`` is the machine's busy CPU time (:func:`machine_busy_cpu`) minus the CPU of the
    process tree of ``server`` (the one under test, as :func:`tree_cpu`) minus this client's
    (:func:`client_cpu`; ``services`` are the other trees this client started, such as peers
    idling beside the server: their CPU counts as other load), divided by the wall time. It
    says how much of the machine someone else took during a measurement.

    ``/proc/stat`` counts whole clock ticks per CPU, so over a few milliseconds the difference
    is noise of several cores either way: a block shorter than ``min_seconds`` is measured
    over a window of that length (the end is read that long after the start; the block's own
    timing is untouched). The figure is never below 0 (``raw`` keeps it as measured).
    """

    def __init__(
        self, server: int, *, services: Iterable[int] = (), min_seconds: float = 0.2
    ) -> None:
        self.server = server
        self.services = [p for p in services if p != server]
        self.min_seconds = min_seconds
        self.seconds = 0.0
        self.raw = 0.0
        self.cores = 0.0
        self._start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def _sample(self) -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            machine_busy_cpu(),
            tree_cpu(self.server),
            client_cpu([self.server, *self.services]),
        )

    def __enter__(self) -> OtherLoad:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        short = self.min_seconds - (time.monotonic() - self._start[0])
        if short > 0 and exc[0] is None:
            time.sleep(short)
        end = self._sample()
        wall, busy, server, client = (b - a for a, b in zip(self._start, end, strict=True))
        self.seconds = wall
        self.raw = (busy - server - client) / wall if wall > 0 else 0.0
        self.cores = max(0.0, self.raw)


def load_summary(turns: Sequence[float]) -> dict[str, float | int | None]:
    """Median and max of per-turn loads (cores) and how many turns, for a results file."""
    if not turns:
        return {"turns": 0, "median": None, "max": None}
    return {"turns": len(turns), "median": statistics.median(turns), "max": max(turns)}


# --------------------------------------------------------------------------- filesystems


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` lives on (``tmpfs``, ``ext4``, ``overlay``...),
    from ``/proc/self/mountinfo`` by device number; ``unknown`` when it is not listed."""
    dev = os.stat(path).st_dev
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == wanted and " - " in line:
                return line.split(" - ", 1)[1].split()[0]
    return "unknown"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still put on ``path``'s filesystem."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table: how to show it and which way is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    #: ("ratio", r): davstore/reference must be >= r (rates) or <= r (times) against the peer
    #: named in ``reference`` (``"apache|nginx"``: the best of them in this run); ("max", v):
    #: davstore's own figure must be <= v.
    target: tuple[str, float] | None = None
    reference: str = ""
    digits: int = 2
    #: More targets the row must meet as well: ``(kind, bound, reference)`` each.
    also: tuple[tuple[str, float, str], ...] = ()


def timed_ls_l(folder: Path, files: int, what: str, *, timeout: float) -> float:
    """Seconds one ``ls -l`` of ``folder`` takes; OSError unless it listed ``files`` entries."""
    start = time.perf_counter()
    out = subprocess.run(
        ["ls", "-l", "--color=never", str(folder)],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    lines = out.stdout.count(b"\n")
    if out.returncode != 0 or lines != files + 1:
        raise OSError(f"{what}: ls -l gave {lines} lines (rc {out.returncode})")
    return seconds


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(metric: Metric, values: dict[str, float | None]) -> tuple[str, str]:
    """The targets as text and PASS/MISS (or "-" when one cannot be judged and none
    missed)."""
    if metric.target is None:
        return "", ""
    targets = [(*metric.target, metric.reference), *metric.also]
    texts, verdicts = [], []
    for kind, bound, reference in targets:
        text, judged = _one_verdict(metric, values, kind, bound, reference)
        texts.append(text)
        verdicts.append(judged)
    if "MISS" in verdicts:
        judged = "MISS"
    elif "-" in verdicts:
        judged = "-"
    else:
        judged = "PASS"
    return ", ".join(texts), judged


def _one_verdict(
    metric: Metric, values: dict[str, float | None], kind: str, bound: float, reference: str
) -> tuple[str, str]:
    mine = values.get("davstore")
    if kind == "max":
        text = f"<= {bound:g} {metric.unit}"
        if mine is None:
            return text, "-"
        return text, "PASS" if mine <= bound else "MISS"
    peers = [values.get(name) for name in reference.split("|")]
    known = [value for value in peers if value is not None]
    ref = None
    if known and len(known) == len(peers):
        ref = max(known) if metric.higher_is_better else min(known)
    op = ">=" if metric.higher_is_better else "<="
    named = reference if "|" not in reference else "best of " + "/".join(reference.split("|"))
    text = f"{op} {bound:g}x {named}"
    r = ratio(mine, ref)
    if r is None:
        return text, "-"
    ok = r >= bound if metric.higher_is_better else r <= bound
    return text, "PASS" if ok else "MISS"


def print_table(
    metrics: Sequence[Metric],
    results: dict[str, dict[str, float | None]],
    columns: Sequence[str],
    ratio_columns: Sequence[tuple[str, str]],
    extra: tuple[str, dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Print one row per metric; return the rows (for the JSON file).

    ``extra`` is one more column before the target: its header and its cell per metric key
    (empty where a metric has none)."""
    header = ["metric", "unit", *columns]
    header += [f"{a}/{b}" for a, b in ratio_columns]
    header += [extra[0]] if extra else []
    header += ["target", "verdict"]
    rows: list[list[str]] = []
    out: list[dict[str, Any]] = []
    for m in metrics:
        values = {c: results.get(c, {}).get(m.key) for c in columns}
        ratios = {f"{a}/{b}": ratio(values.get(a), values.get(b)) for a, b in ratio_columns}
        target, judged = verdict(m, values)
        rows.append(
            [m.label, m.unit]
            + [fmt(values[c], m.digits) for c in columns]
            + [fmt(r, 2) + ("x" if r is not None else "") for r in ratios.values()]
            + ([extra[1].get(m.key, "")] if extra else [])
            + [target, judged]
        )
        out.append(
            {"metric": m.key, "unit": m.unit, "values": values, "ratios": ratios}
            | {"target": target, "verdict": judged}
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:-2], widths[2:-2], strict=True)]
        cells += [r[-2].ljust(widths[-2]), r[-1].ljust(widths[-1])]
        print("  ".join(cells))
    print(line)
    return out


def save_results(name: str, payload: dict[str, Any], folder: Path | None = None) -> Path:
    folder = folder or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
