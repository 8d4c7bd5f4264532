"""davstore's WebDAV share side by side with Apache mod_dav, nginx + dav-ext, wsgidav and rclone.

Run: ``python benchmarks/webdav.py [--size-mib 1024] [--files 5000] [--roots tmpfs,disk] [--quick]``

All servers run at the same time on 127.0.0.1, each on its own copy of the same dataset in one
temporary folder of a root; the whole table runs on each root in turn (``--roots tmpfs,disk``:
/dev/shm, and the temporary folder checked not to be tmpfs; ``--data-dir`` names the one root).
Every measurement visits the servers in turn (round-robin, so drifts of a shared machine hit all
of them alike), prints the CPU the rest of the machine used during each turn
(``harness.OtherLoad``) and the table shows ratios against the peers, the targets of issues 2
and 25, and that other load's median/max per row. Apache (``apache2`` with mod_dav, mod_dav_fs
and mod_dav_lock, event MPM) and nginx (``nginx`` with ``libnginx-mod-http-dav-ext``) run from
configurations generated under the temporary folder, in the foreground, on 127.0.0.1; a peer
whose program is missing leaves its column ``n/a``. litmus runs against every server at the end
and its counts are printed. Results also go to benchmarks/results/webdav-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Child,
    Metric,
    MiB,
    OtherLoad,
    RssSampler,
    chunk,
    chunk_ok,
    filesystem_type,
    free_bytes,
    free_port,
    load_summary,
    machine_info,
    print_table,
    save_results,
    sync_disk,
    tool_version,
    tree_cpu,
    tree_pss,
    tree_rss,
    venv_tool,
    wait_until,
    workdir,
    write_big_file,
    write_small_files,
)
from rawhttp import (
    Connection,
    HttpError,
    RateResult,
    ResponseParser,
    build_request,
    run_concurrent,
)

T = TypeVar("T")

HOST = "127.0.0.1"
CURL = shutil.which("curl")
SERVERS = ("davstore", "apache", "nginx", "wsgidav", "rclone")
BIG = "big.bin"
MANY = "many"
#: Files for the 64 KiB and 1 MiB GET rows (``MID/<size>-<n>.bin``).
MID = "mid"
MID_SIZES = {"64k": 64 * 1024, "1m": MiB}
MID_FILES = 16
#: The C servers' programs and modules (Debian paths).
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
LITMUS = shutil.which("litmus")
LITMUS_SUMMARY = re.compile(
    r"<- summary for `(?P<suite>\w+)': of (?P<run>\d+) tests run: "
    r"(?P<passed>\d+) passed, (?P<failed>\d+) failed"
)

PROPFIND_ALLPROP = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
)
#: What file managers and rclone ask for in a listing.
PROPFIND_NAMED = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"<D:getcontenttype/></D:prop></D:propfind>"
)
_RESPONSE_TAG = re.compile(rb"<(?:[A-Za-z0-9_.-]+:)?response[\s>]")

#: The targets of issue 25: every row at least Apache mod_dav's; small requests at least
#: 0.5x nginx's and server CPU per request at most 2x nginx's; big GETs and 1 MiB GETs at
#: least the best C server's, big PUTs at least nginx's; PROPFIND at most 1.5x nginx's
#: time; RSS at rest at most 80 MiB, and back within 1.2x of that after the load.
_AT_LEAST_APACHE = (("ratio", 1.0, "apache"),)
METRICS = [
    Metric("get_mbps", "GET big file", "MB/s", True, ("ratio", 1.0), "apache|nginx"),
    Metric(
        "put_mbps", "PUT big file", "MB/s", True, ("ratio", 1.0), "nginx", also=_AT_LEAST_APACHE
    ),
    Metric("copy_mbps", "COPY big file (server side)", "MB/s", True, ("ratio", 1.0), "apache"),
    Metric("rss_get_mib", "RSS growth during GET", "MiB", False, ("max", 64.0), digits=1),
    Metric("rss_put_mib", "RSS growth during PUT", "MiB", False, ("max", 64.0), digits=1),
    Metric("rss_copy_mib", "RSS growth during COPY", "MiB", False, ("max", 64.0), digits=1),
    Metric(
        "propfind_allprop_s",
        "PROPFIND depth 1 allprop",
        "s",
        False,
        ("ratio", 1.5),
        "nginx",
        3,
        also=_AT_LEAST_APACHE,
    ),
    Metric(
        "propfind_named_s",
        "PROPFIND depth 1 5 props",
        "s",
        False,
        ("ratio", 1.5),
        "nginx",
        3,
        also=_AT_LEAST_APACHE,
    ),
    Metric("propfind_first_s", "PROPFIND allprop, first", "s", False, None, "nginx", 3),
    *(
        Metric(key, label, "req/s", True, ("ratio", 0.5), "nginx", 0, also=_AT_LEAST_APACHE)
        for key, label in (
            ("put1k_1_rps", "1 KiB PUT, 1 connection"),
            ("get1k_1_rps", "1 KiB GET, 1 connection"),
            ("put1k_n_rps", "1 KiB PUT, N connections"),
            ("get1k_n_rps", "1 KiB GET, N connections"),
        )
    ),
    Metric("get64k_n_rps", "64 KiB GET, N connections", "req/s", True, ("ratio", 1.0), "apache", 0),
    Metric(
        "get1m_n_rps", "1 MiB GET, N connections", "req/s", True, ("ratio", 1.0), "apache|nginx", 0
    ),
    Metric(
        "cpu_10k_get_s",
        "server CPU per 10,000 1 KiB GETs",
        "s",
        False,
        ("ratio", 2.0),
        "nginx",
        also=_AT_LEAST_APACHE,
    ),
    Metric("rss_idle_mib", "RSS at rest, all processes", "MiB", False, ("max", 80.0), digits=1),
    Metric("rss_after_mib", "RSS at rest after the load", "MiB", False, ("max", 96.0), digits=1),
    # What the processes hold together (shared pages counted once): no target of its own.
    Metric("pss_idle_mib", "PSS at rest, all processes", "MiB", False, None, digits=1),
    Metric("pss_after_mib", "PSS at rest after the load", "MiB", False, None, digits=1),
]

#: Apache httpd 2.4 with mod_dav_fs, event MPM, two child processes as davstore has two
#: workers; no access log (nor has nginx one here).
APACHE_CONF = """\
ServerRoot "{conf_dir}"
ServerName 127.0.0.1
Listen {host}:{port}
PidFile "{conf_dir}/httpd.pid"
DefaultRuntimeDir "{conf_dir}"
Mutex file:{conf_dir} default
ErrorLog "{conf_dir}/error.log"
LogLevel warn
{user}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule dav_module {modules}/mod_dav.so
LoadModule dav_fs_module {modules}/mod_dav_fs.so
LoadModule dav_lock_module {modules}/mod_dav_lock.so
StartServers 2
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 16
MaxSpareThreads 64
KeepAlive On
MaxKeepAliveRequests 0
LimitRequestBody 0
TypesConfig /etc/mime.types
DavLockDB "{conf_dir}/DavLock"
DocumentRoot "{root}"
<Directory />
    AllowOverride None
