"""GVariant encoding into GLib's normal form, little-endian (spec gvariant.md §5).

Each type is compiled once into a closure that appends a value to one shared ``bytearray``.
Containers start at a multiple of their own alignment, so padding is computed from the
absolute buffer length; framing offsets are relative to the container's start.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence

from pyostree.gvariant import fastpaths
from pyostree.gvariant._framing import pack_table, table_width
from pyostree.gvariant.decoder import is_object_path
from pyostree.gvariant.errors import GVariantError
from pyostree.gvariant.types import (
    CodecCache,
    bounded_put,
    ENDING_OFFSET,
    TypeNode,
    is_valid_signature,
    layout_rows,
    make_plan,
    parse_type,
)

EncodeFn = Callable[[bytearray, Any], None]

_compiled = CodecCache(2048)
_SPECIALISED: Dict[str, Callable[[Sequence[Any]], Optional[bytes]]] = {
    "a(say)": fastpaths.encode_file_list,
    "a(sayay)": fastpaths.encode_dir_list,
}
_COMPILED_MAX = 2048

_INT_RANGES = {
    "y": (0, 0xFF, "B"), "n": (-0x8000, 0x7FFF, "h"), "q": (0, 0xFFFF, "H"),
    "i": (-0x80000000, 0x7FFFFFFF, "i"), "u": (0, 0xFFFFFFFF, "I"),
    "h": (-0x80000000, 0x7FFFFFFF, "i"),
    "x": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF, "q"), "t": (0, 0xFFFFFFFFFFFFFFFF, "Q"),
}
_ZEROS = bytes(8)


def encode(type_string: str, value: Any) -> bytes:
    """Serialise ``value`` (mapping of spec §12) as GLib's normal form."""
    return encode_node(parse_type(type_string), value)


def encode_node(node: TypeNode, value: Any) -> bytes:
    buf = bytearray()
    get_encoder(node)(buf, value)
    return bytes(buf)


def get_encoder(node: TypeNode) -> EncodeFn:
    fn = _compiled.get(node)
    if fn is None:
        fn = _compile(node)
        _compiled.put(node, fn)
    return fn


def append_offsets(buf: bytearray, start: int, ends: Sequence[int]) -> None:
    """Append a framing table with the smallest width that fits body plus table (§4.1)."""
    buf += pack_table(len(buf) - start, ends)


def _type_error(node: TypeNode, value: Any, expected: str) -> GVariantError:
    return GVariantError(
        f"value for GVariant type {node.string!r} must be {expected}, not {type(value).__name__}"
    )


