"""Corpus builders for the hostile-input tests (no tests here).

GVariant part: valid seeds of every OSTree type, a walker that finds every framing table
inside a seed, and mutators that corrupt those tables on purpose (structure-aware), plus the
usual byte-level mutations. Everything is built from code, so a failing case can be rebuilt
from its seed and printed as hex.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
