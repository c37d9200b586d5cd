"""``.dirtree`` objects: the sorted file and subdirectory lists of one directory."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, Sequence, Tuple, Union

from pyostree import gvariant
from pyostree.errors import ObjectError
from pyostree.objects._common import MAX_METADATA_SIZE, BytesLike, decode_metadata
from pyostree.objects.checksum import DIGEST_SIZE, sha256_hex, validate_checksum
from pyostree.objects.names import validate_filename

if TYPE_CHECKING:
    import mmap

__all__ = ["DIRTREE_TYPE", "EMPTY_DIRTREE_CHECKSUM", "DirEntry", "DirTree", "FileEntry",
           "validate_dirtree_bytes"]

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


_TABLE_CODES = {2: "<H", 4: "<I", 8: "<Q"}
_GENERIC_CHECK_BYTES = 1 << 20
"""Dirtrees up to this size that the one-pass check refuses are checked again by
``DirTree.from_bytes``, for its exact message."""


class _Refused(Exception):
    """The one-pass check found the bytes not normal, or not a valid dirtree."""


Release = Callable[[int, int], None]
"""``release(start, end)``: the caller may drop what it holds of that range of the bytes
(pages of a mapped file); called as the one-pass check moves past it."""
_RELEASE_EVERY = 1 << 15


def validate_dirtree_bytes(data: Union[bytes, bytearray, "mmap.mmap"],
                           release: Optional[Release] = None) -> None:
    """The checks of ``DirTree.from_bytes(data, verify=True)`` (normal form, 32-byte
    checksums, valid names sorted and unique, none both a file and a dir) in one pass
    over the framing offsets, without building an object per entry: a receiver checks
    a 128 MiB dirtree in the memory of its bytes. Raises ObjectError."""
    if len(data) > MAX_METADATA_SIZE:
        raise ObjectError(
            f"dirtree: {len(data)} bytes exceeds the metadata limit of {MAX_METADATA_SIZE}")
    try:
        _check_one_pass(data, release)
    except _Refused as refusal:
        if len(data) <= _GENERIC_CHECK_BYTES:
            DirTree.from_bytes(data[:], verify=True)  # the precise message; or the layouts
            return  # the one-pass reader leaves to the generic code (GLib's empty quirk)
        raise ObjectError(f"dirtree: {refusal}") from None


def _check_one_pass(data: Union[bytes, bytearray, "mmap.mmap"],
                    release: Optional[Release] = None) -> None:
    from pyostree.gvariant._framing import offset_width, total_size

    size = len(data)
    if size == 0:
        raise _Refused("not normal form")
    width = offset_width(size)
    files_end = int.from_bytes(data[size - width:], "little")
    table = size - width
    if files_end > table or total_size(table, 1) != size:
        raise _Refused("not normal form")
    files = _entries(data, 0, files_end, 1, "file", release)
    dirs = _entries(data, files_end, table, 2, "dir", release)
    name = next(files, None)
    other = next(dirs, None)
    while name is not None and other is not None:
        if name == other:
            raise _Refused(f"name {name.decode()!r} is both a file and a dir")
        if name < other:
            name = next(files, None)
        else:
            other = next(dirs, None)
    for _rest in files:
        pass
    for _rest in dirs:
        pass


def _entries(data: Union[bytes, bytearray, "mmap.mmap"], start: int, end: int, checksums: int,
             what: str, release: Optional[Release] = None) -> Iterator[bytes]:
    """The names of ``a(say)`` (``checksums`` 1) or ``a(sayay)`` (2) laid out in normal
    form, each checked as a dirtree entry, one at a time."""
    from pyostree.gvariant._framing import offset_width, total_size

    if start == end:
        return
    size = end - start
    width = offset_width(size)
    last = int.from_bytes(data[end - width:end], "little")
    if last > size or (size - last) % width:
        raise _Refused("not normal form")
    count = (size - last) // width
    if count == 0 or total_size(last, count) != size:
        raise _Refused("not normal form")
    ends: Iterator[int] = _table(data, start + last, end, width)
    offsets = checksums  # the string's end, and the first checksum's if two
    find = data.find
    previous = b""
    prev = 0
    table_start = start + last
    for count, item_end in enumerate(ends, 1):  # bytes names: an entry at a time
        if release is not None and count % _RELEASE_EVERY == 0:
            release(start, start + prev)
            release(table_start, table_start + (count - 1) * width)
        if not prev < item_end <= last:
            raise _Refused("not normal form")
        a = start + prev
        b = start + item_end
        size = item_end - prev
        inner = offset_width(size)
        if size < offsets * inner or total_size(size - offsets * inner, offsets) != size:
            raise _Refused("not normal form")
        body = b - offsets * inner
        name_end = a + int.from_bytes(data[b - inner:b], "little")
        sums_end = a + int.from_bytes(data[b - 2 * inner:b - inner], "little") if offsets == 2 else body
        if not a < name_end <= sums_end <= body or find(b"\0", a, name_end) != name_end - 1:
            raise _Refused("not normal form")
        name = bytes(data[a:name_end - 1])
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("not normal form") from None
        if sums_end - name_end != DIGEST_SIZE or (offsets == 2 and body - sums_end != DIGEST_SIZE):
            raise _Refused(f"checksum of {text!r} is not {DIGEST_SIZE} bytes")
        if name in (b"", b".", b"..") or b"/" in name:
            raise _Refused(f"{what} name {text!r} is not allowed")
        if name <= previous:
            raise _Refused(f"{what} name {text!r} is {'repeated' if name == previous else 'out of order'}")
        previous = name
        yield name
        prev = item_end
    if start + prev != start + last:
        raise _Refused("not normal form")


def _table(data: Union[bytes, bytearray, "mmap.mmap"], start: int, end: int,
           width: int) -> Iterator[int]:
    """The entries of a framing table, read a slice at a time (no view is left on the
    bytes, so a mapped file can be closed)."""
    step = width << 14
    code = _TABLE_CODES.get(width)
    for pos in range(start, end, step):
        chunk = data[pos:min(pos + step, end)]
        if code is None:
            yield from chunk
        else:
            for (entry,) in struct.iter_unpack(code, chunk):
                yield entry
