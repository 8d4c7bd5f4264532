"""Mounts made for the POSIX checks (probes, pjdfstest, fsx): one per store kind and test
module, with ``--allow-other`` so other users' calls get the permission answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.fuse.conftest import BACKENDS
from tests.fuse.mounting import MountProcess, start_mount
from tests.s3.moto import MotoServer, MotoServerError, new_bucket

__all__ = ["NOW_PASSING", "mounted"]

#: Lines for the end of the run: expected failures that passed (tests/fuse/conftest.py).
NOW_PASSING: list[str] = []


@contextlib.contextmanager
def mounted(
    kind: str, base: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[MountProcess]:
    """A mount of a new, empty share of ``kind`` (``filesystem``: a folder in ``base``;
    ``memory``; ``s3``: a bucket on a moto server of its own) under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if kind == "filesystem":
            root = base / "root"
            root.mkdir()
            args = [str(root)]
        elif kind == "s3":
            from tests.s3.test_fuse import mount_args

            moto = MotoServer()
            try:
                moto.start()
            except MotoServerError as exc:
                raise RuntimeError(str(exc)) from exc
            stack.callback(moto.stop)
            args = mount_args(moto, new_bucket(moto))
        else:
            args = list(BACKENDS[kind])
        mount = start_mount(base / "mnt", [*args, "--allow-other", *extra], base=base, env=env)
        try:
            yield mount
        finally:
            mount.stop()
            print(f"--- {kind} mount log ---\n{mount.output()[-20000:]}")  # shown on failure
