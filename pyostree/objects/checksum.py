"""Conversions between the hex checksums the API uses and the raw digests objects hold."""

from __future__ import annotations

import base64
import binascii
import hashlib

from pyostree.errors import ObjectError

__all__ = [
    "DIGEST_SIZE",
    "HEX_SIZE",
    "from_mb64",
    "is_checksum",
    "sha256_hex",
    "to_hex",
    "to_mb64",
    "to_raw",
    "validate_checksum",
]

DIGEST_SIZE = 32
HEX_SIZE = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


def is_checksum(text: str) -> bool:
    """True for exactly 64 lowercase hex digits, as libostree requires of object names."""
    return len(text) == HEX_SIZE and _HEX_DIGITS.issuperset(text)


def validate_checksum(text: str) -> str:
    """Return ``text`` if it is a valid checksum string, else raise ``ObjectError``."""
    if not isinstance(text, str) or not is_checksum(text):
        shown = text[:80] if isinstance(text, str) else type(text).__name__
        raise ObjectError(f"invalid checksum {shown!r}: need 64 lowercase hex digits")
    return text


def to_hex(raw: bytes) -> str:
    """Hex form of a raw 32-byte digest; other lengths are a malformed object."""
    if len(raw) != DIGEST_SIZE:
        raise ObjectError(f"invalid checksum length {len(raw)}, expected {DIGEST_SIZE} bytes")
    return bytes(raw).hex()


def to_raw(text: str) -> bytes:
    """Raw 32-byte digest of a checksum string (validated)."""
    return bytes.fromhex(validate_checksum(text))


def sha256_hex(data: bytes) -> str:
    """Checksum of a metadata object: SHA-256 of its serialised bytes."""
    return hashlib.sha256(data).hexdigest()


def to_mb64(text: str) -> str:
    """OSTree's "modified base64" (no padding, ``/`` -> ``_``) used in static-delta paths."""
    return base64.b64encode(to_raw(text)).decode("ascii").rstrip("=").replace("/", "_")


def from_mb64(text: str) -> str:
    """Inverse of :func:`to_mb64`."""
    if len(text) != 43:
        raise ObjectError(f"invalid modified-base64 checksum {text[:80]!r}: need 43 characters")
    try:
        raw = base64.b64decode(text.replace("_", "/") + "=", validate=True)
    except (binascii.Error, ValueError) as err:
        raise ObjectError(f"invalid modified-base64 checksum {text!r}: {err}") from None
    checksum = to_hex(raw)
    if to_mb64(checksum) != text:
        raise ObjectError(f"invalid modified-base64 checksum {text!r}: not canonical")
    return checksum
