"""A cheap "stat" of a content object, for walks that touch thousands of them (ls, checkout).

Opening a full :class:`~pyostree.repo.ContentReader` per file costs tens of microseconds
of Python; ``ls -R`` and hardlink checkouts only need type, owner, mode, size and symlink
target. This reads exactly that with one or two syscalls for the common shapes, and returns
None for anything unusual (xattrs present, odd headers, unknown mode) so that callers fall
back to the repository's full, validating reader. It never decides that an object is good.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["ContentStat", "parse_archive_prefix", "stat_function"]

ARCHIVE_PREFIX = 4096
_ARCHIVE_FIXED = struct.Struct(">QIIII")   # size, uid, gid, mode, rdev
_OSTREEMETA = struct.Struct(">III")        # uid, gid, mode
_MAX_TARGET = 4096


@dataclass(frozen=True)
class ContentStat:
    """Logical metadata of a content object without xattrs (it has none)."""

    mode: int
    uid: int
    gid: int
    size: int
    symlink_target: str

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


StatFunction = Callable[[str], Optional[ContentStat]]


def _valid_mode(mode: int) -> bool:
    return (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) and not mode & ~(stat.S_IFMT(mode) | 0o7777)


def _archive_stat(path: str) -> Optional[ContentStat]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = os.read(fd, ARCHIVE_PREFIX)
    finally:
        os.close(fd)
    parsed = parse_archive_prefix(data)
    return parsed[0] if parsed is not None else None


def parse_archive_prefix(data: bytes) -> Optional[Tuple[ContentStat, int]]:
    """The stat and the payload offset from the first bytes of a ``.filez`` (no xattrs)."""
    if len(data) < 8:
        return None
    header_len = int.from_bytes(data[:4], "big")
    if header_len < _ARCHIVE_FIXED.size + 2 or 8 + header_len > len(data) or data[4:8] != b"\0\0\0\0":
        return None
    width = 1 if header_len <= 0xFF else 2 if header_len <= 0xFFFF else 4
    body = data[8:8 + header_len]
    string_end = int.from_bytes(body[header_len - width:], "little")
    # Only the shape with no xattrs: the string ends exactly where the offset table starts.
    if string_end != header_len - width or body[string_end - 1] != 0:
        return None
    size, uid, gid, mode, rdev = _ARCHIVE_FIXED.unpack_from(body)
    target_bytes = body[_ARCHIVE_FIXED.size:string_end - 1]
    if rdev != 0 or not _valid_mode(mode) or b"\0" in target_bytes:
        return None
    try:
        target = target_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if stat.S_ISLNK(mode) != bool(target) or (stat.S_ISLNK(mode) and size != 0):
        return None
    return ContentStat(mode, uid, gid, size, target), 8 + header_len


def _bare_user_stat(path: str) -> Optional[ContentStat]:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        return None
    meta = os.getxattr(path, "user.ostreemeta", follow_symlinks=False)
    if len(meta) != _OSTREEMETA.size:  # longer means xattrs: let the full reader handle them
        return None
    uid, gid, mode = _OSTREEMETA.unpack(meta)
    if not _valid_mode(mode):
        return None
    if not stat.S_ISLNK(mode):
        return ContentStat(mode, uid, gid, st.st_size, "")
    if st.st_size > _MAX_TARGET + 1:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        raw = os.read(fd, _MAX_TARGET + 2)
    finally:
        os.close(fd)
    if not raw.endswith(b"\0") or b"\0" in raw[:-1] or len(raw) < 2:
        return None
    try:
        return ContentStat(mode, uid, gid, 0, raw[:-1].decode("utf-8"))
    except UnicodeDecodeError:
        return None


def stat_function(repo: Repo, *, cache: bool = True) -> Optional[StatFunction]:
    """A checksum -> ContentStat function for REPO's mode, or None if no fast path exists.

    The returned function gives None (fall back) for unusual objects and raises OSError
    (e.g. ENOENT) when the object file cannot be read. CACHE remembers results (trees
    repeat content); callers visiting each object once should turn it off.
    """
    from pyostree.repo import RepoMode

    objects = os.path.join(os.fspath(repo.path), "objects")
    if repo.mode == RepoMode.ARCHIVE:
        suffix, reader = ".filez", _archive_stat
    elif repo.mode == RepoMode.BARE_USER:
        suffix, reader = ".file", _bare_user_stat
    else:
        return None
    seen: Dict[str, Optional[ContentStat]] = {}

    def stat_object(checksum: str) -> Optional[ContentStat]:
        if checksum in seen:
            return seen[checksum]
        if len(checksum) != 64:
            return None
        found = reader(f"{objects}/{checksum[:2]}/{checksum[2:]}{suffix}")
        if cache:
            seen[checksum] = found
        return found

    return stat_object
