"""``.commitmeta`` (detached metadata, e.g. signatures): an ``a{sv}`` named after its commit.

It is not content-addressed, so it has no ``checksum()``: the file name is the commit's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from pyostree.errors import ObjectError
from pyostree.objects._common import BytesLike, decode_metadata
from pyostree.objects._metadict import (
    MetadataDict,
    encode_metadata_dict,
    validate_metadata_dict,
)

__all__ = ["GPG_SIGNATURES_KEY", "ED25519_SIGNATURES_KEY", "CommitMeta"]

GPG_SIGNATURES_KEY = "ostree.gpgsigs"
ED25519_SIGNATURES_KEY = "ostree.sign.ed25519"


@dataclass(frozen=True)
class CommitMeta:
    """Detached metadata of a commit; an empty dict serialises to zero bytes."""

    metadata: MetadataDict = field(default_factory=dict)

    def validate(self) -> None:
        validate_metadata_dict(self.metadata, "commitmeta")

    def to_bytes(self) -> bytes:
        return encode_metadata_dict(self.metadata, "commitmeta")

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> CommitMeta:
        value = decode_metadata("a{sv}", data, verify=verify, what="commitmeta")
        assert isinstance(value, dict)
        meta = cls(dict(value))
        if verify:
            meta.validate()
            if meta.to_bytes() != data:
                raise ObjectError("commitmeta: metadata repeats a key")
        return meta

    def signatures(self, key: str = GPG_SIGNATURES_KEY) -> List[bytes]:
        """The ``aay`` signature list stored under ``key`` (empty if absent)."""
        item = self.metadata.get(key)
        if item is None:
            return []
        type_string, value = item
        if type_string != "aay" or not isinstance(value, list):
            raise ObjectError(f"commitmeta: {key} has type {type_string!r}, expected 'aay'")
        return [bytes(sig) for sig in value]

    def with_signature(self, signature: bytes, key: str = GPG_SIGNATURES_KEY) -> CommitMeta:
        """A copy with ``signature`` appended to the list under ``key`` (order kept)."""
        metadata = dict(self.metadata)
        metadata[key] = ("aay", self.signatures(key) + [bytes(signature)])
        return CommitMeta(metadata)
