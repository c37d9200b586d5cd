"""Object types, checksum helpers, xattrs, modes and ``ostree.sizes`` varints."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyostree.errors import ObjectError
from pyostree.objects import checksum as ck
from pyostree.objects._endian import swap32, swap64
from pyostree.objects.modes import (
    bare_user_only_mode,
    bare_user_storage_mode,
    validate_dir_mode,
    validate_file_mode,
)
from pyostree.objects.sizes import (
    SizeEntry,
    decode_varint,
    encode_varint,
    parse_sizes,
    sizes_metadata,
)
from pyostree.objects.types import ObjectType
from pyostree.objects.xattrs import canonical_xattrs, read_xattrs, validate_xattrs

HELLO = "44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b"


def test_object_type_numbers_and_extensions() -> None:
    assert [int(t) for t in ObjectType] == list(range(1, 10))
    assert ObjectType.FILE.extension() == "file"
    assert ObjectType.FILE.extension(archive=True) == "filez"
    assert ObjectType.DIR_TREE.extension(archive=True) == "dirtree"
    assert ObjectType.TOMBSTONE_COMMIT.extension() == "tombstone-commit"
    assert [t.is_meta for t in ObjectType] == [False, True, True, True, True, True, False, False,
                                                False]
    for objtype in ObjectType:
        for archive in (False, True):
            ext = objtype.extension(archive)
            assert ObjectType.from_extension(ext) == (objtype, archive and objtype is ObjectType.FILE)
    assert ObjectType.from_extension(".commit") == (ObjectType.COMMIT, False)
    with pytest.raises(ObjectError, match="unknown object extension 'commitz'"):
        ObjectType.from_extension("commitz")


def test_checksum_conversions() -> None:
    raw = bytes.fromhex(HELLO)
    assert ck.to_hex(raw) == HELLO
    assert ck.to_raw(HELLO) == raw
    assert ck.validate_checksum(HELLO) == HELLO
    assert ck.sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for bad in ("", HELLO[:-1], HELLO.upper(), HELLO[:-1] + "g", HELLO + "0"):
        assert not ck.is_checksum(bad)
        with pytest.raises(ObjectError, match="invalid checksum"):
            ck.validate_checksum(bad)
    with pytest.raises(ObjectError, match="invalid checksum length 31"):
        ck.to_hex(raw[:31])


@given(st.binary(min_size=32, max_size=32))
def test_mb64_round_trip(raw: bytes) -> None:
    text = ck.to_mb64(raw.hex())
    assert len(text) == 43 and "/" not in text and "=" not in text
    assert ck.from_mb64(text) == raw.hex()


def test_mb64_rejects_bad_input() -> None:
    good = ck.to_mb64(HELLO)
    for bad in (good[:-1], good + "A", good[:-1] + "!", good[:-1] + "B"):
        if bad == good:
            continue
        with pytest.raises(ObjectError, match="modified-base64"):
            ck.from_mb64(bad)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_swaps_are_involutions(small: int, big: int) -> None:
    assert swap32(swap32(small)) == small
    assert swap64(swap64(big)) == big
    assert swap32(small).to_bytes(4, "little") == small.to_bytes(4, "big")


def test_canonical_xattrs_sorts_adds_nul_drops_empty() -> None:
    result = canonical_xattrs([("user.zeta", b"Z"), (b"user.alpha", b"A1"), ("trusted.mid", b"")])
    assert result == ((b"user.alpha\0", b"A1"), (b"user.zeta\0", b"Z"))
    assert canonical_xattrs([("a", b"")], drop_empty=False) == ((b"a\0", b""),)
    with pytest.raises(ObjectError, match="given twice"):
        canonical_xattrs([("a", b"1"), (b"a\0", b"2")])


@pytest.mark.parametrize(
    ("xattrs", "problem"),
    [
        (((b"b\0", b""), (b"a\0", b"")), "sorted after"),
        (((b"a\0", b""), (b"a\0", b"")), "duplicate name"),
        (((b"\0", b"x"),), "empty name"),
        (((b"a", b"x"),), "lacks its trailing NUL"),
        (((b"a\0b\0", b"x"),), "contains NUL"),
        (((b"a\0",),), "not a \\(name, value\\) pair"),
        ((("a\0", b"x"),), "must be bytes"),
    ],
)
def test_validate_xattrs_rejects(xattrs: object, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        validate_xattrs(xattrs)  # type: ignore[arg-type]


def test_validate_xattrs_sorts_by_bytes() -> None:
    validate_xattrs(((b"B\0", b""), (b"a\0", b""), (b"\xc3\xa9\0", b"")))


def test_read_xattrs(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    try:
        os.setxattr(path, "user.zeta", b"Z")
        os.setxattr(path, "user.alpha", b"A1")
        os.setxattr(path, "user.empty", b"")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    assert read_xattrs(path) == ((b"user.alpha\0", b"A1"), (b"user.zeta\0", b"Z"))


def test_modes() -> None:
    validate_dir_mode(stat.S_IFDIR | 0o7777)
    validate_file_mode(stat.S_IFREG | 0o4755)
    validate_file_mode(stat.S_IFLNK | 0o777)
    with pytest.raises(ObjectError, match="is not a directory"):
        validate_dir_mode(stat.S_IFREG | 0o755)
    with pytest.raises(ObjectError, match="is not a regular file or symlink"):
        validate_file_mode(stat.S_IFDIR | 0o755)
    with pytest.raises(ObjectError, match="is not a regular file or symlink"):
        validate_file_mode(stat.S_IFIFO | 0o644)
    with pytest.raises(ObjectError, match="invalid bits 0o200000"):
        validate_file_mode(stat.S_IFREG | 0o200000 | 0o644)
    with pytest.raises(ObjectError, match="not a 32-bit unsigned integer"):
        validate_file_mode(1 << 32)
    assert bare_user_only_mode(stat.S_IFREG | 0o4777) == stat.S_IFREG | 0o755
    assert bare_user_only_mode(stat.S_IFDIR | 0o1777) == stat.S_IFDIR | 0o755
    assert bare_user_only_mode(stat.S_IFLNK | 0o777) == stat.S_IFLNK | 0o777
    assert bare_user_storage_mode(stat.S_IFREG | 0o4077) == stat.S_IFREG | 0o475
    assert bare_user_storage_mode(stat.S_IFLNK | 0o777) == stat.S_IFREG | 0o644


@given(st.integers(0, 2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert len(encoded) <= 10
    assert decode_varint(encoded + b"\xff") == (value, len(encoded))


def test_varint_known_answers_and_errors() -> None:
    assert encode_varint(0) == b"\0"
    assert encode_varint(300) == b"\xac\x02"
    with pytest.raises(ObjectError, match="unexpected end of varint"):
        decode_varint(b"\x80")
    with pytest.raises(ObjectError, match="longer than 10 bytes"):
        decode_varint(b"\x80" * 11)
    with pytest.raises(ObjectError, match="not a 64-bit"):
        encode_varint(-1)


def test_sizes_entry_spec_example() -> None:
    entry = SizeEntry(HELLO, 42, 6)
    data = entry.to_bytes()
    assert data == bytes.fromhex(HELLO) + b"\x2a\x06\x01"
    assert SizeEntry.from_bytes(data) == entry
    assert SizeEntry.from_bytes(data[:-1]) == entry  # old commits: no type byte
    assert SizeEntry.from_bytes(data + b"junk") == entry  # libostree ignores the rest
    assert SizeEntry.from_bytes(data[:-1] + b"\x02").objtype is ObjectType.DIR_TREE
    with pytest.raises(ObjectError, match="unexpected object type 0"):
        SizeEntry.from_bytes(data[:-1] + b"\x00")
    with pytest.raises(ObjectError, match="too short"):
        SizeEntry.from_bytes(data[:33])
    other = SizeEntry("00" * 32, 1, 2, ObjectType.DIR_META)
    type_string, value = sizes_metadata([entry, other])
    assert type_string == "aay" and value[0] == other.to_bytes()
    assert parse_sizes(value) == [other, entry]


def test_read_xattrs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ObjectError, match="cannot list xattrs of .*missing.*No such file"):
        read_xattrs(tmp_path / "missing")


def test_read_xattrs_of_a_symlink_itself(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"")
    try:
        os.setxattr(target, "user.t", b"1")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    os.symlink("target", tmp_path / "link")
    assert read_xattrs(tmp_path / "link") == ()
    assert read_xattrs(tmp_path / "link", follow_symlinks=True) == ((b"user.t\0", b"1"),)
