"""Hostile inputs (spec gvariant.md §7.10): no RecursionError, shared defaults, bounded memory."""

from __future__ import annotations

import struct
import tracemalloc
from typing import Any

from pyostree.gvariant import decode, encode, is_normal

UNIT = ("()", ())


def test_huge_nested_type_strings_inside_variants_are_unit() -> None:
    for type_string in ("a" * 100_000 + "y", "(" * 100_000 + ")" * 100_000, "m" * 50_000 + "y",
                        "a{s" * 50_000 + "y" + "}" * 50_000, "(" * 100_000):
        data = b"\x00" + type_string.encode()
        assert decode("v", data) == UNIT
        assert not is_normal("v", data)


def test_wide_type_string_inside_a_variant() -> None:
    members = 20_000
    type_string = "(" + "y" * members + ")"
    data = bytes(range(256)) * (members // 256) + bytes(members % 256) + b"\x00" + type_string.encode()
    value = decode("v", data)
    assert value[0] == type_string and len(value[1]) == members and value[1][:3] == (0, 1, 2)
    assert is_normal("v", data)


def test_300_nested_variants() -> None:
    data = b"\x2a\x00y"
    for _ in range(300):
        data += b"\x00v"
    value = decode("v", data)
    levels = 0
    while value[0] == "v":
        value = value[1]
        levels += 1
    assert levels == 127 and value == UNIT
    assert not is_normal("v", data)
    assert not is_normal("av", data + struct.pack("<H", len(data)))


def test_deep_static_type_decodes_without_recursion_error() -> None:
    type_string = "a" * 128 + "y"
    value: Any = b"\x07"
    for _ in range(127):
        value = [value]
    data = encode(type_string, value)
    assert decode(type_string, data) == value
    assert not is_normal(type_string, data)  # the byte sits at depth 128
    assert is_normal("a" * 127 + "y", encode("a" * 127 + "y", value[0]))


def test_invalid_children_share_one_default() -> None:
    # 40,000 framing entries, all 0: every element of a 1000-member tuple type is invalid
    type_string = "a(" + "s" * 1000 + ")"
    data = bytes(4 * 40_000)
    tracemalloc.start()
    try:
        value = decode(type_string, data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) == 40_000
    assert all(item is value[0] for item in value) and value[0] == ("",) * 1000
    assert peak < 32 * 1024 * 1024


def test_default_blowup_through_variants_is_bounded() -> None:
    inner = "(" + "as" * 1000 + ")"
    entry = b"\x00" + inner.encode()
    count = 2_000
    body = entry * count
    ends = [len(entry) * (i + 1) for i in range(count)]
    data = body + struct.pack("<%dI" % count, *ends)
    tracemalloc.start()
    try:
        value = decode("av", data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value) == count and value[0] == (inner, ([],) * 1000)
    assert peak < 64 * 1024 * 1024


def test_untrusted_large_array_is_linear() -> None:
    strings = ["s%05d" % i for i in range(65_000)]
    data = encode("as", strings)
    assert decode("as", data) == strings
    assert is_normal("as", data)
    broken = bytearray(data)
    broken[-4 * 100] ^= 0xFF  # one table entry out of order: the rest becomes default
    value = decode("as", bytes(broken))
    assert len(value) == 65_000 and value[-1] == ""
    assert not is_normal("as", bytes(broken))


def test_claimed_sizes_beyond_the_data() -> None:
    assert decode("as", b"\xff") == []
    assert decode("as", b"a\x00" + b"\x00" * 300 + b"\xff\xff") == []
    assert decode("(ayay)", b"\x01\x02\xff") == (b"", b"")
    assert decode("a{sv}", b"\xff" * 70_000) == {}


def test_caches_stay_bounded_under_many_distinct_types() -> None:
    from pyostree.gvariant import decoder, encoder, normal, types

    def distinct_type(k: int) -> str:
        digits = ""
        while k:
            k, digit = divmod(k, 13)
            digits += "bynqiuxthdsog"[digit]
        return "(" + digits + "as)"

    type_strings = [distinct_type(k) for k in range(1, 6001)]
    items = [b"\x00" + t.encode() for t in type_strings]
    body = bytearray()
    ends = []
    for item in items:
        body += bytes(-len(body) & 7) + item
        ends.append(len(body))
    data = bytes(body) + struct.pack("<%dI" % len(ends), *ends)
    value = decode("av", data)
    assert [t for t, _ in value] == type_strings
    assert value[0][1] == (False, [])
    assert is_normal("av", data) is False  # an empty region is not normal for these tuples
    assert len(types._cache) <= types._CACHE_MAX_ENTRIES
    assert len(decoder._variant_types) <= decoder._VARIANT_TYPES_MAX
    assert len(decoder._compiled) <= decoder._COMPILED_MAX
    assert len(normal._compiled) <= normal._COMPILED_MAX
    assert len(encoder._compiled) <= encoder._COMPILED_MAX


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_tuple_types_inside_variants_cost_little_per_member() -> None:
    """A type string as long as the input costs a few bytes per member, not a node each
    (spec §7.10): basic members share one node, layouts are not stored, big types are not
    cached, and a variant is checked (size, depth) before its codec is compiled."""
    n = 50_000
    cases = [
        b"\x01" * 64 + b"\x00(" + b"t" * n + b")",              # wrong size: the unit
        bytes(n) + b"\x00(" + b"y" * n + b")",                   # valid fixed tuple
        b"\x01\x00(" + b"say" * (n // 3) + b")",                 # variable tuple, defaults
        b"\x01\x00" + b"a" * 100 + b"(" + b"y" * n + b")",       # deep and wide
        b"\x00(" + b"(yi)(ys)(ay)(sv)" * (n // 16) + b")",       # nested members
    ]
    for data in cases:
        peak = _peak(lambda: (decode("v", data), is_normal("v", data)))
        assert peak < 40 * len(data) + (1 << 18), (data[:70], peak / len(data))
    assert decode("v", cases[0]) == UNIT and decode("v", cases[3])[0].startswith("a" * 100)
    value = decode("v", cases[2])
    assert len(value[1]) == 2 * (n // 3) and value[1][:2] == ("", b"")


def test_huge_nested_type_parses_in_linear_time() -> None:
    """100 levels around a 500,000-member tuple: parsed in one pass, no copy per level."""
    import time

    data = b"\x01\x00" + b"a" * 100 + b"(" + b"y" * 500_000 + b")"
    t0 = time.process_time()
    for _ in range(3):
        assert decode("v", data)[0].startswith("a" * 100)
    # a quadratic parser (a copy and rescan per level) needs many seconds here
    assert time.process_time() - t0 < 10


def test_codec_caches_keep_no_long_types() -> None:
    """Codecs of long types are compiled per use; the caches stay within their char budget."""
    from pyostree.gvariant import decoder, encoder, normal

    for k in range(20):
        type_string = "(" + "y" * (5_000 + 1_999 * k) + "s)"
        data = b"\x01\x00" + type_string.encode()
        assert decode("v", data)[0] == type_string
        is_normal("v", data)
    for cache in (decoder._compiled, normal._compiled, encoder._compiled):
        assert cache.chars <= cache.max_chars
        assert all(len(node.string) <= cache.max_entry_chars for node in cache)


def test_column_plans_match_tuple_plans(monkeypatch: Any) -> None:
    """Tuples with more than 64 members keep their codec plan as narrow columns; the codecs
    must behave exactly as with the plain plan, on normal and on hostile bytes."""
    import random

    from pyostree.gvariant import decoder, encoder, normal, types

    rows = [(i, -i * 1000, i * 70_000, 2**40 + i, "x", True) for i in range(100)]
    assert isinstance(types.make_plan(iter(rows), 100), types.Columns)
    assert list(types.make_plan(iter(rows), 100)) == rows
    rng = random.Random(3)
    for type_string in ["(" + "sy" * 40 + "t)", "(" + "y" * 70 + "ias)", "(" + "(yi)" * 65 + ")",
                        "(" + "ay" * 66 + ")"]:
        node = types.parse_type(type_string)
        big = (decoder._compile_fixed_tuple if node.fixed_size else decoder._compile_variable_tuple)(node)
        big_norm = normal._compile_tuple(node)
        big_enc = encoder._compile_tuple(node)
        monkeypatch.setattr(types, "_SMALL_PLAN", 10**9)
        small = (decoder._compile_fixed_tuple if node.fixed_size else decoder._compile_variable_tuple)(node)
        small_norm = normal._compile_tuple(node)
        small_enc = encoder._compile_tuple(node)
        monkeypatch.setattr(types, "_SMALL_PLAN", 64)
        value = decode(type_string, bytes(node.fixed_size or 300))
        buf_big, buf_small = bytearray(), bytearray()
        big_enc(buf_big, value)
        small_enc(buf_small, value)
        assert buf_big == buf_small
        seed = bytes(buf_big)
        for _ in range(300):
            data = bytearray(seed)
            for _ in range(rng.randint(0, 4)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[:rng.randrange(len(data) + 1)]
            raw = bytes(data)
            if node.fixed_size and len(raw) != node.fixed_size:
                continue
            assert big(raw, 0, len(raw), 0, {}) == small(raw, 0, len(raw), 0, {})
            assert big_norm(raw, 0, len(raw), 0) == small_norm(raw, 0, len(raw), 0)
