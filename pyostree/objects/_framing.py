"""Hand-specialised GVariant encoders for OSTree's hot object types.

Every file and directory of a commit goes through these, so they avoid the general codec's
type-string walk. Tests check them byte-identical to ``pyostree.gvariant.encode``.
"""

from __future__ import annotations

import struct
from typing import List, Sequence, Tuple

__all__ = [
    "encode_checksum_list",
    "encode_dir_list",
    "encode_xattrs",
    "offset_width",
    "pack_offsets",
]

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


def encode_checksum_list(entries: Sequence[Tuple[bytes, bytes]]) -> bytes:
    """``a(say)``: dirtree file list of (UTF-8 name + NUL, 32-byte raw checksum)."""
    if not entries:
        return b""
    parts: List[bytes] = []
    ends: List[int] = []
    pos = 0
    for name, raw in entries:
        name_len = len(name)
        inner = name_len + len(raw)
        width = offset_width(inner, 1)
        parts.append(name)
        parts.append(raw)
        parts.append(name_len.to_bytes(width, "little"))
        pos += inner + width
        ends.append(pos)
    return _frame(parts, ends, pos)


def encode_dir_list(entries: Sequence[Tuple[bytes, bytes, bytes]]) -> bytes:
    """``a(sayay)``: dirtree subdir list of (name + NUL, tree raw, meta raw); member
    offsets within each element are stored reversed (tree end first)."""
    if not entries:
        return b""
    parts: List[bytes] = []
    ends: List[int] = []
    pos = 0
    for name, tree_raw, meta_raw in entries:
        name_len = len(name)
        tree_end = name_len + len(tree_raw)
        inner = tree_end + len(meta_raw)
        width = offset_width(inner, 2)
        parts.append(name)
        parts.append(tree_raw)
        parts.append(meta_raw)
        parts.append(pack_offsets((tree_end, name_len), width))
        pos += inner + 2 * width
        ends.append(pos)
    return _frame(parts, ends, pos)
