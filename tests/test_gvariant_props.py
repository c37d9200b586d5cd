"""Property tests for pyostree.gvariant: round trips, totality of decode, normal-form laws."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyostree.gvariant import decode, encode, is_normal
from pyostree.gvariant.types import TypeNode, parse_type

BASICS = "bynqiuxthdsog"
INT_RANGES = {
    "y": (0, 0xFF), "n": (-0x8000, 0x7FFF), "q": (0, 0xFFFF), "i": (-(1 << 31), (1 << 31) - 1),
    "u": (0, (1 << 32) - 1), "h": (-(1 << 31), (1 << 31) - 1), "x": (-(1 << 63), (1 << 63) - 1),
    "t": (0, (1 << 64) - 1),
}

basic_types = st.sampled_from(BASICS)


def _container(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        inner.map(lambda t: "a" + t),
        inner.map(lambda t: "m" + t),
        st.lists(inner, max_size=4).map(lambda ts: "(" + "".join(ts) + ")"),
        st.tuples(basic_types, inner).map(lambda kv: "a{" + kv[0] + kv[1] + "}"),
        st.tuples(basic_types, inner).map(lambda kv: "{" + kv[0] + kv[1] + "}"),
    )


type_strings = st.recursive(st.sampled_from(BASICS + "v"), _container, max_leaves=8)

object_paths = st.one_of(
    st.just("/"),
    st.lists(st.from_regex(r"[A-Za-z0-9_]{1,4}", fullmatch=True), min_size=1, max_size=3)
    .map(lambda parts: "/" + "/".join(parts)),
)
texts = st.text(st.characters(codec="utf-8", blacklist_characters="\x00"),
                max_size=12)
floats = st.integers(0, (1 << 64) - 1).map(lambda bits: struct.unpack("<d", bits.to_bytes(8, "little"))[0])


def values_for(node: TypeNode, draw: Any, depth: int = 3) -> Any:
    kind = node.kind
    if kind == "b":
        return draw(st.booleans())
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return draw(st.integers(low, high))
    if kind == "d":
        return draw(floats)
    if kind == "s":
        return draw(texts)
    if kind == "o":
        return draw(object_paths)
    if kind == "g":
        sig = draw(st.lists(type_strings, max_size=3))
        return "".join(sig).replace("m", "a")
    if kind == "v":
        inner = parse_type(draw(type_strings) if depth > 0 else draw(st.sampled_from(BASICS)))
        return (inner.string, values_for(inner, draw, depth - 1))
    if kind == "m":
        assert node.element is not None
        if draw(st.booleans()):
            return None
        return (values_for(node.element, draw, depth - 1),)
    if kind == "a":
        elem = node.element
        assert elem is not None
        if elem.kind == "y":
            return draw(st.binary(max_size=300))
        count = draw(st.integers(0, 3 if depth > 0 else 1))
        items = [values_for(elem, draw, depth - 1) for _ in range(count)]
        return dict(items) if elem.kind == "{" else items
    return tuple(values_for(m, draw, depth - 1) for m in node.members)


def same(a: Any, b: Any) -> bool:
    """Equality that also checks Python types and float bits (NaN payloads, -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    return bool(a == b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_encode_decode_round_trip(data: st.DataObject) -> None:
    type_string = data.draw(type_strings)
    node = parse_type(type_string)
    value = values_for(node, data.draw)
    raw = encode(type_string, value)
    assert is_normal(type_string, raw)
    again = decode(type_string, raw)
    assert same(again, value)
    assert encode(type_string, again) == raw
    if node.fixed_size:
        assert len(raw) == node.fixed_size
    assert len(raw) >= node.min_size  # the checkers refuse shorter bodies unread


@settings(max_examples=300, deadline=None)
@given(type_strings, st.binary(max_size=40))
def test_decode_is_total_and_normalises(type_string: str, raw: bytes) -> None:
    value = decode(type_string, raw)  # never raises on data
    normal = encode(type_string, value)
    assert is_normal(type_string, normal)
    assert same(decode(type_string, normal), value)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_normal_data_never_breaks_decode(data: st.DataObject) -> None:
    type_string = data.draw(type_strings)
    raw = bytearray(encode(type_string, values_for(parse_type(type_string), data.draw)))
    if raw:
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    value = decode(type_string, bytes(raw))
    assert is_normal(type_string, encode(type_string, value))