def encode_text(node: TypeNode, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _type_error(node, value, "str")
    if "\x00" in value:
        raise GVariantError(f"GVariant {node.string!r} string contains a NUL character")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise GVariantError(
            f"GVariant {node.string!r} string contains a lone surrogate"
        ) from None
    return raw


def _compile(node: TypeNode) -> EncodeFn:
    special = _SPECIALISED.get(node.string)
    if special is not None:
        return _with_fast_path(special, _compile_variable_array(node))
    if node.string == "a{sv}":
        return _compile_vardict(node)
    kind = node.kind
    if kind == "b":
        return _compile_bool(node)
    if kind in _INT_RANGES:
        return _compile_int(node)
    if kind == "d":
        return _compile_double(node)
    if kind in "sog":
        return _compile_text(node)
    if kind == "v":
        return _compile_variant(node)
    if kind == "m":
        return _compile_maybe(node)
    if kind == "a":
        assert node.element is not None
        if node.element.kind == "y":
            return _compile_bytes(node)
        if node.element.fixed_size:
            return _compile_fixed_array(node)
        return _compile_variable_array(node)
    return _compile_tuple(node)


def _with_fast_path(fast: Callable[[Sequence[Any]], Optional[bytes]],
                    generic: EncodeFn) -> EncodeFn:
    """Use a specialised list encoder; on any doubt the generic one decides (and raises)."""
    def enc(buf: bytearray, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            raw = fast(value)
            if raw is not None:
                buf += raw
                return
        generic(buf, value)
    return enc


def _compile_bool(node: TypeNode) -> EncodeFn:
    def enc(buf: bytearray, value: Any) -> None:
        if value is True or value is False or value in (0, 1) and isinstance(value, int):
            buf.append(1 if value else 0)
        else:
            raise GVariantError(f"value for GVariant type 'b' must be a bool, not {value!r}")
    return enc


def _compile_int(node: TypeNode) -> EncodeFn:
    low, high, code = _INT_RANGES[node.kind]
    pack = struct.Struct("<" + code).pack

    def enc(buf: bytearray, value: Any) -> None:
        if not isinstance(value, int):
            raise _type_error(node, value, "int")
        if not low <= value <= high:
            raise GVariantError(f"value {value} out of range for GVariant type {node.kind!r}")
        buf += pack(value)
    return enc


def _compile_double(node: TypeNode) -> EncodeFn:
    pack = struct.Struct("<d").pack

    def enc(buf: bytearray, value: Any) -> None:
        if not isinstance(value, (float, int)):
            raise _type_error(node, value, "float")
        try:
            buf += pack(float(value))
        except OverflowError:
            raise GVariantError(f"value {value} out of range for GVariant type 'd'") from None
    return enc


def _compile_text(node: TypeNode) -> EncodeFn:
    kind = node.kind

    def enc(buf: bytearray, value: Any) -> None:
        raw = encode_text(node, value)
        if kind == "o" and not is_object_path(value):
            raise GVariantError(f"invalid D-Bus object path {value!r}")
        if kind == "g" and not is_valid_signature(value):
            raise GVariantError(f"invalid D-Bus signature {value!r}")
        buf += raw
        buf.append(0)
    return enc


_variant_encoders: Dict[str, EncodeFn] = {}


def variant_encoder(type_string: Any) -> EncodeFn:
    """Encoder of a variant's child type, cached by type string."""
    try:
        return _variant_encoders[type_string]
    except (KeyError, TypeError):
        pass
    enc = get_encoder(parse_type(type_string))
    if len(type_string) <= 256:
        bounded_put(_variant_encoders, type_string, enc, _COMPILED_MAX)
    return enc


def encode_variant(buf: bytearray, value: Any) -> None:
    """Append a ``v`` given as (type_string, value): child, NUL, type string (§5.6)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise GVariantError(
            f"value for GVariant type 'v' must be a (type_string, value) pair, not {value!r:.60}")
    type_string, child_value = value
    variant_encoder(type_string)(buf, child_value)
    buf.append(0)
    buf += type_string.encode("ascii")


def _compile_variant(node: TypeNode) -> EncodeFn:
    return encode_variant


def _compile_vardict(node: TypeNode) -> EncodeFn:
    """``a{sv}`` with the ``{sv}`` entry written inline; other inputs go the generic way."""
    generic = _compile_variable_array(node)
    key_node = parse_type("s")

    def enc(buf: bytearray, value: Any) -> None:
        if not isinstance(value, dict):
            generic(buf, value)
            return
        if not value:
            return
        start = len(buf)
        ends = []
        for key, variant in value.items():
            pad = -len(buf) & 7
            if pad:
                buf += _ZEROS[:pad]
            entry = len(buf)
            if type(key) is str and "\x00" not in key and key.isascii():
                buf += key.encode("ascii")
            else:
                buf += encode_text(key_node, key)
            buf.append(0)
            key_end = len(buf) - entry
            pad = -len(buf) & 7
            if pad:
                buf += _ZEROS[:pad]
            if (type(variant) is tuple and len(variant) == 2 and variant[0] == "s"
                    and type(variant[1]) is str and "\x00" not in variant[1]
                    and variant[1].isascii()):
                # the commonest metadata value, a plain ASCII string
                buf += variant[1].encode("ascii")
                buf += b"\x00\x00s"
            else:
                encode_variant(buf, variant)
            body = len(buf) - entry
            if body < 0xFF:
                buf.append(key_end)
            else:
                buf += key_end.to_bytes(table_width(body, 1), "little")
            ends.append(len(buf) - start)
        append_offsets(buf, start, ends)
    return enc


def _compile_maybe(node: TypeNode) -> EncodeFn:
    elem = node.element
    assert elem is not None
    enc_elem = get_encoder(elem)
    variable = not elem.fixed_size

    def enc(buf: bytearray, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, tuple) or len(value) != 1:
            raise _type_error(node, value, "None or a 1-tuple")
        enc_elem(buf, value[0])
        if variable:
            buf.append(0)
    return enc


def _compile_bytes(node: TypeNode) -> EncodeFn:
    def enc(buf: bytearray, value: Any) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _type_error(node, value, "bytes")
        buf += value
    return enc


def _items(node: TypeNode, value: Any) -> Sequence[Any]:
    """The elements of an array value: a sequence, or for a{..} a mapping's items."""
    assert node.element is not None
    if node.element.kind == "{":
        if isinstance(value, Mapping):
            return list(value.items())
    if isinstance(value, (list, tuple)):
        return value
    expected = "a dict" if node.element.kind == "{" else "a list"
    raise _type_error(node, value, expected)


def _compile_fixed_array(node: TypeNode) -> EncodeFn:
    elem = node.element
    assert elem is not None
    enc_elem = get_encoder(elem)

    def enc(buf: bytearray, value: Any) -> None:
        for item in _items(node, value):
            enc_elem(buf, item)
    return enc


def _compile_variable_array(node: TypeNode) -> EncodeFn:
    elem = node.element
    assert elem is not None
    enc_elem = get_encoder(elem)
    mask = elem.align - 1

    def enc(buf: bytearray, value: Any) -> None:
        items = _items(node, value)
        if not items:
            return
        start = len(buf)
        ends: List[int] = []
        for item in items:
            pad = -len(buf) & mask
            if pad:
                buf += _ZEROS[:pad]
            enc_elem(buf, item)
            ends.append(len(buf) - start)
        append_offsets(buf, start, ends)
    return enc


def _compile_tuple(node: TypeNode) -> EncodeFn:
    members = node.members
    plan = make_plan(
        ((member.align - 1, get_encoder(member), row[4] == ENDING_OFFSET)
         for row, member in zip(layout_rows(members), members)),
        len(members))
    count = len(members)
    fixed = node.fixed_size
    expected = "a dict entry (key, value)" if node.kind == "{" else f"a {count}-tuple"

    def enc(buf: bytearray, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != count:
            raise GVariantError(f"value for GVariant type {node.string!r} must be {expected}")
        start = len(buf)
        if fixed:
            for (mask, enc_member, _offset), item in zip(plan, value):
                pad = -len(buf) & mask
                if pad:
                    buf += _ZEROS[:pad]
                enc_member(buf, item)
            buf += bytes(start + fixed - len(buf))
            return
        ends: List[int] = []
        for (mask, enc_member, has_offset), item in zip(plan, value):
            pad = -len(buf) & mask
            if pad:
                buf += _ZEROS[:pad]
            enc_member(buf, item)
            if has_offset:
                ends.append(len(buf) - start)
        if ends:
            ends.reverse()
            append_offsets(buf, start, ends)
    return enc
