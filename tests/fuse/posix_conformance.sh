#!/usr/bin/env bash
# The POSIX conformance group alone (probes, pjdfstest, fsx: docs/FUSE.md, "Conformance"),
# so tests/run.sh can start it beside the rest of the suite:
#   bash tests/fuse/posix_conformance.sh & conformance=$!
#   pytest --ignore=tests/fuse/test_posix_suites.py --ignore=tests/fuse/test_probes.py "$@"
#   wait "$conformance"
# Arguments go to pytest. Needs root, /dev/fuse, moto and a C compiler.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec pytest -p no:cacheprovider tests/fuse/test_probes.py tests/fuse/test_posix_suites.py "$@"
