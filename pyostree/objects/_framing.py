"""Hand-specialised GVariant code for OSTree's per-file types (file headers, dirmeta).

Every file of a commit goes through these, so they avoid the general codec's type-string
walk. The encoders are tested byte-identical to ``pyostree.gvariant.encode``. The parser
only reads the layout normal form would have; callers accept its result only when
re-encoding it reproduces the input exactly (then the input is normal and the value is what
GLib decodes), and otherwise fall back to the general codec.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Sequence, Tuple

__all__ = ["encode_xattrs", "offset_width", "pack_offsets", "parse_xattrs", "read_width"]

_PACKERS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def offset_width(body_size: int, count: int) -> int:
    """Smallest framing-offset width W with ``body + count * W <= 2**(8W) - 1``."""
    for width, limit in ((1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)):
        if body_size + count * width <= limit:
            return width
    return 8


def pack_offsets(offsets: Sequence[int], width: int) -> bytes:
    """Little-endian framing offsets of the given width."""
    return struct.pack(f"<{len(offsets)}{_PACKERS[width]}", *offsets)


def _frame(parts: List[bytes], ends: List[int], body_size: int) -> bytes:
    width = offset_width(body_size, len(ends))
    parts.append(pack_offsets(ends, width))
    return b"".join(parts)


def encode_xattrs(xattrs: Sequence[Tuple[bytes, bytes]]) -> bytes:
    """``a(ayay)``: each element ``name value name_end``, then the array's end offsets."""
    if not xattrs:
        return b""
    parts: List[bytes] = []
    ends: List[int] = []
    pos = 0
    for name, value in xattrs:
        name_len = len(name)
        inner = name_len + len(value)
        width = offset_width(inner, 1)
        parts.append(name)
        parts.append(value)
        parts.append(name_len.to_bytes(width, "little"))
        pos += inner + width
        ends.append(pos)
    return _frame(parts, ends, pos)


def read_width(size: int) -> int:
    """Framing-offset width a reader derives from a container's total size."""
    if size <= 0xFF:
        return 1
    if size <= 0xFFFF:
        return 2
    if size <= 0xFFFFFFFF:
        return 4
    return 8


def parse_xattrs(data: bytes, start: int, end: int) -> Optional[Tuple[Tuple[bytes, bytes], ...]]:
    """Read ``a(ayay)`` laid out as normal form would be; None if it is not laid out so
    (the caller then re-checks with the general codec)."""
    size = end - start
    if size == 0:
        return ()
    width = read_width(size)
    table = int.from_bytes(data[end - width:end], "little")
    if table > size or (size - table) % width:
        return None
    count = (size - table) // width
    if count == 0:
        return None
    result = []
    element_start = start
    table_pos = start + table
    for index in range(count):
        pos = table_pos + index * width
        element_end = start + int.from_bytes(data[pos:pos + width], "little")
        element_size = element_end - element_start
        if element_size < 1:
            return None
        inner = read_width(element_size)
        name_end = element_start + int.from_bytes(data[element_end - inner:element_end], "little")
        if not element_start <= name_end <= element_end - inner:
            return None
        result.append((data[element_start:name_end], data[name_end:element_end - inner]))
        element_start = element_end
    if element_start != start + table:
        return None
    return tuple(result)
