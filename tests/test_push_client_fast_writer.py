"""The copy-free raw writer the paramiko exec channel writes through."""

from __future__ import annotations

import array
import io
from typing import List

import pytest

from pyostree.transport._streams import ViewWriter


def test_view_writer_passes_flat_views_released_after_the_call() -> None:
    got: List[bytes] = []
    views: List[memoryview] = []

    def write(view: memoryview) -> None:
        assert view.format == "B" and view.ndim == 1
        got.append(bytes(view))
        views.append(view)

    stream = io.BufferedWriter(ViewWriter(write), buffer_size=16)
    ints = array.array("I", [1, 2, 3, 4, 5, 6, 7, 8])  # 32 bytes: passes the buffer by
    assert stream.write(b"abc") == 3
    assert stream.write(ints) == 32
    assert stream.write(b"0123456789" * 5) == 50
    stream.flush()
    assert b"".join(got) == b"abc" + ints.tobytes() + b"0123456789" * 5
    for view in views:
        with pytest.raises(ValueError):
            len(view)  # released: nobody can read a buffer BufferedWriter reuses
    got.clear()
    assert ViewWriter(write).write(ints) == 32  # bytes, not items, of a typed buffer
    assert got == [ints.tobytes()]


def test_view_writer_closes_once() -> None:
    closed: List[int] = []
    writer = ViewWriter(lambda view: None, lambda: closed.append(1))
    writer.close()
    writer.close()
    assert closed == [1]


class _RecordingChannel:
    """The calls the exec channel makes while writing, recorded."""

    def __init__(self, max_packet: object = None) -> None:
        if max_packet is not None:
            self.out_max_packet_size = max_packet
        self.sent: List[object] = []

    def sendall(self, data: object) -> None:
        self.sent.append(data)


@pytest.mark.parametrize(("max_packet", "step"), [(1088, 1024), (None, 32768 - 64), (10, 1024)])
def test_paramiko_stdin_sends_packet_sized_bytes(max_packet: object, step: int) -> None:
    from pyostree.transport.paramiko_vendor import ParamikoExecChannel

    fake = _RecordingChannel(max_packet)
    channel = ParamikoExecChannel(fake)
    big = bytes(range(256)) * 300  # 76800 bytes: bigger than BufferedWriter's buffer
    channel.stdin.write(b"head")
    channel.stdin.write(big)
    channel.stdin.flush()
    assert all(type(piece) is bytes for piece in fake.sent)
    pieces = [bytes(piece) for piece in fake.sent if isinstance(piece, bytes)]
    assert b"".join(pieces) == b"head" + big
    assert max(len(piece) for piece in pieces) == step
    # every write is cut at packet boundaries: only its last piece may be short
    assert pieces[0] == b"head"
    assert [len(p) for p in pieces[1:-1]] == [step] * (len(pieces) - 2)
