"""Shared steps of parsing a metadata object: size bound, normal form, decode."""

from __future__ import annotations

from typing import Union

from pyostree import gvariant
from pyostree.errors import ObjectError

__all__ = ["MAX_METADATA_SIZE", "BytesLike", "decode_metadata"]

MAX_METADATA_SIZE = 128 * 1024 * 1024
"""libostree's default limit for one metadata object."""

BytesLike = Union[bytes, bytearray, memoryview]


def decode_metadata(type_string: str, data: BytesLike, *, verify: bool, what: str) -> object:
    """Decode ``data`` as ``type_string``; with ``verify`` insist on GLib normal form, as
    libostree does for untrusted objects ("Not normal form")."""
    if len(data) > MAX_METADATA_SIZE:
        raise ObjectError(
            f"{what}: {len(data)} bytes exceeds the metadata limit of {MAX_METADATA_SIZE}"
        )
    if not verify:
        return gvariant.decode(type_string, data)
    normal, value = gvariant.decode_if_normal(type_string, data)
    if not normal:
        raise ObjectError(f"{what}: not normal form")
    return value
