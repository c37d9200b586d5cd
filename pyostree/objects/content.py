"""Content objects: the file header, content checksums and archive ``.filez`` streaming.

A content object is defined by its canonical stream ``u32BE(len) 0000 header payload``;
its checksum is SHA-256 of that stream whatever the repository mode. Payloads are only
ever handled in chunks.
"""

from __future__ import annotations

import hashlib
import stat
import struct
import zlib
from dataclasses import dataclass, replace
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

from pyostree.errors import ChecksumMismatchError, ObjectError
from pyostree.gvariant._framing import offset_width, table_width
from pyostree.objects._common import BytesLike, decode_metadata
from pyostree.objects._endian import swap32, swap64
from pyostree.objects._framing import encode_xattrs, parse_xattrs
from pyostree.objects.dirmeta import decode_uuua, encode_uuua
from pyostree.objects.modes import bare_user_only_mode, validate_file_mode, validate_u32
from pyostree.objects.xattrs import Xattrs, validate_xattrs, xattrs_from_value

__all__ = [
    "ARCHIVE_HEADER_TYPE",
    "CHUNK_SIZE",
    "DEFAULT_ZLIB_LEVEL",
    "FILE_HEADER_TYPE",
    "MAX_HEADER_SIZE",
    "ArchiveDeflater",
    "ContentHasher",
    "FileHeader",
    "OstreeMeta",
    "content_checksum",
    "iter_archive",
    "iter_inflate",
    "parse_archive_header",
    "parse_content_header",
    "parse_ostreemeta",
    "verify_filez_bytes",
]

CHUNK_SIZE = 1 << 20
MAX_HEADER_SIZE = 1 << 20
"""A file header (owner, mode, symlink target, xattrs) larger than this is refused."""
DEFAULT_ZLIB_LEVEL = 6
FILE_HEADER_TYPE = "(uuuusa(ayay))"
ARCHIVE_HEADER_TYPE = "(tuuuusa(ayay))"

ReadFn = Callable[[int], bytes]


@dataclass(frozen=True)
class FileHeader:
    """Logical metadata of a regular file or symlink; ints native, swapped on the wire."""

    uid: int
    gid: int
    mode: int
    rdev: int = 0
    symlink_target: str = ""
    xattrs: Xattrs = ()

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.mode)

    def validate(self) -> None:
        """Regular file or symlink, perms within 07777, rdev 0, target only for symlinks."""
        validate_u32(self.uid, "file header: uid")
        validate_u32(self.gid, "file header: gid")
        validate_file_mode(self.mode, "file header")
        if self.rdev != 0:
            raise ObjectError(f"file header: rdev is {self.rdev!r}, must be 0")
        if not isinstance(self.symlink_target, str):
            raise ObjectError("file header: symlink target must be a str")
        if self.is_symlink and self.symlink_target == "":
            raise ObjectError("file header: symlink has an empty target")
        if self.is_regular and self.symlink_target != "":
            raise ObjectError("file header: regular file has a symlink target")
        if "\0" in self.symlink_target:
            raise ObjectError("file header: symlink target contains NUL")
        validate_xattrs(self.xattrs, "file header: xattrs")

    def _body(self, size: int | None) -> bytes:
        """Hand-specialised ``([t]uuuusa(ayay))``: fixed ints, target, xattrs, one offset."""
        try:
            target = self.symlink_target.encode("utf-8") + b"\0"
            if size is None:
                fixed = struct.pack(">IIII", self.uid, self.gid, self.mode, self.rdev)
            else:
                fixed = struct.pack(">QIIII", size, self.uid, self.gid, self.mode, self.rdev)
            xattrs = encode_xattrs(self.xattrs)
        except (struct.error, TypeError, ValueError, AttributeError, UnicodeError) as err:
            raise ObjectError(f"file header: cannot serialise: {err}") from None
        target_end = len(fixed) + len(target)
        body = target_end + len(xattrs)
        width = table_width(body, 1)
        return b"".join((fixed, target, xattrs, target_end.to_bytes(width, "little")))

    def to_bytes(self) -> bytes:
        """``(uuuusa(ayay))`` with BE ints: the header that content checksums cover."""
        return self._body(None)

    def framed(self) -> bytes:
        """``u32BE(len) + 4 zero bytes + to_bytes()``: the start of the checksum stream."""
        body = self._body(None)
        return struct.pack(">I4x", len(body)) + body

    def to_archive_bytes(self, size: int) -> bytes:
        """Start of a ``.filez``: ``u32BE(len) + 4 zero bytes + (tuuuusa(ayay))``."""
        if self.is_symlink and size != 0:
            raise ObjectError(f"file header: symlink with payload size {size}")
        body = self._body(size)
        return struct.pack(">I4x", len(body)) + body

    def checksum(self, chunks: Iterable[bytes] = ()) -> str:
        """Content checksum of this header followed by ``chunks`` (nothing for symlinks)."""
        return content_checksum(self, chunks)

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> FileHeader:
        """Parse ``(uuuusa(ayay))`` (no length prefix)."""
        _check_header_size(len(data))
        header, _ = _parse_header(bytes(data), archive=False, verify=verify)
        return header

    @classmethod
    def from_archive_bytes(cls, data: BytesLike, *, verify: bool = True) -> Tuple[FileHeader, int]:
        """Parse ``(tuuuusa(ayay))`` (no length prefix); returns the header and payload size."""
        _check_header_size(len(data))
        return _parse_header(bytes(data), archive=True, verify=verify)

    def canonical_bare_user_only(self) -> FileHeader:
        """What a bare-user-only commit stores: root owner, no xattrs, regular files
        ``& 0755`` (this changes the checksum)."""
        return replace(self, uid=0, gid=0, mode=bare_user_only_mode(self.mode), xattrs=())

    def to_ostreemeta(self) -> bytes:
        """The ``user.ostreemeta`` xattr value a bare-user repo stores for this file."""
        return OstreeMeta(self.uid, self.gid, self.mode, self.xattrs).to_bytes()


