"""Differential test: pyostree.gvariant against GLib itself, through tests/glib_oracle.py.

Seeded random values of random types are encoded by us and handed to GLib (value, normal
form and is_normal must agree), then mutated and random bytes are decoded by both.
"""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import struct
import subprocess
from typing import Any, Dict, List, Tuple

import pytest

from pyostree.gvariant import decode, encode, is_normal
from pyostree.gvariant.types import TypeNode, parse_type
from test_gvariant_props import same

ORACLE = pathlib.Path(__file__).with_name("glib_oracle.py")
SYSTEM_PYTHON = "/usr/bin/python3"

BASICS = "bynqiuxthdsog"
INT_RANGES = {
    "y": (0, 0xFF), "n": (-0x8000, 0x7FFF), "q": (0, 0xFFFF), "i": (-(1 << 31), (1 << 31) - 1),
    "u": (0, (1 << 32) - 1), "h": (-(1 << 31), (1 << 31) - 1), "x": (-(1 << 63), (1 << 63) - 1),
    "t": (0, (1 << 64) - 1),
}
TEXT_POOL = "ab/_Z09 \u00e9\u0394\u4e2d\U0001f600\ufffe\x01\x7f"
OSTREE_TYPES = [
    "(a(say)a(sayay))", "(uuua(ayay))", "(a{sv}aya(say)sstayay)", "(tuuuusa(ayay))",
    "(uuuusa(ayay))", "(a(s(taya{sv}))a{sv})", "a{sv}",
]


def _glib_available() -> bool:
    if not shutil.which(SYSTEM_PYTHON):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "from gi.repository import GLib"],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _glib_available(), reason="system python3 with gi missing")


