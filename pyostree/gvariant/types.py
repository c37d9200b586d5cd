"""GVariant type strings: validation with GLib's nesting budget, and parsed type nodes.

Type strings found inside variants are attacker-controlled and can be as long as the input,
so parsing is one forward pass that never recurses deeper than GLib's budget of 128 and
costs a few bytes per tuple member: basic types are one interned node each, nodes have
``__slots__``, a long type string is kept as a span of its source (nesting makes no copies),
tuple layouts are computed on demand and never stored, and the cache of nodes is bounded.
"""

from __future__ import annotations

from array import array
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from pyostree.gvariant.errors import GVariantError

MAX_DEPTH = 128
"""GLib's G_VARIANT_MAX_RECURSION_DEPTH: type nesting budget and value depth limit."""

BASIC_CHARS = frozenset("bynqiuxthdsog")
SIGNATURE_CHARS = frozenset("ybnqiuxthdvasog(){}")

# char -> (alignment, fixed size); fixed size 0 means variable-size.
_BASIC_LAYOUT: Dict[str, Tuple[int, int]] = {
    "b": (1, 1), "y": (1, 1), "n": (2, 2), "q": (2, 2), "i": (4, 4), "u": (4, 4),
    "h": (4, 4), "x": (8, 8), "t": (8, 8), "d": (8, 8),
    "s": (1, 0), "o": (1, 0), "g": (1, 0), "v": (8, 0),
}

# How a tuple member's end is found (GLib's G_VARIANT_MEMBER_ENDING_*).
ENDING_FIXED = 0
ENDING_LAST = 1
ENDING_OFFSET = 2

_CACHE_MAX_ENTRIES = 4096
_CACHE_MAX_CHARS = 1 << 20
CACHE_MAX_ENTRY_CHARS = _CACHE_MAX_CHARS // 16
"""Longer type strings are never cached (nor their compiled codecs)."""
_INLINE_CHARS = 256
"""A type inside another type keeps its own copy of its string only up to this length."""


class MemberLayout(NamedTuple):
    """Where a tuple member lives, in GLib's (i, a, b, c) form.

    start = ((end of framing entry ``prev_entry``, or 0) + a) & b | c, with b already negated;
    ``prev_entry`` is the entry of the nearest variable-size member before this one, or -1.
    """

    prev_entry: int
    a: int
    b: int
    c: int
    ending: int


class TypeNode:
    """One parsed, definite GVariant type; compared by identity, cached by string.

    Read-only by convention. Members of a tuple share nodes (there is one node per basic type
    character), so a basic member costs one pointer; ``layout`` is computed on each access.
    """

    __slots__ = ("_text", "_src", "_start", "_end", "kind", "align", "fixed_size", "depth",
                 "element", "members", "min_size")

    def __init__(self, src: str, start: int, end: int, kind: str, align: int,
                 fixed_size: int, depth: int, element: Optional[TypeNode] = None,
                 members: Tuple[TypeNode, ...] = (), min_size: int = 0) -> None:
        length = end - start
        if length == len(src) and length <= CACHE_MAX_ENTRY_CHARS:
            self._text: Optional[str] = src  # a whole type string: no copy
            self._src = ""
        elif length <= _INLINE_CHARS:
            self._text = src[start:end]
            self._src = ""
        else:
            # a long part of a type string: a span of the source, so nesting makes no
            # copies; never cached, and neither are codecs compiled for it
            self._text = None
            self._src = src
        self._start = start
        self._end = end
        self.kind = kind
        self.align = align
        self.fixed_size = fixed_size
        self.depth = depth
        self.element = element
        self.members = members
        self.min_size = min_size
        """No normal form of a value of this type is shorter: the fixed size; 1 for a
        string, object path, signature or variant (its NUL); 0 for an array or maybe;
        for a tuple the members' sum, plus a byte per framing offset unless that sum is
        0 (GLib's empty tuple of empty members has none). A checker refuses a shorter body at once, so a
        wide type string over a short body (a hostile variant) costs no codec."""

    @property
    def string(self) -> str:
        text = self._text
        if text is not None:
            return text
        if self._start == 0 and self._end == len(self._src):
            return self._src
        return self._src[self._start:self._end]

    @property
    def length(self) -> int:
        """len(self.string), without building it."""
        return self._end - self._start

    @property
    def is_fixed(self) -> bool:
        return self.fixed_size != 0

    @property
    def layout(self) -> Tuple[MemberLayout, ...]:
        """GLib's member table of a tuple or dict entry (computed, not stored)."""
        return tuple(MemberLayout(*row) for row in layout_rows(self.members))

    def __repr__(self) -> str:
        text = self.string
        return f"TypeNode({text if len(text) <= 40 else text[:40] + '...'!r})"