</Directory>
<Directory "{root}">
    Dav On
    Require all granted
</Directory>
"""

#: nginx with the dav and dav-ext modules: two worker processes, sendfile, no access log.
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 2;
{user}
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
load_module {dav_ext};
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_max_body_size 0;
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi;
    uwsgi_temp_path {conf_dir}/uwsgi;
    scgi_temp_path {conf_dir}/scgi;
    dav_ext_lock_zone zone=davlock:10m;
    server {{
        listen {host}:{port};
        root {root};
        dav_methods PUT DELETE MKCOL COPY MOVE;
        dav_ext_methods PROPFIND OPTIONS LOCK UNLOCK;
        dav_ext_lock zone=davlock;
        dav_access user:rw group:rw all:r;
        create_full_put_path on;
    }}
}}
"""


class Server:
    """One WebDAV server under test, with its own copy of the dataset."""

    def __init__(
        self, name: str, root: Path, port: int, cmd: list[str], env: dict[str, str], log: Path
    ) -> None:
        self.name = name
        self.root = root
        self.port = port
        self.child = Child(name, cmd, log, env=env)
        self.results: dict[str, float | None] = {}
        self.notes: list[str] = []
        self.idle_rss: int | None = None
        self.litmus = ""
        #: The machine's other load (cores) of each measured turn, per metric key.
        self.loads: dict[str, list[float]] = {}
        #: The other servers running beside this one (their CPU is other load in its turns).
        self.beside: list[Server] = []
        #: The shortest window an other-load figure is read over (``--load-window``).
        self.load_window = 0.2
        #: The client's CPU per request (µs) of each rate turn, per metric key.
        self.client_us: dict[str, list[float]] = {}

    def keep_client(self, key: str, result: RateResult) -> None:
        """Keep the client's CPU per request of one turn of the rate row ``key``."""
        if result.client_us is not None:
            self.client_us.setdefault(key, []).append(round(result.client_us, 1))

    def conn(self) -> Connection:
        return Connection(HOST, self.port)

    def start(self, timeout: float = 60.0) -> None:
        self.child.start()

        def ready() -> bool:
            conn = self.conn()
            try:
                return conn.request("OPTIONS", "/").status < 500
            finally:
                conn.close()

        wait_until(ready, timeout, "starting", self.child)

    @contextlib.contextmanager
    def turn(self, key: str) -> Iterator[OtherLoad]:
        """One measured turn of the row ``key``: the machine's other load during the block
        is kept under ``key`` once it ends without an exception."""
        services = [s.child.pid for s in self.beside if s.child.alive()]
        with OtherLoad(self.child.pid, services=services, min_seconds=self.load_window) as load:
            yield load
        self.loads.setdefault(key, []).append(load.cores)

    def load_text(self, key: str) -> str:
        """``other load 0.35 cores`` for the last turn of ``key``, for a progress line."""
        got = self.loads.get(key)
        return f"other load {got[-1]:.2f} cores" if got else "other load n/a"


