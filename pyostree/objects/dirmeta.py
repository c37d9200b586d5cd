"""``.dirmeta`` objects: owner, mode and xattrs of a directory, ``(uuua(ayay))``."""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass
from typing import Tuple

from pyostree.errors import ObjectError
from pyostree.objects._common import MAX_METADATA_SIZE, BytesLike, decode_metadata
from pyostree.objects._endian import swap32
from pyostree.objects._framing import encode_xattrs, parse_xattrs
from pyostree.objects.checksum import sha256_hex
from pyostree.objects.modes import bare_user_only_mode, validate_dir_mode, validate_u32
from pyostree.objects.xattrs import Xattrs, validate_xattrs, xattrs_from_value

__all__ = ["DIRMETA_TYPE", "DirMeta", "decode_uuua", "encode_uuua"]

DIRMETA_TYPE = "(uuua(ayay))"
_FIXED = struct.Struct(">III")


def encode_uuua(uid: int, gid: int, mode: int, xattrs: Xattrs) -> bytes:
    """``(uuua(ayay))`` with OSTree's big-endian ints: 12 fixed bytes then the xattrs."""
    return _FIXED.pack(uid, gid, mode) + encode_xattrs(xattrs)


def decode_uuua(data: BytesLike, *, verify: bool, what: str) -> Tuple[int, int, int, Xattrs]:
    """Parse ``(uuua(ayay))`` (dirmeta and ``user.ostreemeta``) into native ints."""
    raw = bytes(data)
    if len(raw) >= 12 and len(raw) <= MAX_METADATA_SIZE:
        xattrs = parse_xattrs(raw, 12, len(raw))
        if xattrs is not None:
            uid, gid, mode = _FIXED.unpack_from(raw)
            if encode_uuua(uid, gid, mode, xattrs) == raw:  # so raw is normal form
                return uid, gid, mode, xattrs
    value = decode_metadata(DIRMETA_TYPE, raw, verify=verify, what=what)
    assert isinstance(value, tuple)
    uid, gid, mode, xattr_value = value
    return swap32(uid), swap32(gid), swap32(mode), xattrs_from_value(xattr_value)


@dataclass(frozen=True)
class DirMeta:
    """Directory metadata; ints are native (the BE swap happens in (de)serialisation)."""

    uid: int
    gid: int
    mode: int
    xattrs: Xattrs = ()

    def validate(self) -> None:
        """libostree's structural rules: a directory mode, perms within 07777, sane xattrs."""
        validate_u32(self.uid, "dirmeta: uid")
        validate_u32(self.gid, "dirmeta: gid")
        validate_dir_mode(self.mode, "dirmeta")
        validate_xattrs(self.xattrs, "dirmeta: xattrs")

    def to_bytes(self) -> bytes:
        """Normal-form serialisation, the bytes the checksum names."""
        try:
            return encode_uuua(self.uid, self.gid, self.mode, self.xattrs)
        except (struct.error, TypeError, ValueError, OverflowError) as err:
            raise ObjectError(f"dirmeta: cannot serialise: {err}") from None

    def checksum(self) -> str:
        return sha256_hex(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> DirMeta:
        uid, gid, mode, xattrs = decode_uuua(data, verify=verify, what="dirmeta")
        meta = cls(uid, gid, mode, xattrs)
        if verify:
            meta.validate()
        return meta

    def canonical_bare_user_only(self) -> DirMeta:
        """What a bare-user-only commit stores: root owner, ``& 0755``, no xattrs."""
        return DirMeta(0, 0, bare_user_only_mode(self.mode), ())

    @property
    def permissions(self) -> int:
        return stat.S_IMODE(self.mode)
