"""Every rejection: structural validation as libostree does it, with messages naming the
problem, and verify=False decoding like a trusted local load."""

from __future__ import annotations

import stat

import pytest

from pyostree import gvariant
from pyostree.errors import ObjectError
from pyostree.objects import (
    COMMIT_TYPE,
    DIRMETA_TYPE,
    DIRTREE_TYPE,
    MAX_METADATA_SIZE,
    Commit,
    CommitMeta,
    DirEntry,
    DirMeta,
    DirTree,
    FileEntry,
    FileHeader,
    OstreeMeta,
    Tombstone,
)
from pyostree.objects.content import ARCHIVE_HEADER_TYPE, FILE_HEADER_TYPE
from pyostree.objects._endian import swap32, swap64

C1 = bytes(range(32))
C2 = bytes(range(32, 64))
DIR = stat.S_IFDIR | 0o755
REG = stat.S_IFREG | 0o644
LNK = stat.S_IFLNK | 0o777


def _dirmeta(uid: int = 0, gid: int = 0, mode: int = DIR, xattrs: object = ()) -> bytes:
    return gvariant.encode(DIRMETA_TYPE, (swap32(uid), swap32(gid), swap32(mode), list(xattrs)))


def _dirtree(files: object = (), dirs: object = ()) -> bytes:
    return gvariant.encode(DIRTREE_TYPE, (list(files), list(dirs)))


def _header(mode: int = REG, rdev: int = 0, target: str = "", xattrs: object = ()) -> bytes:
    return gvariant.encode(FILE_HEADER_TYPE, (0, 0, swap32(mode), swap32(rdev), target, list(xattrs)))


def _commit(metadata: object = None, parent: bytes = b"", tree: bytes = C1,
            meta: bytes = C2) -> bytes:
    return gvariant.encode(
        COMMIT_TYPE, (metadata or {}, parent, [], "subject", "body", swap64(5), tree, meta)
    )


# --- dirmeta -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_dirmeta()[:11], "dirmeta: not normal form"),
        (_dirmeta() + b"\0", "dirmeta: xattrs: name b'' lacks its trailing NUL"),
        (_dirmeta(mode=REG), "dirmeta: mode 0o100644 is not a directory"),
        (_dirmeta(mode=DIR | 0o10000), "dirmeta: mode 0o50755 is not a directory"),
        (_dirmeta(mode=0o1040755), "invalid bits 0o1000000"),
        (_dirmeta(xattrs=[(b"b\0", b""), (b"a\0", b"")]), "dirmeta: xattrs: name b'a' sorted after"),
        (_dirmeta(xattrs=[(b"a\0", b"1"), (b"a\0", b"2")]), "duplicate name b'a'"),
        (_dirmeta(xattrs=[(b"\0", b"1")]), "empty name"),
        (_dirmeta(xattrs=[(b"", b"1")]), "lacks its trailing NUL"),
    ],
)
def test_dirmeta_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        DirMeta.from_bytes(data)


def test_dirmeta_trusted_load_skips_checks() -> None:
    meta = DirMeta.from_bytes(_dirmeta(mode=REG, xattrs=[(b"b\0", b""), (b"a\0", b"")]),
                              verify=False)
    assert meta.mode == REG and meta.xattrs[0] == (b"b\0", b"")
    assert DirMeta.from_bytes(b"", verify=False) == DirMeta(0, 0, 0)


def test_metadata_size_limit() -> None:
    with pytest.raises(ObjectError, match="exceeds the metadata limit"):
        DirTree.from_bytes(bytes(MAX_METADATA_SIZE + 1), verify=False)


def test_dirmeta_validate_and_serialise_errors() -> None:
    with pytest.raises(ObjectError, match="dirmeta: uid -1 is not a 32-bit"):
        DirMeta(-1, 0, DIR).validate()
    with pytest.raises(ObjectError, match="dirmeta: cannot serialise"):
        DirMeta(1 << 32, 0, DIR).to_bytes()


