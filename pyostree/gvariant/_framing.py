"""Framing offsets (spec gvariant.md §4.1): the one definition of their widths, reads and tables,
and of reading a NUL-terminated string (§7.3), the leaf every framed container holds.

Readers derive the offset width from a container's size (``offset_width``); writers pick the
smallest width that fits body plus table (``table_width``, ``total_size``, ``pack_table``).
Used by the generic codec, the fast paths and ``pyostree.objects``.
"""

from __future__ import annotations

import struct
from typing import Callable, Dict, Optional, Sequence, Tuple

from pyostree.gvariant.types import bounded_put

__all__ = ["TABLE_CODES", "array_table", "decode_string", "normal_table", "offset_width",
           "pack_table", "read_offset", "table_reader", "table_width", "total_size"]

TABLE_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
"""struct code of a framing offset of each width"""

_table_readers: Dict[int, Callable[[bytes, int], Tuple[int, ...]]] = {}
_table_packers: Dict[int, Callable[..., bytes]] = {}
_STRUCTS_MAX = 1024


def offset_width(size: int) -> int:
    """Framing-offset width a reader derives from a container's size (0 for an empty one)."""
    if size == 0:
        return 0
    if size <= 0xFF:
        return 1
    if size <= 0xFFFF:
        return 2
    if size <= 0xFFFFFFFF:
        return 4
    return 8


def read_offset(data: bytes, pos: int, width: int) -> int:
    """The little-endian framing offset of ``width`` bytes at ``pos``."""
    if width == 1:
        return data[pos]
    return int.from_bytes(data[pos:pos + width], "little")


def table_width(body: int, count: int) -> int:
    """Smallest offset width W a writer may use: ``body + count * W <= 2**(8W) - 1``."""
    if body + count <= 0xFF:
        return 1
    if body + 2 * count <= 0xFFFF:
        return 2
    if body + 4 * count <= 0xFFFFFFFF:
        return 4
    return 8


def total_size(body: int, count: int) -> int:
    """Container size the writer picks for a body and ``count`` framing offsets."""
    if body + count <= 0xFF:
        return body + count
    if body + 2 * count <= 0xFFFF:
        return body + 2 * count
    if body + 4 * count <= 0xFFFFFFFF:
        return body + 4 * count
    return body + 8 * count


def table_reader(count: int, width: int) -> Callable[[bytes, int], Tuple[int, ...]]:
    """unpack_from of a framing table of ``count`` entries (small ones kept for reuse)."""
    key = count * 8 + width
    reader = _table_readers.get(key)
    if reader is None:
        reader = struct.Struct("<%d%s" % (count, TABLE_CODES[width])).unpack_from
        if count <= 64:
            bounded_put(_table_readers, key, reader, _STRUCTS_MAX)
    return reader


def array_table(data: bytes, start: int, end: int) -> Optional[Tuple[int, Tuple[int, ...]]]:
    """(start of the table, element ends) of a variable-size array, or None if empty/broken
    (the table's last entry out of range or not a whole number of entries, or no entry)."""
    size = end - start
    if size == 0:
        return None
    width = offset_width(size)
    last = data[end - 1] if width == 1 else int.from_bytes(data[end - width:end], "little")
    if last > size or (size - last) % width:
        return None
    count = (size - last) // width
    if count == 0:
        return None
    return last, struct.unpack_from("<%d%s" % (count, TABLE_CODES[width]), data, start + last)


def normal_table(data: bytes, start: int, end: int) -> Optional[Tuple[int, Tuple[int, ...]]]:
    """(start of the table, element ends) of a non-empty variable-size array whose table is
    normal (whole entries, at least one, minimal width), else None."""
    size = end - start
    if size <= 0xFF:
        width = 1
        last = data[end - 1]
    else:
        width = offset_width(size)
        last = int.from_bytes(data[end - width:end], "little")
    if last > size or (size - last) % width:
        return None
    count = (size - last) // width
    if count == 0 or total_size(last, count) != size:
        return None
    if width == 1:
        return last, tuple(data[start + last:end])
    return last, table_reader(count, width)(data, start + last)


def pack_table(body: int, ends: Sequence[int]) -> bytes:
    """The framing table of minimal width for a body of this size."""
    count = len(ends)
    # table_width's ladder inline: this runs twice per commit encode
    if body + count <= 0xFF:
        return bytes(ends)
    if body + 2 * count <= 0xFFFF:
        width = 2
    elif body + 4 * count <= 0xFFFFFFFF:
        width = 4
    else:
        width = 8
    key = count * 8 + width
    pack = _table_packers.get(key)
    if pack is None:
        pack = struct.Struct("<%d%s" % (count, TABLE_CODES[width])).pack
        if count <= 64:
            bounded_put(_table_packers, key, pack, _STRUCTS_MAX)
    raw: bytes = pack(*ends)
    return raw


def decode_string(data: bytes, start: int, end: int) -> Optional[str]:
    """A GLib-valid string in the region, or None (empty, no final NUL, NUL inside, bad UTF-8)."""
    if end <= start or data[end - 1] != 0:
        return None
    raw = data[start:end - 1]
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
