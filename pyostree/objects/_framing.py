"""Hand-specialised GVariant code for OSTree's per-file types (file headers, dirmeta).

Every file of a commit goes through these, so they avoid the general codec's type-string
walk. The encoders are tested byte-identical to ``pyostree.gvariant.encode``. The parser
only reads the layout normal form would have; callers accept its result only when
re-encoding it reproduces the input exactly (then the input is normal and the value is what
GLib decodes), and otherwise fall back to the general codec.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from pyostree.gvariant._framing import array_table, offset_width, pack_table, table_width

__all__ = ["encode_xattrs", "parse_xattrs"]


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
        width = table_width(inner, 1)
        parts.append(name)
        parts.append(value)
        parts.append(name_len.to_bytes(width, "little"))
        pos += inner + width
        ends.append(pos)
    parts.append(pack_table(pos, ends))
    return b"".join(parts)


def parse_xattrs(data: bytes, start: int, end: int) -> Optional[Tuple[Tuple[bytes, bytes], ...]]:
    """Read ``a(ayay)`` laid out as normal form would be; None if it is not laid out so
    (the caller then re-checks with the general codec)."""
    size = end - start
    if size == 0:
        return ()
    found = array_table(data, start, end)
    if found is None:
        return None
    table, ends = found
    result = []
    element_start = start
    for entry in ends:
        element_end = start + entry
        element_size = element_end - element_start
        if element_size < 1:
            return None
        inner = offset_width(element_size)
        name_end = element_start + int.from_bytes(data[element_end - inner:element_end], "little")
        if not element_start <= name_end <= element_end - inner:
            return None
        result.append((data[element_start:name_end], data[name_end:element_end - inner]))
        element_start = element_end
    if element_start != start + table:
        return None
    return tuple(result)
