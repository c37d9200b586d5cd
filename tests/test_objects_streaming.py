"""Archive streaming: bounded header reads, chunked inflate that resists bombs, deflate."""

from __future__ import annotations

import io
import stat
import struct
import tracemalloc
import zlib
from typing import Callable, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyostree.errors import ObjectError
from pyostree.objects import (
    CHUNK_SIZE,
    MAX_HEADER_SIZE,
    ArchiveDeflater,
    FileHeader,
    iter_archive,
    iter_inflate,
    parse_archive_header,
    parse_content_header,
)

REGULAR = FileHeader(0, 0, stat.S_IFREG | 0o644)
SYMLINK = FileHeader(0, 0, stat.S_IFLNK | 0o777, 0, "target")
GIB = 1 << 30


def _deflate(data: bytes, level: int = 6) -> bytes:
    deflater = ArchiveDeflater(level)
    return deflater.compress(data) + deflater.flush()


class ZeroBomb:
    """A raw-deflate stream of ``total`` zero bytes (``total`` a multiple of 1 MiB), served in
    pieces as it is read, counting how much of it the reader consumed. After a full flush
    deflate restarts from scratch, so one compressed MiB can be repeated."""

    def __init__(self, total: int) -> None:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        self._segment = deflater.compress(bytes(1 << 20)) + deflater.flush(zlib.Z_FULL_FLUSH)
        self._tail = deflater.flush()
        self._segments_left = total >> 20
        self._buffer = b""
        self.consumed = 0

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size and (self._segments_left or self._tail):
            if self._segments_left:
                self._segments_left -= 1
                self._buffer += self._segment
            else:
                self._buffer += self._tail
                self._tail = b""
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.consumed += len(out)
        return out


def test_zero_bomb_inflates_to_zeros() -> None:
    bomb = ZeroBomb(64 << 20)
    inflater = zlib.decompressobj(-15)
    produced = 0
    while not inflater.eof:
        data = bomb.read(1 << 16)
        assert data
        produced += len(inflater.decompress(data))
    assert produced == 64 << 20


def test_deflate_bomb_is_refused_early() -> None:
    bomb = ZeroBomb(GIB)
    sizes: List[int] = []
    with pytest.raises(ObjectError, match="inflates beyond its size 1000"):
        for chunk in iter_inflate(bomb.read, 1000):
            sizes.append(len(chunk))
    assert sum(sizes) <= 1000
    assert bomb.consumed <= 2 * CHUNK_SIZE


def test_deflate_bomb_against_a_large_declared_size() -> None:
    bomb = ZeroBomb(GIB)
    declared = 5 * CHUNK_SIZE
    total = 0
    with pytest.raises(ObjectError, match="inflates beyond"):
        for chunk in iter_inflate(bomb.read, declared):
            assert len(chunk) <= CHUNK_SIZE
            total += len(chunk)
    assert total <= declared
    assert bomb.consumed <= 4 * CHUNK_SIZE


