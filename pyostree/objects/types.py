"""Object types and their file-name extensions in a repository."""

from __future__ import annotations

import enum
from typing import Tuple

from pyostree.errors import ObjectError

__all__ = ["ObjectType"]


class ObjectType(enum.IntEnum):
    """libostree's ``OstreeObjectType``; the numbers appear on the wire (sizes, deltas)."""

    FILE = 1
    DIR_TREE = 2
    DIR_META = 3
    COMMIT = 4
    TOMBSTONE_COMMIT = 5
    COMMIT_META = 6
    PAYLOAD_LINK = 7
    FILE_XATTRS = 8
    FILE_XATTRS_LINK = 9

    def extension(self, archive: bool = False) -> str:
        """File-name extension of a loose object; archive repos compress content (``filez``)."""
        if self is ObjectType.FILE and archive:
            return "filez"
        return _EXTENSIONS[self]

    @property
    def is_meta(self) -> bool:
        """Metadata objects are stored as plain GVariant bytes (libostree: ``2 <= t <= 6``)."""
        return ObjectType.DIR_TREE <= self <= ObjectType.COMMIT_META

    @classmethod
    def from_extension(cls, ext: str) -> Tuple[ObjectType, bool]:
        """Inverse of :meth:`extension`: ``"filez"`` gives ``(FILE, True)``."""
        ext = ext[1:] if ext.startswith(".") else ext
        if ext == "filez":
            return cls.FILE, True
        for objtype, name in _EXTENSIONS.items():
            if name == ext:
                return objtype, False
        raise ObjectError(f"unknown object extension {ext!r}")


_EXTENSIONS = {
    ObjectType.FILE: "file",
    ObjectType.DIR_TREE: "dirtree",
    ObjectType.DIR_META: "dirmeta",
    ObjectType.COMMIT: "commit",
    ObjectType.TOMBSTONE_COMMIT: "tombstone-commit",
    ObjectType.COMMIT_META: "commitmeta",
    ObjectType.PAYLOAD_LINK: "payload-link",
    ObjectType.FILE_XATTRS: "file-xattrs",
    ObjectType.FILE_XATTRS_LINK: "file-xattrs-link",
}
