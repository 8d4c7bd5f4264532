#!/usr/bin/env bash
# Build and run the third-party POSIX suites davstore's mounts are checked with:
# pjdfstest (the POSIX file system test suite) and fsx (the file system exerciser).
# Neither is on a package registry; their sources are kept beside the clone, in
# ../shared/third_party/ (or wherever DAVSTORE_THIRD_PARTY points):
#   pjdfstest-85a8aea.tar.gz   github.com/pjd/pjdfstest, commit 85a8aea
#   fsx.c                      github.com/linux-test-project/ltp, commit 9001512e0,
#                              testcases/kernel/fs/fsx-linux/fsx-linux.c
#
#   tests/fuse/posix_suites.sh build                      # into .cache/third_party (gitignored)
#   tests/fuse/posix_suites.sh pjdfstest FOLDER [DIR...]  # prove each tests/DIR inside FOLDER
#   tests/fuse/posix_suites.sh fsx FILE [fsx options]     # e.g. -N 10000, -c 2
#
# pjdfstest wants root (it switches users). It needs only a C compiler and libc: config.h is
# written here for Linux/glibc instead of running autotools. tests/fuse/test_posix_suites.py
# mounts the shares and runs this; see docs/FUSE.md, "Conformance".
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
sources="${DAVSTORE_THIRD_PARTY:-$repo/../shared/third_party}"
build="${DAVSTORE_THIRD_PARTY_BUILD:-$repo/.cache/third_party}"
pjd_tarball="pjdfstest-85a8aea.tar.gz"

missing() {
    cat >&2 <<EOF
posix_suites.sh: $1 not found in $sources (set DAVSTORE_THIRD_PARTY to its folder).
Get the sources:
  pjdfstest: git clone https://github.com/pjd/pjdfstest && git -C pjdfstest archive \\
             --prefix=pjdfstest/ 85a8aea -o $pjd_tarball
  fsx:       testcases/kernel/fs/fsx-linux/fsx-linux.c of https://github.com/linux-test-project/ltp
             at commit 9001512e0, saved as fsx.c
EOF
    exit 2
}

build_all() {
    [ -f "$sources/$pjd_tarball" ] || missing "$pjd_tarball"
    [ -f "$sources/fsx.c" ] || missing "fsx.c"
    command -v cc >/dev/null || { echo "posix_suites.sh: no C compiler (apt-get install gcc)" >&2; exit 2; }
    mkdir -p "$build"
    local stamp="$build/.built-85a8aea"
    if [ ! -x "$build/pjdfstest/pjdfstest" ] || [ ! -f "$stamp" ]; then
        rm -rf "$build/pjdfstest"
        tar -xzf "$sources/$pjd_tarball" -C "$build"
        # What ./configure finds on Linux with glibc (no ACLs, no chflags, no lchmod).
        cat >"$build/pjdfstest/config.h" <<'EOF'
#define _GNU_SOURCE 1
#define HAVE_SYS_SYSMACROS_H 1
#define HAVE_FACCESSAT 1
#define HAVE_FCHMODAT 1
#define HAVE_FCHOWNAT 1
#define HAVE_FSTATAT 1
#define HAVE_LINKAT 1
#define HAVE_MKDIRAT 1
#define HAVE_MKFIFOAT 1
#define HAVE_MKNODAT 1
#define HAVE_OPENAT 1
#define HAVE_POSIX_FALLOCATE 1
#define HAVE_READLINKAT 1
#define HAVE_RENAMEAT 1
#define HAVE_SYMLINKAT 1
#define HAVE_UTIMENSAT 1
#define HAVE_STRUCT_STAT_ST_ATIM 1
#define HAVE_STRUCT_STAT_ST_CTIM 1
#define HAVE_STRUCT_STAT_ST_MTIM 1
EOF
        cc -O2 -Wall -I"$build/pjdfstest" -o "$build/pjdfstest/pjdfstest" \
            "$build/pjdfstest/pjdfstest.c"
        touch "$stamp"
    fi
    if [ ! -x "$build/fsx" ] || [ "$sources/fsx.c" -nt "$build/fsx" ]; then
        # fsx.c calls basename() without its header: the int it would return truncates
        # the pointer (a crash at start) unless libgen.h is included.
        cc -O2 -w -include libgen.h -o "$build/fsx" "$sources/fsx.c"
    fi
}

case "${1:-}" in
build)
    build_all
    echo "$build"
    ;;
pjdfstest)
    [ "$#" -ge 2 ] || { echo "usage: $0 pjdfstest FOLDER [DIR|DIR/NN.t ...]" >&2; exit 2; }
    build_all >/dev/null
    folder="$2"
    shift 2
    items=("$@")
    [ "${#items[@]}" -gt 0 ] || items=(chmod chown ftruncate link mkdir open rename rmdir unlink utimensat)
    files=()
    for item in "${items[@]}"; do
        if [ -d "$build/pjdfstest/tests/$item" ]; then
            for file in "$build/pjdfstest/tests/$item"/*.t; do
                # The ~1 PB truncates only when named: they fill a disk that takes the zeros.
                case "$file" in */ftruncate/12.t | */truncate/12.t) continue ;; esac
                files+=("$file")
            done
        else
            files+=("$build/pjdfstest/tests/$item")
        fi
    done
    cd "$folder"
    prove "${files[@]}"
    ;;
fsx)
    [ "$#" -ge 2 ] || { echo "usage: $0 fsx FILE [fsx options]" >&2; exit 2; }
    build_all >/dev/null
    file="$2"
    shift 2
    exec "$build/fsx" "$@" "$file"
    ;;
*)
    echo "usage: $0 build | pjdfstest FOLDER [DIR...] | fsx FILE [fsx options]" >&2
    exit 2
    ;;
esac
