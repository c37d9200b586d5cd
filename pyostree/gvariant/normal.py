"""GLib's g_variant_is_normal_form() for untrusted bytes (spec gvariant.md §8).

A port of the checks themselves, not ``encode(decode(x)) == x``: GLib accepts a second normal
form for zero-length tuples, and dicts collapse duplicate keys.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from pyostree.gvariant import fastpaths
from pyostree.gvariant._framing import (
    decode_string,
    normal_table,
    offset_width,
    read_offset,
    total_size,
)
from pyostree.gvariant.decoder import is_object_path, variant_child
from pyostree.gvariant.types import (
    CodecCache,
    bounded_put,
    ENDING_FIXED,
    ENDING_LAST,
    MAX_DEPTH,
    TypeNode,
    is_valid_signature,
    layout_rows,
    make_plan,
    parse_type,
)

NormalFn = Callable[[bytes, int, int, int], bool]

_compiled = CodecCache(2048)
_SPECIALISED: Dict[str, NormalFn] = {
    "a(say)": fastpaths.normal_file_list,
    "a(sayay)": fastpaths.normal_dir_list,
}
_COMPILED_MAX = 2048


def is_normal(type_string: str, data: Any) -> bool:
    """True iff GLib calls these bytes the normal form of a value of this type."""
    return is_normal_node(parse_type(type_string), data)


def is_normal_node(node: TypeNode, data: Any) -> bool:
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"GVariant data must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
    size = len(data)
    if (node.fixed_size and size != node.fixed_size) or size < node.min_size:
        return False
    return get_checker(node)(data, 0, size, 0)


def get_checker(node: TypeNode) -> NormalFn:
    fn = _compiled.get(node)
    if fn is None:
        fn = _compile(node)
        _compiled.put(node, fn)
    return fn


def _normal_vardict(data: bytes, start: int, end: int, depth: int) -> bool:
    """``a{sv}``: the generic array and tuple checks with the ``{sv}`` layout inlined."""
    if depth >= MAX_DEPTH:
        return False
    size = end - start
    if size == 0:
        return True
    if depth + 2 >= MAX_DEPTH:
        return False  # entries and their members would sit too deep
    found = normal_table(data, start, end)
    if found is None:
        return False
    last, ends = found
    offset = 0
    value_depth = depth + 2
    for item_end in ends:
        if item_end < offset or item_end > last:
            return False
        while offset & 7:
            if not (offset < item_end and data[start + offset] == 0):
                return False
            offset += 1
        # the entry {sv} at [offset, item_end)
        a = start + offset
        entry_size = item_end - offset
        entry_width = offset_width(entry_size)
        if entry_width == 0:
            return False
        body = entry_size - entry_width
        key_end = read_offset(data, a + body, entry_width)
        if key_end > body or decode_string(data, a, a + key_end) is None:
            return False
        value_start = key_end
        while value_start & 7:
            if value_start >= entry_size or data[a + value_start] != 0:
                return False
            value_start += 1
        if value_start > body or total_size(body, 1) != entry_size:
            return False
        if not _norm_variant(data, a + value_start, a + body, value_depth):
            return False
        offset = item_end
    return True


def _compile(node: TypeNode) -> NormalFn:
    special = _SPECIALISED.get(node.string)
    if special is not None:
        return special
    if node.string == "a{sv}":
        return _normal_vardict
    kind = node.kind
    if kind == "b":
        return _norm_bool
    if kind in "ynqiuxthd":
        return _norm_number
    if kind == "s":
        return _norm_str
    if kind == "o":
        return _norm_objpath
    if kind == "g":
        return _norm_signature
    if kind == "v":
        return _norm_variant
    if kind == "m":
        return _compile_maybe(node)
    if kind == "a":
        assert node.element is not None
        if node.element.fixed_size:
            return _compile_fixed_array(node)
        return _compile_variable_array(node)
    return _compile_tuple(node)


def _norm_bool(data: bytes, start: int, end: int, depth: int) -> bool:
    return depth < MAX_DEPTH and data[start] < 2


def _norm_number(data: bytes, start: int, end: int, depth: int) -> bool:
    return depth < MAX_DEPTH


def _norm_str(data: bytes, start: int, end: int, depth: int) -> bool:
    return depth < MAX_DEPTH and decode_string(data, start, end) is not None


def _norm_objpath(data: bytes, start: int, end: int, depth: int) -> bool:
    if depth >= MAX_DEPTH:
        return False
    text = decode_string(data, start, end)
    return text is not None and is_object_path(text)


def _norm_signature(data: bytes, start: int, end: int, depth: int) -> bool:
    if depth >= MAX_DEPTH:
        return False
    text = decode_string(data, start, end)
    return text is not None and is_valid_signature(text)


def _norm_variant(data: bytes, start: int, end: int, depth: int) -> bool:
    if depth >= MAX_DEPTH:
        return False
    found = variant_child(data, start, end, depth)
    if found is None:
        return False
    child, sep = found[1], found[2]
    return get_checker(child)(data, start, sep, depth + 1)


def _compile_maybe(node: TypeNode) -> NormalFn:
    elem = node.element
    assert elem is not None
    check = get_checker(elem)
    fixed = elem.fixed_size

    def norm_maybe(data: bytes, start: int, end: int, depth: int) -> bool:
        if depth >= MAX_DEPTH:
            return False
        if end == start:
            return True
        if fixed:
            return end - start == fixed and check(data, start, end, depth + 1)
        return data[end - 1] == 0 and check(data, start, end - 1, depth + 1)
    return norm_maybe


def _compile_fixed_array(node: TypeNode) -> NormalFn:
    elem = node.element
    assert elem is not None
    size = elem.fixed_size
    kind = elem.kind
    check = get_checker(elem)

    def norm_array(data: bytes, start: int, end: int, depth: int) -> bool:
        if depth >= MAX_DEPTH:
            return False
        if (end - start) % size:
            return False
        if end == start:
            return True
        if depth + 1 >= MAX_DEPTH:
            return False
        if kind in "ynqiuxthd":
            return True
        if kind == "b":
            return not data[start:end].translate(None, b"\x00\x01")
        child_depth = depth + 1
        for pos in range(start, end, size):
            if not check(data, pos, pos + size, child_depth):
                return False
        return True
    return norm_array



def _compile_variable_array(node: TypeNode) -> NormalFn:
    elem = node.element
    assert elem is not None
    check = get_checker(elem)
    mask = elem.align - 1

    def norm_array(data: bytes, start: int, end: int, depth: int) -> bool:
        if depth >= MAX_DEPTH:
            return False
        size = end - start
        if size == 0:
            return True
        found = normal_table(data, start, end)
        if found is None:
            return False
        last, ends = found
        offset = 0
        child_depth = depth + 1
        for item_end in ends:
            if item_end < offset or item_end > last:
                return False
            while offset & mask:
                if not (offset < item_end and data[start + offset] == 0):
                    return False
                offset += 1
            if not check(data, start + offset, start + item_end, child_depth):
                return False
            offset = item_end
        return True
    return norm_array


def _compile_tuple(node: TypeNode) -> NormalFn:
    members = node.members
    plan = make_plan(
        ((member.align - 1, member.fixed_size, row[4], get_checker(member))
         for row, member in zip(layout_rows(members), members)),
        len(members))
    fixed_tuple = node.fixed_size
    tuple_mask = node.align - 1
    is_unit = not node.members

    def norm_tuple(data: bytes, start: int, end: int, depth: int) -> bool:
        # a port of gvs_tuple_is_normal
        if depth >= MAX_DEPTH:
            return False
        size = end - start
        width = offset_width(size)
        table = size
        offset = 0
        child_depth = depth + 1
        for mask, fixed, ending, check in plan:
            while offset & mask:
                if offset >= size or data[start + offset] != 0:
                    return False
                offset += 1
            if ending == ENDING_FIXED:
                m_end = offset + fixed
            elif ending == ENDING_LAST:
                m_end = table
            else:
                if table < width:
                    return False
                table -= width
                if table < offset:
                    return False
                m_end = read_offset(data, start + table, width) if width else 0
            if m_end < offset or m_end > table:
                return False
            if not check(data, start + offset, start + m_end, child_depth):
                return False
            offset = m_end
        if fixed_tuple:
            if is_unit:
                if data[start] != 0:
                    return False
                offset += 1
            else:
                while offset & tuple_mask:
                    if data[start + offset] != 0:
                        return False
                    offset += 1
        if table != offset:
            return False
        if size and width and total_size(offset, (size - table) // width) != size:
            return False
        return True
    return norm_tuple