def ask_glib(cases: List[Tuple[str, bytes]]) -> List[Dict[str, Any]]:
    request = "".join(json.dumps({"type": t, "hex": d.hex()}) + "\n" for t, d in cases)
    done = subprocess.run([SYSTEM_PYTHON, str(ORACLE)], input=request, capture_output=True,
                          text=True, timeout=300, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(cases)
    return answers


def untag(tagged: Any) -> Any:
    """The oracle's tagged JSON back into pyostree's Python mapping."""
    if isinstance(tagged, list):
        return [untag(x) for x in tagged]
    if isinstance(tagged, dict):
        (tag, inner), = tagged.items()
        if tag == "t":
            return tuple(untag(x) for x in inner)
        if tag == "b":
            return bytes.fromhex(inner)
        if tag == "d" and isinstance(inner, str):
            return struct.unpack("<d", bytes.fromhex(inner))[0]
        if tag == "d":
            out = {}
            for key, value in inner:
                out[untag(key)] = untag(value)
            return out
        if tag == "j":
            return (untag(inner),)
        if tag == "v":
            return (inner[0], untag(inner[1]))
        raise AssertionError(f"unknown tag {tag}")
    return tagged


class RandomValues:
    """Seeded random types and matching values; sizes sometimes cross offset-width bands."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def type_string(self, depth: int = 4) -> str:
        rng = self.rng
        roll = rng.random()
        if depth <= 0 or roll < 0.4:
            return rng.choice(BASICS + "v")
        if roll < 0.55:
            return "a" + self.type_string(depth - 1)
        if roll < 0.65:
            return "m" + self.type_string(depth - 1)
        if roll < 0.75:
            return "a{" + rng.choice(BASICS) + self.type_string(depth - 1) + "}"
        if roll < 0.78:
            return "{" + rng.choice(BASICS) + self.type_string(depth - 1) + "}"
        members = "".join(self.type_string(depth - 1) for _ in range(rng.randint(0, 4)))
        return "(" + members + ")"

    def text(self) -> str:
        n = self.rng.choice([0, 1, 2, 5, 12])
        return "".join(self.rng.choice(TEXT_POOL) for _ in range(n))

    def value(self, node: TypeNode, depth: int = 3) -> Any:
        rng = self.rng
        kind = node.kind
        if kind == "b":
            return rng.random() < 0.5
        if kind in INT_RANGES:
            low, high = INT_RANGES[kind]
            return rng.choice([low, high, 0, 1, rng.randint(low, high)])
        if kind == "d":
            return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if kind == "s":
            return self.text()
        if kind == "o":
            parts = rng.randint(0, 3)
            return "/" + "/".join(rng.choice(["a", "B_9", "x1"]) for _ in range(parts))
        if kind == "g":
            return "".join(self.type_string(2).replace("m", "a") for _ in range(rng.randint(0, 3)))
        if kind == "v":
            inner = parse_type(self.type_string(depth - 1 if depth > 0 else 0))
            return (inner.string, self.value(inner, depth - 1))
        if kind == "m":
            assert node.element is not None
            return None if rng.random() < 0.3 else (self.value(node.element, depth - 1),)
        if kind == "a":
            elem = node.element
            assert elem is not None
            count = rng.choice([0, 1, 2, 3, 5]) if depth > 0 else rng.choice([0, 1])
            if elem.kind == "y":
                return rng.randbytes(rng.choice([0, 1, 3, 32, 250, 253, 254, 256]))
            items = [self.value(elem, depth - 1) for _ in range(count)]
            if elem.kind == "{":
                return dict(items)
            return items
        return tuple(self.value(m, depth - 1) for m in node.members)

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        how = rng.randrange(7)
        if how == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif how == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif how == 2 and buf:
            del buf[rng.randrange(len(buf)):]
        elif how == 3:
            buf += rng.randbytes(rng.randint(1, 3))
        elif how == 4 and buf:
            del buf[rng.randrange(len(buf))]
        elif how == 5:
            buf.insert(rng.randrange(len(buf) + 1), rng.choice([0, 1, 255, rng.randrange(256)]))
        elif buf:
            for k in range(1, min(len(buf), rng.randint(1, 3)) + 1):
                buf[-k] = rng.randrange(min(256, len(buf) + 2))
        return bytes(buf)


def width_boundary_cases() -> List[Tuple[str, Any]]:
    cases: List[Tuple[str, Any]] = []
    for n in (252, 253, 254, 255, 256, 65532, 65533, 65534, 65535):
        cases.append(("as", ["x" * n]))
        cases.append(("(ayay)", (b"\x01" * n, b"\x02")))
        cases.append(("a(say)", [("n", b"\x03" * (n - 5))]))
    cases.append(("as", ["y" * 60] * 1100))
    return cases


def check_cases(cases: List[Tuple[str, bytes]], values: List[Any]) -> None:
    answers = ask_glib(cases)
    failures = []
    for (type_string, data), value, answer in zip(cases, values, answers):
        glib_value = untag(answer["value"])
        ours = decode(type_string, data)
        problems = []
        if not same(ours, glib_value):
            problems.append(f"decode {ours!r} != GLib {glib_value!r}")
        if is_normal(type_string, data) != answer["normal"]:
            problems.append(f"is_normal != GLib {answer['normal']}")
        if value is not None:
            if not answer["normal"] or answer["normal_form"] != data.hex():
                problems.append("encode is not GLib's normal form")
            if not same(glib_value, value[0]):
                problems.append(f"GLib reads back {glib_value!r}, encoded {value[0]!r}")
        if problems:
            failures.append(f"{type_string} {data[:64].hex()}: {'; '.join(problems)}")
    assert not failures, f"{len(failures)} differences, first: " + "\n".join(failures[:5])


def test_encode_matches_glib_and_mutations_decode_identically() -> None:
    gen = RandomValues(20261125)
    cases: List[Tuple[str, bytes]] = []
    values: List[Any] = []
    encoded: List[Tuple[str, bytes]] = []
    for round_index in range(700):
        if round_index % 5 == 0:
            type_string = gen.rng.choice(OSTREE_TYPES)
        else:
            type_string = gen.type_string()
        value = gen.value(parse_type(type_string))
        data = encode(type_string, value)
        cases.append((type_string, data))
        values.append((value,))
        encoded.append((type_string, data))
    for type_string, value in width_boundary_cases():
        data = encode(type_string, value)
        cases.append((type_string, data))
        values.append((value,))
    for type_string, data in encoded:
        for _ in range(4):
            cases.append((type_string, gen.mutate(data)))
            values.append(None)
        cases.append((type_string, gen.rng.randbytes(gen.rng.randint(0, 12))))
        values.append(None)
    check_cases(cases, values)


def test_random_framing_tables_decode_identically() -> None:
    """Short regions with random bytes: stresses tuple quirks and array cut-offs."""
    gen = RandomValues(7)
    types = ["(ayayayayay)", "(ayayiay)", "(yyaiyyaiyy)", "(sss)", "(ss)", "(tss)", "aay", "as",
             "a(sayay)", "(a(say)a(sayay))", "(uuua(ayay))", "v", "av", "a{sv}", "mas", "(yv)",
             "(vy)", "(ivasv)", "a(say)", "a(ay)", "(ay)", "(asas)", "a(asas)", "ao", "ag", "(ayay)", "a()",
             "(()ay)", "((yi)s)", "(sa(yi))", "m(ayy)", "amay", "(a{sv}aya(say)sstayay)"]
    cases = []
    for type_string in types:
        for _ in range(60):
            size = gen.rng.randint(0, 10)
            raw = bytes(gen.rng.choice([0, 0, 1, 2, 3, 4, 5, 8, 0x61, 0x73, 0x79, 255])
                        for _ in range(size))
            cases.append((type_string, raw))
    check_cases(cases, [None] * len(cases))


def test_variant_type_strings_and_depth_match_glib() -> None:
    cases = []
    for inner in ["y", "yy", "r", "(", "a{vs}", "a{sv}", "m", "()", "(y)", "ay", "{sv}", "\xff",
                  "a" * 127 + "y", "a" * 128 + "y", "a" * 129 + "y"]:
        cases.append(("v", b"\x2a\x00" + inner.encode("latin-1")))
    nested = b"\x2a\x00y"
    for depth in range(1, 131):
        nested = nested + b"\x00v"
        if depth in (125, 126, 127, 128, 129):
            cases.append(("v", nested))
            cases.append(("(v)", nested))
            width = 1 if len(nested) + 1 <= 0xFF else 2
            cases.append(("av", nested + len(nested).to_bytes(width, "little")))
    # a{sv} (with its inline string fast path) deep inside variants
    dict_variant = encode("a{sv}", {"k": ("s", "x"), "n": ("u", 1), "v": ("v", ("s", "y"))})
    nested = dict_variant + b"\x00a{sv}"
    for depth in range(1, 128):
        nested = nested + b"\x00v"
        if depth >= 118:
            cases.append(("v", nested))
    check_cases(cases, [None] * len(cases))


def test_over_wide_tables_match_glib() -> None:
    value = b"x" * 243 + b"\x00\x00s"
    sv_entry = b"k\x00" + bytes(6) + value + (2).to_bytes(2, "little")
    say_entry = b"n\x00" + b"\x01" * 252 + (2).to_bytes(2, "little")
    cases = [
        ("a{sv}", sv_entry + len(sv_entry).to_bytes(2, "little")),
        ("a(say)", say_entry + len(say_entry).to_bytes(2, "little")),
        ("(a(say)a(sayay))", b"a\x00\x01\x02" + bytes(2) + b"\x00\x02\x00" + bytes(3)),
        ("as", b"x" * 253 + b"\x00" + bytes.fromhex("fe00")),
        ("(ayay)", b"\x01" * 253 + bytes.fromhex("fd00")),
    ]
    check_cases(cases, [None] * len(cases))


def test_one_pass_fast_paths_match_glib() -> None:
    """The one-pass commit / a{sv} / dirtree readers (inline s, b and as variants) and
    decode_checked against GLib, on normal seeds across offset widths and their mutations."""
    from pyostree.gvariant import decode_checked

    gen = RandomValues(2026)
    commit_t = "(a{sv}aya(say)sstayay)"
    metas: List[Any] = [
        {}, {"version": ("s", "41.1"), "ostree.bootable": ("b", True), "f": ("b", False)},
        {"ostree.ref-binding": ("as", ["fedora/x86_64", "b"]), "e": ("as", []), "": ("s", "")},
        {"u": ("u", 7), "v": ("v", ("s", "z")), "m": ("mb", (True,)), "d": ("d", -0.0)},
        {"k" * 300: ("s", "\u00e9" * 200), "a": ("as", ["x" * 130, "y" * 130])},
    ]
    seeds: List[Tuple[str, bytes]] = []
    for meta in metas:
        seeds.append(("a{sv}", encode("a{sv}", meta)))
        for related in ([], [("r", b"\x01" * 32)]):
            value = (meta, b"\x05" * 32, related, "Subject \u00e9", "", 0x257D936500000000,
                     b"\x03" * 32, b"\x04" * 32)
            seeds.append((commit_t, encode(commit_t, value)))
    dirtree_t = "(a(say)a(sayay))"
    for files, dirs in [(0, 0), (2, 1), (30, 5)]:
        tree = (sorted(("f%d" % i + "\u00e9" * (i % 3) * 100, b"\x01" * 32) for i in range(files)),
                sorted(("d%d" % i, b"\x02" * 32, b"\x03" * 32) for i in range(dirs)))
        seeds.append((dirtree_t, encode(dirtree_t, tree)))
    cases = list(seeds)
    for _ in range(1500):
        type_string, data = gen.rng.choice(seeds)
        for _ in range(gen.rng.randint(1, 2)):
            data = gen.mutate(data)
        cases.append((type_string, data))
    check_cases(cases, [None] * len(cases))
    answers = ask_glib(cases)
    for (type_string, data), answer in zip(cases, answers):
        value, normal = decode_checked(type_string, data)
        assert same(value, untag(answer["value"])) and normal == answer["normal"], data.hex()
