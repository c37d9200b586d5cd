"""``.tombstone-commit``: marks a deleted commit; ``{"commit": <ay hex + NUL>}``."""

from __future__ import annotations

from dataclasses import dataclass

from pyostree.errors import ObjectError
from pyostree.objects._common import BytesLike, decode_metadata
from pyostree.objects._metadict import encode_metadata_dict
from pyostree.objects.checksum import is_checksum, validate_checksum

__all__ = ["Tombstone"]


@dataclass(frozen=True)
class Tombstone:
    """Stored under the deleted commit's checksum; the value repeats it as ASCII + NUL."""

    commit: str

    def validate(self) -> None:
        validate_checksum(self.commit)

    def to_bytes(self) -> bytes:
        value = self.commit.encode("ascii") + b"\0"
        return encode_metadata_dict({"commit": ("ay", value)}, "tombstone")

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> Tombstone:
        """Other keys are ignored, as libostree only reads ``commit``."""
        value = decode_metadata("a{sv}", data, verify=verify, what="tombstone")
        assert isinstance(value, dict)
        item = value.get("commit")
        if item is None:
            raise ObjectError("tombstone: no 'commit' key")
        type_string, raw = item
        if type_string != "ay" or not isinstance(raw, bytes):
            raise ObjectError(f"tombstone: 'commit' has type {type_string!r}, expected 'ay'")
        text = raw[:-1] if raw.endswith(b"\0") else raw
        commit = text.decode("ascii", "replace")
        if verify and not (raw.endswith(b"\0") and is_checksum(commit)):
            raise ObjectError(f"tombstone: 'commit' value {raw[:80]!r} is not a hex checksum")
        return cls(commit)
