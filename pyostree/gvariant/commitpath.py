"""Straight-line codec for the OSTree commit type ``(a{sv}aya(say)sstayay)`` (and ``a{sv}``).

``decode_commit_normal`` reads a commit in one pass *and* proves it is in GLib's normal form:
it returns the value only when every check of ``g_variant_is_normal_form()`` passes (spec
gvariant.md §8) and None otherwise, so callers fall back to the generic, GLib-exact decoder
and checker on any doubt. On normal bytes the generic decoder reads exactly the same bounds
(§7.7), hence the same value. The encoders return None for anything but plain values, and
the generic encoder then decides (and raises the precise error).
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Tuple

from pyostree.gvariant import fastpaths
from pyostree.gvariant._framing import (
    offset_width,
    pack_table,
    table_reader,
    table_width,
    total_size,
)
from pyostree.gvariant.decoder import get_decoder, variant_child
from pyostree.gvariant.encoder import encode_variant
from pyostree.gvariant.normal import get_checker
from pyostree.gvariant.types import bounded_put

COMMIT_TYPE = "(a{sv}aya(say)sstayay)"

_TABLE6 = {2: struct.Struct("<6H"), 4: struct.Struct("<6I"), 8: struct.Struct("<6Q")}
_U64 = struct.Struct("<Q")
_PACK_U64 = _U64.pack
_UNPACK_U64 = _U64.unpack_from
_BOOL_VARIANTS = (("b", False), ("b", True))
_KEY_HEADS_MAX = 512
_key_heads: Dict[Any, Tuple[bytes, int, int]] = {}
"""metadata key -> (key, NUL and padding to the value; key end; their length): keys repeat
across commits"""
_PADS = [b"\x00" * n for n in range(8)]


def decode_strings_normal(data: bytes, start: int, end: int) -> Optional[List[str]]:
    """``as`` if normal, else None (at a depth where its elements are below the limit).

    The strings end exactly at the table's entries and hold no other NUL, so the body is one
    UTF-8 text split at NULs: UTF-8 is valid per string iff it is valid for the whole body.
    """
    # normal_table() inline, with table_reader(): two calls fewer per commit decode
    size = end - start
    if size == 0:
        return []
    if size <= 0xFF:
        width = 1
        last = data[end - 1]
    else:
        width = 2 if size <= 0xFFFF else (4 if size <= 0xFFFFFFFF else 8)
        last = int.from_bytes(data[end - width:end], "little")
    if last > size or (size - last) % width:
        return None
    count = (size - last) // width
    if count == 0 or total_size(last, count) != size:
        return None
    ends = table_reader(count, width)(data, start + last)
    prev = 0
    for item_end in ends:
        if item_end <= prev or item_end > last or data[start + item_end - 1] != 0:
            return None  # empty, out of order, into the table, or not NUL-terminated
        prev = item_end
    # the final entry is last; each string's final byte is a NUL: are there no others?
    if data.count(0, start, start + last) != count:
        return None
    try:
        text = data[start:start + last].decode("utf-8")
    except UnicodeDecodeError:
        return None
    items = text.split("\x00")
    items.pop()
    return items


def decode_vardict_normal(data: bytes, start: int, end: int, depth: int) -> Optional[Dict[str, Any]]:
    """``a{sv}`` at ``depth`` (< 125) if normal, else None: _normal_vardict and
    _decode_vardict in one pass."""
    # normal_table() inline, with table_reader(): two calls fewer per commit decode
    size = end - start
    if size == 0:
        return {}
    if size <= 0xFF:
        width = 1
        last = data[end - 1]
    else:
        width = 2 if size <= 0xFFFF else (4 if size <= 0xFFFFFFFF else 8)
        last = int.from_bytes(data[end - width:end], "little")
    if last > size or (size - last) % width:
        return None
    count = (size - last) // width
    if count == 0 or total_size(last, count) != size:
        return None
    ends = table_reader(count, width)(data, start + last)
    out: Dict[str, Any] = {}
    prev = 0
    value_depth = depth + 2
    memo: Optional[Dict[Any, Any]] = None
    zero_count = data.count
    for item_end in ends:
        item_start = (prev + 7) & ~7
        if item_end > last or item_start >= item_end:
            return None  # out of order, into the table, padding past the end, or empty
        a = start + item_start
        if item_start != prev and zero_count(0, start + prev, a) != item_start - prev:
            return None
        b = start + item_end
        entry_size = item_end - item_start
        if entry_size <= 0xFF:
            entry_width = 1
            key_end = data[b - 1]
        else:
            entry_width = offset_width(entry_size)
            key_end = int.from_bytes(data[b - entry_width:b], "little")
            if total_size(entry_size - entry_width, 1) != entry_size:
                return None
        value_end = b - entry_width
        key_stop = a + key_end
        value_start = a + ((key_end + 7) & ~7)
        # the key is a string [a, key_stop), then zero padding up to value_start <= value_end
        if key_end == 0 or value_start > value_end or data[key_stop - 1] != 0:
            return None
        if value_start != key_stop and zero_count(0, key_stop, value_start) != (
                value_start - key_stop):
            return None
        kind = data[value_end - 1] if value_end - value_start >= 3 else 0
        if kind == 0x73 and data[value_end - 3:value_end] == b"\x00\x00s":
            # the commonest value, a string variant: key 00 pad value 00 00 "s", and no
            # other NUL; one UTF-8 check covers key and value (NUL never sits inside a
            # multi-byte sequence)
            if zero_count(0, a, value_end) != value_start - key_stop + 3:
                return None
            try:
                parts = data[a:value_end - 2].decode("utf-8").split("\x00")
            except UnicodeDecodeError:
                return None
            out[parts[0]] = ("s", parts[-2])
            prev = item_end
            continue
        raw = data[a:key_stop - 1]
        if b"\x00" in raw:
            return None
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if kind == 0x73 and data[value_end - 2] == 0:
            return None  # a string variant whose string is not NUL-terminated
        if kind == 0x73 and data[value_end - 2] == 0x61 and data[value_end - 3] == 0:
            strings = decode_strings_normal(data, value_start, value_end - 3)
            if strings is None:
                return None
            out[key] = ("as", strings)
        elif kind == 0x62 and value_end - value_start == 3 and data[value_end - 2] == 0:
            flag = data[value_start]
            if flag > 1:
                return None
            out[key] = _BOOL_VARIANTS[flag]
        else:
            found = variant_child(data, value_start, value_end, value_depth)
            if found is None:
                return None
            child, sep = found[1], found[2]
            if not get_checker(child)(data, value_start, sep, value_depth + 1):
                return None
            if memo is None:
                memo = {}
            out[key] = (found[0], get_decoder(child)(data, value_start, sep, value_depth + 1,
                                                     memo))
        prev = item_end
    return out


def decode_commit_normal(data: bytes) -> Optional[Tuple[Any, ...]]:
    """The commit value if ``data`` (bytes) is provably normal, else None (spec §7.7, §8)."""
    size = len(data)
    if size <= 0xFF:
        if size < 6:
            return None
        width = 1
        e5, e4, e3, e2, e1, e0 = data[size - 6:]
    else:
        width = 2 if size <= 0xFFFF else (4 if size <= 0xFFFFFFFF else 8)  # offset_width inline
        e5, e4, e3, e2, e1, e0 = _TABLE6[width].unpack_from(data, size - 6 * width)
    table = size - 6 * width
    if total_size(table, 6) != size:
        return None
    t_start = (e4 + 7) & ~7
    t_end = t_start + 8
    if not (e0 <= e1 <= e2 <= e3 <= e4 and t_end <= e5 <= table):
        return None
    if t_start != e4 and data[e4:t_start].strip(b"\x00"):
        return None
    metadata = decode_vardict_normal(data, 0, e0, 1)
    if metadata is None:
        return None
    if e1 == e2:
        related: Optional[List[Any]] = []
    else:
        related = fastpaths.decode_file_list_normal(data, e1, e2)
        if related is None:
            return None
    # subject and body: two NUL-terminated strings with no other NUL, valid UTF-8 together
    if not (e2 < e3 < e4 and data[e3 - 1] == 0 and data[e4 - 1] == 0
            and data.count(0, e2, e4) == 2):
        return None
    try:
        subject, body, _ = data[e2:e4].decode("utf-8").split("\x00")
    except UnicodeDecodeError:
        return None
    return (metadata, data[e0:e1], related, subject, body, _UNPACK_U64(data, t_start)[0],
            data[t_end:e5], data[e5:table])


def encode_strings(items: List[Any]) -> Optional[bytes]:
    """``as`` in normal form, None for anything but a list of plain strings."""
    if not items:
        return b""
    parts = []
    ends = []
    total = 0
    try:
        for item in items:
            if type(item) is not str or "\x00" in item:
                return None
            raw = item.encode("utf-8")
            total += len(raw) + 1
            parts.append(raw)
            ends.append(total)
    except UnicodeEncodeError:
        return None
    parts.append(bytes(ends) if total + len(ends) <= 0xFF else pack_table(total, ends))
    return b"\x00".join(parts)


def encode_vardict(value: Any) -> Optional[bytes]:
    """``a{sv}`` from a dict in normal form; None for anything unusual."""
    if type(value) is not dict:
        return None
    if not value:
        return b""
    parts: List[bytes] = []
    ends: List[int] = []
    parts_append = parts.append
    ends_append = ends.append
    total = 0
    pads = _PADS
    key_heads = _key_heads
    try:
        for key, variant in value.items():
            if type(variant) is not tuple:
                return None
            head = key_heads.get(key)  # TypeError for an unhashable key
            if head is None:
                if type(key) is not str or "\x00" in key:
                    return None
                raw_key = key.encode("utf-8")  # UnicodeEncodeError for lone surrogates
                key_end = len(raw_key) + 1
                key_pad = -key_end & 7
                head = (raw_key + b"\x00" + pads[key_pad], key_end, key_end + key_pad)
                if len(key) <= 64:
                    bounded_put(key_heads, key, head, _KEY_HEADS_MAX)
            key_bytes, key_end, key_len = head
            child_type, child = variant  # ValueError unless a pair
            if child_type == "s":
                if type(child) is not str or "\x00" in child:
                    return None
                raw = child.encode("utf-8")
                body = key_len + len(raw) + 3
                if body < 0xFF:
                    entry_pad = -total & 7
                    parts_append(b"%s%s%s\x00\x00s%c" % (pads[entry_pad], key_bytes, raw, key_end))
                    total += entry_pad + body + 1
                    ends_append(total)
                    continue
                suffix = b"\x00\x00s"
            elif child_type == "b" and (child is True or child is False):
                raw = b"\x01" if child else b"\x00"
                suffix = b"\x00b"
            elif child_type == "as" and type(child) is list:
                raw_strings = encode_strings(child)
                if raw_strings is None:
                    return None
                raw = raw_strings
                suffix = b"\x00as"
            else:
                buf = bytearray()
                encode_variant(buf, variant)  # a variant is 8-aligned: same bytes in place
                raw = bytes(buf)
                suffix = b""
            body = key_len + len(raw) + len(suffix)
            entry_pad = -total & 7
            if body < 0xFF:
                parts_append(b"%s%s%s%s%c" % (pads[entry_pad], key_bytes, raw, suffix, key_end))
                total += entry_pad + body + 1
            else:
                tail = key_end.to_bytes(table_width(body, 1), "little")
                parts_append(b"%s%s%s%s%s" % (pads[entry_pad], key_bytes, raw, suffix, tail))
                total += entry_pad + body + len(tail)
            ends_append(total)
    except Exception:  # any bad value: the generic encoder raises the precise error
        return None
    if total + len(ends) <= 0xFF:
        parts_append(bytes(ends))
    else:
        parts_append(pack_table(total, ends))
    return b"".join(parts)


def encode_commit(value: Any) -> Optional[bytes]:
    """The commit in normal form, or None to let the generic encoder decide."""
    if type(value) is not tuple or len(value) != 8:
        return None
    metadata, parent, related, subject, body, timestamp, tree, meta = value
    raw_meta = encode_vardict(metadata)
    if raw_meta is None:
        return None
    if not (type(parent) is bytes and type(tree) is bytes and type(meta) is bytes):
        return None
    if related:
        raw_related = (fastpaths.encode_file_list(related)
                       if isinstance(related, (list, tuple)) else None)
        if raw_related is None:
            return None
    elif type(related) is list or type(related) is tuple:
        raw_related = b""
    else:
        return None
    if (type(subject) is not str or type(body) is not str or "\x00" in subject
            or "\x00" in body):
        return None
    try:
        raw_subject = subject.encode("utf-8")
        raw_body = body.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if type(timestamp) is not int or not 0 <= timestamp <= 0xFFFFFFFFFFFFFFFF:
        return None
    e0 = len(raw_meta)
    e1 = e0 + len(parent)
    e2 = e1 + len(raw_related)
    e3 = e2 + len(raw_subject) + 1
    e4 = e3 + len(raw_body) + 1
    pad = -e4 & 7
    e5 = e4 + pad + 8 + len(tree)
    body_size = e5 + len(meta)
    table = (bytes((e5, e4, e3, e2, e1, e0)) if body_size + 6 <= 0xFF
             else pack_table(body_size, [e5, e4, e3, e2, e1, e0]))
    return b"".join((raw_meta, parent, raw_related, raw_subject, b"\x00", raw_body, b"\x00",
                     _PADS[pad], _PACK_U64(timestamp), tree, meta, table))
