"""Known answers from ostree-format.md, all produced by the real ostree 2022.7."""

from __future__ import annotations

import stat

from pyostree.objects import (
    EMPTY_DIRTREE_CHECKSUM,
    Commit,
    DirEntry,
    DirMeta,
    DirTree,
    FileEntry,
    FileHeader,
    OstreeMeta,
    Tombstone,
    content_checksum,
    iter_archive,
    parse_ostreemeta,
)

HELLO = "44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b"
SYMLINK = "f66efa496a72379413c44593de510dc344beb045294f1a543da87b2b6118db35"
ABC = "98143b71b4ae07631ddbbeeddaf653d95390ba19854edb2d0d34767c784dbced"
ROOT_META = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
ROOT_TREE = "8ccfc998077ed40e5ef16ff5fa4384409e18c7bdcfcd840a02fb34bb383ca295"

HELLO_HEADER = FileHeader(0, 0, stat.S_IFREG | 0o644)
SYMLINK_HEADER = FileHeader(0, 0, stat.S_IFLNK | 0o777, 0, "hello.txt")
ABC_HEADER = FileHeader(
    1000, 1000, stat.S_IFREG | 0o640, 0, "",
    ((b"user.alpha\0", b"A1"), (b"user.zeta\0", b"Z")),
)


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_content_checksums() -> None:
    assert HELLO_HEADER.framed() == _hex(
        "00 00 00 12 00 00 00 00 00 00 00 00 00 00 00 00 00 00 81 a4 00 00 00 00 00 11"
    )
    assert content_checksum(HELLO_HEADER, [b"hel", b"lo\n"]) == HELLO
    assert SYMLINK_HEADER.framed() == _hex(
        "00 00 00 1b 00 00 00 00" + " 00" * 8 + " 00 00 a1 ff 00 00 00 00"
        " 68 65 6c 6c 6f 2e 74 78 74 00 1a"
    )
    assert SYMLINK_HEADER.checksum() == SYMLINK
    assert ABC_HEADER.framed() == _hex(
        "00 00 00 2e 00 00 00 00 00 00 03 e8 00 00 03 e8 00 00 81 a0 00 00 00 00 00"
        "75 73 65 72 2e 61 6c 70 68 61 00 41 31 0b 75 73 65 72 2e 7a 65 74 61 00 5a 0a 0e 1a 11"
    )
    assert ABC_HEADER.checksum([b"abc"]) == ABC


def test_hello_filez_is_byte_identical() -> None:
    expected = _hex(
        "00 00 00 1a 00 00 00 00 00 00 00 00 00 00 00 06"
        "00 00 00 00 00 00 00 00 00 00 81 a4 00 00 00 00 00 19 cb 48 cd c9 c9 e7 02 00"
    )
    assert len(expected) == 42
    assert b"".join(iter_archive(HELLO_HEADER, 6, [b"hello\n"])) == expected
    assert FileHeader.from_archive_bytes(expected[8:34]) == (HELLO_HEADER, 6)


def test_symlink_filez_has_no_stream_and_empty_file_has_one() -> None:
    data = b"".join(iter_archive(SYMLINK_HEADER, 0))
    assert len(data) == 43
    assert FileHeader.from_archive_bytes(data[8:]) == (SYMLINK_HEADER, 0)
    empty = b"".join(iter_archive(HELLO_HEADER, 0))
    assert empty.endswith(b"\x03\x00") and len(empty) == 34 + 2


def test_empty_dirtree_and_root_dirmeta() -> None:
    assert DirTree().to_bytes() == b"\x00"
    assert DirTree().checksum() == EMPTY_DIRTREE_CHECKSUM
    root = DirMeta(0, 0, stat.S_IFDIR | 0o755)
    assert root.to_bytes() == _hex("00 00 00 00 00 00 00 00 00 00 41 ed")
    assert root.checksum() == ROOT_META
    assert DirMeta.from_bytes(root.to_bytes()) == root


def test_dirmeta_with_xattr() -> None:
    meta = DirMeta(0, 0, stat.S_IFDIR | 0o755, ((b"user.dirattr\0", b"dv"),))
    expected = _hex("00 00 00 00 00 00 00 00 00 00 41 ed 75 73 65 72 2e 64 69 72 61 74 74 72 00"
                    "64 76 0d 10")
    assert meta.to_bytes() == expected
    assert DirMeta.from_bytes(expected) == meta


