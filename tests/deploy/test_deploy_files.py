"""Every file in deploy/ is checked: the Dockerfile by a small parser, compose and
Kubernetes YAML for consistent references, the systemd units with ``systemd-analyze
verify``, and the nginx configuration with ``nginx -t`` and by running nginx on loopback
in front of a real ``davstore serve`` (COPY and MOVE through the proxy, over TLS)."""

from __future__ import annotations

import py_compile
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import free_port
from tests.process import start_serve
from tests.replicas.webdav import if_header, lock, token_of, unlock

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent


# -- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs: comments dropped, continuation lines joined."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "a continuation line ends the file"
    pairs = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


KNOWN = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def test_dockerfile() -> None:
    pairs = dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
    words = [word for word, _ in pairs]
    assert set(words) <= KNOWN, set(words) - KNOWN
    assert words[0] == "FROM"
    args = dict(pairs)
    users = [rest for word, rest in pairs if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") < words.index("ENTRYPOINT")
    assert "/.davstore/health" in args["HEALTHCHECK"]
    assert args["HEALTHCHECK"].split()[-1] != "NONE"
    assert args["EXPOSE"] == "8080" and "8080" in args["ENTRYPOINT"]
    assert args["STOPSIGNAL"] == "SIGTERM"
    for word in ("ENTRYPOINT", "CMD"):
        assert isinstance(yaml.safe_load(args[word]), list), f"{word} in exec form"
    entry = yaml.safe_load(args["ENTRYPOINT"])
    assert entry[:2] == ["davstore", "serve"]
    # The options given exist in `davstore serve --help`.
    helptext = subprocess.run(
        [sys.executable, "-m", "davstore", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for option in (a for a in entry if a.startswith("--")):
        assert option in helptext, option
    for word, rest in pairs:
        if word == "COPY":
            *sources, _target = shlex.split(rest)
            for source in sources:
                assert (REPO / source).exists(), source  # build context: the repository
    assert "redis" in args["RUN"] and "s3" in args["RUN"]


# -- compose ----------------------------------------------------------------------------


def test_compose_file_is_consistent(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services: dict[str, Any] = compose["services"]
    assert {"site", "davstore-1", "davstore-2", "minio", "redis", "nginx"} <= set(services)
    declared_volumes = set(compose.get("volumes", {}))
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        depends = service.get("depends_on", {})
        assert set(depends) <= set(services), (name, depends)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists() or source == "./certs", (name, source)
            else:
                assert source in declared_volumes, (name, source)
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for replica in ("davstore-1", "davstore-2"):
        command = services[replica]["command"]
        urls = [
            command[i + 1]
            for i, a in enumerate(command)
            if a in ("--lock-storage", "--property-storage")
        ]
        assert urls == ["redis://redis:6379/0", "redis://redis:6379/0"]
        module = services[replica]["environment"]["DJANGO_SETTINGS_MODULE"]
        assert (DEPLOY / "example-site" / (module.replace(".", "/") + ".py")).is_file()
    nginx_conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    upstreams = set(re.findall(r"^\s*server\s+([\w.-]+):8080", nginx_conf, flags=re.MULTILINE))
    assert upstreams == {"davstore-1", "davstore-2"}
    assert any("nginx/nginx.conf" in v for v in services["nginx"]["volumes"])
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    for source in (DEPLOY / "example-site").rglob("*.py"):
        py_compile.compile(str(source), doraise=True, cfile=str(tmp_path / "compiled.pyc"))


# -- Kubernetes -------------------------------------------------------------------------


def test_kubernetes_manifests() -> None:
    documents = [
        d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "davstore.yaml").read_text()) if d
    ]
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {"Secret", "Deployment", "Service"}
    for document in documents:
        assert document["apiVersion"] and document["metadata"]["name"]
    secret, deployment, service = by_kind["Secret"], by_kind["Deployment"], by_kind["Service"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 25  # longer than davstore's grace period
    (container,) = pod["containers"]
    assert container["image"]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/.davstore/health"
        assert container[probe]["httpGet"]["port"] in port_names
    refs = {s["secretRef"]["name"] for s in container.get("envFrom", [])}
    assert refs == {secret["metadata"]["name"]}
    variables = set(re.findall(r"\$\((\w+)\)", " ".join(container["args"])))
    assert variables <= set(secret["stringData"])
    assert "redis://" in secret["stringData"]["REDIS_URL"]


# -- systemd ----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["davstore.service", "davstore-mount@.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("needs systemd-analyze (Debian package systemd)")
    davstore = Path(sys.executable).with_name("davstore")
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "ExecStart=/usr/local/bin/davstore " in text
    # verify checks that the programs exist: point it at this environment's davstore.
    (tmp_path / unit).write_text(text.replace("/usr/local/bin/davstore", str(davstore)))
    instance = unit.replace("@.", "@media.")
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / instance)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Unknown" not in checked.stderr and "Failed" not in checked.stderr, checked.stderr
    # The check has teeth: a unit naming a missing program fails.
    (tmp_path / "broken.service").write_text(text.replace("/usr/local/bin/davstore", "/nope"))
    broken = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "broken.service")],
        capture_output=True,
        check=False,
    )
    assert broken.returncode != 0


