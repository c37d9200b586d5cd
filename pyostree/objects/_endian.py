"""Byte swapping for the integers OSTree stores big-endian inside little-endian GVariants.

The GVariant codec writes integers little-endian; OSTree pre-swaps its own fields, so the
value handed to the codec is the integer whose LE bytes are the BE bytes of the real value.
"""

from __future__ import annotations

__all__ = ["swap32", "swap64"]


def swap32(value: int) -> int:
    """Byte-swap an unsigned 32-bit integer (its own inverse)."""
    return int.from_bytes(value.to_bytes(4, "little"), "big")


def swap64(value: int) -> int:
    """Byte-swap an unsigned 64-bit integer (its own inverse)."""
    return int.from_bytes(value.to_bytes(8, "little"), "big")
