"""verify_filez_bytes: the one-call check of a whole ``.filez`` must accept exactly what the
streaming path (parse_archive_header + iter_inflate + content checksum) accepts."""

from __future__ import annotations

import io
import stat
import struct
import zlib
from typing import List, Optional

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyostree.errors import ChecksumMismatchError, ObjectError
from pyostree.objects import FileHeader, iter_inflate, parse_archive_header
from pyostree.objects.content import (
    WHOLE_INFLATE_LIMIT,
    FilezHeaderCache,
    content_checksum,
    verify_filez_bytes,
)

REG = FileHeader(uid=0, gid=0, mode=stat.S_IFREG | 0o644)
LINK = FileHeader(uid=0, gid=0, mode=stat.S_IFLNK | 0o777, symlink_target="target")


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _filez(header: FileHeader, payload: bytes, size: Optional[int] = None) -> bytes:
    body = _deflate(payload) if header.is_regular else b""
    return header.to_archive_bytes(len(payload) if size is None else size) + body


def _streaming(data: bytes) -> str:
    """The reference: what write_raw's streaming path computes, or raises."""
    source = io.BytesIO(data)
    header, size = parse_archive_header(source.read)
    if header.is_regular:
        return content_checksum(header, iter_inflate(source.read, size))
    if source.read(1):
        raise ObjectError("archive symlink object has data after its header")
    return content_checksum(header)


def test_accepts_a_regular_file_and_returns_its_header() -> None:
    data = _filez(REG, b"hello world\n" * 100)
    checksum = content_checksum(REG, [b"hello world\n" * 100])
    assert verify_filez_bytes(data, checksum) == REG


def test_accepts_an_empty_file_and_a_symlink() -> None:
    assert verify_filez_bytes(_filez(REG, b""), content_checksum(REG)) == REG
    assert verify_filez_bytes(_filez(LINK, b""), content_checksum(LINK)) == LINK


def test_wrong_checksum_is_a_mismatch() -> None:
    data = _filez(REG, b"abc")
    with pytest.raises(ChecksumMismatchError, match="checksum expected="):
        verify_filez_bytes(data, "00" * 32)


def test_payload_beyond_the_whole_limit_is_left_to_streaming() -> None:
    header_only = REG.to_archive_bytes(WHOLE_INFLATE_LIMIT + 1) + b"\x03\x00"
    assert verify_filez_bytes(header_only, "00" * 32) is None


GOOD = _filez(REG, b"x" * 1000)
GOOD_SUM = content_checksum(REG, [b"x" * 1000])
SIZE_AT = 8  # the archive header's u64 payload size


def _with_size(data: bytes, size: int) -> bytes:
    return data[:SIZE_AT] + struct.pack(">Q", size) + data[SIZE_AT + 8:]


@pytest.mark.parametrize("data, problem", [
    (b"", "truncated, 0 of 8"),
    (b"\x00\x00\x00", "truncated"),
    (b"\x00\x00\x00\x00\x00\x00\x00\x00", "size is zero"),
    (struct.pack(">I4x", (1 << 20) + 1), "exceeds the limit"),
    (GOOD[:12], "truncated"),
    (_with_size(GOOD, 999), "beyond its size 999"),
    (_with_size(GOOD, 1001), "is 1000 bytes, header says 1001"),
    (GOOD[:-3], "truncated"),
    (GOOD + b"junk", "trailing data"),
    (GOOD[:len(REG.to_archive_bytes(1000))] + b"\xff\xff\xff", "corrupt"),
    (_filez(LINK, b"") + b"x", "data after its header"),
    (_with_size(_filez(LINK, b""), 5), "symlink with payload size 5"),
    (REG.to_archive_bytes(3)[:-1] + b"\x07" + _deflate(b"abc"), "not normal form"),
])
def test_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        verify_filez_bytes(data, GOOD_SUM)
    with pytest.raises(ObjectError):
        _streaming(data) if data else _streaming(b"\x00")