# -- nginx ------------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", "tls.key", "-out", "tls.crt", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / "tls.crt", folder / "tls.key"


def loopback_config(folder: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx/nginx.conf for this machine: listens on 127.0.0.1:port, proxies to the
    given local ports, keeps its files in ``folder``."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
    text, count = re.subn(r"(        server davstore-\d:8080[^\n]*\n)+", servers, text)
    assert count == 1
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("/etc/nginx/certs/", f"{folder}/")
    text = text.replace("worker_processes auto;", f"worker_processes 1;\npid {folder}/nginx.pid;")
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temp + f"    access_log {folder}/access.log;\n")
    config = folder / "nginx.conf"
    config.write_text(text)
    return config


def nginx_binary() -> str:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.fail("needs nginx (apt-get install nginx-light)")
    return binary


def test_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    make_certificate(tmp_path)
    config = loopback_config(tmp_path, free_port(), [free_port(), free_port()])
    checked = subprocess.run(
        [nginx_binary(), "-t", "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """nginx on 127.0.0.1 (TLS) in front of one davstore serve: (url, cert, shared folder)."""
    folder = tmp_path / "files"
    folder.mkdir()
    cert, _key = make_certificate(tmp_path)
    with start_serve(["--user", "alice:pw", str(folder)], cwd=tmp_path) as server:
        port = free_port()
        config = loopback_config(tmp_path, port, [server.port])
        nginx = subprocess.Popen(
            [nginx_binary(), "-c", str(config), "-e", str(tmp_path / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"https://127.0.0.1:{port}/"
            deadline = time.monotonic() + 15
            while True:
                try:
                    requests.get(url + ".davstore/health", verify=str(cert), timeout=2)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or nginx.poll() is not None:
                        raise
                    time.sleep(0.1)
            yield url, cert, folder
        finally:
            nginx.send_signal(signal.SIGTERM)
            nginx.wait(10)


def test_webdav_through_nginx(proxied: tuple[str, Path, Path]) -> None:
    url, cert, folder = proxied
    with requests.Session() as http:
        http.auth = ("alice", "pw")
        http.verify = str(cert)
        http.trust_env = False  # else REQUESTS_CA_BUNDLE wins over http.verify
        assert http.get(url + ".davstore/health").json()["status"] == "ok"
        assert http.get(url + ".davstore/metrics").status_code == 404  # not published
        big = b"b" * (3 << 20)  # larger than nginx's default 1 MiB body limit
        assert http.put(url + "big.bin", data=big).status_code == 201
        assert http.request("MKCOL", url + "dir").status_code == 201
        copied = http.request("COPY", url + "big.bin", headers={"Destination": url + "dir/c.bin"})
        assert copied.status_code == 201, copied.text
        moved = http.request("MOVE", url + "dir", headers={"Destination": url + "moved"})
        assert moved.status_code == 201, moved.text
        assert (folder / "moved" / "c.bin").read_bytes() == big
        taken = lock(http, url + "big.bin")
        assert taken.status_code == 200
        token = token_of(taken)
        assert http.put(url + "big.bin", data=b"x", headers=if_header(url + "big.bin", token)).ok
        assert unlock(http, url + "big.bin", token).status_code == 204
        listing = http.request("PROPFIND", url, headers={"Depth": "1"})
        assert listing.status_code == 207 and "moved" in listing.text
        assert http.request("BREW", url).status_code == 405
    # curl, as a person would, with the test-made certificate.
    got = subprocess.run(
        ["curl", "--silent", "--fail", "--cacert", str(cert), "-u", "alice:pw",
         "-X", "MOVE", "-H", f"Destination: {url}final.bin", url + "big.bin"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert (folder / "final.bin").read_bytes() == b"x"