def test_inflate_exact_stream_in_chunks() -> None:
    payload = bytes(range(256)) * 20_000  # 5 MB, several output chunks
    compressed = _deflate(payload)
    chunks = list(iter_inflate(io.BytesIO(compressed).read, len(payload)))
    assert len(chunks) >= 5 and all(len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == payload


def test_inflate_with_a_trickling_reader() -> None:
    payload = b"hello world " * 1000
    source = io.BytesIO(_deflate(payload))
    assert b"".join(iter_inflate(lambda n: source.read(1), len(payload))) == payload


def test_inflate_empty_file() -> None:
    assert list(iter_inflate(io.BytesIO(b"\x03\x00").read, 0)) == []


@pytest.mark.parametrize(
    ("stream", "size", "problem"),
    [
        (_deflate(b"hello"), 6, "is 5 bytes, header says 6"),
        (_deflate(b"hello"), 4, "inflates beyond its size 4"),
        (_deflate(b"hello")[:-2], 5, "truncated"),
        (b"", 0, "truncated after 0 of 0"),
        (_deflate(b"hello") + b"x", 5, "trailing data"),
        (b"\xff\xff\xff", 5, "corrupt"),
    ],
)
def test_inflate_rejects(stream: bytes, size: int, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        list(iter_inflate(io.BytesIO(stream).read, size))


def test_inflate_rejects_trailing_data_after_a_big_stream() -> None:
    payload = bytes(3 * CHUNK_SIZE)
    stream = _deflate(payload) + b"garbage"
    with pytest.raises(ObjectError, match="trailing data"):
        list(iter_inflate(io.BytesIO(stream).read, len(payload)))


def test_inflate_rejects_negative_size() -> None:
    with pytest.raises(ObjectError, match="negative payload size"):
        list(iter_inflate(io.BytesIO(b"\x03\x00").read, -1))


def test_parse_archive_header_leaves_reader_at_stream() -> None:
    data = b"".join(iter_archive(REGULAR, 5, [b"hel", b"lo"]))
    source = io.BytesIO(data)
    header, size = parse_archive_header(source.read)
    assert (header, size) == (REGULAR, 5)
    assert b"".join(iter_inflate(source.read, size)) == b"hello"


def test_parse_content_header() -> None:
    source = io.BytesIO(SYMLINK.framed() + b"rest")
    assert parse_content_header(source.read) == SYMLINK
    assert source.read() == b"rest"


def _reader(data: bytes) -> Callable[[int], bytes]:
    return io.BytesIO(data).read


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "truncated, 0 of 8"),
        (b"\x00\x00\x00\x1a\x00\x00", "truncated, 6 of 8"),
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", "size is zero"),
        (struct.pack(">I4x", MAX_HEADER_SIZE + 1), "exceeds the limit"),
        (struct.pack(">I4x", 0xFFFFFFFF), "exceeds the limit"),
        (REGULAR.to_archive_bytes(5)[:-1], "truncated, 25 of 26"),
    ],
)
def test_parse_archive_header_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        parse_archive_header(_reader(data))


def test_header_size_limit_is_inclusive() -> None:
    """A 1 MiB header is read (and then judged on its contents)."""
    data = struct.pack(">I4x", MAX_HEADER_SIZE) + bytes(MAX_HEADER_SIZE)
    with pytest.raises(ObjectError, match="not normal form"):
        parse_archive_header(_reader(data))


def test_iter_archive_checks_payload_size() -> None:
    with pytest.raises(ObjectError, match="longer than the declared size 2"):
        list(iter_archive(REGULAR, 2, [b"abc"]))
    with pytest.raises(ObjectError, match="payload is 1 bytes, declared size 2"):
        list(iter_archive(REGULAR, 2, [b"a"]))
    with pytest.raises(ObjectError, match="symlink content object has a payload"):
        list(iter_archive(SYMLINK, 0, [b"a"]))
    with pytest.raises(ObjectError, match="symlink with payload size 3"):
        list(iter_archive(SYMLINK, 3))


def test_deflater_levels() -> None:
    payload = b"abcdefgh" * 10_000 + bytes(range(256)) * 100
    for level in (1, 6, 9):
        compressed = _deflate(payload, level)
        assert compressed == zlib.compress(payload, level)[2:-4]
        assert b"".join(iter_inflate(_reader(compressed), len(payload))) == payload
    for bad in (0, 10):
        with pytest.raises(ObjectError, match="zlib level"):
            ArchiveDeflater(bad)


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=3000), max_size=8), st.integers(1, 9))
def test_archive_round_trip(chunks: List[bytes], level: int) -> None:
    payload = b"".join(chunks)
    data = b"".join(iter_archive(REGULAR, len(payload), chunks, level=level))
    source = io.BytesIO(data)
    header, size = parse_archive_header(source.read)
    assert header == REGULAR and size == len(payload)
    assert b"".join(iter_inflate(source.read, size)) == payload



@pytest.mark.parametrize(
    ("stream", "problem"),
    [(_deflate(b"hello") + b"junk", "trailing data"), (_deflate(b"hello")[:-1], "truncated")],
)
def test_last_chunk_is_only_released_after_the_end_checks(stream: bytes, problem: str) -> None:
    """A consumer that stops as soon as it has the declared size still hits the error."""
    chunks = iter_inflate(_reader(stream), 5)
    with pytest.raises(ObjectError, match=problem):
        next(chunks)


@pytest.mark.parametrize("parse", [FileHeader.from_bytes, FileHeader.from_archive_bytes])
def test_oversized_header_is_refused_before_it_is_copied(parse: Callable[..., object]) -> None:
    data = bytearray(8 * MAX_HEADER_SIZE)
    tracemalloc.start()
    try:
        with pytest.raises(ObjectError, match="exceeds the limit"):
            parse(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_HEADER_SIZE