# --- dirtree -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x00\x00", "dirtree: not normal form"),
        (_dirtree([("a/b", C1)]), "dirtree: file name 'a/b' contains '/'"),
        (_dirtree([(".", C1)]), "dirtree: file name '.' is not allowed"),
        (_dirtree(dirs=[("..", C1, C2)]), "dirtree: dir name '..' is not allowed"),
        (_dirtree([("", C1)]), "dirtree: file name is empty"),
        (_dirtree([("b", C1), ("a", C1)]), "dirtree: file name 'a' is out of order"),
        (_dirtree([("B", C1), ("a", C1), ("é", C1), ("a", C1)]), "file name 'a' is out of order"),
        (_dirtree([("a", C1), ("a", C2)]), "dirtree: file name 'a' is repeated"),
        (_dirtree(dirs=[("x", C1, C2), ("x", C1, C2)]), "dirtree: dir name 'x' is repeated"),
        (_dirtree([("x", C1)], [("x", C1, C2)]), "name 'x' is both a file and a dir"),
        (_dirtree([("a", C1[:31])]), "dirtree: checksum of 'a' is 31 bytes, expected 32"),
        (_dirtree(dirs=[("d", C1, b"")]), "dirtree: checksum of 'd' is 0 bytes"),
        (_dirtree(dirs=[("d", C1 + b"x", C2)]), "checksum of 'd' is 33 bytes"),
    ],
)
def test_dirtree_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        DirTree.from_bytes(data)


def test_dirtree_non_utf8_name() -> None:
    """Invalid UTF-8 is not normal form; trusted, GLib decodes it as "" (which validate
    rejects)."""
    data = _dirtree([("xx", C1)]).replace(b"xx\0", b"\xff\xfe\0")
    with pytest.raises(ObjectError, match="dirtree: not normal form"):
        DirTree.from_bytes(data)
    tree = DirTree.from_bytes(data, verify=False)
    assert tree.files[0].name == ""
    with pytest.raises(ObjectError, match="dirtree: file name is empty"):
        tree.validate()


def test_dirtree_trusted_load_keeps_order() -> None:
    tree = DirTree.from_bytes(_dirtree([("c", C1), ("b", C1), ("a", C1[:3])]), verify=False)
    assert [e.name for e in tree.files] == ["c", "b", "a"]
    assert tree.files[2].checksum == C1[:3].hex()
    assert tree.lookup("a") is None  # binary search, like libostree: unsorted hides entries


def test_dirtree_zero_byte_form_is_normal_for_glib() -> None:
    """GLib also calls ``b""`` a normal empty dirtree; it decodes, but re-encodes as 00."""
    assert DirTree.from_bytes(b"") == DirTree()


def test_dirtree_lookup() -> None:
    files = tuple(FileEntry(n, C1.hex()) for n in ("10", "9", "B", "a", "é"))
    dirs = (DirEntry("d", C1.hex(), C2.hex()),)
    tree = DirTree(files, dirs)
    tree.validate()
    for entry in files + dirs:
        assert tree.lookup(entry.name) is entry
    assert tree.lookup("zz") is None and tree.lookup("") is None


def test_dirtree_validate_rejects_bad_checksums() -> None:
    with pytest.raises(ObjectError, match="invalid checksum 'AB'"):
        DirTree((FileEntry("a", "AB"),)).validate()
    with pytest.raises(ObjectError, match="is not hex"):
        DirTree((FileEntry("a", "zz"),)).to_bytes()


# --- commit --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_commit()[:-1], "commit: not normal form"),
        (_commit({"": ("s", "x")}), "commit: empty metadata key"),
        (_commit(parent=b"\x01" * 5), "commit: parent checksum is 5 bytes, expected 32"),
        (_commit(tree=C1[:31]), "commit: root dirtree checksum is 31 bytes"),
        (_commit(meta=b""), "commit: root dirmeta checksum is 0 bytes"),
    ],
)
def test_commit_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        Commit.from_bytes(data)


def test_commit_non_utf8_key() -> None:
    data = _commit({"kk": ("s", "v")}).replace(b"kk\0", b"\xff\xff\0")
    with pytest.raises(ObjectError, match="commit: not normal form"):
        Commit.from_bytes(data)
    with pytest.raises(ObjectError, match="commit: empty metadata key"):
        Commit.from_bytes(data, verify=False).validate()


def test_commit_trusted_load() -> None:
    commit = Commit.from_bytes(_commit(parent=b"\x01" * 5), verify=False)
    assert commit.parent == "01" * 5 and commit.timestamp == 5
    assert commit.root_tree == C1.hex()


