"""The request body's way from the event loop to the thread that reads it
(``_BodyPipe``): whatever pieces the loop gets from the socket, a ``read(size)`` is
exactly ``size`` bytes (fewer only at the end), in order, as a file's read is (wsgidav
reads an XML body in one call), without copying a byte twice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from davstore.http.server import _BodyPipe


class _Loop:
    """What the pipe tells the connection (flow control, 100 Continue): nothing here."""

    def resume_body(self) -> None:
        pass

    def body_wanted(self) -> None:
        pass


def _pipe(pieces: list[bytes]) -> _BodyPipe:
    pipe = _BodyPipe(_Loop())  # type: ignore[arg-type]
    for piece in pieces:
        pipe.feed(piece)
    pipe.end()
    return pipe


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=600), min_size=0, max_size=12),
    reads=st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=30),
)
def test_reads_of_any_size_over_pieces_of_any_size_give_the_body_in_order(
    sizes: list[int], reads: list[int]
) -> None:
    body = bytes(i % 251 for i in range(sum(sizes)))
    pieces, at = [], 0
    for size in sizes:
        pieces.append(body[at : at + size])
        at += size
    pipe = _pipe(pieces)
    got, left = [], len(body)
    for size in reads:
        data = pipe.read(size, timeout=1)
        assert type(data) is bytes
        assert len(data) == min(size, left)  # short only at the end
        assert pipe.size == left - len(data)
        got.append(data)
        left -= len(data)
    rest = pipe.read(-1, timeout=1)
    assert b"".join(got) + rest == body
    assert pipe.read(10, timeout=1) == b""


def test_a_read_that_fits_a_piece_hands_the_piece_over() -> None:
    piece = b"x" * 1000
    pipe = _pipe([piece, b"y" * 10])
    assert pipe.read(1000, timeout=1) is piece  # the piece itself, not a copy
    pipe = _pipe([b"a" * 300, b"b" * 300, b"c" * 300])
    assert pipe.read(500, timeout=1) == b"a" * 300 + b"b" * 200
    assert pipe.read(500, timeout=1) == b"b" * 100 + b"c" * 300
