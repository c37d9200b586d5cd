"""File-mode rules shared by dirmeta, file headers and ``user.ostreemeta``."""

from __future__ import annotations

import stat

from pyostree.errors import ObjectError

__all__ = [
    "PERMISSION_BITS",
    "bare_user_only_mode",
    "bare_user_storage_mode",
    "validate_dir_mode",
    "validate_file_mode",
    "validate_u32",
]

PERMISSION_BITS = 0o7777
"""Besides the file type, only these bits may be set (rwx for all, setuid, setgid, sticky)."""


def validate_u32(value: int, what: str) -> None:
    """Fields stored as GVariant ``u`` must fit in 32 bits."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise ObjectError(f"{what} {value!r} is not a 32-bit unsigned integer")


def _check_perms(mode: int, what: str) -> None:
    extra = mode & ~(stat.S_IFMT(mode) | PERMISSION_BITS)
    if extra:
        raise ObjectError(f"{what}: mode 0o{mode:o} has invalid bits 0o{extra:o}")


def validate_dir_mode(mode: int, what: str = "dirmeta") -> None:
    """A dirmeta mode must be a directory with only permission bits besides the type."""
    validate_u32(mode, f"{what}: mode")
    if not stat.S_ISDIR(mode):
        raise ObjectError(f"{what}: mode 0o{mode:o} is not a directory")
    _check_perms(mode, what)


def validate_file_mode(mode: int, what: str = "file header") -> None:
    """A content object is a regular file or a symlink with only permission bits set."""
    validate_u32(mode, f"{what}: mode")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise ObjectError(f"{what}: mode 0o{mode:o} is not a regular file or symlink")
    _check_perms(mode, what)


def bare_user_only_mode(mode: int) -> int:
    """bare-user-only commits keep only ``0755`` of regular files and directories;
    symlinks are unchanged."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return mode & (stat.S_IFMT(mode) | 0o755)
    return mode


def bare_user_storage_mode(mode: int) -> int:
    """Real mode of a bare-user object file: its logical mode lives in ``user.ostreemeta``,
    the inode keeps ``& 0775`` plus owner-read; symlink objects are 0644 regular files."""
    if stat.S_ISLNK(mode):
        return stat.S_IFREG | 0o644
    return (mode & (stat.S_IFREG | 0o775)) | stat.S_IRUSR
