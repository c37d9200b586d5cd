"""GVariant decoding with GLib's exact rules for untrusted bytes (spec gvariant.md §7).

Each type is compiled once into a closure ``(data, start, end, depth, memo) -> value`` that
reads the region ``data[start:end]``. Invalid children become the type's default value,
built once per decode call (``memo``) and shared, so hostile framing cannot multiply memory.
Every array and tuple is read in one forward pass: time is linear in the input.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from pyostree.gvariant import fastpaths, tuplegen
from pyostree.gvariant._framing import array_table, decode_string, offset_width
from pyostree.gvariant.types import (
    CodecCache,
    bounded_put,
    ENDING_FIXED,
    ENDING_LAST,
    ENDING_OFFSET,
    MAX_DEPTH,
    TypeNode,
    is_valid_signature,
    layout_rows,
    make_plan,
    parse_type,
    parse_type_or_none,
)

Memo = Dict[TypeNode, Any]
DecodeFn = Callable[[bytes, int, int, int, Memo], Any]

UNIT_VARIANT: Tuple[str, Tuple[()]] = ("()", ())
_INF = 1 << 70
_OBJECT_PATH = re.compile(r"/(?:[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*)?")
_NUMERIC = {"n": "h", "q": "H", "i": "i", "u": "I", "h": "i", "x": "q", "t": "Q", "d": "d"}

_compiled = CodecCache(2048)
_COMPILED_MAX = 2048
# exact hand-specialised decoders (a{sv} is added at the end of this module)
_SPECIALISED: Dict[str, DecodeFn] = {
    "a(say)": fastpaths.decode_file_list,
    "a(sayay)": fastpaths.decode_dir_list,
}


def default_value(node: TypeNode, memo: Memo) -> Any:
    """The value GLib gives an invalid child of this type; one shared object per call."""
    value = memo.get(node)
    if value is not None or node in memo:
        return value
    kind = node.kind
    if kind == "b":
        value = False
    elif kind == "d":
        value = 0.0
    elif kind in "ynqiuxth":
        value = 0
    elif kind == "s" or kind == "g":
        value = ""
    elif kind == "o":
        value = "/"
    elif kind == "v":
        value = UNIT_VARIANT
    elif kind == "m":
        value = None
    elif kind == "a":
        assert node.element is not None
        if node.element.kind == "y":
            value = b""
        elif node.element.kind == "{":
            value = {}
        else:
            value = []
    else:
        value = tuple(default_value(m, memo) for m in node.members)
    memo[node] = value
    return value


def is_object_path(text: str) -> bool:
    return _OBJECT_PATH.fullmatch(text) is not None


def get_decoder(node: TypeNode) -> DecodeFn:
    fn = _compiled.get(node)
    if fn is None:
        fn = _compile(node)
        _compiled.put(node, fn)
    return fn


def decode(type_string: str, data: Any) -> Any:
    """Decode ``data`` as GLib would for untrusted bytes; raises only for a bad type string."""
    node = parse_type(type_string)
    return decode_node(node, data)


def as_bytes(data: Any) -> bytes:
    """``data`` as bytes (a copy only for bytearray/memoryview); TypeError for the rest."""
    if type(data) is bytes:
        return data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"GVariant data must be bytes-like, not {type(data).__name__}")
    return bytes(data)


def decode_node(node: TypeNode, data: Any) -> Any:
    data = as_bytes(data)
    memo: Memo = {}
    size = len(data)
    if node.fixed_size and size != node.fixed_size:
        return default_value(node, memo)
    return get_decoder(node)(data, 0, size, 0, memo)


def _compile(node: TypeNode) -> DecodeFn:
    special = _SPECIALISED.get(node.string)
    if special is not None:
        return special
    kind = node.kind
    if kind == "b":
        return _dec_bool
    if kind == "y":
        return _dec_byte
    if kind in _NUMERIC:
        return _numeric(struct.Struct("<" + _NUMERIC[kind]).unpack_from)
    if kind == "s":
        return _dec_str
    if kind == "o":
        return _dec_objpath
    if kind == "g":
        return _dec_signature
    if kind == "v":
        return _dec_variant
    if kind == "m":
        return _compile_maybe(node)
    if kind == "a":
        assert node.element is not None
        if node.element.fixed_size:
            return _compile_fixed_array(node)
        return _compile_variable_array(node)
    if node.fixed_size:
        return _compile_fixed_tuple(node)
    if node.string in tuplegen.GENERATED_TYPES:
        return tuplegen.generate(node, [get_decoder(m) for m in node.members], default_value)
    return _compile_variable_tuple(node)


def _dec_bool(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    return data[start] != 0


def _dec_byte(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    return data[start]


def _numeric(unpack_from: Callable[[bytes, int], Tuple[Any, ...]]) -> DecodeFn:
    def dec(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        return unpack_from(data, start)[0]
    return dec


def _dec_str(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    text = decode_string(data, start, end)
    return "" if text is None else text


def _dec_objpath(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    text = decode_string(data, start, end)
    if text is None or not is_object_path(text):
        return "/"
    return text


def _dec_signature(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    text = decode_string(data, start, end)
    if text is None or not is_valid_signature(text):
        return ""
    return text


_variant_types: Dict[bytes, Any] = {}
_MISSING = object()
_VARIANT_TYPES_MAX = 4096


def variant_type(raw: bytes) -> Optional[Tuple[str, TypeNode, Optional[DecodeFn]]]:
    """(type string, node, decoder) for the raw type string of a variant, None if invalid.

    The decoder of a long type string is None: callers compile it only once the variant has
    passed its size and depth checks, so a huge hostile type costs no codec.
    """
    cached = _variant_types.get(raw, _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[no-any-return]
    found: Optional[Tuple[str, TypeNode, Optional[DecodeFn]]] = None
    if raw.isascii():
        type_string = raw.decode("ascii")
        child = parse_type_or_none(type_string)
        if child is not None:
            short = len(raw) <= 256
            found = (type_string, child, get_decoder(child) if short else None)
    if len(raw) <= 256:
        bounded_put(_variant_types, raw, found, _VARIANT_TYPES_MAX)
    return found


def variant_child(data: bytes, start: int, end: int, depth: int
                  ) -> Optional[Tuple[str, TypeNode, int]]:
    """(type string, node, child end) of a variant at ``depth`` that may be normal, else
    None (also when its body is shorter than its type's ``min_size``)."""
    if end <= start:
        return None
    sep = data.rfind(b"\x00", start, end)
    if sep < 0:
        return None
    found = variant_type(data[sep + 1:end])
    if found is None:
        return None
    child = found[1]
    if child.fixed_size and sep - start != child.fixed_size:
        return None
    if depth + child.depth >= MAX_DEPTH or sep - start < child.min_size:
        return None
    return found[0], child, sep


def decode_variant(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    """A variant's (type string, value); the unit variant when invalid (§7.8)."""
    if end <= start:
        return UNIT_VARIANT
    sep = data.rfind(b"\x00", start, end)
    if sep < 0:
        return UNIT_VARIANT
    raw = data[sep + 1:end]
    found = _variant_types.get(raw, _MISSING)
    if found is _MISSING:
        found = variant_type(raw)
    if found is None:
        return UNIT_VARIANT
    type_string, child, dec = found
    if child.fixed_size and sep - start != child.fixed_size:
        return UNIT_VARIANT
    if depth + child.depth >= MAX_DEPTH:
        return UNIT_VARIANT
    if dec is None:
        dec = get_decoder(child)
    return (type_string, dec(data, start, sep, depth + 1, memo))


_dec_variant = decode_variant
_EMPTY_STRING_VARIANT = ("s", "")


def _compile_maybe(node: TypeNode) -> DecodeFn:
    elem = node.element
    assert elem is not None
    dec_elem = get_decoder(elem)
    fixed = elem.fixed_size
    if fixed:
        def dec_fixed(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
            if end - start != fixed:
                return None
            return (dec_elem(data, start, end, depth + 1, memo),)
        return dec_fixed

    def dec_var(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        if end <= start:
            return None
        return (dec_elem(data, start, end - 1, depth + 1, memo),)
    return dec_var


def _compile_fixed_array(node: TypeNode) -> DecodeFn:
    elem = node.element
    assert elem is not None
    size = elem.fixed_size
    kind = elem.kind
    if kind == "y":
        def dec_bytes(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
            return data[start:end]
        return dec_bytes
    if kind == "b":
        def dec_bools(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
            return [byte != 0 for byte in data[start:end]]
        return dec_bools
    if kind in _NUMERIC:
        code = _NUMERIC[kind]

        def dec_numbers(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
            length = end - start
            if length % size:
                return []
            return list(struct.unpack_from("<%d%s" % (length // size, code), data, start))
        return dec_numbers

    dec_elem = get_decoder(elem)
    as_dict = kind == "{"

    def dec_fixed(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        length = end - start
        if length % size:
            return {} if as_dict else []
        child_depth = depth + 1
        items = [dec_elem(data, pos, pos + size, child_depth, memo)
                 for pos in range(start, end, size)]
        return dict(items) if as_dict else items
    return dec_fixed


def _compile_variable_array(node: TypeNode) -> DecodeFn:
    elem = node.element
    assert elem is not None
    dec_elem = get_decoder(elem)
    mask = elem.align - 1
    as_dict = elem.kind == "{"

    def dec_array(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        items = _variable_items(data, start, end, depth + 1, memo, dec_elem, elem, mask)
        return dict(items) if as_dict else items
    return dec_array


def _variable_items(data: bytes, start: int, end: int, depth: int, memo: Memo,
                    dec_elem: DecodeFn, elem: TypeNode, mask: int) -> List[Any]:
    """Elements of a variable-size array (§7.6), with GLib's out-of-order cut-off."""
    found = array_table(data, start, end)
    if found is None:
        return []
    last, ends = found
    count = len(ends)
    items: List[Any] = []
    append = items.append
    prev = 0
    for index, item_end in enumerate(ends):
        if item_end < prev:
            # the table stops being monotonic: this element and all later ones are default
            default = default_value(elem, memo)
            items.extend([default] * (count - index))
            break
        item_start = prev + (-prev & mask)
        if item_start < item_end <= last:
            append(dec_elem(data, start + item_start, start + item_end, depth, memo))
        else:
            append(default_value(elem, memo))
        prev = item_end
    return items


def _compile_fixed_tuple(node: TypeNode) -> DecodeFn:
    def rows() -> Iterator[Tuple[int, int, DecodeFn]]:
        offset = 0
        for member in node.members:
            offset += -offset & (member.align - 1)
            yield offset, member.fixed_size, get_decoder(member)
            offset += member.fixed_size
    plan = make_plan(rows(), len(node.members))

    def dec_tuple(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        child_depth = depth + 1
        return tuple([dec(data, start + off, start + off + size, child_depth, memo)
                      for off, size, dec in plan])
    return dec_tuple


def _member_bounds(data: bytes, end: int, size: int, width: int, index: int, a: int, b: int,
                   c: int, ending: int, fixed: int) -> Tuple[int, int]:
    """(start, end) of a tuple member relative to the tuple, as gvs_tuple_get_member_bounds."""
    need = width * (index + 1)
    if index >= 0 and need <= size:
        pos = end - need
        prev = data[pos] if width == 1 else int.from_bytes(data[pos:pos + width], "little")
    else:
        prev = 0
    m_start = ((prev + a) & b) | c
    if ending == ENDING_FIXED:
        return m_start, m_start + fixed
    if ending == ENDING_LAST:
        return m_start, (size - need if need <= size else _INF)
    if need + width <= size:
        pos = end - need - width
        return m_start, (data[pos] if width == 1
                         else int.from_bytes(data[pos:pos + width], "little"))
    return m_start, _INF


def _compile_variable_tuple(node: TypeNode) -> DecodeFn:
    members = node.members
    plan = make_plan(
        ((index, a, b, c, ending, member.fixed_size,
          index + 2 if ending == ENDING_OFFSET else index + 1, get_decoder(member))
         for (index, a, b, c, ending), member in zip(layout_rows(members), members)),
        len(members))
    last_plan = _last_row(members) + (members[-1].fixed_size,)

    def dec_tuple(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
        size = end - start
        if size == 0:
            return default_value(node, memo)
        width = offset_width(size)
        # no member may reach past the end of the last one (i.e. into the table)
        last_end = _member_bounds(data, end, size, width, *last_plan)[1]
        child_depth = depth + 1
        values: List[Any] = []
        append = values.append
        checking_order = True
        prev_end = 0
        for k, (index, a, b, c, ending, fixed, entries, dec) in enumerate(plan):
            m_start, m_end = _member_bounds(data, end, size, width, index, a, b, c, ending, fixed)
            if checking_order:
                if m_start > m_end or m_start < prev_end or m_end > size:
                    if k > 0:
                        # GLib's ordering cut-off: this member and all later ones are default
                        values.extend([default_value(m, memo) for m in members[k:]])
                        break
                    checking_order = False  # a bad member 0 disables the cut-off entirely
                else:
                    prev_end = m_end
            if (width * entries <= size and m_start < m_end <= size
                    and m_end <= last_end):
                append(dec(data, start + m_start, start + m_end, child_depth, memo))
            else:
                append(default_value(members[k], memo))
        return tuple(values)
    return dec_tuple


def _last_row(members: Tuple[TypeNode, ...]) -> Tuple[int, int, int, int, int]:
    """The layout row of the last member (the rows are a stream)."""
    row = (-1, 0, 0, 0, 0)
    for row in layout_rows(members):
        pass
    return row


def _decode_vardict(data: bytes, start: int, end: int, depth: int, memo: Memo) -> Any:
    """``a{sv}``: the generic rules with the ``{sv}`` layout worked out by hand.

    Entry of size S, width W, key end e0: the key is valid iff 0 < e0 <= S - W; the value
    is the variant at [round8(e0), S - W) if that is non-empty, else the unit.
    """
    found = array_table(data, start, end)
    if found is None:
        return {}
    last, ends = found
    out: Dict[Any, Any] = {}
    prev = 0
    variant = decode_variant
    value_depth = depth + 2
    inline_ok = value_depth + 1 < MAX_DEPTH  # the variant depth rule for a string child
    for item_end in ends:
        if item_end < prev:
            out[""] = UNIT_VARIANT  # every later entry is the default ("", unit)
            break
        item_start = prev + (-prev & 7)
        prev = item_end
        if not item_start < item_end <= last:
            out[""] = UNIT_VARIANT
            continue
        a = start + item_start
        b = start + item_end
        size = item_end - item_start
        if size <= 0xFF:
            width = 1
            e0 = data[b - 1]
        else:
            width = offset_width(size)
            e0 = int.from_bytes(data[b - width:b], "little")
        body = size - width
        key = ""
        if 0 < e0 <= body and data[a + e0 - 1] == 0:
            raw = data[a:a + e0 - 1]
            if b"\x00" not in raw:
                try:
                    key = raw.decode("utf-8")
                except UnicodeDecodeError:
                    pass
        value_start = a + ((e0 + 7) & ~7)
        value_end = b - width
        if value_start >= value_end:
            out[key] = UNIT_VARIANT
            continue
        # the commonest value, a string variant, is decoded inline; all else via decode_variant
        sep = data.rfind(b"\x00", value_start, value_end)
        if sep > value_start and value_end - sep == 2 and data[sep + 1] == 0x73 and inline_ok:
            if data[sep - 1] == 0:
                raw = data[value_start:sep - 1]
                if b"\x00" not in raw:
                    try:
                        out[key] = ("s", raw.decode("utf-8"))
                        continue
                    except UnicodeDecodeError:
                        pass
            out[key] = _EMPTY_STRING_VARIANT
            continue
        out[key] = variant(data, value_start, value_end, value_depth, memo)
    return out


_SPECIALISED["a{sv}"] = _decode_vardict
