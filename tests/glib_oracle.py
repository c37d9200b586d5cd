"""GLib as the oracle for pyostree.gvariant; run with the system Python that has ``gi``.

Reads JSON lines ``{"type": T, "hex": H}`` on stdin. For each, GLib loads the bytes as
untrusted data (``g_variant_new_from_bytes(..., trusted=FALSE)``) and one JSON line is written:
``{"value": V, "normal": bool, "normal_form": hex}`` where V is GLib's value walked into a
tagged JSON form of pyostree's mapping (``.unpack()`` loses information, spec pitfall 18):

  b -> bool, ynqiuxth -> int, d -> {"d": hex of the 8 LE bytes}, s o g -> str,
  ay -> {"b": hex}, a{..} -> {"d": [[k, v], ...]} (in order), other arrays -> list,
  tuples and dict entries -> {"t": [...]}, maybe -> null or {"j": v},
  v -> {"v": [type_string, v]}.

``normal_form`` is GLib's own serialisation of the value (g_variant_get_normal_form).
"""

from __future__ import annotations

import json
import struct
import sys

from gi.repository import GLib  # type: ignore[import-not-found]

_INT_GETTERS = {
    "y": "get_byte", "n": "get_int16", "q": "get_uint16", "i": "get_int32",
    "u": "get_uint32", "x": "get_int64", "t": "get_uint64", "h": "get_handle",
}


def walk(value: GLib.Variant) -> object:
    type_string = value.get_type_string()
    kind = type_string[0]
    if kind == "b":
        return bool(value.get_boolean())
    if kind in _INT_GETTERS:
        return int(getattr(value, _INT_GETTERS[kind])())
    if kind == "d":
        return {"d": struct.pack("<d", value.get_double()).hex()}
    if kind in "sog":
        return value.get_string()
    if kind == "v":
        inner = value.get_variant()
        return {"v": [inner.get_type_string(), walk(inner)]}
    if kind == "m":
        if value.n_children() == 0:
            return None
        return {"j": walk(value.get_child_value(0))}
    if type_string == "ay":
        data = value.get_data_as_bytes().get_data()
        return {"b": bytes(data or b"").hex()}
    children = [walk(value.get_child_value(i)) for i in range(value.n_children())]
    if kind == "a":
        if type_string[1] == "{":
            return {"d": [child["t"] for child in children]}  # type: ignore[index]
        return children
    return {"t": children}


def answer(type_string: str, data: bytes) -> dict[str, object]:
    value = GLib.Variant.new_from_bytes(GLib.VariantType(type_string), GLib.Bytes(data), False)
    normal = bool(value.is_normal_form())
    walked = walk(value)
    normal_form = value.get_normal_form().get_data_as_bytes().get_data() or b""
    return {"value": walked, "normal": normal, "normal_form": bytes(normal_form).hex()}


def main() -> int:
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        out.write(json.dumps(answer(case["type"], bytes.fromhex(case["hex"]))) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
