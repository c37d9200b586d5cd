"""GVariant type strings: validation with GLib's nesting budget, and parsed type nodes.

Type strings found inside variants are attacker-controlled, so scanning never recurses
deeper than GLib's budget of 128 and the cache of parsed nodes is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, NamedTuple, Optional, Tuple

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


class MemberLayout(NamedTuple):
    """Where a tuple member lives, in GLib's (i, a, b, c) form.

    start = ((end of framing entry ``prev_entry``, or 0) + a) & b | c, with b already negated;
    ``prev_entry`` is the entry of the nearest variable-size member before this one, or -1.
    A named tuple, not a dataclass: hostile type strings can have 100,000s of members.
    """

    prev_entry: int
    a: int
    b: int
    c: int
    ending: int


@dataclass(frozen=True, eq=False)
class TypeNode:
    """One parsed, definite GVariant type; compared by identity, cached by string."""

    string: str
    kind: str
    align: int
    fixed_size: int
    depth: int
    element: Optional[TypeNode] = None
    members: Tuple[TypeNode, ...] = ()
    layout: Tuple[MemberLayout, ...] = ()

    @property
    def is_fixed(self) -> bool:
        return self.fixed_size != 0


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


_cache: Dict[str, TypeNode] = {}
_cache_chars = 0


def _remember(node: TypeNode) -> TypeNode:
    """Keep a node for reuse; the cache is bounded in entries and in total characters."""
    global _cache_chars
    length = len(node.string)
    if length > _CACHE_MAX_CHARS // 16:
        return node
    if _cache_chars + length > _CACHE_MAX_CHARS:
        _cache.clear()  # rare: only many long type strings get here
        _cache_chars = 0
    bounded_put(_cache, node.string, node, _CACHE_MAX_ENTRIES)
    _cache_chars += length
    return node


def parse_type(s: str) -> TypeNode:
    """Parse a complete, definite type string or raise GVariantError."""
    if not isinstance(s, str):
        raise GVariantError(f"GVariant type string must be str, not {type(s).__name__}")
    node = _cache.get(s)
    if node is not None:
        return node
    if not is_valid_type_string(s):
        shown = s if len(s) <= 40 else s[:40] + "..."
        raise GVariantError(f"invalid GVariant type string {shown!r}")
    return _build(s)


def parse_type_or_none(s: str) -> Optional[TypeNode]:
    """Like parse_type but for untrusted type strings: None when invalid."""
    node = _cache.get(s)
    if node is not None:
        return node
    if not is_valid_type_string(s):
        return None
    return _build(s)


def _build(s: str) -> TypeNode:
    """Build the node of a type string already known to be valid."""
    node = _cache.get(s)
    if node is not None:
        return node
    ch = s[0]
    basic = _BASIC_LAYOUT.get(ch)
    if basic is not None:
        return _remember(TypeNode(s, ch, basic[0], basic[1], 1))
    if ch == "a" or ch == "m":
        elem = _build(s[1:])
        fixed = 0
        return _remember(TypeNode(s, ch, elem.align, fixed, elem.depth + 1, element=elem))
    # '(' or '{': split into member strings
    members = []
    pos = 1
    end = len(s) - 1
    while pos < end:
        if s[pos] in _BASIC_LAYOUT:
            members.append(_build(s[pos]))
            pos += 1
            continue
        nxt = scan_type(s, pos)
        members.append(_build(s[pos:nxt]))
        pos = nxt
    return _remember(_tuple_node(s, ch, tuple(members)))


def _tuple_node(s: str, kind: str, members: Tuple[TypeNode, ...]) -> TypeNode:
    align = 1
    for m in members:
        align = max(align, m.align)
    depth = max((m.depth + 1 for m in members), default=0)
    if kind == "{":
        depth = members[1].depth + 1
    layout = _tuple_layout(members)
    fixed = 0
    if all(m.fixed_size for m in members):
        # members laid out back to back, end rounded up to the tuple's alignment;
        # the unit tuple () has size 1
        offset = 0
        for m in members:
            offset += -offset & (m.align - 1)
            offset += m.fixed_size
        offset += -offset & (align - 1)
        fixed = offset if members else 1
    return TypeNode(s, kind, align, fixed, depth, members=members, layout=layout)


def _tuple_layout(members: Tuple[TypeNode, ...]) -> Tuple[MemberLayout, ...]:
    """GLib's tuple_generate_table: (i, a, b, c) per member, exactly as gvarianttypeinfo.c."""
    out = []
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
        aa = a + (~b & c)
        cc = c & b
        if m.fixed_size:
            ending = ENDING_FIXED
        elif k == last:
            ending = ENDING_LAST
        else:
            ending = ENDING_OFFSET
        out.append(MemberLayout(i, aa + b, ~b, cc, ending))
        if m.fixed_size == 0:
            i += 1
            a = b = c = 0
        else:
            c += m.fixed_size
    return tuple(out)