def _good_commit() -> Commit:
    return Commit.create(C1.hex(), C2.hex(), timestamp=1, subject="s", parent=C2.hex(),
                         metadata={"k": ("u", 7)})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"parent": "XYZ"}, "invalid checksum 'XYZ'"),
        ({"root_tree": C1.hex().upper()}, "invalid checksum"),
        ({"root_meta": ""}, "invalid checksum"),
        ({"subject": "a\0b"}, "subject must be a str without NUL"),
        ({"body": None}, "body must be a str"),
        ({"timestamp": -1}, "timestamp -1 is not a 64-bit"),
        ({"timestamp": 1 << 64}, "is not a 64-bit"),
        ({"metadata": {"": ("s", "")}}, "empty metadata key"),
        ({"metadata": {"k": "v"}}, "metadata 'k' is not a \\(type string, value\\) pair"),
        ({"related": (("n",),)}, "related entry 0 is not a \\(name, checksum\\) pair"),
        ({"related": (("n", "q"),)}, "related checksum 'q' is not hex"),
    ],
)
def test_commit_validate_rejects(change: dict, problem: str) -> None:
    import dataclasses

    commit = dataclasses.replace(_good_commit(), **change)
    with pytest.raises(ObjectError, match=problem):
        commit.validate()


def test_commit_serialise_error_is_an_object_error() -> None:
    import dataclasses

    commit = dataclasses.replace(_good_commit(), metadata={"k": ("s", 5)})
    with pytest.raises(ObjectError, match="commit: cannot serialise"):
        commit.to_bytes()


def test_commit_related_round_trip() -> None:
    import dataclasses

    commit = dataclasses.replace(_good_commit(), related=(("obj", C1.hex()),))
    assert Commit.from_bytes(commit.to_bytes()) == commit


# --- file headers --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_header() + b"\0", "file header: not normal form"),
        (b"", "file header size is zero"),
        (_header(rdev=5), "file header: rdev is 5, must be 0"),
        (_header(mode=DIR), "file header: mode 0o40755 is not a regular file or symlink"),
        (_header(mode=stat.S_IFCHR | 0o600), "is not a regular file or symlink"),
        (_header(mode=REG | 0o200000), "invalid bits"),
        (_header(mode=LNK), "file header: symlink has an empty target"),
        (_header(target="x"), "file header: regular file has a symlink target"),
        (_header(xattrs=[(b"z\0", b""), (b"y\0", b"")]), "file header: xattrs: name b'y' sorted"),
    ],
)
def test_file_header_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        FileHeader.from_bytes(data)


def test_symlink_non_utf8_target_is_empty() -> None:
    data = _header(mode=LNK, target="xy").replace(b"xy\0", b"\xc3\x28\0")
    with pytest.raises(ObjectError, match="file header: not normal form"):
        FileHeader.from_bytes(data)
    with pytest.raises(ObjectError, match="symlink has an empty target"):
        FileHeader.from_bytes(data, verify=False).validate()


def test_archive_header_rejects() -> None:
    symlink = gvariant.encode(ARCHIVE_HEADER_TYPE,
                              (swap64(3), 0, 0, swap32(LNK), 0, "t", []))
    with pytest.raises(ObjectError, match="archive file header: symlink with payload size 3"):
        FileHeader.from_archive_bytes(symlink)
    assert FileHeader.from_archive_bytes(symlink, verify=False)[1] == 3
    regular = gvariant.encode(ARCHIVE_HEADER_TYPE, (0, 0, 0, swap32(REG), 0, "", []))
    with pytest.raises(ObjectError, match="archive file header: not normal form"):
        FileHeader.from_archive_bytes(regular + b"\0")


def test_file_header_validate_and_serialise_errors() -> None:
    with pytest.raises(ObjectError, match="symlink target contains NUL"):
        FileHeader(0, 0, LNK, 0, "a\0b").validate()
    with pytest.raises(ObjectError, match="file header: gid"):
        FileHeader(0, 1 << 32, REG).validate()
    with pytest.raises(ObjectError, match="file header: cannot serialise"):
        FileHeader(1 << 32, 0, REG).to_bytes()
    with pytest.raises(ObjectError, match="file header: cannot serialise"):
        FileHeader(0, 0, LNK, 0, "\udcff").framed()


def test_ostreemeta_rejects() -> None:
    with pytest.raises(ObjectError, match="user.ostreemeta: mode 0o40755 is not a regular file"):
        OstreeMeta.from_bytes(_dirmeta())
    with pytest.raises(ObjectError, match="user.ostreemeta: not normal form"):
        OstreeMeta.from_bytes(_dirmeta(mode=REG)[:11])
    with pytest.raises(ObjectError, match="file header size is zero"):
        OstreeMeta.from_bytes(b"")


