"""One write handle taking many writes, reads and truncates: the file is what a bytearray
given the same calls holds (sequential writes skip the stage's seek; any jump seeks)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage
from hypothesis import given, settings
from hypothesis import strategies as st

from davstore.store import adapt
from davstore.vfs import VFS

STORAGES: dict[str, Callable[[str], Storage]] = {
    "filesystem": lambda root: FileSystemStorage(location=root),
    "memory": lambda root: InMemoryStorage(),
}

calls = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("pwrite"), st.binary(min_size=1, max_size=40), st.integers(0, 120)),
        st.tuples(st.just("pread"), st.integers(0, 50), st.integers(0, 120)),
        st.tuples(st.just("truncate"), st.integers(0, 120)),
        st.tuples(st.just("commit")),
    ),
    max_size=25,
)


def _apply(model: bytearray, data: bytes, offset: int) -> None:
    if offset > len(model):
        model.extend(bytes(offset - len(model)))
    model[offset : offset + len(data)] = data


@pytest.mark.parametrize("kind", sorted(STORAGES))
@settings(max_examples=60, deadline=None)
@given(start=st.binary(max_size=30), made=calls)
def test_the_file_is_what_the_calls_made(kind: str, start: bytes, made: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as root:
        vfs = VFS(adapt(STORAGES[kind](root)), cache_ttl=0)
        with vfs.open_write("f.bin") as handle:
            handle.write(start)
        model = bytearray(start)
        position = 0
        with vfs.open_write("f.bin", truncate=False) as handle:
            for call in made:
                if call[0] == "write":
                    _apply(model, call[1], position)
                    position += len(call[1])
                    assert handle.write(call[1]) == len(call[1])
                elif call[0] == "pwrite":
                    _apply(model, call[1], call[2])
                    assert handle.pwrite(call[1], call[2]) == len(call[1])
                elif call[0] == "pread":
                    size, offset = call[1], call[2]
                    assert handle.pread(size, offset) == bytes(model[offset : offset + size])
                elif call[0] == "truncate":
                    del model[call[1] :]
                    model.extend(bytes(call[1] - len(model)))
                    handle.truncate(call[1])
                else:
                    handle.commit()
                    with vfs.open_read("f.bin") as reader:
                        assert reader.read() == bytes(model)
        with vfs.open_read("f.bin") as reader:
            assert reader.read() == bytes(model)
