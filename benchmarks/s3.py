"""davstore on S3 (moto's standalone server) side by side with s3fs, in one run.

Run (root, /dev/fuse usable, ``apt-get install -y s3fs``):
``python benchmarks/s3.py [--files 1000] [--size-mib 256] [--big-mib 1024] [--quick]``

One ``moto_server`` on 127.0.0.1 holds one bucket: a folder ``many/`` of ``--files`` 1 KiB
objects and one ``--size-mib`` object. Columns:

- ``davstore``: ``davstore mount MNT --backend storages.backends.s3.S3Storage --option ...``
  (and ``davstore serve`` with the same options for the WebDAV rows);
- ``s3fs``: ``s3fs BUCKET MNT -f -o passwd_file=F,url=http://127.0.0.1:PORT,use_path_request_style``
  with its defaults otherwise (stat cache on, no local data cache).

Measured (targets from issue 4):

- ``ls -l`` of ``many/`` on fresh mounts (cold, best of ``--reps`` remounts) and again right
  after (warm, best of 3), with the S3 requests each cold listing made;
- PROPFIND Depth 1 on ``many/`` through a fresh ``davstore serve``, with its S3 requests;
- a sequential read of the ``--size-mib`` object on fresh mounts, 1 MiB ``readinto`` calls,
  checked block by block;
- the davstore process's resident memory growth while ``--big-mib`` is written and read back
  through WebDAV (``davstore serve``) and through FUSE (``davstore mount``, s3fs alongside).

S3 requests are counted by moto's own request recorder (``/moto-api/recorder/``), so nothing
in davstore is instrumented for the benchmark.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    REPO,
    Child,
    Metric,
    MiB,
    RssSampler,
    chunk,
    chunk_ok,
    free_port,
    machine_info,
    print_table,
    save_results,
    timed_ls_l,
    tool_version,
    tree_rss,
    venv_tool,
    wait_until,
    workdir,
)
from rawhttp import Connection, HttpError

HOST = "127.0.0.1"
ACCESS_KEY = SECRET_KEY = "testing"
BUCKET = "davstore-bench"
MANY = "many"
BIG = "big.bin"
COLUMNS = ("davstore", "s3fs")


def metrics(files: int) -> list[Metric]:
    lists = float(math.ceil(files / 1000))
    ls, pf = f"ls -l {files} objects", "PROPFIND depth 1"
    return [
        Metric("ls_cold_s", f"{ls}, cold", "s", False, ("ratio", 0.2), "s3fs", 3),
        Metric("ls_warm_s", f"{ls}, warm", "s", False, ("ratio", 0.2), "s3fs", 3),
        Metric("ls_lists", "  S3 list calls (ls -l, cold)", "req", False, ("max", lists), digits=0),
        Metric("ls_heads", "  S3 HEAD calls (ls -l, cold)", "req", False, ("max", 0.0), digits=0),
        Metric("ls_requests", "  S3 requests in all (ls -l, cold)", "req", False, digits=0),
        Metric("propfind_cold_s", f"{pf}, cold", "s", False, None, digits=3),
        Metric("propfind_warm_s", f"{pf}, warm", "s", False, None, digits=3),
        Metric("propfind_lists", f"  S3 list calls ({pf})", "req", False, ("max", lists), 0),
        Metric("propfind_heads", f"  S3 HEAD calls ({pf})", "req", False, ("max", 0.0), 0),
        Metric("propfind_requests", f"  S3 requests in all ({pf})", "req", False, digits=0),
        Metric("read_mbps", "sequential read big object", "MB/s", True, ("ratio", 1.0), "s3fs"),
        Metric("read_gets", "  S3 GetObject calls (that read)", "req", False, digits=0),
        Metric("webdav_put_mbps", "WebDAV PUT big file", "MB/s", True),
        Metric("webdav_get_mbps", "WebDAV GET big file back", "MB/s", True),
        Metric("rss_webdav_mib", "RSS growth, WebDAV PUT+GET", "MiB", False, ("max", 64.0), 1),
        Metric("fuse_write_mbps", "FUSE write big file, to close", "MB/s", True, None, "s3fs"),
        Metric("fuse_read_mbps", "FUSE read big file back", "MB/s", True, None, "s3fs"),
        Metric("fuse_read_gets", "  S3 GetObject calls (read back)", "req", False, digits=0),
        Metric("fuse_read_lists", "  S3 list calls (read back)", "req", False, digits=0),
        Metric("rss_fuse_mib", "RSS growth, FUSE write+read", "MiB", False, ("max", 64.0), 1),
        Metric("rss_idle_mib", "RSS of the mount at start", "MiB", False, None, digits=1),
    ]


# --------------------------------------------------------------------------- moto


class Moto:
    """``moto_server`` on loopback, with its request recorder writing under ``base``."""

    def __init__(self, base: Path) -> None:
        binary = venv_tool("moto_server")
        if binary is None:
            raise SystemExit("moto_server is missing: pip install 'moto[server]'")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(base / "moto-requests.jsonl"))
        cmd = [binary, "-H", HOST, "-p", str(self.port)]
        self.child = Child("moto", cmd, base / "moto.log", env=env)

    def start(self) -> None:
        self.child.start()
        wait_until(lambda: self._api("GET", "/moto-api/") is not None, 60, "starting", self.child)

    def _api(self, method: str, path: str) -> str:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
        finally:
            conn.close()
        if response.status != 200:
            raise OSError(f"moto {method} {path}: {response.status}")
        return body

    @contextlib.contextmanager
    def recording(self) -> Iterator[Counter[str]]:
        """Count the S3 requests moto receives inside the block (by operation)."""
        counts: Counter[str] = Counter()
        self._api("POST", "/moto-api/recorder/reset-recording")
        self._api("POST", "/moto-api/recorder/start-recording")
        try:
            yield counts
        finally:
            self._api("POST", "/moto-api/recorder/stop-recording")
            text = self._api("GET", "/moto-api/recorder/download-recording")
            for line in text.splitlines():
                if line.strip():
                    entry = json.loads(line)
                    counts[operation(entry["method"], entry["url"])] += 1
            self._api("POST", "/moto-api/recorder/reset-recording")

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(max_pool_connections=16),
        )


def operation(method: str, url: str) -> str:
    """The S3 operation of a path-style request, as far as the benchmark tells them apart."""
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    has_key = bool(parsed.path.strip("/").partition("/")[2])
    if method == "GET" and not has_key:
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(method, method)


def fill_bucket(moto: Moto, files: int, size: int) -> None:
    client = moto.client()
    client.create_bucket(Bucket=BUCKET)
    body = b"x" * 1024
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = [f"{MANY}/file-{i:05d}.txt" for i in range(files)]
        list(pool.map(lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=body), keys))
    put_big(client, BIG, size)


def put_big(client: Any, key: str, size: int, part_mib: int = 16) -> None:
    """Store a test object of ``size`` bytes (harness chunks) with a multipart upload."""
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, size, part_mib * MiB), start=1):
        first = start // MiB
        body = b"".join(chunk(first + i) for i in range(part_mib))[: size - start]
        answer = client.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body
        )
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


# --------------------------------------------------------------------------- davstore and s3fs


def davstore_prefix() -> list[str]:
    script = venv_tool("davstore")
    return [script] if script else [sys.executable, "-m", "davstore"]


def backend_args(moto: Moto) -> list[str]:
    args = ["--backend", "storages.backends.s3.S3Storage"]
    options = {
        "bucket_name": BUCKET,
        "endpoint_url": moto.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
    }
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    return args


def davstore_env(base: Path) -> dict[str, str]:
    """No Django settings, state under ``base``, and davstore from this checkout (ahead of an
    editable install of another one)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["XDG_STATE_HOME"] = str(base / "xdg-state")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Mount:
    """One FUSE mount of the bucket (a fresh process each time it is started)."""

    def __init__(self, name: str, base: Path, moto: Moto) -> None:
        self.name = name
        self.base = base / name
        self.mnt = self.base / "mnt"
        self.moto = moto
        self.child: Child | None = None
        self.starts = 0
        self.results: dict[str, float | None] = {}
        self.notes: list[str] = []
        self.idle_rss: int | None = None

    def command(self) -> list[str]:
        if self.name == "davstore":
            mount = [*davstore_prefix(), "mount", str(self.mnt), *backend_args(self.moto)]
            return [*mount, "--foreground"]
        passwd = self.base / "passwd"
        passwd.write_text(f"{ACCESS_KEY}:{SECRET_KEY}\n")
        passwd.chmod(0o600)
        options = f"passwd_file={passwd},url={self.moto.url},use_path_request_style"
        return ["s3fs", BUCKET, str(self.mnt), "-f", "-o", options]

    def start(self) -> None:
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.base / f"mount-{self.starts}.log"
        self.child = Child(self.name, self.command(), log, env=davstore_env(self.base))
        self.child.start()
        wait_until(lambda: os.path.ismount(self.mnt), 60, "mounting", self.child)
        self.idle_rss = tree_rss(self.child.pid)

    def stop(self) -> None:
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
        if self.child is not None:
            self.child.stop(timeout=30)
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True, check=False)