def test_a_cached_header_still_checks_each_objects_size() -> None:
    cache = FilezHeaderCache()
    assert verify_filez_bytes(_filez(LINK, b""), content_checksum(LINK), cache) == LINK
    assert len(cache) == 1
    with pytest.raises(ObjectError, match="symlink with payload size 7"):
        verify_filez_bytes(_with_size(_filez(LINK, b""), 7), content_checksum(LINK), cache)
    other = b"other content"
    assert verify_filez_bytes(_filez(REG, other), content_checksum(REG, [other]), cache) == REG
    assert verify_filez_bytes(_filez(REG, b"again"), content_checksum(REG, [b"again"]), cache) == REG
    assert len(cache) == 2


def test_a_cached_header_is_not_trusted_for_other_bytes() -> None:
    cache = FilezHeaderCache()
    verify_filez_bytes(GOOD, GOOD_SUM, cache)
    owned = FileHeader(uid=1000, gid=1000, mode=stat.S_IFREG | 0o600)
    data = _filez(owned, b"x" * 1000)
    assert verify_filez_bytes(data, content_checksum(owned, [b"x" * 1000]), cache) == owned
    with pytest.raises(ChecksumMismatchError):
        verify_filez_bytes(data, GOOD_SUM, cache)


def test_only_verified_headers_are_cached() -> None:
    cache = FilezHeaderCache()
    owned = FileHeader(uid=1000, gid=1000, mode=stat.S_IFREG | 0o600)
    with pytest.raises(ChecksumMismatchError):
        verify_filez_bytes(_filez(owned, b"x"), GOOD_SUM, cache)
    big = _filez(REG, b"", size=WHOLE_INFLATE_LIMIT + 1)  # left to the stream: not checked
    assert verify_filez_bytes(big, GOOD_SUM, cache) is None
    assert len(cache) == 0 and cache.nbytes == 0


def test_the_cache_is_bounded_by_bytes() -> None:
    """Big headers (xattrs) are not kept at all; small ones up to the byte budget."""
    cache = FilezHeaderCache(max_bytes=64 << 10)
    big = FileHeader(uid=0, gid=0, mode=stat.S_IFREG | 0o644,
                     xattrs=((b"user.big\0", b"v" * (FilezHeaderCache.MAX_ENTRY + 1)),))
    assert verify_filez_bytes(_filez(big, b""), content_checksum(big), cache) == big
    assert len(cache) == 0
    for uid in range(200):
        header = FileHeader(uid=uid, gid=0, mode=stat.S_IFREG | 0o644,
                            xattrs=((b"user.small\0", b"v" * 200),))
        assert verify_filez_bytes(_filez(header, b""), content_checksum(header), cache) == header
    assert 0 < len(cache) < 200
    assert cache.nbytes <= cache.max_bytes


@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=300),
    symlink=st.booleans(),
    cut=st.integers(min_value=0, max_value=400),
    flip=st.integers(min_value=0, max_value=400),
    extra=st.binary(max_size=4),
    size_delta=st.sampled_from([0, 0, 0, -1, 1]),
)
@example(payload=b"", symlink=False, cut=1, flip=9, extra=b"", size_delta=0)  # a huge size
def test_agrees_with_the_streaming_path(payload: bytes, symlink: bool, cut: int, flip: int,
                                        extra: bytes, size_delta: int) -> None:
    header = LINK if symlink else REG
    data = bytearray(_filez(header, b"" if symlink else payload))
    if size_delta and not symlink:
        data[:] = _with_size(bytes(data), max(0, len(payload) + size_delta))
    if flip < len(data) and flip % 3 == 0:
        data[flip] ^= 0x40
    if cut % 4 == 0:
        del data[cut // 4:]
    data += extra
    expected_sum = content_checksum(header, [] if symlink else [payload])
    try:
        reference: Optional[str] = _streaming(bytes(data))
    except ObjectError:
        reference = None
    caches: List[Optional[FilezHeaderCache]] = [None, FilezHeaderCache()]
    for cache in caches:
        try:
            checked = verify_filez_bytes(bytes(data), expected_sum, cache)
            ours: Optional[str] = expected_sum
        except ChecksumMismatchError:
            ours = "mismatch"
        except ObjectError:
            ours = None
        else:
            if checked is None:  # declared too big to inflate whole: left to the stream
                assert int.from_bytes(bytes(data[8:16]), "big") > WHOLE_INFLATE_LIMIT
                continue
        if reference is None:
            assert ours is None
        elif reference == expected_sum:
            assert ours == expected_sum
        else:
            assert ours == "mismatch"