def davstore_command() -> list[str] | None:
    """How to start davstore, or None while its CLI cannot serve yet."""
    candidates = []
    script = venv_tool("davstore")
    if script:
        candidates.append([script])
    candidates.append([sys.executable, "-m", "davstore"])
    for cmd in candidates:
        try:
            out = subprocess.run(
                [*cmd, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and "--anonymous" in out.stdout:
            return cmd
    return None


def make_servers(
    base: Path, seed: Path, names: list[str], *, davstore_workers: int = 1
) -> list[Server]:
    servers: list[Server] = []
    env = dict(os.environ)
    rclone_conf = base / "rclone.conf"
    rclone_conf.touch()
    env["RCLONE_CONFIG"] = str(rclone_conf)
    for name in names:
        root = base / name / "root"
        shutil.copytree(seed, root, copy_function=shutil.copyfile)
        port = free_port()
        log = base / name / "server.log"
        if name == "davstore":
            prefix = davstore_command()
            if prefix is None:
                print("davstore: `davstore serve` is not available yet; its column stays empty")
                continue
            state = base / name / "state"
            state.mkdir()
            cmd = [*prefix, "serve", str(root), "--anonymous", "--host", HOST, "--port", str(port)]
            cmd += ["--state-dir", str(state)] if "--state-dir" in _serve_help(prefix) else []
            if davstore_workers > 1 and "--workers" in _serve_help(prefix):
                cmd += ["--workers", str(davstore_workers)]
        elif name == "wsgidav":
            # Full class 2 as davstore offers it: dead properties and locks, default block size.
            conf = base / name / "wsgidav.json"
            conf.write_text(
                json.dumps(
                    {
                        "host": HOST,
                        "port": port,
                        "provider_mapping": {"/": str(root)},
                        "simple_dc": {"user_mapping": {"*": True}},
                        "property_manager": True,
                        "lock_storage": True,
                    }
                )
            )
            wsgidav = venv_tool("wsgidav") or "wsgidav"
            cmd = [wsgidav, "-c", str(conf)]
        elif name == "wsgidav-plain":
            wsgidav = venv_tool("wsgidav") or "wsgidav"
            cmd = [wsgidav, "--root", str(root), "--host", HOST, "--port", str(port)]
            cmd += ["--auth", "anonymous", "--no-config"]
        elif name == "rclone":
            cmd = ["rclone", "serve", "webdav", str(root), "--addr", f"{HOST}:{port}"]
        elif name in ("apache", "nginx"):
            made = _c_server_command(name, base / name, root, port)
            if made is None:
                continue
            cmd = made
        else:
            raise SystemExit(f"unknown server {name!r}")
        servers.append(Server(name, root, port, cmd, env, log))
    return servers


def _c_server_command(name: str, folder: Path, root: Path, port: int) -> list[str] | None:
    """The foreground command of Apache or nginx with a configuration written under
    ``folder``; None (and a note) when the program or its WebDAV module is missing."""
    conf_dir = folder / "conf"
    conf_dir.mkdir()
    as_root = os.geteuid() == 0
    if name == "apache":
        needed = [
            APACHE_MODULES / f"mod_{m}.so" for m in ("dav", "dav_fs", "dav_lock", "mpm_event")
        ]
        if not Path(APACHE).exists() or not all(p.exists() for p in needed):
            print("apache: apache2 with mod_dav_fs is not installed; its column stays n/a")
            return None
        user = ""
        if as_root:  # httpd refuses to serve as root: its children run as www-data
            user = "User www-data\nGroup www-data"
            for path in (root, conf_dir, *root.rglob("*")):
                shutil.chown(path, "www-data", "www-data")
            for above in (folder, folder.parent):  # the temporary folder is 0700
                above.chmod(above.stat().st_mode | 0o111)
        conf = conf_dir / "httpd.conf"
        conf.write_text(
            APACHE_CONF.format(
                conf_dir=conf_dir,
                host=HOST,
                port=port,
                root=root,
                user=user,
                modules=APACHE_MODULES,
            )
        )
        return [APACHE, "-f", str(conf), "-DFOREGROUND"]
    if not Path(NGINX).exists() or not NGINX_DAV_EXT.exists():
        print("nginx: nginx with the dav-ext module is not installed; its column stays n/a")
        return None
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            conf_dir=conf_dir,
            host=HOST,
            port=port,
            root=root,
            dav_ext=NGINX_DAV_EXT,
            user="user root;" if as_root else "",
        )
    )
    return [NGINX, "-c", str(conf), "-p", str(conf_dir), "-e", str(conf_dir / "error.log")]


_HELP_CACHE: dict[str, str] = {}


