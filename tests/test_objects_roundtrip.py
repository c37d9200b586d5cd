"""Property tests: every object type round-trips, its hand-specialised encoding is
byte-identical to the general GVariant codec, and arbitrary bytes never escape as anything
but ObjectError."""

from __future__ import annotations

import stat
from typing import Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyostree import gvariant
from pyostree.errors import ObjectError
from pyostree.objects import (
    COMMIT_TYPE,
    DIRMETA_TYPE,
    DIRTREE_TYPE,
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
from pyostree.objects._endian import swap32, swap64
from pyostree.objects.content import ARCHIVE_HEADER_TYPE, FILE_HEADER_TYPE

u32 = st.integers(0, 2**32 - 1)
checksums = st.binary(min_size=32, max_size=32).map(bytes.hex)
perms = st.integers(0, 0o7777)
names = st.text(min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..") and "/" not in n and "\0" not in n
)
xattr_names = st.binary(min_size=1, max_size=20).filter(lambda b: b"\0" not in b)
xattrs = st.dictionaries(xattr_names, st.binary(max_size=40), max_size=5).map(
    lambda d: tuple((name + b"\0", d[name]) for name in sorted(d))
)
safe_text = st.text(max_size=30).filter(lambda t: "\0" not in t)


def _sorted_unique(entries: List[Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    unique = {entry[0]: entry for entry in entries}
    return [unique[name] for name in sorted(unique, key=lambda n: n.encode())]


@st.composite
def dirtrees(draw: st.DrawFn) -> DirTree:
    files = _sorted_unique(draw(st.lists(st.tuples(names, checksums), max_size=12)))
    taken = {f[0] for f in files}
    dirs = _sorted_unique(
        [d for d in draw(st.lists(st.tuples(names, checksums, checksums), max_size=6))
         if d[0] not in taken]
    )
    return DirTree(tuple(FileEntry(*f) for f in files), tuple(DirEntry(*d) for d in dirs))


dirmetas = st.builds(DirMeta, u32, u32, perms.map(lambda p: stat.S_IFDIR | p), xattrs)


@st.composite
def file_headers(draw: st.DrawFn) -> FileHeader:
    if draw(st.booleans()):
        target = draw(safe_text.filter(bool))
        return FileHeader(draw(u32), draw(u32), stat.S_IFLNK | draw(perms), 0, target, draw(xattrs))
    return FileHeader(draw(u32), draw(u32), stat.S_IFREG | draw(perms), 0, "", draw(xattrs))


metadata_values = st.one_of(
    safe_text.map(lambda t: ("s", t)),
    st.lists(safe_text, max_size=3).map(lambda v: ("as", v)),
    st.integers(0, 2**64 - 1).map(lambda v: ("t", v)),
    u32.map(lambda v: ("u", v)),
    st.booleans().map(lambda v: ("b", v)),
    st.binary(max_size=40).map(lambda v: ("ay", v)),
    st.lists(st.binary(max_size=70), max_size=3).map(lambda v: ("aay", v)),
)
metadata_dicts = st.dictionaries(safe_text.filter(bool), metadata_values, max_size=5)


@st.composite
def commits(draw: st.DrawFn) -> Commit:
    return Commit(
        metadata=draw(metadata_dicts),
        parent=draw(st.none() | checksums),
        related=tuple(draw(st.lists(st.tuples(safe_text, checksums), max_size=2))),
        subject=draw(safe_text),
        body=draw(safe_text),
        timestamp=draw(st.integers(0, 2**64 - 1)),
        root_tree=draw(checksums),
        root_meta=draw(checksums),
    )


@given(dirtrees())
def test_dirtree_round_trip(tree: DirTree) -> None:
    tree.validate()
    data = tree.to_bytes()
    generic = (
        [(e.name, bytes.fromhex(e.checksum)) for e in tree.files],
        [(e.name, bytes.fromhex(e.tree_checksum), bytes.fromhex(e.meta_checksum))
         for e in tree.dirs],
    )
    assert data == gvariant.encode(DIRTREE_TYPE, generic)
    assert DirTree.from_bytes(data) == tree
    for entry in tree.files + tree.dirs:
        assert tree.lookup(entry.name) is entry


@given(dirmetas)
def test_dirmeta_round_trip(meta: DirMeta) -> None:
    data = meta.to_bytes()
    generic = (swap32(meta.uid), swap32(meta.gid), swap32(meta.mode), list(meta.xattrs))
    assert data == gvariant.encode(DIRMETA_TYPE, generic)
    assert DirMeta.from_bytes(data) == meta


@given(file_headers(), st.integers(0, 2**64 - 1))
def test_file_header_round_trip(header: FileHeader, size: int) -> None:
    data = header.to_bytes()
    fields = (swap32(header.uid), swap32(header.gid), swap32(header.mode), 0,
              header.symlink_target, list(header.xattrs))
    assert data == gvariant.encode(FILE_HEADER_TYPE, fields)
    assert FileHeader.from_bytes(data) == header
    assert header.framed()[8:] == data and int.from_bytes(header.framed()[:4], "big") == len(data)
    if header.is_symlink:
        size = 0
    archive = header.to_archive_bytes(size)
    assert archive[8:] == gvariant.encode(ARCHIVE_HEADER_TYPE, (swap64(size),) + fields)
    assert FileHeader.from_archive_bytes(archive[8:]) == (header, size)
    meta = OstreeMeta.from_bytes(header.to_ostreemeta())
    assert meta.to_header(header.symlink_target) == header


@settings(max_examples=60)
@given(commits())
def test_commit_round_trip(commit: Commit) -> None:
    commit.validate()
    data = commit.to_bytes()
    parsed = Commit.from_bytes(data)
    assert parsed == commit
    assert parsed.to_bytes() == data


@given(metadata_dicts)
def test_commitmeta_round_trip(metadata: Dict[str, Tuple[str, object]]) -> None:
    meta = CommitMeta(metadata)
    assert CommitMeta.from_bytes(meta.to_bytes()) == meta


@given(checksums)
def test_tombstone_round_trip(commit: str) -> None:
    assert Tombstone.from_bytes(Tombstone(commit).to_bytes()) == Tombstone(commit)


@pytest.mark.parametrize(
    "parse",
    [DirTree.from_bytes, DirMeta.from_bytes, Commit.from_bytes, CommitMeta.from_bytes,
     Tombstone.from_bytes, FileHeader.from_bytes, FileHeader.from_archive_bytes,
     OstreeMeta.from_bytes],
)
@settings(max_examples=150)
@given(data=st.binary(max_size=200), verify=st.booleans())
def test_arbitrary_bytes_only_raise_object_error(parse: object, data: bytes, verify: bool) -> None:
    try:
        parse(data, verify=verify)  # type: ignore[operator]
    except ObjectError:
        pass


@st.composite
def mutated_objects(draw: st.DrawFn) -> Tuple[type, bytes]:
    kind, value = draw(st.one_of(
        dirtrees().map(lambda v: (DirTree, v.to_bytes())),
        dirmetas.map(lambda v: (DirMeta, v.to_bytes())),
        commits().map(lambda v: (Commit, v.to_bytes())),
    ))
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 3))):
        if data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.integers(0, 255))
    return kind, bytes(data)


