"""Pure-Python GVariant binary codec, byte-identical to GLib (spec gvariant.md).

``encode`` writes GLib's normal form; ``decode`` accepts any bytes and returns exactly what
GLib returns for the same untrusted data; ``is_normal`` is g_variant_is_normal_form();
``decode_checked`` returns both, reading normal OSTree commits and ``a{sv}`` only once;
``decode_if_normal`` decodes only bytes that are normal (untrusted objects).
Decoded values may share default objects: treat them as read-only.
"""

from __future__ import annotations

from pyostree.gvariant.api import decode, decode_checked, decode_if_normal, encode, is_normal
from pyostree.gvariant.errors import GVariantError
from pyostree.gvariant.types import is_valid_signature, is_valid_type_string

__all__ = [
    "GVariantError",
    "decode",
    "decode_checked",
    "decode_if_normal",
    "encode",
    "is_normal",
    "is_valid_signature",
    "is_valid_type_string",
]