def _serve_help(prefix: list[str]) -> str:
    key = " ".join(prefix)
    if key not in _HELP_CACHE:
        out = subprocess.run(
            [*prefix, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        _HELP_CACHE[key] = out.stdout
    return _HELP_CACHE[key]


# --------------------------------------------------------------------------- measurements


def put_blocks(size: int) -> Iterator[bytes | memoryview]:
    buf = bytearray(chunk(0))
    view = memoryview(buf)
    left, index = size, 0
    while left > 0:
        buf[:8] = index.to_bytes(8, "big")
        n = min(MiB, left)
        yield view[:n]
        left -= n
        index += 1


def verify_get(server: Server, size: int) -> None:
    """Download the big file once, untimed, checking every MiB (also warms the server up)."""
    bad = [0]

    def check(index: int, block: memoryview) -> None:
        if not chunk_ok(index, block):
            bad[0] += 1

    conn = server.conn()
    try:
        got = conn.get_stream(f"/{BIG}", check)
    finally:
        conn.close()
    if got != size or bad[0]:
        raise HttpError(f"{server.name}: GET returned {got} bytes of {size}, {bad[0]} bad blocks")


def measure_get(server: Server, size: int) -> tuple[float, int]:
    """One timed GET of the big file by curl (a Python client tops out near 2.5 GB/s)."""
    if CURL is None:
        conn = server.conn()
        try:
            with (
                server.turn("get_mbps"),
                RssSampler(server.child.pid, baseline=server.idle_rss) as rss,
            ):
                start = time.perf_counter()
                got = conn.get_stream(f"/{BIG}", lambda index, block: None)
                seconds = time.perf_counter() - start
        finally:
            conn.close()
    else:
        url = f"http://{HOST}:{server.port}/{BIG}"
        cmd = [CURL, "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
        with (
            server.turn("get_mbps"),
            RssSampler(server.child.pid, baseline=server.idle_rss) as rss,
        ):
            out = subprocess.run(
                [*cmd, url], capture_output=True, text=True, timeout=600, check=False
            )
            code, got_text, seconds_text = [*out.stdout.split(), "", "", ""][:3]
            if out.returncode != 0 or code != "200":
                raise HttpError(f"{server.name}: curl GET -> {code} (rc {out.returncode})")
        got, seconds = int(got_text), float(seconds_text)
    if got != size:
        raise HttpError(f"{server.name}: GET returned {got} bytes of {size}")
    return seconds, rss.growth


def measure_put(server: Server, size: int, name: str) -> tuple[float, int]:
    conn = server.conn()
    try:
        with (
            server.turn("put_mbps"),
            RssSampler(server.child.pid, baseline=server.idle_rss) as rss,
        ):
            start = time.perf_counter()
            resp = conn.put_stream(f"/{name}", size, put_blocks(size))
            seconds = time.perf_counter() - start
    finally:
        conn.close()
    if resp.status not in (200, 201, 204):
        raise HttpError(f"{server.name}: PUT -> {resp.status} {resp.body[:300]!r}")
    path = server.root / name
    stored = path.stat().st_size
    if stored != size:
        raise HttpError(f"{server.name}: PUT stored {stored} bytes of {size}")
    with path.open("rb") as fh:
        last = (size - 1) // MiB
        for index in {0, last // 2, last}:
            fh.seek(index * MiB)
            if not chunk_ok(index, fh.read(8)):
                raise HttpError(f"{server.name}: PUT stored wrong bytes in MiB {index}")
    return seconds, rss.growth


def measure_copy(server: Server, size: int, name: str) -> tuple[float, int]:
    """One timed COPY of the big file to ``name`` (a new name): the server copies it on
    its own disk (WebDAV clients copy so, and davstore's trash keeps a replaced file's
    version so); the copy is checked, then deleted."""
    conn = server.conn()
    headers = {"Destination": f"http://{HOST}:{server.port}/{name}", "Overwrite": "T"}
    try:
        with (
            server.turn("copy_mbps"),
            RssSampler(server.child.pid, baseline=server.idle_rss) as rss,
        ):
            start = time.perf_counter()
            resp = conn.request("COPY", f"/{BIG}", headers=headers)
            seconds = time.perf_counter() - start
    finally:
        conn.close()
    if resp.status not in (201, 204):
        raise HttpError(f"{server.name}: COPY -> {resp.status} {resp.body[:300]!r}")
    path = server.root / name
    try:
        stored = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(((size - 1) // MiB) * MiB)
            last_ok = chunk_ok((size - 1) // MiB, fh.read(8))
    finally:
        delete(server, name)
    if stored != size or not last_ok:
        raise HttpError(f"{server.name}: COPY made {stored} bytes of {size}, or wrong ones")
    return seconds, rss.growth


def delete(server: Server, name: str) -> None:
    conn = server.conn()
    try:
        resp = conn.request("DELETE", f"/{name}")
    finally:
        conn.close()
    if resp.status not in (200, 204, 404):
        server.notes.append(f"DELETE {name} -> {resp.status}")


def measure_propfind(server: Server, key: str, body: bytes, files: int) -> float:
    conn = server.conn()
    headers = {"Depth": "1", "Content-Type": 'application/xml; charset="utf-8"'}
    try:
        with server.turn(key):
            start = time.perf_counter()
            resp = conn.request("PROPFIND", f"/{MANY}/", body, headers)
            seconds = time.perf_counter() - start
    finally:
        conn.close()
    entries = len(_RESPONSE_TAG.findall(resp.body))
    if resp.status != 207 or entries != files + 1:
        raise HttpError(
            f"{server.name}: PROPFIND -> {resp.status} with {entries} entries, "
            f"expected {files + 1}: {resp.body[:300]!r}"
        )
    return seconds


def _expect_put(method: str, parser: ResponseParser) -> bool:
    return parser.status in (200, 201, 204)


def _expect_get_1k(method: str, parser: ResponseParser) -> bool:
    return parser.status == 200 and parser.body_len == 1024


def measure_small(
    server: Server, folder: str, suffix: str, connections: int, count: int, seconds: float
) -> tuple[RateResult, RateResult]:
    """1 KiB PUTs of new files, then GETs of the files that were written (the turns of the
    rows ``put1k_{suffix}_rps`` and ``get1k_{suffix}_rps``)."""
    body = b"s" * 1024
    hostport = f"{HOST}:{server.port}"
    per_conn = max(1, count // connections)
    names = [
        [f"/{folder}/c{k:02d}-{i:05d}.txt" for i in range(per_conn)] for k in range(connections)
    ]
    puts = [
        [build_request("PUT", n, hostport, len(body)) + body for n in conn_names]
        for conn_names in names
    ]
    # Untimed warm-up: first requests import code and fill caches in every server.
    warm = [build_request("PUT", f"/{folder}/warm.tmp", hostport, len(body)) + body] * 10
    warm += [build_request("GET", f"/{folder}/warm.tmp", hostport, None)] * 10
    run_concurrent(HOST, server.port, 1, [warm], max_seconds=seconds, expect=_expect_put)
    delete(server, f"{folder}/warm.tmp")
    with server.turn(f"put1k_{suffix}_rps"):
        put = run_concurrent(
            HOST, server.port, connections, puts, max_seconds=seconds, expect=_expect_put
        )
    written = [n for n in sorted(os.listdir(server.root / folder)) if n.endswith(".txt")]
    if not written:
        return put, RateResult(0, 1, 0.0, "no file was written")
    gets = [
        [
            build_request(
                "GET", f"/{folder}/{written[(k * per_conn + i) % len(written)]}", hostport, None
            )
            for i in range(per_conn)
        ]
        for k in range(connections)
    ]
    with server.turn(f"get1k_{suffix}_rps"):
        get = run_concurrent(
            HOST, server.port, connections, gets, max_seconds=seconds, expect=_expect_get_1k
        )
    return put, get


def measure_cpu(
    server: Server, folder: str, connections: int, count: int, seconds: float
) -> float | None:
    """CPU seconds (all the server's processes, ``/proc/PID/stat``) per 10,000 GETs of the
    1 KiB files in ``folder``: ``count`` GETs on ``connections`` connections."""
    written = [n for n in sorted(os.listdir(server.root / folder)) if n.endswith(".txt")]
    if not written:
        return None
    hostport = f"{HOST}:{server.port}"
    per_conn = max(1, count // connections)
    gets = [
        [
            build_request(
                "GET", f"/{folder}/{written[(k * per_conn + i) % len(written)]}", hostport, None
            )
            for i in range(per_conn)
        ]
        for k in range(connections)
    ]
    with server.turn("cpu_10k_get_s"):
        before = tree_cpu(server.child.pid)
        got = run_concurrent(
            HOST, server.port, connections, gets, max_seconds=seconds, expect=_expect_get_1k
        )
        used = tree_cpu(server.child.pid) - before
    return used / got.done * 10_000 if got.done else None


def measure_mid(
    server: Server, kind: str, connections: int, count: int, seconds: float
) -> RateResult:
    """GETs of the ``kind`` files (64 KiB or 1 MiB) on ``connections`` connections."""
    size = MID_SIZES[kind]
    hostport = f"{HOST}:{server.port}"
    per_conn = max(1, count // connections)
    gets = [
        [
            build_request("GET", f"/{MID}/{kind}-{(k + i) % MID_FILES:02d}.bin", hostport, None)
            for i in range(per_conn)
        ]
        for k in range(connections)
    ]

    def expect(method: str, parser: ResponseParser) -> bool:
        return parser.status == 200 and parser.body_len == size

    with server.turn(f"get{kind}_n_rps"):
        return run_concurrent(
            HOST, server.port, connections, gets, max_seconds=seconds, expect=expect
        )


def run_litmus(server: Server, folder: Path) -> str:
    """litmus against ``server``: "passed/run" per suite and in all, or why not."""
    if LITMUS is None:
        return "litmus is not installed"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            [LITMUS, "--keep-going", f"http://{HOST}:{server.port}/"],
            cwd=folder,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "litmus did not finish in 300 s"
    found = list(LITMUS_SUMMARY.finditer(out.stdout + out.stderr))
    if not found:
        return "litmus printed no summary"
    run_total = sum(int(m["run"]) for m in found)
    passed = sum(int(m["passed"]) for m in found)
    suites = ", ".join(f"{m['suite']} {m['passed']}/{m['run']}" for m in found)
    return f"{passed}/{run_total} passed ({suites})"


# --------------------------------------------------------------------------- roots

ROOT_KINDS = ("tmpfs", "disk")
SHM = Path("/dev/shm")
#: Rows measured in the turns of another row: the RSS growth during the big transfers (the
#: first PROPFIND's is its row's first turn, see ``row_loads``).
LOAD_OF = {"rss_get_mib": "get_mbps", "rss_put_mib": "put_mbps", "rss_copy_mib": "copy_mbps"}


@dataclass(frozen=True, slots=True)
class Root:
    """A folder the servers' datasets go in: ``tmpfs`` (memory) or ``disk``."""

    name: str
    path: Path
    fstype: str


def dataset_bytes(args: argparse.Namespace, servers: int) -> int:
    """About the most one root holds at once: a copy of the dataset per server and the seed,
    one big PUT, and every server's 1 KiB files (a 4 KiB block each)."""
    block = 4096
    big = int(args.size_mib) * MiB
    mid = MID_FILES * sum(max(block, n) for n in MID_SIZES.values())
    per_copy = big + int(args.files) * block + mid
    small = 2 * int(args.small_reps) * (int(args.small_count) + 10) * block
    return (servers + 1) * per_copy + servers * small + big


def _root_folder(kind: str) -> tuple[Path | None, str]:
    """Where a root of ``kind`` goes on this machine, or None and why not."""
    if kind == "tmpfs":
        if not SHM.is_dir():
            return None, f"{SHM} does not exist"
        fstype = filesystem_type(SHM)
        if fstype != "tmpfs":
            return None, f"{SHM} is {fstype}, not tmpfs"
        return SHM, ""
    tried = []
    for folder in dict.fromkeys((Path(tempfile.gettempdir()), Path("/var/tmp"))):
        if folder.is_dir():
            fstype = filesystem_type(folder)
            if fstype != "tmpfs":
                return folder, ""
            tried.append(f"{folder} is tmpfs")
    return None, ", ".join(tried or ["no temporary folder"]) + "; name one with --data-dir"


def resolve_roots(args: argparse.Namespace, servers: int) -> list[Root]:
    """The roots to run on, in order: ``--data-dir`` alone, else ``--roots`` (each checked),
    else tmpfs and disk where this machine has them (the first one only with ``--quick``)."""
    need = dataset_bytes(args, servers)
    if args.data_dir is not None:
        if args.roots is not None:
            raise SystemExit("--data-dir names the one root; leave --roots out")
        if not args.data_dir.is_dir():
            raise SystemExit(f"--data-dir {args.data_dir}: not a folder")
        fstype = filesystem_type(args.data_dir)
        return [Root("tmpfs" if fstype == "tmpfs" else "disk", args.data_dir, fstype)]
    explicit = args.roots is not None
    kinds = [k.strip() for k in (args.roots or ",".join(ROOT_KINDS)).split(",") if k.strip()]
    for kind in kinds:
        if kind not in ROOT_KINDS:
            raise SystemExit(f"--roots: {kind!r} is not one of {', '.join(ROOT_KINDS)}")
    if len(set(kinds)) != len(kinds) or not kinds:
        raise SystemExit(f"--roots {args.roots}: name each of {', '.join(ROOT_KINDS)} once")
    roots: list[Root] = []
    for kind in kinds:
        folder, why = _root_folder(kind)
        if folder is not None and free_bytes(folder) < need:
            why = (
                f"{folder} has {free_bytes(folder) / MiB:,.0f} MiB free, the dataset needs "
                f"about {need / MiB:,.0f} MiB"
            )
            folder = None
        if folder is None:
            if explicit:
                raise SystemExit(f"--roots {kind}: {why}")
            print(f"{kind} root left out: {why}")
            continue
        roots.append(Root(kind, folder, filesystem_type(folder)))
    if not roots:
        raise SystemExit("no root to run on; name a folder with --data-dir")
    return roots if explicit or not args.quick else roots[:1]


# --------------------------------------------------------------------------- driver


def row_loads(server: Server, key: str) -> list[float]:
    """The other load (cores) of each of ``server``'s turns that measured the row ``key``."""
    if key == "propfind_first_s":
        return server.loads.get("propfind_allprop_s", [])[:1]
    return server.loads.get(LOAD_OF.get(key, key), [])


def run(args: argparse.Namespace) -> int:
    size = args.size_mib * MiB
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    roots = resolve_roots(args, len(names))
    print(
        f"davstore WebDAV benchmark: {args.size_mib} MiB file, {args.files} files per folder, "
        f"{args.small_count} small requests or {args.small_seconds:g} s, "
        f"{args.connections} connections, {os.cpu_count()} CPUs, "
        f"davstore --workers {args.davstore_workers}"
    )
    for root in roots:
        print(f"root {root.name}: {root.path} ({root.fstype})")
    done: dict[str, dict[str, Any]] = {}
    for root in roots:
        print(f"\n=== {root.name} root: {root.path} ({root.fstype}) ===")
        done[root.name] = run_root(args, root, names, size)
    failures: list[str] = []
    for root in roots:
        got = done[root.name]
        print(f"\n{root.name} root: {root.path} ({root.fstype})")
        cells = {
            row: f"{r['median']:.2f}/{r['max']:.2f}"
            for row, r in got["row_loads"].items()
            if r["max"] is not None
        }
        rows = print_table(
            METRICS, got["results"], got["columns"], got["refs"], ("other load med/max", cells)
        )
        for row in rows:
            row["other_load"] = got["row_loads"][row["metric"]]
        got["rows"] = rows
        print("MB = 10^6 bytes; ratios of times (s) are better below 1, of rates above 1.")
        print(
            "other load: cores the rest of the machine kept busy during the row's turns (all "
            "CPUs' busy time minus the server's processes and this client's), median/max "
            "over every server's turns."
        )
        for name, counts in got["litmus"].items():
            if counts:
                print(f"litmus: {name}: {counts}")
        for name, notes in got["notes"].items():
            for note in notes:
                print(f"note: {name}: {note}")
        for failure in got["failures"]:
            print(f"FAILED: {root.name}: {failure}")
            failures.append(f"{root.name}: {failure}")
    payload: dict[str, Any] = {
        "benchmark": "webdav",
        "parameters": vars(args),
        "machine": machine_info(),
        "versions": {
            "rclone": tool_version(["rclone", "version"]),
            "wsgidav": tool_version([venv_tool("wsgidav") or "wsgidav", "--version"]),
            "apache": tool_version([APACHE, "-v"]),
            "nginx": tool_version([NGINX, "-v"]),
        },
        "roots": {
            name: {k: v for k, v in got.items() if k != "refs"} for name, got in done.items()
        },
        "failures": failures,
    }
    path = save_results("webdav", payload, args.results_dir)
    print(f"results written to {path}")
    return 1 if failures else 0


def run_root(args: argparse.Namespace, root: Root, names: list[str], size: int) -> dict[str, Any]:
    """The whole table on one root: datasets, servers, every row, litmus; what the table and
    the JSON file need."""
    load_average = os.getloadavg()
    with workdir("davstore-bench-webdav-", keep=args.keep, parent=root.path) as base:
        seed = base / "seed"
        seed.mkdir()
        t0 = time.monotonic()
        write_big_file(seed / BIG, size)
        write_small_files(seed / MANY, args.files, 1024)
        (seed / MID).mkdir()
        for kind, mid_size in MID_SIZES.items():
            for n in range(MID_FILES):
                (seed / MID / f"{kind}-{n:02d}.bin").write_bytes(os.urandom(mid_size))
        for rep in range(args.small_reps):  # made before the servers start (rclone caches)
            (seed / f"small1-{rep}").mkdir()
            (seed / f"smallN-{rep}").mkdir()
        servers = make_servers(base, seed, names, davstore_workers=args.davstore_workers)
        shutil.rmtree(seed)
        print(f"dataset ready in {time.monotonic() - t0:.1f} s under {base}")
        started: list[Server] = []
        failures: list[str] = []
        try:
            for server in servers:
                try:
                    server.start()
                    started.append(server)
                except RuntimeError as exc:
                    failures.append(f"{server.name} did not start: {exc}")
                    server.child.stop()
            for server in started:
                server.beside = [s for s in started if s is not server]
                server.load_window = args.load_window
                server.idle_rss = tree_rss(server.child.pid)
                server.results["rss_idle_mib"] = server.idle_rss / MiB
                server.results["pss_idle_mib"] = _mib(tree_pss(server.child.pid))
            _run_measurements(started, args, size, failures)
            time.sleep(2)  # the load's last connections close
            for server in started:
                if server.child.alive():
                    server.results["rss_after_mib"] = tree_rss(server.child.pid) / MiB
                    server.results["pss_after_mib"] = _mib(tree_pss(server.child.pid))
            if args.litmus:
                print("litmus against each server")
                for server in started:
                    if server.child.alive():
                        counts = run_litmus(server, base / "litmus" / server.name)
                        server.litmus = counts
                        print(f"  {server.name:9} {counts}")
        finally:
            for server in servers:
                server.child.stop()
    results = {s.name: s.results for s in servers}
    for name in names:  # a peer that could not run shows n/a
        results.setdefault(name, {})
    every = [m.key for m in METRICS]
    row_loads_all = {
        key: load_summary([x for s in servers for x in row_loads(s, key)]) for key in every
    }
    turns = [x for s in servers for got in s.loads.values() for x in got]
    summary = load_summary(turns)
    if summary["max"] is not None:
        print(
            f"{root.name} root: the machine's other load over {summary['turns']} turns: "
            f"median {summary['median']:.2f}, max {summary['max']:.2f} cores"
        )
    return {
        "path": str(root.path),
        "filesystem": root.fstype,
        "load_average_at_start": load_average,
        "commands": {s.name: s.child.cmd for s in servers},
        "columns": names,
        "refs": [("davstore", c) for c in ("apache", "nginx", "rclone", "wsgidav") if c in names],
        "results": results,
        "row_loads": row_loads_all,
        "load_over_turns": summary,
        "other_load": {
            s.name: {
                key: load_summary(row_loads(s, key)) | {"cores": row_loads(s, key)}
                for key in every
                if row_loads(s, key)
            }
            for s in servers
        },
        "notes": {s.name: s.notes for s in servers},
        "client_us_per_request": {s.name: s.client_us for s in servers},
        "litmus": {s.name: s.litmus for s in servers},
        "failures": failures,
    }


def _client_text(result: RateResult) -> str:
    """``client 52 µs/req`` for a progress line: the client's CPU per request."""
    got = result.client_us
    return "client n/a" if got is None else f"client {got:.0f} µs/req"


def _mib(size: int | None) -> float | None:
    return None if size is None else size / MiB


def _guard(
    failures: list[str], server: Server, what: str, fn: Callable[..., T], *args: Any
) -> T | None:
    """Run one measurement; a failing server loses that figure, the others go on."""
    if not server.child.alive():
        return None
    try:
        return fn(*args)
    except (HttpError, OSError) as exc:
        failures.append(f"{server.name}: {what}: {exc}")
        if not server.child.alive():
            failures.append(f"{server.name} died:\n{server.child.log_tail()}")
    return None


def _put_and_delete(server: Server, size: int, name: str) -> tuple[float, int]:
    sync_disk()
    result = measure_put(server, size, name)
    delete(server, name)
    return result


def _run_measurements(
    servers: list[Server], args: argparse.Namespace, size: int, failures: list[str]
) -> None:
    for what, key in (("GET", "get"), ("PUT", "put"), ("COPY", "copy")):
        print(f"{what} {args.size_mib} MiB x {args.reps}")
        times: dict[str, list[float]] = {s.name: [] for s in servers}
        growths: dict[str, list[int]] = {s.name: [] for s in servers}
        if key == "get":
            for server in servers:
                _guard(failures, server, "GET (checked)", verify_get, server, size)
        for rep in range(args.reps):
            for server in servers:
                if key == "get":
                    res = _guard(failures, server, what, measure_get, server, size)
                elif key == "copy":
                    res = _guard(failures, server, what, measure_copy, server, size, "copy.bin")
                else:
                    name = f"put-{rep}.bin"
                    res = _guard(failures, server, what, _put_and_delete, server, size, name)
                if res is None:
                    continue
                seconds, growth = res
                times[server.name].append(seconds)
                growths[server.name].append(growth)
                print(
                    f"  {server.name:9} rep {rep}: {size / seconds / 1e6:8.1f} MB/s, "
                    f"RSS +{growth / MiB:.1f} MiB, {server.load_text(f'{key}_mbps')}"
                )
        for server in servers:
            if times[server.name]:
                server.results[f"{key}_mbps"] = size / min(times[server.name]) / 1e6
                server.results[f"rss_{key}_mib"] = max(growths[server.name]) / MiB

    print(f"PROPFIND depth 1 on {args.files} files x {args.propfind_reps}")
    for key, body in (
        ("propfind_allprop_s", PROPFIND_ALLPROP),
        ("propfind_named_s", PROPFIND_NAMED),
    ):
        times = {s.name: [] for s in servers}
        for rep in range(args.propfind_reps):
            for server in servers:
                seconds = _guard(
                    failures, server, key, measure_propfind, server, key, body, args.files
                )
                if seconds is not None:
                    times[server.name].append(seconds)
                    print(
                        f"  {server.name:9} rep {rep} {key}: {seconds:.3f} s, "
                        f"{server.load_text(key)}"
                    )
        for server in servers:
            got = times[server.name]
            if not got:
                continue
            server.results[key] = min(got)
            if key == "propfind_allprop_s":
                server.results["propfind_first_s"] = got[0]
            print(
                f"  {server.name:9} {key}: best {min(got):.3f} s, median "
                f"{statistics.median(got):.3f} s, first {got[0]:.3f} s"
            )

    for conns, folder, suffix in ((1, "small1", "1"), (args.connections, "smallN", "n")):
        print(
            f"1 KiB PUT then GET, {conns} connection(s), {args.small_count} requests "
            f"or {args.small_seconds:g} s, x {args.small_reps} (servers take turns; best counts)"
        )
        rates: dict[str, dict[str, list[float]]] = {s.name: {"PUT": [], "GET": []} for s in servers}
        for rep in range(args.small_reps):
            for server in servers:
                pair = _guard(
                    failures,
                    server,
                    f"1 KiB x{conns}",
                    measure_small,
                    server,
                    f"{folder}-{rep}",
                    suffix,
                    conns,
                    args.small_count,
                    args.small_seconds,
                )
                if pair is None:
                    continue
                for what, res in zip(("PUT", "GET"), pair, strict=True):
                    if res.done:
                        rates[server.name][what].append(res.rate)
                    extra = f", {res.errors} errors ({res.first_error})" if res.errors else ""
                    load = server.load_text(f"{what.lower()}1k_{suffix}_rps")
                    server.keep_client(f"{what.lower()}1k_{suffix}_rps", res)
                    print(
                        f"  {server.name:9} rep {rep} {what}: {res.done} in {res.seconds:.2f} s = "
                        f"{res.rate:.0f}/s{extra}, {_client_text(res)}, {load}"
                    )
                    if res.errors:
                        server.notes.append(
                            f"1 KiB {what} x{conns}: {res.errors} errors: {res.first_error}"
                        )
        for server in servers:
            for what in ("PUT", "GET"):
                got = rates[server.name][what]
                server.results[f"{what.lower()}1k_{suffix}_rps"] = max(got) if got else None

    print(
        f"server CPU per 10,000 1 KiB GETs: {args.cpu_requests} GETs on {args.connections} "
        f"connections x {args.small_reps} (the least counts)"
    )
    for server in servers:
        figures = []
        for rep in range(args.small_reps):
            got = _guard(
                failures,
                server,
                "CPU per GET",
                measure_cpu,
                server,
                "smallN-0",
                args.connections,
                args.cpu_requests,
                4 * args.small_seconds,
            )
            if got is not None:
                figures.append(got)
                print(
                    f"  {server.name:9} rep {rep}: {got:.2f} s, {server.load_text('cpu_10k_get_s')}"
                )
        if figures:
            server.results["cpu_10k_get_s"] = min(figures)
            print(f"  {server.name:9} least {min(figures):.2f} s")

    for kind, label in (("64k", "64 KiB"), ("1m", "1 MiB")):
        conns = args.connections
        print(f"{label} GET, {conns} connections, x {args.small_reps} (best counts)")
        best: dict[str, list[float]] = {s.name: [] for s in servers}
        for rep in range(args.small_reps):
            for server in servers:
                res = _guard(
                    failures,
                    server,
                    f"{label} GET",
                    measure_mid,
                    server,
                    kind,
                    conns,
                    args.small_count,
                    args.small_seconds,
                )
                if res is None:
                    continue
                if res.done:
                    best[server.name].append(res.rate)
                server.keep_client(f"get{kind}_n_rps", res)
                extra = f", {res.errors} errors ({res.first_error})" if res.errors else ""
                print(
                    f"  {server.name:9} rep {rep}: {res.done} in {res.seconds:.2f} s = "
                    f"{res.rate:.0f}/s{extra}, {_client_text(res)}, "
                    f"{server.load_text(f'get{kind}_n_rps')}"
                )
        for server in servers:
            got = best[server.name]
            server.results[f"get{kind}_n_rps"] = max(got) if got else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke test (~1 min)")
    p.add_argument("--size-mib", type=int, help="size of the big file (default 1024; quick 64)")
    p.add_argument(
        "--files", type=int, help="files in the PROPFIND folder (default 5000; quick 500)"
    )
    p.add_argument("--reps", type=int, help="GET/PUT repetitions, best counts (default 2; quick 1)")
    p.add_argument("--propfind-reps", type=int, help="PROPFIND repetitions (default 5; quick 2)")
    p.add_argument(
        "--small-count", type=int, help="1 KiB requests per phase (default 10000; quick 300)"
    )
    p.add_argument("--small-seconds", type=float, help="time limit per phase (default 10; quick 3)")
    p.add_argument(
        "--small-reps",
        type=int,
        help="1 KiB phases per server, taking turns; the best counts (default 5; quick 1)",
    )
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    p.add_argument(
        "--cpu-requests",
        type=int,
        default=10_000,
        help="1 KiB GETs whose server CPU is measured, per turn (10000)",
    )
    p.add_argument(
        "--davstore-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="davstore serve --workers (default: the CPUs, as Go's rclone uses every core)",
    )
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated: davstore, apache (mod_dav_fs), nginx (dav-ext), "
        "wsgidav (property+lock managers), wsgidav-plain (--no-config), rclone",
    )
    p.add_argument(
        "--litmus",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run litmus against every server at the end and print its counts (default on)",
    )
    p.add_argument(
        "--load-window",
        type=float,
        default=0.2,
        help="the shortest window the machine's other load of a turn is read over, in "
        "seconds (0.2; /proc/stat counts 10 ms ticks, so a shorter one reads noise)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument(
        "--roots",
        help="comma-separated roots the whole table runs on in turn: tmpfs (/dev/shm), disk "
        "(the temporary folder, checked not to be tmpfs); default both where the machine "
        "has them, with --quick the first one",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="the one root, in place of --roots: where the temporary dataset goes",
    )
    p.add_argument("--results-dir", type=Path, help="where the JSON goes (benchmarks/results)")
    args = p.parse_args(argv)
    defaults = {
        "size_mib": (1024, 64),
        "files": (5000, 500),
        "reps": (2, 1),
        "propfind_reps": (5, 2),
        "small_count": (10000, 300),
        "small_seconds": (10.0, 3.0),
        "small_reps": (5, 1),
    }
    for key, (full, quick) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