@contextlib.contextmanager
def mounted(mounts: list[Mount]) -> Iterator[list[Mount]]:
    try:
        for mount in mounts:
            mount.start()
        yield mounts
    finally:
        for mount in mounts:
            mount.stop()


class Serve:
    """``davstore serve`` on the bucket."""

    def __init__(self, base: Path, moto: Moto) -> None:
        self.port = free_port()
        state = base / "serve-state"
        state.mkdir(parents=True, exist_ok=True)
        cmd = [*davstore_prefix(), "serve", *backend_args(moto), "--anonymous"]
        cmd += ["--host", HOST, "--port", str(self.port), "--state-dir", str(state)]
        self.child = Child("davstore serve", cmd, base / "serve.log", env=davstore_env(base))
        self.idle_rss = 0

    def conn(self) -> Connection:
        return Connection(HOST, self.port, timeout=600)

    def start(self) -> None:
        self.child.start()

        def ready() -> bool:
            conn = self.conn()
            try:
                return conn.request("OPTIONS", "/").status < 500
            finally:
                conn.close()

        wait_until(ready, 60, "starting", self.child)
        self.idle_rss = tree_rss(self.child.pid)


# --------------------------------------------------------------------------- measurements


def ls_l(mount: Mount, files: int) -> float:
    return timed_ls_l(mount.mnt / MANY, files, mount.name, timeout=600)


