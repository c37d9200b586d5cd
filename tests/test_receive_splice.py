"""The receiver hands uncompressed OBJECTS payloads to its staging workers with
``splice``: from stdin straight into a worker's pipe, never through its own memory. These
tests pin the reader's side of that: exact byte counts, the bytes it had buffered going
first, the fallback when ``splice`` cannot be used, a non-blocking stdin, and a stream
that ends in the middle of a payload."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import struct
import threading
import time
from typing import Iterator, List, Tuple

import pytest

from pyostree.transport.wire import (
    DataCodec,
    FrameKind,
    FrameReader,
    IdleTimeoutReader,
    ProtocolError,
    RemoteError,
)

_HEAD = struct.Struct(">BI")


@pytest.fixture
def pipes() -> Iterator[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """(source read, source write), (sink read, sink write)."""
    source = os.pipe()
    sink = os.pipe()
    yield source, sink
    for fd in (*source, *sink):
        try:
            os.close(fd)
        except OSError:
            pass


def _drain(fd: int, size: int) -> bytes:
    parts: List[bytes] = []
    got = 0
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("use_splice", [True, False])
def test_splice_moves_exactly_the_payload_buffered_bytes_first(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]], use_splice: bool) -> None:
    (src_r, src_w), (sink_r, sink_w) = pipes
    reader = IdleTimeoutReader(src_r, 5, buffer_size=16)
    reader._splice = use_splice  # the fallback is a read and a write
    os.write(src_w, b"HEAD" + bytes(range(200)) + b"NEXT")
    assert reader.read(4) == b"HEAD"  # reads 16: 12 payload bytes stay buffered
    reader.splice_to(sink_w, 200)
    assert _drain(sink_r, 200) == bytes(range(200))
    assert reader.read(4) == b"NEXT"  # nothing past the payload was taken


def test_splice_falls_back_when_the_kernel_refuses(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    (src_r, src_w), (sink_r, sink_w) = pipes
    reader = IdleTimeoutReader(src_r, 5)
    calls: List[int] = []

    def refuse(src: int, dst: int, count: int, *args: object) -> int:
        calls.append(count)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "splice", refuse)
    os.write(src_w, b"x" * 1000)
    reader.splice_to(sink_w, 1000)
    assert _drain(sink_r, 1000) == b"x" * 1000
    assert calls == [1000] and not reader._splice  # asked once, then read and write


def test_splice_raises_when_the_stream_ends_inside_the_payload(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    (src_r, src_w), (sink_r, sink_w) = pipes
    reader = IdleTimeoutReader(src_r, 5)
    os.write(src_w, b"y" * 10)
    os.close(src_w)
    with pytest.raises(ProtocolError, match="middle of a frame"):
        reader.splice_to(sink_w, 11)


def test_splice_to_a_pipe_nobody_reads_is_a_broken_pipe(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    (src_r, src_w), (sink_r, sink_w) = pipes
    reader = IdleTimeoutReader(src_r, 5)
    os.write(src_w, b"z" * 10)
    os.close(sink_r)
    with pytest.raises(BrokenPipeError):
        reader.splice_to(sink_w, 10)


def test_a_non_blocking_stdin_waits_for_room_in_the_sink(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    """splice on a non-blocking fd does not block on a full sink either: the reader waits
    for room (polling the sink) rather than failing, losing bytes or spinning."""
    (src_r, src_w), (sink_r, sink_w) = pipes
    os.set_blocking(src_r, False)
    fcntl.fcntl(sink_w, fcntl.F_SETPIPE_SZ, 4096)
    size = 200_000
    payload = os.urandom(size)
    got: List[bytes] = []
    refused = [0]
    real_splice = os.splice

    def counting_splice(src: int, dst: int, count: int) -> int:
        try:
            return real_splice(src, dst, count)
        except BlockingIOError:
            refused[0] += 1
            raise

    def feed() -> None:
        os.write(src_w, payload[:65536])  # a full pipe from the start
        view = memoryview(payload)[65536:]
        while view:
            view = view[os.write(src_w, view[:8192]):]

    def consume() -> None:  # slowly: the sink is full most of the time
        parts: List[bytes] = []
        while sum(map(len, parts)) < size:
            time.sleep(0.002)
            parts.append(os.read(sink_r, 4096))
        got.append(b"".join(parts))

    monkeypatch.setattr(os, "splice", counting_splice)
    threads = [threading.Thread(target=feed), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    IdleTimeoutReader(src_r, 10).splice_to(sink_w, size)
    for thread in threads:
        thread.join(10)
    assert got == [payload]
    assert refused[0] < size // 4096 * 3, refused  # about one per wait for room, no spin


def test_read_unbuffered_leaves_the_rest_in_the_fd(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    (src_r, src_w), _sink = pipes
    reader = IdleTimeoutReader(src_r, 5, buffer_size=1 << 20)
    os.write(src_w, b"abcdefgh")
    assert reader.read_unbuffered(3) == b"abc"
    assert os.read(src_r, 100) == b"defgh"  # still there: nothing was read ahead


def test_frame_heads_read_exactly_then_the_payload_is_spliced(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    (src_r, src_w), (sink_r, sink_w) = pipes
    reader = FrameReader(IdleTimeoutReader(src_r, 5, buffer_size=1 << 20))
    assert reader.can_splice
    body = b"\x00" + b"B" * 5000  # a raw OBJECTS payload: flag byte, then the body
    os.write(src_w, _HEAD.pack(FrameKind.OBJECTS, len(body)) + body
             + _HEAD.pack(FrameKind.COMMIT, 0))
    kind, length = reader.expect_head(FrameKind.OBJECTS, exact=True)
    assert (kind, length) == (FrameKind.OBJECTS, 5001)
    flag = reader.read_payload(1, exact=True)
    assert DataCodec.raw_size(flag[0], length) == 5000
    reader.splice_payload(sink_w, 5000)
    assert _drain(sink_r, 5000) == b"B" * 5000
    assert reader.expect(FrameKind.COMMIT).payload == b""


def test_raw_size_refuses_what_decode_would() -> None:
    assert DataCodec.raw_size(0, 1 + (1 << 20)) == 1 << 20
    assert DataCodec.raw_size(0, 2 + (1 << 20)) is None  # over CHUNK_SIZE
    assert DataCodec.raw_size(1, 100) is None  # zstd
    assert DataCodec.raw_size(7, 100) is None  # unknown flag: decode says why


def test_frame_heads_are_checked_before_any_payload_is_read(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    (src_r, src_w), _sink = pipes
    reader = FrameReader(IdleTimeoutReader(src_r, 5))
    os.write(src_w, _HEAD.pack(FrameKind.OBJECTS, (1 << 20) + (64 << 10) + 1))
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        reader.read_head(exact=True)
    os.write(src_w, _HEAD.pack(99, 0))
    with pytest.raises(ProtocolError, match="unknown frame kind 99"):
        reader.read_head(exact=True)
    os.write(src_w, _HEAD.pack(FrameKind.ERROR, 17) + b'{"message":"no!"}')
    with pytest.raises(RemoteError, match="no!"):
        reader.expect_head(FrameKind.OBJECTS, exact=True)
    os.write(src_w, _HEAD.pack(FrameKind.DONE, 0))
    with pytest.raises(ProtocolError, match="expected OBJECTS, got DONE"):
        reader.expect_head(FrameKind.OBJECTS, exact=True)
    os.write(src_w, b"\x0f\x00")
    os.close(src_w)
    with pytest.raises(ProtocolError, match="middle of a frame"):
        reader.read_head(exact=True)


def test_a_stream_without_a_file_descriptor_is_copied_instead(
        pipes: Tuple[Tuple[int, int], Tuple[int, int]]) -> None:
    _source, (sink_r, sink_w) = pipes
    body = os.urandom(3000)
    reader = FrameReader(io.BytesIO(_HEAD.pack(FrameKind.OBJECTS, len(body)) + body))
    assert not reader.can_splice
    assert reader.expect_head(FrameKind.OBJECTS, exact=True) == (FrameKind.OBJECTS, 3000)
    reader.splice_payload(sink_w, 3000)
    assert _drain(sink_r, 3000) == body
