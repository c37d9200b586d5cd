"""``a{sv}`` dictionaries (commit metadata, commitmeta, tombstones) and their checks."""

from __future__ import annotations

from typing import Dict, Tuple

from pyostree import gvariant
from pyostree.errors import ObjectError

__all__ = ["MetadataDict", "encode_metadata_dict", "validate_metadata_dict"]

MetadataDict = Dict[str, Tuple[str, object]]
"""key -> (GVariant type string, value); insertion order is the serialised order."""


def validate_metadata_dict(metadata: MetadataDict, what: str) -> None:
    """Keys are non-empty strings (libostree: "Empty metadata key"), values typed pairs."""
    if not isinstance(metadata, dict):
        raise ObjectError(f"{what}: metadata must be a dict")
    for key, item in metadata.items():
        if not isinstance(key, str) or key == "":
            raise ObjectError(f"{what}: empty metadata key")
        if "\0" in key:
            raise ObjectError(f"{what}: metadata key {key!r} contains NUL")
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ObjectError(f"{what}: metadata {key!r} is not a (type string, value) pair")


def encode_metadata_dict(metadata: MetadataDict, what: str) -> bytes:
    """Serialise an ``a{sv}``; bad values become ``ObjectError``."""
    try:
        return gvariant.encode("a{sv}", metadata)
    except (gvariant.GVariantError, TypeError, ValueError, OverflowError) as err:
        raise ObjectError(f"{what}: cannot serialise metadata: {err}") from None
