"""Corpus builders for the hostile-input tests (no tests here).

Hostile-repo part: each case of HOSTILE_CASES is built into its own real ``ostree init``
archive repo by writing objects byte by byte (pyostree.objects + hashlib/zlib), plus a ref.

GVariant part: valid seeds of every OSTree type, a walker that finds every framing table
inside a seed, and mutators that corrupt those tables on purpose (structure-aware), plus the
usual byte-level mutations. Everything is built from code, so a failing case can be rebuilt
from its seed and printed as hex.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pyostree.errors import ObjectError
from pyostree.gvariant import decode, encode, is_normal
from pyostree.gvariant.types import ENDING_FIXED, ENDING_LAST, TypeNode, parse_type, parse_type_or_none
from pyostree.objects import (
    Commit,
    CommitMeta,
    DirEntry,
    DirMeta,
    DirTree,
    FileEntry,
    FileHeader,
    OstreeMeta,
    content_checksum,
)

COMMIT_T = "(a{sv}aya(say)sstayay)"
DIRTREE_T = "(a(say)a(sayay))"
DIRMETA_T = "(uuua(ayay))"
ARCHIVE_HEADER_T = "(tuuuusa(ayay))"
FILE_HEADER_T = "(uuuusa(ayay))"
SUMMARY_T = "(a(s(taya{sv}))a{sv})"
METADICT_T = "a{sv}"

OSTREE_TYPES: Tuple[str, ...] = (
    COMMIT_T, DIRTREE_T, DIRMETA_T, ARCHIVE_HEADER_T, FILE_HEADER_T, SUMMARY_T, METADICT_T,
)

_ZERO_SUM = "00" * 32


def _csum(rng: random.Random) -> str:
    return rng.randbytes(32).hex()


def _xattrs(rng: random.Random) -> Tuple[Tuple[bytes, bytes], ...]:
    names = sorted({b"user.%d\x00" % rng.randrange(50) for _ in range(rng.randrange(4))})
    return tuple((n, rng.randbytes(rng.randrange(0, 40))) for n in names)


def _metadict(rng: random.Random) -> Dict[str, Tuple[str, object]]:
    meta: Dict[str, Tuple[str, object]] = {}
    if rng.random() < 0.7:
        meta["version"] = ("s", "1.%d" % rng.randrange(100))
    if rng.random() < 0.5:
        meta["ostree.ref-binding"] = ("as", ["main", "os/x86_64/stable"][: rng.randrange(1, 3)])
    if rng.random() < 0.4:
        meta["ostree.sizes"] = ("aay", [rng.randbytes(rng.randrange(33, 50)) for _ in range(3)])
    if rng.random() < 0.3:
        meta["nested"] = ("v", ("a{sv}", {"inner": ("t", rng.randrange(1 << 64))}))
    if rng.random() < 0.3:
        meta["maybe"] = ("mas", (["x", "yy"],) if rng.random() < 0.5 else None)
    if rng.random() < 0.2:
        meta["big"] = ("ay", rng.randbytes(rng.randrange(200, 400)))  # forces 2-byte offsets
    return meta


def seed_values(rng: random.Random) -> Dict[str, bytes]:
    """One valid, normal-form encoding of each OSTree type (realistic content)."""
    names = sorted({"f%d" % rng.randrange(1000) for _ in range(rng.randrange(0, 6))})
    dnames = sorted({"d%d" % rng.randrange(1000) for _ in range(rng.randrange(0, 4))})
    tree = DirTree(tuple(FileEntry(n, _csum(rng)) for n in names),
                   tuple(DirEntry(n, _csum(rng), _csum(rng)) for n in dnames))
    commit = Commit(_metadict(rng), _csum(rng) if rng.random() < 0.5 else None, (),
                    "subject %d" % rng.randrange(99), "body" * rng.randrange(3),
                    rng.randrange(1 << 40), _csum(rng), _csum(rng))
    meta = DirMeta(0, 0, 0o40755, _xattrs(rng))
    header = FileHeader(rng.randrange(2000), rng.randrange(2000),
                        0o100644 if rng.random() < 0.6 else 0o120777,
                        0, "", _xattrs(rng))
    if header.mode == 0o120777:
        header = FileHeader(header.uid, header.gid, header.mode, 0, "target/" * rng.randrange(1, 4), header.xattrs)
    size = 0 if header.is_symlink else rng.randrange(1 << 33)
    refs = [(n, (rng.randrange(1 << 20), rng.randbytes(32), {"ostree.commit.timestamp": ("t", 5)}))
            for n in sorted({"r%d" % rng.randrange(100) for _ in range(rng.randrange(0, 4))})]
    summary = encode(SUMMARY_T, (refs, {"ostree.summary.last-modified": ("t", 7),
                                        "ostree.summary.mode": ("s", "archive-z2")}))
    return {
        COMMIT_T: commit.to_bytes(),
        DIRTREE_T: tree.to_bytes(),
        DIRMETA_T: meta.to_bytes(),
        ARCHIVE_HEADER_T: header.to_archive_bytes(size)[8:],
        FILE_HEADER_T: header.to_bytes(),
        SUMMARY_T: summary,
        METADICT_T: CommitMeta(_metadict(rng)).to_bytes(),
    }


# ---------------------------------------------------------------------------- framing tables

Table = Tuple[int, int, int]  # (table start, region end, offset width)


def _width(size: int) -> int:
    if size <= 0xFF:
        return 1
    if size <= 0xFFFF:
        return 2
    if size <= 0xFFFFFFFF:
        return 4
    return 8


def _le(data: bytes, pos: int, width: int) -> int:
    return int.from_bytes(data[pos:pos + width], "little")


def framing_tables(type_string: str, data: bytes) -> List[Table]:
    """Every framing table inside DATA (which must be valid and normal), outermost first."""
    out: List[Table] = []
    _walk(parse_type(type_string), data, 0, len(data), out)
    return out


def _walk(node: TypeNode, data: bytes, start: int, end: int, out: List[Table]) -> None:
    size = end - start
    if node.is_fixed or size <= 0:
        return
    kind = node.kind
    if kind == "v":
        sep = data.rfind(b"\x00", start, end)
        inner = parse_type_or_none(data[sep + 1:end].decode("ascii", "replace")) if sep >= 0 else None
        if inner is not None:
            _walk(inner, data, start, sep, out)
    elif kind == "m":
        assert node.element is not None
        if not node.element.is_fixed:
            _walk(node.element, data, start, end - 1, out)
    elif kind == "a":
        _walk_array(node, data, start, end, out)
    elif kind in "({":
        _walk_tuple(node, data, start, end, out)


def _walk_array(node: TypeNode, data: bytes, start: int, end: int, out: List[Table]) -> None:
    elem = node.element
    assert elem is not None
    if elem.is_fixed:
        return
    width = _width(end - start)
    last = _le(data, end - width, width)
    out.append((start + last, end, width))
    prev = 0
    for pos in range(start + last, end, width):
        child_end = _le(data, pos, width)
        child_start = prev + (-prev & (elem.align - 1))
        _walk(elem, data, start + child_start, start + child_end, out)
        prev = child_end


def _layout(lay: object) -> Tuple[int, int, int, int, int]:
    """(previous entry, a, b, c, ending) of a member layout, whatever its Python shape."""
    if isinstance(lay, tuple):
        prev_entry, a, b, c, ending = lay
        return prev_entry, a, b, c, ending
    return (getattr(lay, "index"), getattr(lay, "a"), getattr(lay, "b"), getattr(lay, "c"),
            getattr(lay, "ending"))


def _walk_tuple(node: TypeNode, data: bytes, start: int, end: int, out: List[Table]) -> None:
    size = end - start
    width = _width(size)
    layouts = [_layout(lay) for lay in node.layout]
    entries = sum(1 for lay in layouts if lay[4] not in (ENDING_FIXED, ENDING_LAST))
    if entries:
        out.append((end - entries * width, end, width))
    for (prev_entry, a, b, c, ending), member in zip(layouts, node.members):
        prev = _le(data, end - (prev_entry + 1) * width, width) if prev_entry >= 0 else 0
        m_start = ((prev + a) & b) | c
        if ending == ENDING_FIXED:
            continue
        if ending == ENDING_LAST:
            m_end = size - entries * width
        else:
            m_end = _le(data, end - (prev_entry + 2) * width, width)
        _walk(member, data, start + m_start, start + m_end, out)


# ---------------------------------------------------------------------------- mutators


def adversarial_offsets(rng: random.Random, table_start: int, end: int, width: int, region: int) -> List[int]:
    """Offset values that hit every bound check: 0, 1, just inside/outside the region or the
    table, the maximum of the width, and random ones."""
    top = (1 << (8 * width)) - 1
    inside = table_start - (end - region)
    return [0, 1, inside - 1, inside, inside + 1, region - 1, region, region + 1, top, top - 1,
            rng.randrange(top + 1)]


def mutate_table(rng: random.Random, data: bytes, tables: Sequence[Table]) -> bytes:
    """Rewrite one or more entries of one framing table with adversarial values."""
    if not tables:
        return data
    table_start, end, width = rng.choice(tables)
    buf = bytearray(data)
    count = max(1, (end - table_start) // width)
    # the region of a container is unknown here: guess it from the table (good enough to hit
    # both "just inside" and "past the end" on the outer and inner containers)
    region = end - max(0, table_start - _le(data, end - width, width)) if table_start < end else end
    for _ in range(rng.randint(1, min(3, count))):
        k = rng.randrange(count)
        pos = end - (k + 1) * width
        if pos < 0:
            continue
        how = rng.random()
        if how < 0.6:
            value = rng.choice(adversarial_offsets(rng, table_start, end, width, region))
        elif how < 0.8 and k + 1 < count:  # swap with the neighbour: non-monotonic table
            other = end - (k + 2) * width
            buf[pos:pos + width], buf[other:other + width] = buf[other:other + width], buf[pos:pos + width]
            continue
        else:
            value = (_le(data, pos, width) + rng.choice([-2, -1, 1, 2, width])) % (1 << (8 * width))
        buf[pos:pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(buf)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Byte-level mutations: flip, set, insert, delete, truncate, extend, duplicate a slice."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(8)
        n = len(buf)
        if how == 0 and n:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif how == 1 and n:
            buf[rng.randrange(n)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif how == 2:
            pos = rng.randrange(n + 1)
            buf[pos:pos] = rng.choice([b"\x00", b"\xff", b"\x00\x00\x00\x00", rng.randbytes(rng.randint(1, 8))])
        elif how == 3 and n:
            pos = rng.randrange(n)
            del buf[pos:pos + rng.randint(1, 8)]
        elif how == 4 and n:
            del buf[rng.randrange(n):]
        elif how == 5:
            buf += rng.randbytes(rng.randint(1, 6))
        elif how == 6 and n:
            a = rng.randrange(n)
            b = min(n, a + rng.randint(1, 64))
            pos = rng.randrange(n + 1)
            buf[pos:pos] = buf[a:b]
        elif how == 7 and n > 1:  # plant a variant type string somewhere
            pos = rng.randrange(n)
            buf[pos:pos] = b"\x00" + rng.choice([b"v", b"av", b"(sv)", b"a{sv}", b"mv", b"a" * 130 + b"y",
                                                 b"(" * 200, b"ay", b"s"])
    return bytes(buf)


def splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    """Head of one seed, tail of another: plausible tables pointing at foreign bodies."""
    return a[: rng.randint(0, len(a))] + b[rng.randint(0, len(b)):]


def mutate(rng: random.Random, type_string: str, seed: bytes, other: Optional[bytes] = None) -> bytes:
    """One mutated input from a valid seed of ``type_string``."""
    choice = rng.random()
    if choice < 0.45:
        out = mutate_table(rng, seed, framing_tables(type_string, seed))
        if rng.random() < 0.3:
            out = mutate_table(rng, out, framing_tables(type_string, seed))
        return out
    if choice < 0.85 or other is None:
        return mutate_bytes(rng, seed)
    return splice(rng, seed, other)


def mutated_corpus(seed: int, count: int) -> List[Tuple[str, bytes]]:
    """``count`` mutated inputs spread over all OSTree types, reproducible from ``seed``."""
    rng = random.Random(seed)
    out: List[Tuple[str, bytes]] = []
    seeds = seed_values(rng)
    for index in range(count):
        if index % 50 == 0:
            seeds = seed_values(rng)
        type_string = OSTREE_TYPES[index % len(OSTREE_TYPES)]
        other = seeds[rng.choice(OSTREE_TYPES)]
        out.append((type_string, mutate(rng, type_string, seeds[type_string], other)))
    return out


def nested_variants(levels: int, leaf: bytes = b"\x2a\x00y") -> bytes:
    """``levels`` variants wrapped around a byte (each level appends ``00 76``)."""
    return leaf + b"\x00v" * levels


def nested_type(levels: int, inner: str = "y") -> str:
    """A type string nested ``levels`` deep, alternating array, maybe and tuple."""
    out = inner
    for k in range(levels):
        out = ("a" + out, "m" + out, "(" + out + ")")[k % 3]
    return out


def offsets_table(ends: Sequence[int], width: int) -> bytes:
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[width]
    return struct.pack("<%d%s" % (len(ends), fmt), *ends)


Mutator = Callable[[random.Random, bytes], bytes]


# ---------------------------------------------------------------------------- hostile repos

BOMB_SIZE = 1 << 30
"""The deflate bomb inflates to this many zero bytes (about 1 MiB compressed)."""
BOMB_CLAIM = 4096
"""...while its header claims only this many."""
SENTINEL_LINK = "../sentinel"
"""Symlink target of the ``symlink-then-dir`` case: the sentinel dir next to a checkout."""


@dataclass(frozen=True)
class HostileCase:
    """One hostile repo: a real ``ostree init`` archive repo plus objects written by hand."""

    name: str
    what: str        # "tree": a bad dirtree; "object": a corrupt or missing object
    cat_path: str    # a path whose content ``cat`` reads ("" when there is none to read)
    note: str


def write_loose(repo: Path, checksum: str, ext: str, data: bytes) -> str:
    """Store DATA as loose object CHECKSUM.EXT, whatever DATA is (that is the point)."""
    directory = repo / "objects" / checksum[:2]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{checksum[2:]}.{ext}").write_bytes(data)
    return checksum


def write_meta(repo: Path, data: bytes, ext: str) -> str:
    """Store metadata bytes under their own SHA-256, as an honest writer would."""
    return write_loose(repo, hashlib.sha256(data).hexdigest(), ext, data)


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def write_filez(repo: Path, content: bytes, *, mode: int = 0o100644, target: str = "",
                claim: Optional[int] = None, name_of: Optional[bytes] = None) -> str:
    """A ``.filez``: header claiming CLAIM bytes (default: the truth), raw deflate of CONTENT,
    named after NAME_OF (default: CONTENT) with the honest header."""
    header = FileHeader(0, 0, mode, 0, target, ())
    payload = b"" if header.is_symlink else content
    checksum = content_checksum(header, [name_of if name_of is not None else payload])
    size = len(payload) if claim is None else claim
    body = header.to_archive_bytes(size) + (deflate(payload) if payload or claim else b"")
    return write_loose(repo, checksum, "filez", body)


def deflate_bomb_chunks(total: int = BOMB_SIZE, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Raw deflate of TOTAL zero bytes, produced lazily: never more than CHUNK in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(chunk)
    left = total
    while left:
        n = min(left, chunk)
        out = packer.compress(zeros[:n])
        if out:
            yield out
        left -= n
    yield packer.flush()


def write_bomb(repo: Path) -> str:
    header = FileHeader(0, 0, 0o100644)
    checksum = content_checksum(header, [bytes(BOMB_CLAIM)])
    directory = repo / "objects" / checksum[:2]
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{checksum[2:]}.filez", "wb") as out:
        out.write(header.to_archive_bytes(BOMB_CLAIM))
        for piece in deflate_bomb_chunks():
            out.write(piece)
    return checksum


def _placeholder(index: int, length: int) -> bytes:
    """A unique ASCII stand-in of exactly LENGTH bytes (LENGTH >= 1)."""
    text = "Q%d" % index
    return (text * length)[:length].encode() if length >= len(text) else bytes([0x41 + index % 26]) * length


def encode_dirtree(files: Sequence[Tuple[bytes, str]], dirs: Sequence[Tuple[bytes, str, str]] = ()) -> bytes:
    """A dirtree with raw name bytes, in the order given (no sorting, no validation).

    The encoder only takes valid str names, so it encodes same-length ASCII stand-ins and the
    real bytes are patched in afterwards; the framing stays valid because lengths match."""
    names = [n for n, _ in files] + [n for n, _, _ in dirs]
    stand_ins = [_placeholder(i, len(n)) if n else b"" for i, n in enumerate(names)]
    tree = DirTree(tuple(FileEntry(s.decode(), c) for s, (_, c) in zip(stand_ins, files)),
                   tuple(DirEntry(s.decode(), t, m) for s, (_, t, m) in zip(stand_ins[len(files):], dirs)))
    data = tree.to_bytes()
    for stand_in, name in zip(stand_ins, names):
        if stand_in and stand_in != name:
            marker = stand_in + b"\x00"
            assert data.count(marker) == 1, (stand_in, name)
            data = data.replace(marker, name + b"\x00")
    return data


def init_archive(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ostree", "init", "--mode=archive", f"--repo={path}"], check=True,
                   capture_output=True)
    return path


def set_ref(repo: Path, ref: str, checksum: str) -> None:
    target = repo / "refs" / "heads" / ref
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(checksum + "\n")


def write_commit(repo: Path, root_tree: str, root_meta: str, *, raw: Optional[bytes] = None,
                 name: Optional[str] = None, ref: str = "hostile") -> str:
    data = raw if raw is not None else Commit.create(root_tree, root_meta, timestamp=1577836800,
                                                      subject="hostile").to_bytes()
    checksum = name or hashlib.sha256(data).hexdigest()
    write_loose(repo, checksum, "commit", data)
    set_ref(repo, ref, checksum)
    return checksum


HOSTILE_CASES: Tuple[HostileCase, ...] = (
    HostileCase("name-slash", "tree", "", "file named 'sub/evil'"),
    HostileCase("name-dotdot-path", "tree", "", "file named '../escaped'"),
    HostileCase("name-dotdot", "tree", "", "file named '..'"),
    HostileCase("name-dot-dir", "tree", "", "directory named '.'"),
    HostileCase("name-dotdot-dir", "tree", "", "directory '..' holding a file 'escaped'"),
    HostileCase("nested-dotdot-dir", "tree", "", "sub/.. holding a file 'escaped'"),
    HostileCase("name-nul", "tree", "", "file named 'a\\0b'"),
    HostileCase("name-non-utf8", "tree", "", "file named b'\\xff\\xfe'"),
    HostileCase("name-empty", "tree", "", "file with an empty name"),
    HostileCase("file-and-dir", "tree", "", "'x' is a file and a directory"),
    HostileCase("symlink-then-dir", "tree", "", "'x' -> ../sentinel, then directory 'x/planted'"),
    HostileCase("unsorted", "tree", "a", "files listed b, a"),
    HostileCase("duplicate-file", "tree", "a", "file 'a' listed twice"),
    HostileCase("duplicate-dir", "tree", "", "directory 'd' listed twice"),
    HostileCase("wrong-checksum-content", "object", "hello.txt", "hello.txt's object holds other bytes"),
    HostileCase("wrong-checksum-dirtree", "object", "", "root dirtree stored under another name"),
    HostileCase("wrong-checksum-commit", "object", "", "commit stored under another name"),
    HostileCase("truncated-filez", "object", "hello.txt", ".filez cut inside the deflate stream"),
    HostileCase("truncated-header", "object", "hello.txt", ".filez cut inside its header"),
    HostileCase("truncated-dirtree", "object", "", "root dirtree cut short"),
    HostileCase("non-normal-dirtree", "object", "", "root dirtree with an over-wide offset table"),
    HostileCase("non-normal-commit", "object", "", "commit with trailing garbage"),
    HostileCase("filez-claims-less", "object", "hello.txt", "header says 3 bytes, stream has 6"),
    HostileCase("filez-claims-more", "object", "hello.txt", "header says 1000 bytes, stream has 6"),
    HostileCase("deflate-bomb", "object", "bomb", "header says 4096 bytes, stream inflates to 1 GiB"),
    HostileCase("missing-file", "object", "hello.txt", "hello.txt's object does not exist"),
)

CASES_BY_NAME: Dict[str, HostileCase] = {case.name: case for case in HOSTILE_CASES}


def build_hostile_repo(path: Path, case: str) -> str:
    """Build CASE into a new archive repo at PATH (ref ``hostile``); its commit checksum."""
    repo = init_archive(path)
    meta = write_meta(repo, DirMeta(0, 0, 0o40755).to_bytes(), "dirmeta")
    empty = write_meta(repo, DirTree().to_bytes(), "dirtree")
    hello_bytes = b"hello\n"
    hello = write_filez(repo, hello_bytes)
    link = write_filez(repo, b"", mode=0o120777, target=SENTINEL_LINK)
    files: List[Tuple[bytes, str]] = []
    dirs: List[Tuple[bytes, str, str]] = []

    def tree_with(files_: Sequence[Tuple[bytes, str]], dirs_: Sequence[Tuple[bytes, str, str]] = ()) -> str:
        return write_meta(repo, encode_dirtree(files_, dirs_), "dirtree")

    escaped_tree = tree_with([(b"escaped", hello)])
    if case == "name-slash":
        files = [(b"sub/evil", hello)]
    elif case == "name-dotdot-path":
        files = [(b"../escaped", hello)]
    elif case == "name-dotdot":
        files = [(b"..", hello)]
    elif case == "name-dot-dir":
        dirs = [(b".", escaped_tree, meta)]
    elif case == "name-dotdot-dir":
        dirs = [(b"..", escaped_tree, meta)]
    elif case == "nested-dotdot-dir":
        dirs = [(b"sub", tree_with([], [(b"..", escaped_tree, meta)]), meta)]
    elif case == "name-nul":
        files = [(b"a\x00b", hello)]
    elif case == "name-non-utf8":
        files = [(b"\xff\xfe", hello)]
    elif case == "name-empty":
        files = [(b"", hello)]
    elif case == "file-and-dir":
        files, dirs = [(b"x", hello)], [(b"x", escaped_tree, meta)]
    elif case == "symlink-then-dir":
        files, dirs = [(b"x", link)], [(b"x", tree_with([(b"planted", hello)]), meta)]
    elif case == "unsorted":
        files = [(b"b", hello), (b"a", hello)]
    elif case == "duplicate-file":
        files = [(b"a", hello), (b"a", hello)]
    elif case == "duplicate-dir":
        dirs = [(b"d", escaped_tree, meta), (b"d", empty, meta)]
    else:
        return _build_object_case(repo, case, meta, hello)
    return write_commit(repo, tree_with(files, dirs), meta)


def _build_object_case(repo: Path, case: str, meta: str, hello: str) -> str:
    hello_bytes = b"hello\n"
    good_tree = encode_dirtree([(b"hello.txt", hello)])
    filez = repo / "objects" / hello[:2] / f"{hello[2:]}.filez"
    if case == "wrong-checksum-content":
        filez.unlink()
        write_filez(repo, b"EVIL!\n", name_of=hello_bytes)
    elif case == "truncated-filez":
        data = filez.read_bytes()
        filez.write_bytes(data[: len(data) - 4])
    elif case == "truncated-header":
        filez.write_bytes(filez.read_bytes()[:20])
    elif case in ("filez-claims-less", "filez-claims-more"):
        filez.unlink()
        write_filez(repo, hello_bytes, claim=3 if case.endswith("less") else 1000)
    elif case == "missing-file":
        filez.unlink()
    elif case == "deflate-bomb":
        good_tree = encode_dirtree([(b"bomb", write_bomb(repo))])
    if case == "wrong-checksum-dirtree":
        other = encode_dirtree([(b"other.txt", hello)])
        root = write_loose(repo, hashlib.sha256(good_tree).hexdigest(), "dirtree", other)
    elif case == "truncated-dirtree":
        root = write_loose(repo, hashlib.sha256(good_tree).hexdigest(), "dirtree", good_tree[:-3])
    elif case == "non-normal-dirtree":
        root = write_meta(repo, _over_wide(good_tree), "dirtree")
    else:
        root = write_meta(repo, good_tree, "dirtree")
    if case == "wrong-checksum-commit":
        real = Commit.create(root, meta, timestamp=1577836800, subject="real").to_bytes()
        fake = Commit.create(root, meta, timestamp=1577836800, subject="fake").to_bytes()
        return write_commit(repo, root, meta, raw=fake, name=hashlib.sha256(real).hexdigest())
    if case == "non-normal-commit":
        good = Commit.create(root, meta, timestamp=1577836800, subject="x").to_bytes()
        return write_commit(repo, root, meta, raw=good + b"\x00\x00")
    return write_commit(repo, root, meta)


def _over_wide(dirtree: bytes) -> bytes:
    """The same dirtree with its outer framing offset written 2 bytes wide (not normal; GLib
    decodes it the same, so only the normal-form check can catch it)."""
    value = decode(DIRTREE_T, dirtree)
    files = encode("a(say)", value[0])
    dirs = encode("a(sayay)", value[1])
    return files + dirs + len(files).to_bytes(2, "little")


def snapshot(root: Path) -> Dict[str, Tuple[int, int, str]]:
    """Every path under ROOT with (mode, size, link target): compare before/after a command."""
    out: Dict[str, Tuple[int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            target = os.readlink(full) if os.path.islink(full) else ""
            out[os.path.relpath(full, root)] = (info.st_mode, info.st_size if not os.path.isdir(full) else 0, target)
    return out


# ---------------------------------------------------------------------------- properties

Parser = Callable[..., Any]

#: Every object parser that takes bytes of an OSTree type (summary has none: gvariant only).
PARSERS: Dict[str, List[Tuple[str, Parser]]] = {
    COMMIT_T: [("Commit", Commit.from_bytes)],
    DIRTREE_T: [("DirTree", DirTree.from_bytes)],
    DIRMETA_T: [("DirMeta", DirMeta.from_bytes), ("OstreeMeta", OstreeMeta.from_bytes)],
    FILE_HEADER_T: [("FileHeader", FileHeader.from_bytes)],
    ARCHIVE_HEADER_T: [("FileHeader.archive", lambda d, verify: FileHeader.from_archive_bytes(d, verify=verify)[0])],
    METADICT_T: [("CommitMeta", CommitMeta.from_bytes)],
    SUMMARY_T: [],
}


def check_gvariant(type_string: str, data: bytes) -> None:
    """decode/is_normal are total; the normal form of whatever was decoded is a fixed point."""
    value = decode(type_string, data)
    normal = is_normal(type_string, data)
    assert normal in (True, False)
    canonical = encode(type_string, value)
    # GLib calls nothing at depth >= 128 normal, not even its own serialisation of it
    assert is_normal(type_string, canonical) or value_depth(parse_type(type_string), value) >= 128, data.hex()
    assert encode(type_string, decode(type_string, canonical)) == canonical, data.hex()
    if canonical == data:
        assert normal, f"{type_string} {data.hex()}: its own normal form, yet is_normal is False"


def value_depth(node: TypeNode, value: Any) -> int:
    """How deep the deepest value inside VALUE sits (the top is 0), as is_normal counts."""
    kind = node.kind
    if kind == "v":
        inner_type, inner = value
        return 1 + value_depth(parse_type(inner_type), inner)
    if node.string == "ay" or kind in "bynqiuxthdsog":
        return 0
    if kind == "m":
        assert node.element is not None
        return 0 if value is None else 1 + value_depth(node.element, value[0])
    if kind == "a":
        assert node.element is not None
        items = list(value.items()) if isinstance(value, dict) else value
        return max((1 + value_depth(node.element, item) for item in items), default=0)
    return max((1 + value_depth(m, v) for m, v in zip(node.members, value)), default=0)


def check_objects(type_string: str, data: bytes) -> None:
    """Only ObjectError escapes; a verified object re-serialises to exactly its bytes unless
    the bytes are one of GLib's documented second normal forms (spec gvariant.md §8)."""
    for name, parse in PARSERS[type_string]:
        for verify in (True, False):
            for kind in (bytes, bytearray, memoryview):
                try:
                    obj = parse(kind(data), verify=verify)
                except ObjectError as err:
                    message = str(err)
                    assert message and "\n" not in message, (name, message)
                    continue
                if verify and hasattr(obj, "to_bytes") and name != "FileHeader.archive":
                    again = obj.to_bytes()
                    quirk = encode(type_string, decode(type_string, data)) != data
                    assert again == data or quirk, f"{name} {data.hex()} -> {again.hex()}"


def check(type_string: str, data: bytes) -> None:
    check_gvariant(type_string, data)
    check_objects(type_string, data)


# ---------------------------------------------------------------------------- resource guard

GUARD_PRELUDE = """
import resource, sys
limit = {limit}
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
"""


def run_guarded(code: str, *, memory_mb: int = 768, timeout: float = 60.0,
                args: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run CODE in a child Python whose address space is capped at MEMORY_MB and which is
    killed after TIMEOUT seconds: a hang or a blow-up fails the test instead of the machine.
    ``sys.argv[1:]`` of the child is ARGS."""
    prelude = GUARD_PRELUDE.format(limit=memory_mb * 1024 * 1024)
    return subprocess.run([sys.executable, "-c", prelude + code, *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
