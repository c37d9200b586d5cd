"""``.dirtree`` objects: the sorted file and subdirectory lists of one directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from pyostree.errors import ObjectError
from pyostree.objects._common import BytesLike, decode_metadata
from pyostree.objects._framing import encode_checksum_list, encode_dir_list, offset_width
from pyostree.objects.checksum import DIGEST_SIZE, sha256_hex, validate_checksum
from pyostree.objects.names import validate_filename

__all__ = ["DIRTREE_TYPE", "EMPTY_DIRTREE_CHECKSUM", "DirEntry", "DirTree", "FileEntry"]

DIRTREE_TYPE = "(a(say)a(sayay))"
EMPTY_DIRTREE_CHECKSUM = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@dataclass(frozen=True)
class FileEntry:
    """A non-directory child: name and content-object checksum."""

    name: str
    checksum: str


@dataclass(frozen=True)
class DirEntry:
    """A subdirectory: name, its dirtree and its dirmeta checksums."""

    name: str
    tree_checksum: str
    meta_checksum: str


def _encode_name(name: str, what: str) -> bytes:
    try:
        return name.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        raise ObjectError(f"{what} {name!r} is not valid UTF-8") from None


def _raw(checksum: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(checksum)
    except (ValueError, TypeError):
        raise ObjectError(f"{what} {checksum!r} is not hex") from None
    return raw


def _hex(raw: bytes, name: str, verify: bool) -> str:
    if verify and len(raw) != DIGEST_SIZE:
        raise ObjectError(
            f"dirtree: checksum of {name!r} is {len(raw)} bytes, expected {DIGEST_SIZE}"
        )
    return raw.hex()


@dataclass(frozen=True)
class DirTree:
    """Children of a directory. Both tuples are sorted by ``strcmp`` of the UTF-8 names,
    which lookups rely on (libostree binary-searches them)."""

    files: Tuple[FileEntry, ...] = ()
    dirs: Tuple[DirEntry, ...] = ()

    def validate(self) -> None:
        """Valid names, 32-byte checksums, each list strictly sorted, no name in both."""
        for what, entries in (("file", self.files), ("dir", self.dirs)):
            previous: Optional[bytes] = None
            for entry in entries:
                validate_filename(entry.name, f"dirtree: {what} name")
                if isinstance(entry, FileEntry):
                    validate_checksum(entry.checksum)
                else:
                    validate_checksum(entry.tree_checksum)
                    validate_checksum(entry.meta_checksum)
                encoded = entry.name.encode("utf-8")
                if previous is not None and encoded <= previous:
                    problem = "is repeated" if encoded == previous else "is out of order"
                    raise ObjectError(f"dirtree: {what} name {entry.name!r} {problem}")
                previous = encoded
        file_names = {entry.name for entry in self.files}
        for entry in self.dirs:
            if entry.name in file_names:
                raise ObjectError(f"dirtree: name {entry.name!r} is both a file and a dir")

    def to_bytes(self) -> bytes:
        """Normal-form ``(a(say)a(sayay))``."""
        files = encode_checksum_list(
            [
                (_encode_name(e.name, "dirtree: file name") + b"\0", _raw(e.checksum, "checksum"))
                for e in self.files
            ]
        )
        dirs = encode_dir_list(
            [
                (
                    _encode_name(e.name, "dirtree: dir name") + b"\0",
                    _raw(e.tree_checksum, "tree checksum"),
                    _raw(e.meta_checksum, "meta checksum"),
                )
                for e in self.dirs
            ]
        )
        body = len(files) + len(dirs)
        return b"".join((files, dirs, len(files).to_bytes(offset_width(body, 1), "little")))

    def checksum(self) -> str:
        return sha256_hex(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> DirTree:
        value = decode_metadata(DIRTREE_TYPE, data, verify=verify, what="dirtree")
        assert isinstance(value, tuple)
        raw_files, raw_dirs = value
        files = tuple(FileEntry(name, _hex(raw, name, verify)) for name, raw in raw_files)
        dirs = tuple(
            DirEntry(name, _hex(tree, name, verify), _hex(meta, name, verify))
            for name, tree, meta in raw_dirs
        )
        tree = cls(files, dirs)
        if verify:
            tree.validate()
        return tree

    def lookup(self, name: str) -> Union[FileEntry, DirEntry, None]:
        """Find a child by name with a binary search, as libostree does (so an unsorted
        dirtree misses entries here too)."""
        key = name.encode("utf-8", "surrogatepass")
        for entries in (self.files, self.dirs):
            found = _bisect(entries, key)
            if found is not None:
                return found
        return None


_Entry = Union[FileEntry, DirEntry]


def _bisect(entries: Sequence[_Entry], key: bytes) -> Optional[_Entry]:
    low, high = 0, len(entries)
    while low < high:
        middle = (low + high) // 2
        probe = entries[middle].name.encode("utf-8", "surrogatepass")
        if probe == key:
            return entries[middle]
        if probe < key:
            low = middle + 1
        else:
            high = middle
    return None
