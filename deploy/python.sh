# Sourced by quickstart.sh and tests/run.sh: the Python that .venv is made with.
#
# $PYTHON when set; else the distribution's /usr/bin/python3 when it is 3.11 or newer;
# else the first python3 on PATH. Debian's build (like the official Docker image that
# deploy/Dockerfile starts from) is compiled with profile-guided optimisation and
# link-time optimisation; an interpreter built without them (pyenv's default build, often
# first on PATH) costs a server about a sixth more CPU per request (benchmarks/README.md).
pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif [ -x /usr/bin/python3 ] \
        && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo /usr/bin/python3
    else
        echo python3
    fi
}