_PLAIN_FIXED = struct.Struct(">IIII")
_ARCHIVE_FIXED = struct.Struct(">QIIII")


def _fast_header(data: bytes, archive: bool) -> Optional[Tuple[FileHeader, int]]:
    """Read a header laid out as normal form; None unless re-encoding gives ``data`` back."""
    fixed = _ARCHIVE_FIXED if archive else _PLAIN_FIXED
    total = len(data)
    if total < fixed.size + 2:
        return None
    width = offset_width(total)
    target_end = int.from_bytes(data[total - width:], "little")
    if not fixed.size < target_end <= total - width or data[target_end - 1] != 0:
        return None
    try:
        target = data[fixed.size:target_end - 1].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in target:
        return None
    xattrs = parse_xattrs(data, target_end, total - width)
    if xattrs is None:
        return None
    if archive:
        size, uid, gid, mode, rdev = fixed.unpack_from(data)
    else:
        size = 0
        uid, gid, mode, rdev = fixed.unpack_from(data)
    header = FileHeader(uid, gid, mode, rdev, target, xattrs)
    if header._body(size if archive else None) != data:
        return None
    return header, size


def _parse_header(data: bytes, *, archive: bool, verify: bool) -> Tuple[FileHeader, int]:
    what = "archive file header" if archive else "file header"
    _check_header_size(len(data))
    parsed = _fast_header(data, archive)
    if parsed is None:
        type_string = ARCHIVE_HEADER_TYPE if archive else FILE_HEADER_TYPE
        value = decode_metadata(type_string, data, verify=verify, what=what)
        assert isinstance(value, tuple)
        if archive:
            raw_size, *fields = value
        else:
            raw_size, fields = 0, list(value)
        uid, gid, mode, rdev, target, xattrs = fields
        parsed = (
            FileHeader(swap32(uid), swap32(gid), swap32(mode), swap32(rdev), target,
                       xattrs_from_value(xattrs)),
            swap64(raw_size),
        )
    header, size = parsed
    if verify:
        header.validate()
        if header.is_symlink and size != 0:
            raise ObjectError(f"{what}: symlink with payload size {size}")
    return header, size


@dataclass(frozen=True)
class OstreeMeta:
    """bare-user ``user.ostreemeta`` xattr: the logical uid/gid/mode/xattrs of an object."""

    uid: int
    gid: int
    mode: int
    xattrs: Xattrs = ()

    def validate(self) -> None:
        validate_u32(self.uid, "user.ostreemeta: uid")
        validate_u32(self.gid, "user.ostreemeta: gid")
        validate_file_mode(self.mode, "user.ostreemeta")
        validate_xattrs(self.xattrs, "user.ostreemeta: xattrs")

    def to_bytes(self) -> bytes:
        try:
            return encode_uuua(self.uid, self.gid, self.mode, self.xattrs)
        except (struct.error, TypeError, ValueError, OverflowError) as err:
            raise ObjectError(f"user.ostreemeta: cannot serialise: {err}") from None

    @classmethod
    def from_bytes(cls, data: BytesLike, *, verify: bool = True) -> OstreeMeta:
        _check_header_size(len(data))
        uid, gid, mode, xattrs = decode_uuua(data, verify=verify, what="user.ostreemeta")
        meta = cls(uid, gid, mode, xattrs)
        if verify:
            meta.validate()
        return meta

    def to_header(self, symlink_target: str = "") -> FileHeader:
        """Logical header; a bare-user symlink's target is its object's content minus NUL."""
        return FileHeader(self.uid, self.gid, self.mode, 0, symlink_target, self.xattrs)


