"""Hand-specialised codecs for the OSTree dirtree lists ``a(say)`` and ``a(sayay)``.

Each is the generic algorithm of decoder.py / normal.py with the tuple layout of ``(say)``
and ``(sayay)`` worked out by hand (spec gvariant.md §7.6, §7.7), so every input, hostile or
not, gives exactly the generic (GLib) answer; tests compare both on random bytes. Encoders
fall back to the generic path on any bad value, which then raises the precise error.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from pyostree.gvariant._framing import (
    array_table,
    decode_string,
    normal_table,
    offset_width,
    pack_table,
    total_size,
)

_EMPTY_FILE = ("", b"")
_EMPTY_DIR = ("", b"", b"")


def decode_file_list(data: bytes, start: int, end: int, depth: int, memo: Any) -> List[Any]:
    """``a(say)``: [(name, checksum)]."""
    found = array_table(data, start, end)
    if found is None:
        return []
    last, ends = found
    out: List[Any] = []
    append = out.append
    prev = 0
    name = decode_string
    for item_end in ends:
        if item_end < prev:
            out.extend([_EMPTY_FILE] * (len(ends) - len(out)))
            break
        if prev < item_end <= last:
            a = start + prev
            b = start + item_end
            size = item_end - prev
            if size <= 0xFF:
                width = 1
                e0 = data[b - 1]
            else:
                width = offset_width(size)
                e0 = int.from_bytes(data[b - width:b], "little")
            # member 0 valid iff 0 < e0 <= size - W; member 1 is whatever lies between
            text = (name(data, a, a + e0) or "") if 0 < e0 <= size - width else ""
            append((text, data[a + e0:b - width]))
        else:
            append(_EMPTY_FILE)
        prev = item_end
    return out


def decode_dir_list(data: bytes, start: int, end: int, depth: int, memo: Any) -> List[Any]:
    """``a(sayay)``: [(name, tree checksum, meta checksum)]."""
    found = array_table(data, start, end)
    if found is None:
        return []
    last, ends = found
    out: List[Any] = []
    append = out.append
    prev = 0
    name = decode_string
    for item_end in ends:
        if item_end < prev:
            out.extend([_EMPTY_DIR] * (len(ends) - len(out)))
            break
        if prev < item_end <= last:
            a = start + prev
            b = start + item_end
            size = item_end - prev
            width = 1 if size <= 0xFF else offset_width(size)
            if width == 1:
                e0 = data[b - 1]
            else:
                e0 = int.from_bytes(data[b - width:b], "little")
            if 2 * width > size:
                # one-byte element: only the name's bounds can be read, and its byte is the table
                text = (name(data, a, a + e0) or "") if 0 < e0 <= size else ""
                append((text, b"", b""))
            else:
                if width == 1:
                    e1 = data[b - 2]
                else:
                    e1 = int.from_bytes(data[b - 2 * width:b - width], "little")
                body = size - 2 * width
                text = (name(data, a, a + e0) or "") if 0 < e0 <= body else ""
                tree = data[a + e0:a + e1] if e0 < e1 <= body else b""
                # member 2 is cut off when member 1 is out of order (but not when member 0 is)
                if e1 < body and not (e0 <= size and e0 > e1):
                    meta = data[a + e1:b - 2 * width]
                else:
                    meta = b""
                append((text, tree, meta))
        else:
            append(_EMPTY_DIR)
        prev = item_end
    return out


def encode_file_list(items: Sequence[Any]) -> Optional[bytes]:
    """``a(say)`` in normal form, or None to let the generic encoder handle (and reject) it."""
    parts = []
    ends = []
    total = 0
    try:
        for name, checksum in items:
            if "\x00" in name:
                return None
            raw = name.encode("utf-8")
            n = len(raw) + 1
            size = n + len(checksum)
            if size < 0xFF:
                part = b"%s\x00%s%c" % (raw, checksum, n)
            else:
                width = 2 if size + 2 <= 0xFFFF else 4
                part = b"%s\x00%s" % (raw, checksum) + n.to_bytes(width, "little")
            if not isinstance(checksum, (bytes, bytearray, memoryview)):
                return None
            parts.append(part)
            total += len(part)
            ends.append(total)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
    if not parts:
        return b""
    parts.append(pack_table(total, ends))
    return b"".join(parts)


def encode_dir_list(items: Sequence[Any]) -> Optional[bytes]:
    """``a(sayay)`` in normal form, or None to fall back to the generic encoder."""
    parts = []
    ends = []
    total = 0
    try:
        for name, tree, meta in items:
            if "\x00" in name:
                return None
            if not (isinstance(tree, (bytes, bytearray, memoryview))
                    and isinstance(meta, (bytes, bytearray, memoryview))):
                return None
            raw = name.encode("utf-8")
            n = len(raw) + 1
            m = n + len(tree)
            size = m + len(meta)
            if size + 2 <= 0xFF:
                part = b"%s\x00%s%s%c%c" % (raw, tree, meta, m, n)
            else:
                width = 2 if size + 4 <= 0xFFFF else 4
                part = (b"%s\x00%s%s" % (raw, tree, meta) + m.to_bytes(width, "little")
                        + n.to_bytes(width, "little"))
            parts.append(part)
            total += len(part)
            ends.append(total)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
    if not parts:
        return b""
    parts.append(pack_table(total, ends))
    return b"".join(parts)


def _normal_array(data: bytes, start: int, end: int, depth: int,
                  element: Callable[[bytes, int, int], bool]) -> bool:
    if depth >= 128:
        return False
    size = end - start
    if size == 0:
        return True
    if depth + 2 >= 128:  # the element's members would sit at depth >= 128
        return False
    found = normal_table(data, start, end)
    if found is None:
        return False
    last, ends = found
    prev = 0
    for item_end in ends:
        if item_end < prev or item_end > last:
            return False
        if not element(data, start + prev, start + item_end):
            return False
        prev = item_end
    return True


def _normal_file(data: bytes, a: int, b: int) -> bool:
    size = b - a
    if size == 0:
        return False
    width = 1 if size <= 0xFF else offset_width(size)
    e0 = data[b - 1] if width == 1 else int.from_bytes(data[b - width:b], "little")
    body = size - width
    return (e0 <= body and total_size(body, 1) == size
            and decode_string(data, a, a + e0) is not None)


def _normal_dir(data: bytes, a: int, b: int) -> bool:
    size = b - a
    if size == 0:
        return False
    width = 1 if size <= 0xFF else offset_width(size)
    if 2 * width > size:
        return False
    if width == 1:
        e0 = data[b - 1]
        e1 = data[b - 2]
    else:
        e0 = int.from_bytes(data[b - width:b], "little")
        e1 = int.from_bytes(data[b - 2 * width:b - width], "little")
    body = size - 2 * width
    return (e0 <= e1 <= body and total_size(body, 2) == size
            and decode_string(data, a, a + e0) is not None)


def normal_file_list(data: bytes, start: int, end: int, depth: int) -> bool:
    return _normal_array(data, start, end, depth, _normal_file)


def normal_dir_list(data: bytes, start: int, end: int, depth: int) -> bool:
    return _normal_array(data, start, end, depth, _normal_dir)


# ---------------------------------------------------------------------------- one-pass checked

def decode_file_list_normal(data: bytes, start: int, end: int) -> Optional[List[Any]]:
    """``a(say)`` if normal (as normal_file_list), else None: value and check in one pass."""
    if start == end:
        return []
    found = normal_table(data, start, end)
    if found is None:
        return None
    last, ends = found
    out: List[Any] = []
    append = out.append
    find = data.find
    prev = 0
    for item_end in ends:
        if not prev < item_end <= last:
            return None
        a = start + prev
        b = start + item_end
        size = item_end - prev
        if size <= 0xFF:
            width = 1
            e0 = data[b - 1]
        else:
            width = offset_width(size)
            e0 = int.from_bytes(data[b - width:b], "little")
            if total_size(size - width, 1) != size:
                return None
        # the name: [a, a + e0) with its only NUL at the end, within the body
        if not 0 < e0 <= size - width or find(0, a, a + e0) != a + e0 - 1:
            return None
        try:
            name = data[a:a + e0 - 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        append((name, data[a + e0:b - width]))
        prev = item_end
    return out


def decode_dir_list_normal(data: bytes, start: int, end: int) -> Optional[List[Any]]:
    """``a(sayay)`` if normal (as normal_dir_list), else None: value and check in one pass."""
    if start == end:
        return []
    found = normal_table(data, start, end)
    if found is None:
        return None
    last, ends = found
    out: List[Any] = []
    append = out.append
    find = data.find
    prev = 0
    for item_end in ends:
        if not prev < item_end <= last:
            return None
        a = start + prev
        b = start + item_end
        size = item_end - prev
        if size <= 0xFF:
            if size < 2:
                return None
            width = 1
            e0 = data[b - 1]
            e1 = data[b - 2]
        else:
            width = offset_width(size)
            e0 = int.from_bytes(data[b - width:b], "little")
            e1 = int.from_bytes(data[b - 2 * width:b - width], "little")
            if total_size(size - 2 * width, 2) != size:
                return None
        body = b - 2 * width
        if not 0 < e0 <= e1 <= size - 2 * width or find(0, a, a + e0) != a + e0 - 1:
            return None
        try:
            name = data[a:a + e0 - 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        append((name, data[a + e0:a + e1], data[a + e1:body]))
        prev = item_end
    return out


def decode_dirtree_normal(data: bytes) -> Optional[Tuple[List[Any], List[Any]]]:
    """``(a(say)a(sayay))`` if provably normal, else None (the empty quirk included)."""
    size = len(data)
    if size == 0:
        return None  # GLib's zero-width quirk: let the generic code answer
    if size <= 0xFF:
        width = 1
        e0 = data[size - 1]
    else:
        width = offset_width(size)
        e0 = int.from_bytes(data[size - width:], "little")
    table = size - width
    if e0 > table or total_size(table, 1) != size:
        return None
    files = decode_file_list_normal(data, 0, e0)
    if files is None:
        return None
    dirs = decode_dir_list_normal(data, e0, table)
    if dirs is None:
        return None
    return files, dirs