def test_sub_dirtree_layout() -> None:
    """The spec's ``sub/`` example; uplink's checksum is elided there, so use a stand-in."""
    uplink = "f9c591ce" + "00" * 28
    tree = DirTree(
        (FileEntry("abc", ABC), FileEntry("uplink", uplink)),
        (DirEntry("deeper", EMPTY_DIRTREE_CHECKSUM, ROOT_META),),
    )
    data = tree.to_bytes()
    assert len(data) == 154
    assert data[0:4] == b"abc\0" and data[4:0x24] == bytes.fromhex(ABC)
    assert data[0x24] == 0x04 and data[0x25:0x2C] == b"uplink\0"
    assert data[0x4C:0x4F] == b"\x07\x25\x4d"
    assert data[0x4F:0x56] == b"deeper\0"
    assert data[0x56:0x76] == bytes.fromhex(EMPTY_DIRTREE_CHECKSUM)
    assert data[0x76:0x96] == bytes.fromhex(ROOT_META)
    assert data[0x96:] == b"\x27\x07\x49\x4f"
    assert DirTree.from_bytes(data) == tree


def test_commit_158_bytes() -> None:
    expected = _hex(
        """
        76 65 72 73 69 6f 6e 00 31 2e 30 00 00 73 08 00
        6f 73 74 72 65 65 2e 72 65 66 2d 62 69 6e 64 69
        6e 67 00 00 00 00 00 00 74 65 73 74 2f 6d 61 69
        6e 00 0a 00 61 73 13 0f 37 49 6e 69 74 69 61 6c
        00 42 6f 64 79 20 74 65 78 74 00 00 00 00 00 00
        00 00 00 00 5e 0b e1 00 8c cf c9 98 07 7e d4 0e
        5e f1 6f f5 fa 43 84 40 9e 18 c7 bd cf cd 84 0a
        02 fb 34 bb 38 3c a2 95 44 6a 0e f1 1b 7c c1 67
        f3 b6 03 e5 85 c7 ee ee b6 75 fa a4 12 d5 ec 73
        f6 29 88 eb 0b 6c 54 88 78 4b 41 39 39 39
        """
    )
    commit = Commit(
        metadata={"version": ("s", "1.0"), "ostree.ref-binding": ("as", ["test/main"])},
        parent=None,
        related=(),
        subject="Initial",
        body="Body text",
        timestamp=1577836800,
        root_tree=ROOT_TREE,
        root_meta=ROOT_META,
    )
    assert len(expected) == 158
    assert commit.to_bytes() == expected
    assert commit.checksum().startswith("47877831")
    parsed = Commit.from_bytes(expected)
    assert parsed == commit
    assert list(parsed.metadata) == ["version", "ostree.ref-binding"]
    assert parsed.version == "1.0" and parsed.ref_bindings == ["test/main"]
    assert parsed.collection_binding is None


def test_tombstone_layout() -> None:
    commit = "4787" + "5" * 56 + "ee79"
    data = Tombstone(commit).to_bytes()
    assert data[:8] == b"commit\0\0"
    assert data[8:72] == commit.encode()
    assert data[72:] == _hex("00 00 61 79 07 4d")
    assert Tombstone.from_bytes(data) == Tombstone(commit)


def test_ostreemeta_example() -> None:
    data = _hex("00 00 03 e8 00 00 03 e8 00 00 81 a0"
                "75 73 65 72 2e 61 6c 70 68 61 00 41 31 0b 75 73 65 72 2e 7a 65 74 61 00 5a 0a"
                "0e 1a")
    meta = parse_ostreemeta(data)
    assert meta == OstreeMeta(1000, 1000, stat.S_IFREG | 0o640, ABC_HEADER.xattrs)
    assert meta.to_bytes() == data
    assert meta.to_header() == ABC_HEADER
    assert ABC_HEADER.to_ostreemeta() == data
    plain = parse_ostreemeta(_hex("00" * 8 + "00 00 81 a4"))
    assert plain.to_header() == HELLO_HEADER