def parse_ostreemeta(data: BytesLike, *, verify: bool = True) -> OstreeMeta:
    """Parse a bare-user object's ``user.ostreemeta`` xattr."""
    return OstreeMeta.from_bytes(data, verify=verify)


class ContentHasher:
    """Incremental content checksum: header stream first, then payload chunks."""

    def __init__(self, header: FileHeader) -> None:
        self._hash = hashlib.sha256(header.framed())

    def update(self, chunk: BytesLike) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def content_checksum(header: FileHeader, chunks: Iterable[bytes] = ()) -> str:
    """Checksum of a content object from its logical header and payload chunks."""
    hasher = ContentHasher(header)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def _check_header_size(size: int) -> None:
    if size == 0:
        raise ObjectError("file header size is zero")
    if size > MAX_HEADER_SIZE:
        raise ObjectError(f"file header size {size} exceeds the limit of {MAX_HEADER_SIZE}")


def _read_exactly(read: ReadFn, size: int, what: str) -> bytes:
    parts = []
    remaining = size
    while remaining > 0:
        chunk = read(remaining)
        if not chunk:
            raise ObjectError(f"{what}: truncated, {size - remaining} of {size} bytes")
        if len(chunk) > remaining:
            raise ObjectError(f"{what}: reader returned more bytes than asked")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_frame(read: ReadFn, what: str) -> bytes:
    prefix = _read_exactly(read, 8, what)
    (size,) = struct.unpack_from(">I", prefix)
    _check_header_size(size)
    return _read_exactly(read, size, what)


def parse_archive_header(read: ReadFn, *, verify: bool = True) -> Tuple[FileHeader, int]:
    """Read the header of a ``.filez`` from ``read``; returns (header, payload size) and
    leaves ``read`` positioned at the raw-deflate stream."""
    data = _read_frame(read, "archive file header")
    return FileHeader.from_archive_bytes(data, verify=verify)


def parse_content_header(read: ReadFn, *, verify: bool = True) -> FileHeader:
    """Read the framed ``(uuuusa(ayay))`` header of a canonical content stream."""
    data = _read_frame(read, "file header")
    return FileHeader.from_bytes(data, verify=verify)


def iter_inflate(read: ReadFn, expected_size: int) -> Iterator[bytes]:
    """Inflate a raw-deflate stream chunk by chunk, refusing any output beyond
    ``expected_size`` (a deflate bomb costs at most one chunk), short output, a truncated
    stream and trailing bytes after the stream's end.

    The last chunk is held back until those end checks pass, so a consumer that stops once
    it has ``expected_size`` bytes has still only seen a fully verified stream."""
    if expected_size < 0:
        raise ObjectError(f"negative payload size {expected_size}")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    pending = b""
    held = b""
    while not inflater.eof:
        data = pending or read(CHUNK_SIZE)
        limit = min(CHUNK_SIZE, expected_size - produced + 1)
        try:
            out = inflater.decompress(data, limit)
        except zlib.error as err:
            raise ObjectError(f"compressed payload is corrupt: {err}") from None
        pending = inflater.unconsumed_tail
        produced += len(out)
        if produced > expected_size:
            raise ObjectError(f"compressed payload inflates beyond its size {expected_size}")
        if out:
            if held:
                yield held
            held = out
        elif not data and not inflater.eof:
            raise ObjectError(
                f"compressed payload truncated after {produced} of {expected_size} bytes"
            )
    if produced != expected_size:
        raise ObjectError(f"compressed payload is {produced} bytes, header says {expected_size}")
    if inflater.unused_data or pending or read(1):
        raise ObjectError("trailing data after the compressed payload")
    if held:
        yield held


WHOLE_INFLATE_LIMIT = 8 << 20
"""A ``.filez`` whose payload inflates beyond this is verified in chunks, not whole."""

