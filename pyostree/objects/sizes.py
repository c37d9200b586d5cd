"""``ostree.sizes`` commit metadata: per-object archived/unpacked sizes as LEB128 varints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Tuple

from pyostree.errors import ObjectError
from pyostree.objects.checksum import DIGEST_SIZE, to_raw
from pyostree.objects.types import ObjectType

__all__ = [
    "MAX_VARINT_BYTES",
    "SIZES_KEY",
    "SizeEntry",
    "decode_varint",
    "encode_varint",
    "parse_sizes",
    "sizes_metadata",
]

SIZES_KEY = "ostree.sizes"
MAX_VARINT_BYTES = 10
_U64 = (1 << 64) - 1


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low group first, high bit = more follows."""
    if not 0 <= value <= _U64:
        raise ObjectError(f"varint value {value} is not a 64-bit unsigned int")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(data: bytes, offset: int = 0) -> Tuple[int, int]:
    """Decode one varint at ``offset``; returns (value, offset after it). Like libostree,
    at most 10 bytes are read and bits beyond 64 are dropped."""
    result = 0
    for count in range(MAX_VARINT_BYTES):
        if offset + count >= len(data):
            raise ObjectError("ostree.sizes: unexpected end of varint")
        byte = data[offset + count]
        result |= (byte & 0x7F) << (7 * count)
        if not byte & 0x80:
            return result & _U64, offset + count + 1
    raise ObjectError("ostree.sizes: varint longer than 10 bytes")


@dataclass(frozen=True)
class SizeEntry:
    """One object's sizes: stored (compressed) and unpacked bytes; symlinks unpack to the
    target length."""

    checksum: str
    archived: int
    unpacked: int
    objtype: ObjectType = ObjectType.FILE

    def to_bytes(self) -> bytes:
        return (
            to_raw(self.checksum)
            + encode_varint(self.archived)
            + encode_varint(self.unpacked)
            + bytes([int(self.objtype)])
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SizeEntry:
        """Old commits omit the type byte (meaning a file); bytes after it are ignored as
        libostree does."""
        if len(data) < DIGEST_SIZE + 2:
            raise ObjectError(f"ostree.sizes: entry of {len(data)} bytes is too short")
        checksum = bytes(data[:DIGEST_SIZE]).hex()
        archived, offset = decode_varint(data, DIGEST_SIZE)
        unpacked, offset = decode_varint(data, offset)
        objtype = ObjectType.FILE
        if offset < len(data):
            code = data[offset]
            if not ObjectType.FILE <= code <= ObjectType.FILE_XATTRS_LINK:
                raise ObjectError(f"ostree.sizes: unexpected object type {code}")
            objtype = ObjectType(code)
        return cls(checksum, archived, unpacked, objtype)


def parse_sizes(value: Iterable[bytes]) -> List[SizeEntry]:
    """Entries of a decoded ``ostree.sizes`` (``aay``) value."""
    return [SizeEntry.from_bytes(bytes(entry)) for entry in value]


def sizes_metadata(entries: Iterable[SizeEntry]) -> Tuple[str, List[bytes]]:
    """The ``("aay", [...])`` metadata value, entries sorted by checksum as libostree does."""
    ordered = sorted(entries, key=lambda entry: entry.checksum)
    return "aay", [entry.to_bytes() for entry in ordered]