def scan_type(s: str, pos: int, budget: int = MAX_DEPTH) -> int:
    """Return the end of the one complete type starting at ``pos``, or -1.

    Mirrors GLib's variant_type_string_scan_internal: ``a``, ``m``, ``{`` and a non-empty
    ``(`` need a budget of at least 1; indefinite types (r, *, ?) are rejected.
    """
    limit = len(s)
    if pos >= limit:
        return -1
    ch = s[pos]
    pos += 1
    if ch in _BASIC_LAYOUT:
        return pos
    if ch == "a" or ch == "m":
        if budget == 0:
            return -1
        return scan_type(s, pos, budget - 1)
    if ch == "(":
        while True:
            if pos >= limit:
                return -1
            if s[pos] == ")":
                return pos + 1
            if budget == 0:
                return -1
            if s[pos] in _BASIC_LAYOUT:
                pos += 1  # a basic member needs no recursion
                continue
            pos = scan_type(s, pos, budget - 1)
            if pos < 0:
                return -1
    if ch == "{":
        if budget == 0 or pos >= limit or s[pos] not in BASIC_CHARS:
            return -1
        pos = scan_type(s, pos + 1, budget - 1)
        if pos < 0 or pos >= limit or s[pos] != "}":
            return -1
        return pos + 1
    return -1


def is_valid_type_string(s: str) -> bool:
    return scan_type(s, 0) == len(s)


def is_valid_signature(s: str) -> bool:
    """D-Bus signature as GLib checks it: concatenated complete types, no ``m``."""
    if not SIGNATURE_CHARS.issuperset(s):
        return False
    pos = 0
    limit = len(s)
    while pos < limit:
        pos = scan_type(s, pos)
        if pos < 0:
            return False
    return True


