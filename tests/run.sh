#!/usr/bin/env bash
# Set up everything the test suite needs and run all of it:
#   system packages through apt (litmus, rclone, Apache and nginx as benchmark peers, FUSE libraries, WebDAV clients),
#   Azurite through npm (into .cache/node),
#   Python packages in .venv (davstore editable, with the test and fuse extras),
#   then ruff, mypy and pytest. Arguments go to pytest:
#     bash tests/run.sh                 # everything
#     bash tests/run.sh tests/cli -x    # a part
# Safe to run again: it installs only what is missing. Fails on the first error.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$repo/.venv"
# shellcheck source=deploy/python.sh
source "$repo/deploy/python.sh"
python="$(pick_python)"
extras="${DAVSTORE_EXTRAS:-test,fuse}"

# System packages the tests drive (clients, compliance suite, FUSE, peers; a C compiler
# and perl for pjdfstest and fsx, built from ../shared/third_party).
packages=(
    python3-venv
    litmus
    rclone
    s3fs
    fuse3
    libfuse2
    libfuse3-3
    davfs2
    cadaver
    python3-caldav
    curl
    openssl
    git
    rsync
    vim
    chromium chromium-driver
    redis-server
    nginx-light
    nginx
    libnginx-mod-http-dav-ext
    apache2
    systemd
    gcc
    libc6-dev
    perl
)

step() { printf '==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "tests/run.sh: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    quietly as_root apt-get update
    quietly as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Azurite, the Azure Blob API server the Azure tests start, from the npm registry into
# .cache/node (gitignored). node and npm come from the image where it has them, else Debian.
azurite_version="3.37.0"
node_dir="$repo/.cache/node"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "apt-get install nodejs npm"
    quietly as_root apt-get update
    quietly as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends nodejs npm
fi
if [ "$("$node_dir/node_modules/.bin/azurite-blob" --version 2>/dev/null)" != "$azurite_version" ]; then
    step "npm install azurite@$azurite_version (.cache/node)"
    mkdir -p "$node_dir"
    quietly npm install --prefix "$node_dir" --no-audit --no-fund "azurite@$azurite_version"
fi

if [ ! -x "$venv/bin/python" ]; then
    step "python3 -m venv .venv"
    quietly "$python" -m venv "$venv"
fi
step "pip install -e .[$extras]"
quietly "$venv/bin/python" -m pip install --disable-pip-version-check -e ".[$extras]"

export PATH="$venv/bin:$PATH"
step "ruff"
ruff check davstore tests
ruff format --check davstore tests
step "mypy"
mypy
if [ "$#" -gt 0 ]; then
    step "pytest $*"
    pytest "$@"
else
    # pjdfstest and fsx (about 5 minutes, mostly waiting on the mounts they drive) and the
    # Django app's tests on the other supported LTS (Django 4.2: the nox matrix of
    # noxfile.py, in its own environment under .nox; about 4 minutes) run beside the rest
    # of the suite, which waits on its servers much of its 27 minutes; their output
    # follows the rest's.
    logs="$repo/.cache/run-logs"
    mkdir -p "$logs"
    step "pytest tests/fuse/test_posix_suites.py, beside the rest (.cache/run-logs/posix.log)"
    pytest -p no:cacheprovider --basetemp="$logs/posix-tmp" tests/fuse/test_posix_suites.py \
        >"$logs/posix.log" 2>&1 &
    posix=$!
    step "nox -s django-4.2, beside the rest (.cache/run-logs/nox.log)"
    nox --no-color -s django-4.2 -- --basetemp="$logs/nox-tmp" >"$logs/nox.log" 2>&1 &
    nox_run=$!
    step "pytest (the rest)"
    status=0
    pytest --ignore=tests/fuse/test_posix_suites.py || status=$?
    posix_status=0
    wait "$posix" || posix_status=$?
    step "pytest tests/fuse/test_posix_suites.py: exit $posix_status"
    cat "$logs/posix.log"
    nox_status=0
    wait "$nox_run" || nox_status=$?
    step "nox -s django-4.2: exit $nox_status"
    cat "$logs/nox.log"
    if [ "$status" -ne 0 ] || [ "$posix_status" -ne 0 ] || [ "$nox_status" -ne 0 ]; then
        exit 1
    fi
fi