#: Longest a single big transfer may take before it is given up (a failure, not a hang).
TRANSFER_LIMIT = 300.0


def read_back(path: Path, size: int) -> float:
    """Read ``path`` in 1 MiB ``readinto`` calls, checking each block; returns seconds."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    start = time.perf_counter()
    got, index, bad = 0, 0, 0
    with path.open("rb", buffering=0) as fh:
        while True:
            if time.perf_counter() - start > TRANSFER_LIMIT:
                raise OSError(f"read of {path.name} gave up at {got} bytes ({TRANSFER_LIMIT} s)")
            filled = 0
            while filled < MiB:
                n = fh.readinto(view[filled:])
                if not n:
                    break
                filled += n
            if not filled:
                break
            bad += not chunk_ok(index, view[:filled])
            got += filled
            index += 1
            if filled < MiB:
                break
    seconds = time.perf_counter() - start
    if got != size or bad:
        raise OSError(f"read {got} bytes of {size} from {path}, {bad} bad MiB blocks")
    return seconds


def write_out(path: Path, size: int) -> float:
    """Write ``size`` bytes of harness chunks in 1 MiB writes; returns seconds to close."""
    start = time.perf_counter()
    with path.open("wb", buffering=0) as fh:
        for index in range(math.ceil(size / MiB)):
            if time.perf_counter() - start > TRANSFER_LIMIT:
                raise OSError(f"write of {path.name} gave up after {TRANSFER_LIMIT} s")
            data = chunk(index)[: min(MiB, size - index * MiB)]
            view, done = memoryview(data), 0
            while done < len(data):
                done += fh.write(view[done:])
    return time.perf_counter() - start


def propfind(serve: Serve, files: int) -> float:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
        b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
        b"<D:displayname/></D:prop></D:propfind>"
    )
    headers = {"Depth": "1", "Content-Type": 'application/xml; charset="utf-8"'}
    conn = serve.conn()
    try:
        start = time.perf_counter()
        response = conn.request("PROPFIND", f"/{MANY}/", body, headers)
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    answers = response.body.count(b"<D:response>") + response.body.count(b"<d:response>")
    if response.status != 207 or answers != files + 1:
        raise HttpError(f"PROPFIND -> {response.status} with {answers} responses")
    return seconds


def webdav_round_trip(serve: Serve, size: int) -> tuple[float, float, int]:
    """PUT ``size`` bytes, GET them back checked; seconds of each and the RSS growth."""
    name = "/webdav-big.bin"
    blocks = (chunk(i)[: min(MiB, size - i * MiB)] for i in range(math.ceil(size / MiB)))
    bad = [0]

    def check(index: int, block: memoryview) -> None:
        bad[0] += not chunk_ok(index, block)

    conn = serve.conn()
    try:
        with RssSampler(serve.child.pid, baseline=serve.idle_rss) as rss:
            start = time.perf_counter()
            answer = conn.put_stream(name, size, blocks)
            put = time.perf_counter() - start
            if answer.status not in (200, 201, 204):
                raise HttpError(f"PUT -> {answer.status} {answer.body[:300]!r}")
            start = time.perf_counter()
            got = conn.get_stream(name, check)
            get = time.perf_counter() - start
        if got != size or bad[0]:
            raise HttpError(f"GET returned {got} bytes of {size}, {bad[0]} bad blocks")
        conn.request("DELETE", name)
    finally:
        conn.close()
    return put, get, rss.growth


# --------------------------------------------------------------------------- driver


class Run:
    def __init__(self, args: argparse.Namespace, base: Path, moto: Moto) -> None:
        self.args = args
        self.base = base
        self.moto = moto
        self.mounts = [Mount(name, base, moto) for name in COLUMNS]
        self.failures: list[str] = []

    def attempt(self, who: str, what: str, fn: Any, *fn_args: Any) -> Any:
        try:
            return fn(*fn_args)
        except (OSError, HttpError, subprocess.SubprocessError, RuntimeError) as exc:
            self.failures.append(f"{who}: {what}: {exc}")
            return None

    def listings_and_reads(self) -> None:
        files, size = self.args.files, self.args.size_mib * MiB
        cold: dict[str, list[float]] = {m.name: [] for m in self.mounts}
        warm: dict[str, list[float]] = {m.name: [] for m in self.mounts}
        reads: dict[str, list[float]] = {m.name: [] for m in self.mounts}
        for rep in range(self.args.reps):
            order = self.mounts if rep % 2 == 0 else list(reversed(self.mounts))
            print(f"round {rep + 1} of {self.args.reps}: fresh mounts")
            with mounted(order):
                for mount in order:
                    with self.moto.recording() as counts:
                        seconds = self.attempt(mount.name, "ls cold", ls_l, mount, files)
                    if seconds is None:
                        continue
                    cold[mount.name].append(seconds)
                    for _ in range(3):
                        again = self.attempt(mount.name, "ls warm", ls_l, mount, files)
                        if again is not None:
                            warm[mount.name].append(again)
                    if rep == 0:
                        mount.results["ls_lists"] = counts["ListObjectsV2"] + counts["ListObjects"]
                        mount.results["ls_heads"] = counts["HeadObject"]
                        mount.results["ls_requests"] = sum(counts.values())
                        mount.results["rss_idle_mib"] = (mount.idle_rss or 0) / MiB
                    print(
                        f"  {mount.name:9} ls -l cold {seconds:.3f} s, warm "
                        f"{min(warm[mount.name], default=0):.3f} s, S3 requests {dict(counts)}"
                    )
                for mount in order:
                    with self.moto.recording() as counts:
                        seconds = self.attempt(mount.name, "read", read_back, mount.mnt / BIG, size)
                    if seconds is not None:
                        reads[mount.name].append(size / seconds / 1e6)
                        if rep == 0:
                            mount.results["read_gets"] = counts["GetObject"]
                        print(
                            f"  {mount.name:9} read {size / seconds / 1e6:8.1f} MB/s, "
                            f"S3 requests {dict(counts)}"
                        )
        for mount in self.mounts:
            mount.results["ls_cold_s"] = min(cold[mount.name], default=None)
            mount.results["ls_warm_s"] = min(warm[mount.name], default=None)
            mount.results["read_mbps"] = max(reads[mount.name], default=None)

    def webdav(self) -> None:
        davstore = self.mounts[0]
        serve = Serve(self.base, self.moto)
        try:
            serve.start()
            with self.moto.recording() as counts:
                seconds = self.attempt("davstore", "PROPFIND", propfind, serve, self.args.files)
            if seconds is not None:
                davstore.results["propfind_cold_s"] = seconds
                davstore.results["propfind_lists"] = counts["ListObjectsV2"] + counts["ListObjects"]
                davstore.results["propfind_heads"] = counts["HeadObject"]
                davstore.results["propfind_requests"] = sum(counts.values())
                again = [propfind(serve, self.args.files) for _ in range(3)]
                davstore.results["propfind_warm_s"] = min(again)
                print(f"  PROPFIND cold {seconds:.3f} s, S3 requests {dict(counts)}")
            size = self.args.big_mib * MiB
            res = self.attempt("davstore", "WebDAV 1 GiB", webdav_round_trip, serve, size)
            if res is not None:
                put, get, growth = res
                davstore.results["webdav_put_mbps"] = size / put / 1e6
                davstore.results["webdav_get_mbps"] = size / get / 1e6
                davstore.results["rss_webdav_mib"] = growth / MiB
                print(
                    f"  WebDAV PUT {size / put / 1e6:.1f} MB/s, GET {size / get / 1e6:.1f} MB/s, "
                    f"RSS +{growth / MiB:.1f} MiB"
                )
        finally:
            serve.child.stop(timeout=30)

    def fuse_big(self) -> None:
        size = self.args.big_mib * MiB
        with mounted(self.mounts):
            for mount in self.mounts:
                assert mount.child is not None
                path = mount.mnt / f"{mount.name}-big.bin"
                try:
                    with RssSampler(mount.child.pid, baseline=mount.idle_rss) as rss:
                        wrote = write_out(path, size)
                        with self.moto.recording() as counts:
                            read = read_back(path, size)
                    mount.results["fuse_write_mbps"] = size / wrote / 1e6
                    mount.results["fuse_read_mbps"] = size / read / 1e6
                    mount.results["fuse_read_gets"] = counts["GetObject"]
                    mount.results["fuse_read_lists"] = (
                        counts["ListObjectsV2"] + counts["ListObjects"]
                    )
                    mount.results["rss_fuse_mib"] = rss.growth / MiB
                    print(
                        f"  {mount.name:9} write {size / wrote / 1e6:.1f} MB/s, read back "
                        f"{size / read / 1e6:.1f} MB/s, RSS +{rss.growth / MiB:.1f} MiB, "
                        f"S3 requests of the read back {dict(counts)}"
                    )
                except OSError as exc:
                    self.failures.append(f"{mount.name}: FUSE {self.args.big_mib} MiB: {exc}")
                finally:
                    with contextlib.suppress(OSError):
                        path.unlink()


def run(args: argparse.Namespace) -> int:
    if shutil.which("s3fs") is None:
        print("s3fs is missing: apt-get install -y s3fs (the peer of this benchmark)")
        return 2
    if not Path("/dev/fuse").exists() or shutil.which("fusermount3") is None:
        print("no /dev/fuse or fusermount3: nothing to measure")
        return 2
    print(
        f"davstore on S3 (moto server) vs s3fs: {args.files} objects, {args.size_mib} MiB read, "
        f"{args.big_mib} MiB written and read back, {args.reps} rounds, {os.cpu_count()} CPUs"
    )
    with workdir("davstore-bench-s3-", keep=args.keep) as base:
        moto = Moto(base)
        run = Run(args, base, moto)
        try:
            moto.start()
            fill_bucket(moto, args.files, args.size_mib * MiB)
            print(f"ls -l of {args.files} objects and read of {args.size_mib} MiB")
            run.listings_and_reads()
            print(f"PROPFIND Depth 1 and {args.big_mib} MiB through davstore serve")
            run.webdav()
            print(f"{args.big_mib} MiB written and read back through the mounts")
            run.fuse_big()
        except (OSError, RuntimeError) as exc:
            run.failures.append(f"run: {exc}")
        finally:
            for mount in run.mounts:
                mount.stop()
            moto.child.stop()
        results = {m.name: m.results for m in run.mounts}
        print()
        rows = print_table(metrics(args.files), results, list(COLUMNS), [("davstore", "s3fs")])
        print(
            "MB = 10^6 bytes; ratios of times (s) are better below 1, of rates above 1.\n"
            "moto copies the whole object for every ranged GET: on it, fewer and larger\n"
            "ranges are cheaper than on S3 itself."
        )
        for failure in run.failures:
            print(f"FAILED: {failure}")
        payload: dict[str, Any] = {
            "benchmark": "s3",
            "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine_info(),
            "versions": {
                "s3fs": tool_version(["s3fs", "--version"]),
                "moto": tool_version([venv_tool("moto_server") or "moto_server", "--version"]),
            },
            "commands": {m.name: m.command() for m in run.mounts},
            "results": results,
            "rows": rows,
            "failures": run.failures,
        }
        path = save_results("s3", payload, args.results_dir)
        print(f"results written to {path}")
    return 1 if run.failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke test (~30 s)")
    p.add_argument("--files", type=int, help="objects in the listed folder (1000; quick 200)")
    p.add_argument("--size-mib", type=int, help="object read sequentially (256; quick 16)")
    p.add_argument("--big-mib", type=int, help="written and read back (1024; quick 16)")
    p.add_argument("--reps", type=int, help="rounds of fresh mounts (2; quick 1)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--results-dir", type=Path, help="where the JSON goes (benchmarks/results)")
    args = p.parse_args(argv)
    defaults = {"files": (1000, 200), "size_mib": (256, 16), "big_mib": (1024, 16), "reps": (2, 1)}
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
