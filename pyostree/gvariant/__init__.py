"""Pure-Python GVariant binary codec, byte-identical to GLib (spec gvariant.md).

``encode`` writes GLib's normal form; ``decode`` accepts any bytes and returns exactly what
GLib returns for the same untrusted data; ``is_normal`` is g_variant_is_normal_form().
Decoded values may share default objects: treat them as read-only.
"""

from __future__ import annotations

from pyostree.gvariant.decoder import decode
from pyostree.gvariant.encoder import encode
from pyostree.gvariant.errors import GVariantError
from pyostree.gvariant.normal import is_normal
from pyostree.gvariant.types import is_valid_signature, is_valid_type_string

__all__ = [
    "GVariantError",
    "decode",
    "encode",
    "is_normal",
    "is_valid_signature",
    "is_valid_type_string",
]
