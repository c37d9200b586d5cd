"""What each storage mode does to a content object before it gets its name (spec §4)."""

from __future__ import annotations

import os
import stat
import time

from pyostree.errors import ObjectError
from pyostree.objects.content import FileHeader
from pyostree.objects.dirmeta import encode_uuua
from pyostree.objects.modes import bare_user_storage_mode

__all__ = ["apply_file_metadata", "check_header_for_mode", "ostreemeta"]


def apply_file_metadata(fd: int, header: FileHeader, mode_name: str) -> None:
    """Owner, mode, xattrs and mtime 0 before the object gets its name (spec §1.7 step 3)."""
    if mode_name in ("archive", "archive-z2"):
        os.fchmod(fd, 0o644)
        return
    if mode_name == "bare":
        os.fchown(fd, header.uid, header.gid)
        os.fchmod(fd, stat.S_IMODE(header.mode))
        for name, value in header.xattrs:
            os.setxattr(fd, name[:-1], value)
    elif mode_name == "bare-user":
        os.fchmod(fd, stat.S_IMODE(bare_user_storage_mode(header.mode)))
        os.setxattr(fd, "user.ostreemeta", ostreemeta(header))
    else:  # bare-user-only
        os.fchmod(fd, stat.S_IMODE(header.mode))
    os.utime(fd, ns=(time.time_ns(), 0))  # libostree: mtime 0 (atime is irrelevant)


def ostreemeta(header: FileHeader) -> bytes:
    """``user.ostreemeta``: ``(uuua(ayay))`` with the full logical mode."""
    return encode_uuua(header.uid, header.gid, header.mode, header.xattrs)


def check_header_for_mode(header: FileHeader, mode_name: str) -> None:
    """bare-user-only can only represent canonical files (root, ``& 0755``, no xattrs)."""
    if header.rdev != 0:
        raise ObjectError("file header: rdev must be 0")
    if mode_name == "bare-user-only":
        if header.uid != 0 or header.gid != 0 or header.xattrs:
            raise ObjectError("bare-user-only repos cannot store files with an owner or xattrs")
        if stat.S_ISREG(header.mode) and header.mode & ~(stat.S_IFREG | 0o755):
            raise ObjectError(f"bare-user-only repos cannot store mode 0o{header.mode:o}")