class FilezHeaderCache:
    """Parsed and validated archive headers by their bytes after the size field, with the
    framed plain header each one hashes as: a tree's files share a few owner/mode pairs.

    The bytes come from an untrusted pusher, so only the header of an object whose
    checksum matched is kept, only a small one (a big xattr is rare and not worth it), and
    only up to a byte budget: cached headers of 1 MiB, cheap to send zstd-compressed, once
    took a receiver to 900 MB. Safe on two threads (the receiver verifies on two) without a
    lock, which would put ``threading`` on every read command's import path: each step is
    one dict or int operation under the GIL, and a race can only overshoot the budget by
    one small entry per thread."""

    MAX_ENTRY = 16 << 10
    """Largest header (bytes after the size field) kept."""
    MAX_BYTES = 4 << 20
    """Budget, counting each entry as its key, its framed header and its parsed xattrs
    (about three times the header) plus a fixed overhead."""
    _OVERHEAD = 512

    def __init__(self, max_bytes: int = MAX_BYTES, max_entry: int = MAX_ENTRY) -> None:
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self.nbytes = 0
        self._entries: Dict[bytes, Tuple[FileHeader, bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Optional[Tuple[FileHeader, bytes]]:
        return self._entries.get(key)

    def add(self, key: bytes, entry: Tuple[FileHeader, bytes]) -> None:
        """Keep ``entry`` (a verified object's header) if it is small and fits the budget."""
        if len(key) > self.max_entry:
            return
        cost = 3 * len(key) + self._OVERHEAD
        if key not in self._entries and self.nbytes + cost <= self.max_bytes:
            self._entries[key] = entry
            self.nbytes += cost

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def verify_filez_bytes(data: BytesLike, expected: str,
                       cache: Optional[FilezHeaderCache] = None) -> Optional[FileHeader]:
    """Check a whole ``.filez`` held in memory, as ``parse_archive_header`` plus
    ``iter_inflate`` do in a stream: normal-form header, exact inflated size, no trailing
    bytes, content checksum ``expected``. One inflate call for the payload.

    Returns the header, or None (nothing checked beyond the header) when the payload
    inflates beyond WHOLE_INFLATE_LIMIT: that one goes the streaming way."""
    total = len(data)
    if total < 8:
        raise ObjectError(f"archive file header: truncated, {total} of 8 bytes")
    (header_size,) = _U32.unpack_from(data)
    _check_header_size(header_size)
    end = 8 + header_size
    if total < end:
        raise ObjectError(f"archive file header: truncated, {total - 8} of {header_size} bytes")
    key = bytes(data[16:end])  # no copy of bytes; a view (a worker's buffer) is copied
    entry = cache.get(key) if cache is not None else None
    fresh = entry is None
    if entry is None:
        header, size = _parse_header(bytes(data[8:end]), archive=True, verify=True)
        entry = (header, header.framed())
    else:
        header = entry[0]
        (size,) = _U64.unpack_from(data, 8)
        if header.is_symlink and size != 0:
            raise ObjectError(f"archive file header: symlink with payload size {size}")
    hasher = hashlib.sha256(entry[1])
    if header.is_regular:
        if size > WHOLE_INFLATE_LIMIT:
            return None
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = inflater.decompress(memoryview(data)[end:], size + 1)
        except zlib.error as err:
            raise ObjectError(f"compressed payload is corrupt: {err}") from None
        if len(out) > size:
            raise ObjectError(f"compressed payload inflates beyond its size {size}")
        if not inflater.eof:
            raise ObjectError(f"compressed payload truncated after {len(out)} of {size} bytes")
        if len(out) != size:
            raise ObjectError(f"compressed payload is {len(out)} bytes, header says {size}")
        if inflater.unused_data:
            raise ObjectError("trailing data after the compressed payload")
        hasher.update(out)
    elif total != end:
        raise ObjectError("archive symlink object has data after its header")
    actual = hasher.hexdigest()
    if actual != expected:
        raise ChecksumMismatchError(
            f"corrupted file object: checksum expected={expected} actual={actual}")
    if fresh and cache is not None and header_size >= 8:
        cache.add(key, entry)  # verified: this header really is this object's
    return header


class ArchiveDeflater:
    """Raw deflate as libostree writes ``.filez`` (zlib ``wbits=-15``, memLevel 8)."""

    def __init__(self, level: int = DEFAULT_ZLIB_LEVEL) -> None:
        if not 1 <= level <= 9:
            raise ObjectError(f"zlib level {level} out of range 1..9")
        self._deflater = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8)

    def compress(self, chunk: BytesLike) -> bytes:
        return self._deflater.compress(chunk)

    def flush(self) -> bytes:
        return self._deflater.flush()


def iter_archive(
    header: FileHeader,
    size: int,
    chunks: Iterable[bytes] = (),
    *,
    level: int = DEFAULT_ZLIB_LEVEL,
) -> Iterator[bytes]:
    """Yield the bytes of a ``.filez`` for ``header`` and ``size`` payload bytes from
    ``chunks`` (checked); symlinks get the header only."""
    yield header.to_archive_bytes(size)
    if header.is_symlink:
        for chunk in chunks:
            if chunk:
                raise ObjectError("symlink content object has a payload")
        return
    deflater = ArchiveDeflater(level)
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise ObjectError(f"payload longer than the declared size {size}")
        out = deflater.compress(chunk)
        if out:
            yield out
    if seen != size:
        raise ObjectError(f"payload is {seen} bytes, declared size {size}")
    yield deflater.flush()