# --- commitmeta and tombstones ------------------------------------------------------------

def test_commitmeta() -> None:
    assert CommitMeta().to_bytes() == b""
    assert CommitMeta.from_bytes(b"") == CommitMeta()
    meta = CommitMeta().with_signature(b"sig1").with_signature(b"sig2")
    assert meta.signatures() == [b"sig1", b"sig2"]
    assert CommitMeta.from_bytes(meta.to_bytes()) == meta
    with pytest.raises(ObjectError, match="commitmeta: not normal form"):
        CommitMeta.from_bytes(meta.to_bytes() + b"\0")
    odd = CommitMeta({"ostree.gpgsigs": ("s", "x")})
    with pytest.raises(ObjectError, match="ostree.gpgsigs has type 's', expected 'aay'"):
        odd.signatures()
    with pytest.raises(ObjectError, match="commitmeta: empty metadata key"):
        CommitMeta({"": ("s", "")}).validate()


def _tombstone(value: object) -> bytes:
    return gvariant.encode("a{sv}", {"commit": value})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (gvariant.encode("a{sv}", {"other": ("s", "")}), "tombstone: no 'commit' key"),
        (_tombstone(("s", "ab")), "'commit' has type 's', expected 'ay'"),
        (_tombstone(("ay", b"ab" * 32)), "is not a hex checksum"),
        (_tombstone(("ay", b"AB" * 32 + b"\0")), "is not a hex checksum"),
        (_tombstone(("ay", b"ab" * 32 + b"\0"))[:-1], "tombstone: not normal form"),
    ],
)
def test_tombstone_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(ObjectError, match=problem):
        Tombstone.from_bytes(data)


def test_tombstone_validate() -> None:
    with pytest.raises(ObjectError, match="invalid checksum"):
        Tombstone("xyz").validate()


def _repeat_key() -> bytes:
    """An ``a{sv}`` with two entries under "k": valid normal form for GLib."""
    data = gvariant.encode("a{sv}", {"k": ("s", "1"), "j": ("s", "2")})
    return data.replace(b"j\0", b"k\0")


def test_repeated_metadata_keys_are_refused() -> None:
    metadata = _repeat_key()
    assert gvariant.is_normal("a{sv}", metadata)
    with pytest.raises(ObjectError, match="commitmeta: metadata repeats a key"):
        CommitMeta.from_bytes(metadata)
    assert CommitMeta.from_bytes(metadata, verify=False).metadata == {"k": ("s", "2")}
    commit = gvariant.encode(
        COMMIT_TYPE, ({"k": ("s", "1"), "j": ("s", "2")}, b"", [], "", "", 0, C1, C2)
    ).replace(b"j\0", b"k\0")
    assert gvariant.is_normal(COMMIT_TYPE, commit)
    with pytest.raises(ObjectError, match="commit: metadata repeats a key"):
        Commit.from_bytes(commit)


def test_dirtree_from_entries_sorts_by_utf8_bytes() -> None:
    names = ["é", "b", "B", "a", "_x", "10", "9", "z.d", "Z", "a b", "a-b", "a.b"]
    tree = DirTree.from_entries([FileEntry(n, C1.hex()) for n in names],
                                [DirEntry("dir", C1.hex(), C2.hex())])
    assert [e.name for e in tree.files] == [
        "10", "9", "B", "Z", "_x", "a", "a b", "a-b", "a.b", "b", "z.d", "é"]
    with pytest.raises(ObjectError, match="file name 'a' is repeated"):
        DirTree.from_entries([FileEntry("a", C1.hex()), FileEntry("a", C2.hex())])
    with pytest.raises(ObjectError, match="name 'a' is both a file and a dir"):
        DirTree.from_entries([FileEntry("a", C1.hex())], [DirEntry("a", C1.hex(), C2.hex())])


def test_commit_accessors_ignore_unexpected_types() -> None:
    commit = Commit.create(C1.hex(), C2.hex(), timestamp=0, metadata={
        "version": ("u", 1), "ostree.ref-binding": ("s", "main"),
        "ostree.collection-binding": ("s", "org.example.Os"),
    })
    assert commit.version is None and commit.ref_bindings is None
    assert commit.collection_binding == "org.example.Os"
    assert commit.parent is None and commit.related == ()