def bounded_put(cache: Dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Insert into a cache, first dropping the oldest entries beyond ``limit``.

    Tolerates another thread evicting at the same time (the caches are plain dicts).
    """
    while len(cache) >= limit:
        try:
            cache.pop(next(iter(cache)), None)
        except (StopIteration, RuntimeError):
            break
    cache[key] = value


_BASIC_NODES: Dict[str, TypeNode] = {
    ch: TypeNode(ch, 0, 1, ch, align, fixed, 1, min_size=fixed or 1)
    for ch, (align, fixed) in _BASIC_LAYOUT.items()
}
_cache: Dict[str, TypeNode] = dict(_BASIC_NODES)  # may evict them: _BASIC_NODES stays
_cache_chars = len(_cache)


def _remember(node: TypeNode) -> TypeNode:
    """Keep a node for reuse; the cache is bounded in entries and in total characters."""
    global _cache_chars
    text = node._text
    if text is None:
        return node
    length = len(text)
    if _cache_chars + length > _CACHE_MAX_CHARS:
        _cache.clear()  # rare: only many long type strings get here
        _cache_chars = 0
    bounded_put(_cache, text, node, _CACHE_MAX_ENTRIES)
    _cache_chars += length
    return node


def parse_type(s: str) -> TypeNode:
    """Parse a complete, definite type string or raise GVariantError."""
    if not isinstance(s, str):
        raise GVariantError(f"GVariant type string must be str, not {type(s).__name__}")
    node = _cache.get(s)
    if node is not None:
        return node
    node = parse_type_or_none(s)
    if node is None:
        shown = s if len(s) <= 40 else s[:40] + "..."
        raise GVariantError(f"invalid GVariant type string {shown!r}")
    return node


def parse_type_or_none(s: str) -> Optional[TypeNode]:
    """Like parse_type but for untrusted type strings: None when invalid."""
    node = _cache.get(s)
    if node is not None:
        return node
    node = _BASIC_NODES.get(s)
    if node is not None:
        return node
    if not s:
        return None
    node, end = _parse(s, 0, MAX_DEPTH)
    if end != len(s):
        return None
    return node


_INVALID: Tuple[Optional[TypeNode], int] = (None, -1)


def _parse(s: str, pos: int, budget: int) -> Tuple[Optional[TypeNode], int]:
    """(node, end) of the one complete type at ``pos``, or (None, -1); one pass, no copies.

    Accepts exactly what scan_type accepts, with the same budget rules.
    """
    limit = len(s)
    if pos >= limit:
        return _INVALID
    ch = s[pos]
    basic = _BASIC_NODES.get(ch)
    if basic is not None:
        return basic, pos + 1
    if ch == "a" or ch == "m":
        if budget == 0:
            return _INVALID
        nxt = pos + 1
        if nxt < limit:
            elem = _BASIC_NODES.get(s[nxt])
            end = nxt + 1
        else:
            elem = None
        if elem is None:
            elem, end = _parse(s, nxt, budget - 1)
            if elem is None:
                return _INVALID
        return _shared(TypeNode(s, pos, end, ch, elem.align, 0, elem.depth + 1, element=elem)), end
    if ch == "(":
        members: List[TypeNode] = []
        append = members.append
        basics = _BASIC_NODES
        end = pos + 1
        while True:
            if end >= limit:
                return _INVALID
            c = s[end]
            if c == ")":
                end += 1
                break
            if budget == 0:
                return _INVALID
            member = basics.get(c)
            if member is not None:
                append(member)
                end += 1
                continue
            member, end = _parse(s, end, budget - 1)
            if member is None:
                return _INVALID
            append(member)
        return _shared(_tuple_node(s, pos, end, "(", tuple(members))), end
    if ch == "{":
        if budget == 0 or pos + 1 >= limit:
            return _INVALID
        key = _BASIC_NODES.get(s[pos + 1])
        if key is None or key.kind == "v":
            return _INVALID
        value, end = _parse(s, pos + 2, budget - 1)
        if value is None or end >= limit or s[end] != "}":
            return _INVALID
        end += 1
        return _shared(_tuple_node(s, pos, end, "{", (key, value))), end
    return _INVALID


def _shared(node: TypeNode) -> TypeNode:
    """The cached node of the same string if there is one (members share it), else node."""
    text = node._text
    if text is None:
        return node
    cached = _cache.get(text)
    if cached is not None:
        return cached
    return _remember(node)


def _tuple_node(s: str, start: int, end: int, kind: str,
                members: Tuple[TypeNode, ...]) -> TypeNode:
    align = 1
    depth = 0
    fixed = 1
    offset = 0
    least = 0
    framed = -1  # framing offsets: one per variable-size member but the last
    for m in members:
        least += m.min_size
        if not m.fixed_size:
            framed += 1
        m_align = m.align
        if m_align > align:
            align = m_align
        if m.depth >= depth:
            depth = m.depth + 1
        if fixed:
            m_fixed = m.fixed_size
            if m_fixed:
                # members laid out back to back, end rounded up to the tuple's alignment
                offset += -offset & (m_align - 1)
                offset += m_fixed
            else:
                fixed = 0
    if kind == "{":
        depth = members[1].depth + 1
    if fixed and members:
        fixed = offset + (-offset & (align - 1))
    # the unit tuple () has size 1
    if least and framed > 0:
        least += framed  # a body of at least a byte has offsets of at least a byte
    return TypeNode(s, start, end, kind, align, fixed, depth, members=members,
                    min_size=fixed or least)


def layout_rows(members: Tuple[TypeNode, ...]) -> Iterator[Tuple[int, int, int, int, int]]:
    """GLib's tuple_generate_table, one (i, a, b, c, ending) per member, as a stream."""
    i, a, b, c = -1, 0, 0, 0
    last = len(members) - 1
    for k, m in enumerate(members):
        d = m.align - 1
        if d <= b:
            c = c + (-c & d)
        else:
            a += c + (-c & b)
            b = d
            c = 0
        fixed = m.fixed_size
        if fixed:
            ending = ENDING_FIXED
        elif k == last:
            ending = ENDING_LAST
        else:
            ending = ENDING_OFFSET
        yield i, a + (~b & c) + b, ~b, c & b, ending
        if fixed == 0:
            i += 1
            a = b = c = 0
        else:
            c += fixed


class CodecCache(Dict[TypeNode, Any]):
    """Compiled codecs by node, bounded in entries and in the total length of their types.

    A compiled tuple codec costs tens of bytes per member, so long (hostile) types are
    compiled per use and never kept: what stays cached is a few MiB at most.
    """

    def __init__(self, max_entries: int, max_chars: int = 1 << 18,
                 max_entry_chars: int = 1 << 14) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_entry_chars = max_entry_chars
        self.chars = 0

    def put(self, node: TypeNode, fn: Any) -> None:
        text = node._text
        if text is None or len(text) > self.max_entry_chars:
            return
        length = len(text)
        if self.chars + length > self.max_chars:
            self.clear()
            self.chars = 0
        while len(self) >= self.max_entries:
            try:
                old = next(iter(self))
            except (StopIteration, RuntimeError):
                break
            if self.pop(old, None) is not None:
                self.chars -= old.length
        self[node] = fn
        self.chars += length


_SMALL_PLAN = 64


class Columns:
    """A codec plan for a tuple with many members, kept as one column per field (arrays of
    the narrowest int type, or lists); iterating yields the same rows a small plan holds."""

    __slots__ = ("columns",)

    def __init__(self, columns: Tuple[Any, ...]) -> None:
        self.columns = columns

    def __iter__(self) -> Iterator[Tuple[Any, ...]]:
        return zip(*self.columns)


def make_plan(rows: Iterable[Tuple[Any, ...]], count: int) -> Iterable[Tuple[Any, ...]]:
    """The per-member rows of a tuple codec: a tuple of tuples (fastest) for a usual tuple,
    a few bytes per member (Columns) for a huge, probably hostile one."""
    if count <= _SMALL_PLAN:
        return tuple(rows)
    columns: List[Any] = []
    for row in rows:
        if not columns:
            columns = [array("b") if type(x) is int else [] for x in row]
        for k, x in enumerate(row):
            try:
                columns[k].append(x)
            except OverflowError:  # widen this int column: b -> h -> i -> q
                column = columns[k]
                code = _WIDER[column.typecode]
                while True:
                    try:
                        wider = array(code, column)
                        wider.append(x)
                        break
                    except OverflowError:
                        code = _WIDER[code]
                columns[k] = wider
    return Columns(tuple(columns))


_WIDER = {"b": "h", "h": "i", "i": "q"}
