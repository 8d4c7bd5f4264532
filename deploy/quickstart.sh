#!/usr/bin/env bash
# Quick start: install davstore into .venv (next to this repository's pyproject.toml) and
# share ./media of the current folder over WebDAV on http://127.0.0.1:8080/ with a
# generated password. Extra arguments go to `davstore serve`, e.g.
#     bash deploy/quickstart.sh --port 9000
#     bash deploy/quickstart.sh /srv/files --read-only
# Safe to run again: it only installs what is missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
# shellcheck source=deploy/python.sh
source "$repo/deploy/python.sh"
python="$(pick_python)"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "quickstart: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}

if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "quickstart: installing python3-venv" >&2
    quietly as_root apt-get update
    quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "quickstart: creating $venv" >&2
    quietly "$python" -m venv "$venv"
fi

if ! "$venv/bin/python" -c 'import davstore.cli' 2>/dev/null \
    || [ "$repo/pyproject.toml" -nt "$venv/.davstore-installed" ]; then
    echo "quickstart: installing davstore into $venv" >&2
    quietly "$venv/bin/python" -m pip install --disable-pip-version-check -e "$repo"
    touch "$venv/.davstore-installed"
fi

exec "$venv/bin/davstore" serve "$@"
