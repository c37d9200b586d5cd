"""Straight-line decoders for the OSTree tuple types, generated from their layout.

The generic tuple decoder (decoder.py) loops over members and branches on their ending kind;
for the handful of tuple types OSTree decodes all the time the same rules are unrolled into
Python source once, on first use. The source holds only integers derived from the
type (never from data), and only types listed in ``GENERATED_TYPES`` are compiled this way,
so hostile type strings inside variants never reach ``exec``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from pyostree.gvariant.types import ENDING_FIXED, ENDING_LAST, ENDING_OFFSET, TypeNode

GENERATED_TYPES = frozenset({
    "(a{sv}aya(say)sstayay)",  # commit
    "(aya(say)sstayay)",
    "(a(say)a(sayay))",        # dirtree
    "(uuua(ayay))",            # dirmeta
    "(tuuuusa(ayay))",         # archive file header
    "(uuuusa(ayay))",          # file header
    "(a(s(taya{sv}))a{sv})",   # summary
    "(s(taya{sv}))",
    "(taya{sv})",
    "(ayay)",
    "(say)",
    "(sayay)",
})

_INF = 1 << 70


def _entry(j: int) -> str:
    """Expression reading framing entry j (counted from the end), given W and end."""
    return (f"(data[end - {j + 1}] if W == 1 else "
            f"int.from_bytes(data[end - W * {j + 1}:end - W * {j}], 'little'))")


def generate(node: TypeNode, decoders: List[Callable[..., Any]],
             default_value: Callable[[TypeNode, Any], Any]) -> Callable[..., Any]:
    """Compile the unrolled decoder of a variable-size tuple type."""
    layout = node.layout
    count = len(layout)
    entries = sum(1 for lay in layout if lay.ending == ENDING_OFFSET)
    lines = [
        "def dec(data, start, end, depth, memo):",
        "    size = end - start",
        "    if size == 0:",
        "        return default_value(node, memo)",
        "    W = 1 if size <= 0xFF else (2 if size <= 0xFFFF else (4 if size <= 0xFFFFFFFF else 8))",
        "    cd = depth + 1",
    ]
    for j in range(entries):
        lines.append(f"    e{j} = {_entry(j)} if W * {j + 1} <= size else None")
    for k, lay in enumerate(layout):
        i = lay.prev_entry
        prev = "0" if i < 0 else f"(0 if e{i} is None else e{i})"
        lines.append(f"    s{k} = (({prev} + {lay.a}) & {lay.b}) | {lay.c}")
        if lay.ending == ENDING_FIXED:
            lines.append(f"    t{k} = s{k} + {node.members[k].fixed_size}")
            ok = "True" if i < 0 else f"e{i} is not None"
        elif lay.ending == ENDING_LAST:
            lines.append(f"    t{k} = size - W * {i + 1} if W * {i + 1} <= size else {_INF}")
            ok = "True" if i < 0 else f"e{i} is not None"
        else:
            lines.append(f"    t{k} = {_INF} if e{i + 1} is None else e{i + 1}")
            ok = f"e{i + 1} is not None"
        lines.append(f"    ok{k} = {ok}")
    last = count - 1
    # ordering cut-off (first member out of order; none if that is member 0)
    lines.append(f"    cut = {count}")
    lines.append("    if s0 > t0 or t0 > size:")
    lines.append("        pass")
    for k in range(1, count):
        lines.append(f"    elif s{k} > t{k} or s{k} < t{k - 1} or t{k} > size:")
        lines.append(f"        cut = {k}")
    values = []
    for k in range(count):
        cond = (f"cut > {k} and ok{k} and s{k} < t{k} <= size and t{k} <= t{last}")
        values.append(f"(d{k}(data, start + s{k}, start + t{k}, cd, memo) if {cond} "
                      f"else default_value(m{k}, memo))")
    lines.append("    return (" + ", ".join(values) + ("," if count == 1 else "") + ")")
    namespace: Dict[str, Any] = {"default_value": default_value, "node": node}
    for k in range(count):
        namespace[f"d{k}"] = decoders[k]
        namespace[f"m{k}"] = node.members[k]
    exec(compile("\n".join(lines), f"<gvariant tuple {node.string}>", "exec"), namespace)
    fn: Callable[..., Any] = namespace["dec"]
    return fn
