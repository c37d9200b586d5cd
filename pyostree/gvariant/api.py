"""The public entry points: generic GLib-exact codec plus whole-type fast paths.

A fast path may only answer when it can prove its answer equals the generic one (for the
decoders: the bytes are in normal form); otherwise it returns None and the generic code runs.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from pyostree.gvariant import commitpath, fastpaths
from pyostree.gvariant.decoder import as_bytes, decode_node
from pyostree.gvariant.encoder import encode_node
from pyostree.gvariant.normal import is_normal_node
from pyostree.gvariant.types import parse_type

# type string -> f(bytes) -> value if the bytes are provably normal, else None; for these
# types that one pass is also faster than the generic decoder and than the generic checker
_NORMAL_DECODERS: Dict[str, Callable[[bytes], Optional[Any]]] = {
    commitpath.COMMIT_TYPE: commitpath.decode_commit_normal,
    "a{sv}": lambda data: commitpath.decode_vardict_normal(data, 0, len(data), 0),
    "(a(say)a(sayay))": fastpaths.decode_dirtree_normal,
}
# type string -> f(value) -> normal-form bytes, or None to let the generic encoder decide
_ENCODERS: Dict[str, Callable[[Any], Optional[bytes]]] = {
    commitpath.COMMIT_TYPE: commitpath.encode_commit,
    "a{sv}": commitpath.encode_vardict,
}


def _fast_value(type_string: str, data: Any) -> Optional[Any]:
    """The value by the type's whole-type fast path if it has one and the bytes are provably
    normal, else None (then the generic code answers)."""
    if type(type_string) is str:
        fast = _NORMAL_DECODERS.get(type_string)
        if fast is not None:
            return fast(data if type(data) is bytes else as_bytes(data))
    return None


def decode(type_string: str, data: Any) -> Any:
    """Decode ``data`` as GLib would for untrusted bytes; raises only for a bad type string."""
    value = _fast_value(type_string, data)
    if value is not None:
        return value
    return decode_node(parse_type(type_string), data)


def is_normal(type_string: str, data: Any) -> bool:
    """True iff GLib calls these bytes the normal form of a value of this type."""
    if _fast_value(type_string, data) is not None:
        return True
    return is_normal_node(parse_type(type_string), data)


def decode_checked(type_string: str, data: Any) -> Tuple[Any, bool]:
    """``(decode(type_string, data), is_normal(type_string, data))``, sharing the work.

    Normal commits, dirtrees and ``a{sv}`` are read once; otherwise the type is parsed once
    and the generic decoder and checker both run.
    """
    value = _fast_value(type_string, data)
    if value is not None:
        return value, True
    node = parse_type(type_string)
    data = as_bytes(data)
    return decode_node(node, data), is_normal_node(node, data)


def decode_if_normal(type_string: str, data: Any) -> Tuple[bool, Any]:
    """``(True, value)`` if the bytes are normal, else ``(False, None)``: for untrusted
    objects, which are refused unless normal, so bytes that are not cost no decode (a
    wide type string over a short body is refused by the checker without a codec)."""
    value = _fast_value(type_string, data)
    if value is not None:
        return True, value
    node = parse_type(type_string)
    data = as_bytes(data)
    if not is_normal_node(node, data):
        return False, None
    return True, decode_node(node, data)


def encode(type_string: str, value: Any) -> bytes:
    """Serialise ``value`` (mapping of spec §12) as GLib's normal form."""
    if type(type_string) is str:
        fast = _ENCODERS.get(type_string)
        if fast is not None:
            raw = fast(value)
            if raw is not None:
                return raw
    return encode_node(parse_type(type_string), value)