@settings(max_examples=200)
@given(mutated_objects())
def test_mutated_objects_are_rejected_or_valid(case: Tuple[type, bytes]) -> None:
    """A corrupted object either fails with ObjectError or is a fully valid object whose
    normal-form bytes are exactly the input."""
    kind, data = case
    try:
        obj = kind.from_bytes(data)  # type: ignore[attr-defined]
    except ObjectError:
        return
    obj.validate()
    assert gvariant.is_normal(
        {DirTree: DIRTREE_TYPE, DirMeta: DIRMETA_TYPE, Commit: COMMIT_TYPE}[kind], data
    )
    assert obj.to_bytes() == data


def _reference_header(data: bytes, archive: bool, verify: bool) -> Tuple[FileHeader, int]:
    """FileHeader parsing done only with the general codec (GLib semantics)."""
    type_string = ARCHIVE_HEADER_TYPE if archive else FILE_HEADER_TYPE
    if verify and not gvariant.is_normal(type_string, data):
        raise ObjectError("not normal form")
    value = list(gvariant.decode(type_string, data))
    size = swap64(value.pop(0)) if archive else 0
    uid, gid, mode, rdev, target, xattrs = value
    header = FileHeader(swap32(uid), swap32(gid), swap32(mode), swap32(rdev), target,
                        tuple(xattrs))
    if verify:
        header.validate()
        if header.is_symlink and size:
            raise ObjectError("symlink with size")
    return header, size


def _outcome(fn: object, *args: object, **kwargs: object) -> object:
    try:
        return fn(*args, **kwargs)  # type: ignore[operator]
    except ObjectError:
        return ObjectError


@st.composite
def mutated_headers(draw: st.DrawFn) -> Tuple[bytes, bool]:
    header = draw(file_headers())
    archive = draw(st.booleans())
    data = bytearray(header.to_archive_bytes(0)[8:] if archive else header.to_bytes())
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.integers(0, 2))
        index = draw(st.integers(0, len(data) - 1))
        if action == 0:
            data[index] = draw(st.integers(0, 255))
        elif action == 1 and len(data) > 1:
            del data[index]
        else:
            data.insert(index, draw(st.integers(0, 255)))
    return bytes(data), archive


@settings(max_examples=400)
@given(st.one_of(mutated_headers(), st.tuples(st.binary(max_size=80), st.booleans())),
       st.booleans())
def test_fast_header_parser_agrees_with_the_codec(case: Tuple[bytes, bool], verify: bool) -> None:
    data, archive = case
    ours = _outcome(FileHeader.from_archive_bytes if archive else FileHeader.from_bytes,
                    data, verify=verify)
    if not archive and ours is not ObjectError:
        ours = (ours, 0)
    if len(data) == 0:
        assert ours is ObjectError
        return
    assert ours == _outcome(_reference_header, data, archive, verify)


def _reference_uuua(data: bytes, verify: bool) -> Tuple[int, int, int, object]:
    if verify and not gvariant.is_normal(DIRMETA_TYPE, data):
        raise ObjectError("not normal form")
    uid, gid, mode, xattrs = gvariant.decode(DIRMETA_TYPE, data)
    return swap32(uid), swap32(gid), swap32(mode), tuple(xattrs)


@st.composite
def mutated_dirmetas(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(dirmetas).to_bytes())
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(0, len(data)))
        if draw(st.booleans()) and index < len(data):
            data[index] = draw(st.integers(0, 255))
        elif draw(st.booleans()) and index < len(data):
            del data[index]
        else:
            data.insert(index, draw(st.integers(0, 255)))
    return bytes(data)


@settings(max_examples=300)
@given(st.one_of(mutated_dirmetas(), st.binary(max_size=60)), st.booleans())
def test_fast_dirmeta_parser_agrees_with_the_codec(data: bytes, verify: bool) -> None:
    from pyostree.objects.dirmeta import decode_uuua

    ours = _outcome(decode_uuua, data, verify=verify, what="dirmeta")
    assert ours == _outcome(_reference_uuua, data, verify)
