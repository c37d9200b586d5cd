"""``.commit`` objects: ``(a{sv}aya(say)sstayay)``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

from pyostree import gvariant
from pyostree.errors import ObjectError
from pyostree.objects._common import BytesLike, decode_metadata
from pyostree.objects._endian import swap64
from pyostree.objects._metadict import MetadataDict, validate_metadata_dict
from pyostree.objects.checksum import DIGEST_SIZE, sha256_hex, validate_checksum

__all__ = ["COMMIT_TYPE", "Commit"]

COMMIT_TYPE = "(a{sv}aya(say)sstayay)"


def _raw(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except (ValueError, TypeError):
        raise ObjectError(f"commit: {what} {text!r} is not hex") from None


def _hex(raw: bytes, what: str, verify: bool) -> str:
    if verify and len(raw) != DIGEST_SIZE:
        raise ObjectError(f"commit: {what} is {len(raw)} bytes, expected {DIGEST_SIZE}")
    return raw.hex()


@dataclass(frozen=True)
class Commit:
    """A commit; ``timestamp`` is native seconds (stored big-endian), checksums are hex."""

    metadata: MetadataDict
    parent: Optional[str]
    related: Tuple[Tuple[str, str], ...]
    subject: str
    body: str
    timestamp: int
    root_tree: str
    root_meta: str

    @classmethod
    def create(
        cls,
        root_tree: str,
        root_meta: str,
        *,
        timestamp: int,
        subject: str = "",
        body: str = "",
        parent: Optional[str] = None,
        metadata: Optional[MetadataDict] = None,
    ) -> Commit:
        """Keyword constructor for writers; related objects are always empty in practice."""
        return cls(dict(metadata or {}), parent, (), subject, body, timestamp, root_tree, root_meta)

    @property
    def content_checksum(self) -> str:
        """``sha256(root_tree_raw + root_meta_raw)``: what ``ostree log`` shows as content."""
        raw = _raw(self.root_tree, "root tree") + _raw(self.root_meta, "root meta")
        return hashlib.sha256(raw).hexdigest()

    @property
    def version(self) -> Optional[str]:
        """The ``version`` metadata string, if any."""
        return self._string("version")

    @property
    def ref_bindings(self) -> Optional[List[str]]:
        """``ostree.ref-binding``: refs this commit may be pulled as (None if unbound)."""
        item = self.metadata.get("ostree.ref-binding")
        if item is None or item[0] != "as" or not isinstance(item[1], list):
            return None
        return [str(ref) for ref in item[1]]

    @property
    def collection_binding(self) -> Optional[str]:
        return self._string("ostree.collection-binding")

    def _string(self, key: str) -> Optional[str]:
        item = self.metadata.get(key)
        if item is None or item[0] != "s" or not isinstance(item[1], str):
            return None
        return item[1]

    def validate(self) -> None:
        """libostree's structure check plus sane Python values (so to_bytes can't fail)."""
        validate_metadata_dict(self.metadata, "commit")
        if self.parent is not None:
            validate_checksum(self.parent)
        for index, pair in enumerate(self.related):
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ObjectError(f"commit: related entry {index} is not a (name, checksum) pair")
            _raw(pair[1], "related checksum")
        for what, text in (("subject", self.subject), ("body", self.body)):
            if not isinstance(text, str) or "\0" in text:
                raise ObjectError(f"commit: {what} must be a str without NUL")
        if (
            not isinstance(self.timestamp, int)
            or isinstance(self.timestamp, bool)
            or not 0 <= self.timestamp < 1 << 64
        ):
            raise ObjectError(f"commit: timestamp {self.timestamp!r} is not a 64-bit unsigned int")
        validate_checksum(self.root_tree)
        validate_checksum(self.root_meta)

    def _value(self) -> tuple[object, ...]:
        return (
            self.metadata,
            _raw(self.parent, "parent") if self.parent is not None else b"",
            [(name, _raw(checksum, "related checksum")) for name, checksum in self.related],
            self.subject,
            self.body,
            swap64(self.timestamp),
            _raw(self.root_tree, "root tree"),
            _raw(self.root_meta, "root meta"),
        )

    def to_bytes(self) -> bytes:
        """Normal-form serialisation; the commit's checksum is SHA-256 of these bytes."""
        try:
            return gvariant.encode(COMMIT_TYPE, self._value())
        except (gvariant.GVariantError, TypeError, ValueError, OverflowError) as err:
            raise ObjectError(f"commit: cannot serialise: {err}") from None

    def checksum(self) -> str:
        return sha256_hex(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> Commit:
        value = decode_metadata(COMMIT_TYPE, data, verify=verify, what="commit")
        assert isinstance(value, tuple)
        metadata, parent, related, subject, body, timestamp, tree, meta = value
        commit = cls(
            metadata=dict(metadata),
            parent=_hex(parent, "parent checksum", verify) if parent else None,
            related=tuple((name, raw.hex()) for name, raw in related),
            subject=subject,
            body=body,
            timestamp=swap64(timestamp),
            root_tree=_hex(tree, "root dirtree checksum", verify),
            root_meta=_hex(meta, "root dirmeta checksum", verify),
        )
        if verify:
            commit.validate()
            if commit.to_bytes() != data:
                # Normal form allows repeated a{sv} keys, which a dict cannot hold; refuse
                # rather than return an object whose checksum() differs from its name.
                raise ObjectError("commit: metadata repeats a key")
        return commit
