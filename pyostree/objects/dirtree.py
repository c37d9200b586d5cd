"""``.dirtree`` objects: the sorted file and subdirectory lists of one directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple, Union

from pyostree import gvariant
from pyostree.errors import ObjectError
from pyostree.objects._common import BytesLike, decode_metadata
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


_Entry = Union[FileEntry, DirEntry]


def _raw(checksum: str) -> bytes:
    try:
        return bytes.fromhex(checksum)
    except (ValueError, TypeError):
        raise ObjectError(f"dirtree: checksum {checksum!r} is not hex") from None


def _check_lengths(raws: Sequence[bytes], name: str) -> None:
    for raw in raws:
        if len(raw) != DIGEST_SIZE:
            raise ObjectError(
                f"dirtree: checksum of {name!r} is {len(raw)} bytes, expected {DIGEST_SIZE}"
            )


def _check_names(entries: Sequence[_Entry], what: str) -> None:
    """Valid, strictly increasing (strcmp of UTF-8 bytes) names; the common case is checked
    inline and anything odd goes to validate_filename for the precise message."""
    previous = b""
    for entry in entries:
        name = entry.name
        if not isinstance(name, str) or name in (".", "..") or "/" in name or "\0" in name:
            validate_filename(name, f"dirtree: {what} name")
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            validate_filename(name, f"dirtree: {what} name")
            raise
        if encoded <= previous:
            if encoded == b"":
                validate_filename(name, f"dirtree: {what} name")
            problem = "is repeated" if encoded == previous else "is out of order"
            raise ObjectError(f"dirtree: {what} name {name!r} {problem}")
        previous = encoded


@dataclass(frozen=True)
class DirTree:
    """Children of a directory. Both tuples are sorted by ``strcmp`` of the UTF-8 names,
    which lookups rely on (libostree binary-searches them)."""

    files: Tuple[FileEntry, ...] = ()
    dirs: Tuple[DirEntry, ...] = ()

    @classmethod
    def from_entries(cls, files: Iterable[FileEntry] = (), dirs: Iterable[DirEntry] = ()) -> DirTree:
        """Build a validated dirtree from entries in any order (sorted here by ``strcmp`` of
        the UTF-8 names, the order lookups need)."""

        def key(entry: _Entry) -> bytes:
            return entry.name.encode("utf-8", "surrogatepass")

        tree = cls(tuple(sorted(files, key=key)), tuple(sorted(dirs, key=key)))
        tree.validate()
        return tree

    def validate(self) -> None:
        """Valid names, 32-byte checksums, each list strictly sorted, no name in both."""
        self._validate_names()
        for file in self.files:
            validate_checksum(file.checksum)
        for subdir in self.dirs:
            validate_checksum(subdir.tree_checksum)
            validate_checksum(subdir.meta_checksum)

    def _validate_names(self) -> None:
        _check_names(self.files, "file")
        _check_names(self.dirs, "dir")
        if self.files and self.dirs:
            file_names = {entry.name for entry in self.files}
            for entry in self.dirs:
                if entry.name in file_names:
                    raise ObjectError(f"dirtree: name {entry.name!r} is both a file and a dir")

    def to_bytes(self) -> bytes:
        """Normal-form ``(a(say)a(sayay))``."""
        value = (
            [(e.name, _raw(e.checksum)) for e in self.files],
            [(e.name, _raw(e.tree_checksum), _raw(e.meta_checksum)) for e in self.dirs],
        )
        try:
            return gvariant.encode(DIRTREE_TYPE, value)
        except (gvariant.GVariantError, TypeError, ValueError) as err:
            raise ObjectError(f"dirtree: cannot serialise: {err}") from None

    def checksum(self) -> str:
        return sha256_hex(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> DirTree:
        value = decode_metadata(DIRTREE_TYPE, data, verify=verify, what="dirtree")
        assert isinstance(value, tuple)
        raw_files, raw_dirs = value
        if verify:
            for name, raw in raw_files:
                if len(raw) != DIGEST_SIZE:
                    _check_lengths((raw,), name)
            for name, tree_raw, meta_raw in raw_dirs:
                _check_lengths((tree_raw, meta_raw), name)
        tree = cls(
            tuple([FileEntry(name, raw.hex()) for name, raw in raw_files]),
            tuple([DirEntry(name, t.hex(), m.hex()) for name, t, m in raw_dirs]),
        )
        if verify:
            tree._validate_names()  # checksums are 32 raw bytes, so their hex is valid
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
