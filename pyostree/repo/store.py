"""Loose-object access for every storage mode: paths, bounded metadata reads, content streams.

A content object is always presented with its *logical* header, the one libostree hashes,
whatever the mode stores on disk, so ``content_checksum(reader.header, reader.iter_chunks())``
equals the object's name.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path
from types import TracebackType
from typing import (
    TYPE_CHECKING, BinaryIO, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Type,
)

from pyostree.errors import NotFoundError, ObjectError, RepoError
from pyostree.objects.checksum import is_checksum, validate_checksum
from pyostree.objects.types import ObjectType
from pyostree.objects.xattrs import Xattrs, canonical_xattrs
from pyostree.repo.config import RepoMode

# The content-object code (and the GVariant codec behind it) loads on the first content
# object opened: listing refs or reading metadata does not need it.
if TYPE_CHECKING:
    from pyostree.objects.content import FileHeader

#: libostree refuses metadata objects larger than this (OSTREE_MAX_METADATA_SIZE).
MAX_METADATA_SIZE = 128 * 1024 * 1024
#: A symlink target longer than PATH_MAX cannot be a real symlink.
MAX_SYMLINK_TARGET = 4096
OSTREEMETA_XATTR = "user.ostreemeta"

_HEX = frozenset("0123456789abcdef")

#: How much of a ``.filez`` ``stat_content`` reads: enough for any header without xattrs.
ARCHIVE_PREFIX = 4096
_ARCHIVE_FIXED = struct.Struct(">QIIII")   # size, uid, gid, mode, rdev
_OSTREEMETA = struct.Struct(">III")        # uid, gid, mode
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_TYPES = (stat.S_IFREG, stat.S_IFLNK)


class ContentStat(NamedTuple):
    """The logical metadata of a content object that has no xattrs (``stat_content``)."""

    mode: int
    uid: int
    gid: int
    size: int             # payload bytes; 0 for a symlink
    symlink_target: str   # "" for a regular file

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


#: checksum -> ContentStat, or None for "ask open_content"; raises OSError if unreadable.
StatContent = Callable[[str], Optional[ContentStat]]
#: A dirtree as lists: files (name, raw digest), dirs (name, raw tree digest, raw meta digest).
DirtreeLists = Tuple[List[Tuple[str, bytes]], List[Tuple[str, bytes, bytes]]]


def _plain_mode(mode: int) -> bool:
    """A regular file or symlink with no bits outside 07777."""
    return stat.S_IFMT(mode) in _FILE_TYPES and not mode & ~(stat.S_IFMT(mode) | 0o7777)


def parse_archive_prefix(data: bytes) -> Optional[Tuple[ContentStat, int]]:
    """The stat and payload offset from the first bytes of a ``.filez`` whose header has
    no xattrs; None for any other shape (the full reader then decides and words errors)."""
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
    if rdev != 0 or not _plain_mode(mode) or b"\0" in target_bytes:
        return None
    try:
        target = target_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if stat.S_ISLNK(mode) != bool(target) or (stat.S_ISLNK(mode) and size != 0):
        return None
    return ContentStat(mode, uid, gid, size, target), 8 + header_len


def _stat_archive(path: str) -> Optional[ContentStat]:
    fd = os.open(path, _READ_FLAGS)
    try:
        data = os.read(fd, ARCHIVE_PREFIX)
    finally:
        os.close(fd)
    parsed = parse_archive_prefix(data)
    return parsed[0] if parsed is not None else None


def _stat_bare_user(path: str) -> Optional[ContentStat]:
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return None
    meta = os.getxattr(path, OSTREEMETA_XATTR, follow_symlinks=False)
    if len(meta) != _OSTREEMETA.size:  # longer means xattrs: the full reader handles them
        return None
    uid, gid, mode = _OSTREEMETA.unpack(meta)
    if not _plain_mode(mode):
        return None
    if not stat.S_ISLNK(mode):
        return ContentStat(mode, uid, gid, info.st_size, "")
    if info.st_size > MAX_SYMLINK_TARGET + 1:
        return None
    fd = os.open(path, _READ_FLAGS)
    try:
        raw = os.read(fd, MAX_SYMLINK_TARGET + 2)
    finally:
        os.close(fd)
    if len(raw) < 2 or not raw.endswith(b"\0") or b"\0" in raw[:-1]:
        return None
    try:
        return ContentStat(mode, uid, gid, 0, raw[:-1].decode("utf-8"))
    except UnicodeDecodeError:
        return None


class ContentReader:
    """An open content object: ``header``, ``size`` and its payload, read in chunks.

    Use as a context manager; a symlink has ``size == 0`` and no payload.
    """

    def __init__(
        self,
        header: FileHeader,
        size: int,
        chunks: Iterator[bytes],
        handle: Optional[BinaryIO] = None,
    ) -> None:
        self.header = header
        self.size = size
        self._chunks = chunks
        self._handle = handle
        self._buffer = b""

    def __enter__(self) -> ContentReader:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def iter_chunks(self) -> Iterator[bytes]:
        """The rest of the payload in chunks of at most about ``CHUNK_SIZE`` bytes."""
        if self._buffer:
            pending, self._buffer = self._buffer, b""
            yield pending
        for chunk in self._chunks:
            if chunk:
                yield chunk

    def read(self, n: int = -1) -> bytes:
        """Up to N payload bytes (all the rest when N < 0); ``b""`` at the end."""
        if n < 0:
            return b"".join(self.iter_chunks())
        while len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


class _SizedRead:
    """``read(n)`` over a file of known size that never asks for (and so never allocates)
    more than the bytes left plus one, which keeps small objects cheap to open."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._read = handle.read
        self._left = size

    def __call__(self, n: int) -> bytes:
        data = self._read(max(0, min(n, self._left + 1)))
        self._left -= len(data)
        return data


def _read_upto(fd: int, limit: int) -> bytes:
    """Read FD until end of file or LIMIT bytes, whichever comes first."""
    data = os.read(fd, limit)
    if not data or len(data) >= limit:
        return data
    parts = [data]
    got = len(data)
    while got < limit:
        chunk = os.read(fd, limit - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _file_chunks(handle: BinaryIO, size: int, what: str) -> Iterator[bytes]:
    """Chunks of a plain object file, checked against the size stat reported."""
    from pyostree.objects.content import CHUNK_SIZE

    seen = 0
    while True:
        chunk = handle.read(min(CHUNK_SIZE, size - seen + 1))
        if not chunk:
            break
        seen += len(chunk)
        if seen > size:
            raise ObjectError(f"{what}: grew while being read (more than {size} bytes)")
        yield chunk
    if seen != size:
        raise ObjectError(f"{what}: truncated while being read ({seen} of {size} bytes)")


def _read_xattrs(path: str, what: str) -> Xattrs:
    """All xattrs of PATH itself (a symlink is not followed), sorted, empty values dropped."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
        pairs: List[Tuple[str, bytes]] = []
        for name in names:
            try:
                pairs.append((name, os.getxattr(path, name, follow_symlinks=False)))
            except OSError as err:
                if err.errno != errno.ENODATA:
                    raise
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise ObjectError(f"{what}: cannot read xattrs: {err.strerror}") from None
    return canonical_xattrs(pairs)


class ObjectStore:
    """The ``objects/`` directory of one repository in one mode."""

    def __init__(self, repo_path: Path, mode: RepoMode, *, disable_xattrs: bool = False) -> None:
        self.root = repo_path / "objects"
        self._root_str = os.fspath(self.root)
        self.mode = mode
        self.disable_xattrs = disable_xattrs
        self._extensions = {t: t.extension(archive=mode.is_archive) for t in ObjectType}

    def object_path(self, checksum: str, objtype: ObjectType) -> Path:
        return Path(self.object_str(checksum, objtype))

    def object_str(self, checksum: str, objtype: ObjectType) -> str:
        """``object_path`` as a plain string (cheaper on hot paths)."""
        if not is_checksum(checksum):
            validate_checksum(checksum)
        ext = self._extensions[ObjectType(objtype)]
        return f"{self._root_str}/{checksum[:2]}/{checksum[2:]}.{ext}"

    def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        try:
            os.lstat(self.object_str(checksum, objtype))
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            return False
        return True

    def read_metadata_bytes(self, checksum: str, objtype: ObjectType) -> bytes:
        """The stored bytes of a metadata object, refusing more than MAX_METADATA_SIZE."""
        objtype = ObjectType(objtype)
        if not objtype.is_meta:
            raise ObjectError(f"{objtype.name} is not a metadata object type")
        path = self.object_str(checksum, objtype)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFoundError(f"No such metadata object {checksum}.{objtype.extension()}") from None
        except OSError as err:
            raise ObjectError(
                f"Cannot open object {checksum}.{objtype.extension()}: {err.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ObjectError(f"Object {checksum}.{objtype.extension()} is not a regular file")
            if info.st_size > MAX_METADATA_SIZE:
                raise ObjectError(
                    f"Object {checksum}.{objtype.extension()} is {info.st_size} bytes, "
                    f"over the {MAX_METADATA_SIZE} byte limit"
                )
            data = _read_upto(fd, info.st_size + 1)  # + 1: notice a file that grew
        finally:
            os.close(fd)
        if len(data) > MAX_METADATA_SIZE:
            raise ObjectError(
                f"Object {checksum}.{objtype.extension()} is over the {MAX_METADATA_SIZE} byte limit")
        return data

    def read_dirtree_lists(self, checksum: str) -> Optional[DirtreeLists]:
        """A dirtree's entries as plain lists, for walks over thousands of them.

        Only for the common case, a normal-form dirtree whose digests are all 32 bytes:
        then these are exactly the values ``Repo.load_dirtree`` would give, without
        building an object per entry. None means "use ``Repo.load_dirtree``", which
        decodes anything else and words the errors. Names are not validated here.
        """
        from pyostree.gvariant.fastpaths import decode_dirtree_normal

        found = decode_dirtree_normal(self.read_metadata_bytes(checksum, ObjectType.DIR_TREE))
        if found is None:
            return None
        files, dirs = found
        for entry in files:
            if len(entry[1]) != 32:
                return None
        for entry in dirs:
            if len(entry[1]) != 32 or len(entry[2]) != 32:
                return None
        return files, dirs

    # -- content ----------------------------------------------------------------

    def stat_content_function(self, *, cache: bool = True) -> Optional[StatContent]:
        """A cheap ``stat_content`` for walks: one or two syscalls per object, no reader.

        Gives None when the mode has no fast path (bare, bare-user-only: callers then use
        ``open_content``). With CACHE, each object is read once (trees repeat content);
        callers visiting each object once should turn it off.
        """
        if self.mode is RepoMode.ARCHIVE:
            suffix, reader = ".filez", _stat_archive
        elif self.mode is RepoMode.BARE_USER:
            suffix, reader = ".file", _stat_bare_user
        else:
            return None
        root = self._root_str

        if not cache:
            def stat_uncached(checksum: str) -> Optional[ContentStat]:
                if not is_checksum(checksum):
                    return None
                return reader(f"{root}/{checksum[:2]}/{checksum[2:]}{suffix}")

            return stat_uncached
        seen: Dict[str, Optional[ContentStat]] = {}

        def stat_cached(checksum: str) -> Optional[ContentStat]:
            try:
                return seen[checksum]
            except KeyError:
                pass
            found = None
            if is_checksum(checksum):
                found = reader(f"{root}/{checksum[:2]}/{checksum[2:]}{suffix}")
            seen[checksum] = found
            return found

        return stat_cached

    def stat_content(self, checksum: str) -> Optional[ContentStat]:
        """Type, owner, mode, size and symlink target of a plain content object (one with
        no xattrs, stored the usual way), read with one or two syscalls.

        None whenever the object is anything else or the mode has no fast path: the
        caller then uses ``open_content``, which handles every case and words the errors.
        This never decides that an object is bad. OSError if the file cannot be read.
        """
        function = self.stat_content_function(cache=False)
        return function(checksum) if function is not None else None

    def open_content(self, checksum: str) -> ContentReader:
        from pyostree.objects.content import FileHeader

        path = self.object_str(checksum, ObjectType.FILE)
        what = f"content object {checksum}"
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"No such content object {checksum}") from None
        except OSError as err:
            raise ObjectError(f"Cannot stat {what}: {err.strerror}") from None
        if self.mode is RepoMode.ARCHIVE:
            return self._open_archive(path, info.st_size, what)
        if stat.S_ISLNK(info.st_mode):
            return self._open_bare_symlink(path, info, what)
        if not stat.S_ISREG(info.st_mode):
            raise ObjectError(f"{what} is neither a regular file nor a symlink")
        handle = self._open_regular(path, what)
        try:
            info = os.fstat(handle.fileno())
            if self.mode is RepoMode.BARE_USER:
                return self._bare_user(path, handle, info, what)
            if self.mode is RepoMode.BARE:
                xattrs = () if self.disable_xattrs else _read_xattrs(path, what)
                header = FileHeader(info.st_uid, info.st_gid, info.st_mode, 0, "", xattrs)
            else:  # bare-user-only: canonical owner, no xattrs
                header = FileHeader(0, 0, info.st_mode, 0, "", ())
            return ContentReader(header, info.st_size,
                                 _file_chunks(handle, info.st_size, what), handle)
        except BaseException:
            handle.close()
            raise

    @staticmethod
    def _open_regular(path: str, what: str) -> BinaryIO:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise ObjectError(f"Cannot open {what}: {err.strerror}") from None
        return os.fdopen(fd, "rb")

    def _open_archive(self, path: str, file_size: int, what: str) -> ContentReader:
        from pyostree.objects.content import iter_inflate, parse_archive_header

        handle = self._open_regular(path, what)
        try:
            read = _SizedRead(handle, file_size)
            header, size = parse_archive_header(read, verify=False)
            _check_logical_header(header, size, what)
            chunks: Iterator[bytes]
            if header.is_symlink:
                chunks = _expect_eof(read, what)
            else:
                chunks = iter_inflate(read, size)
            return ContentReader(header, size, chunks, handle)
        except BaseException:
            handle.close()
            raise

    def _open_bare_symlink(self, path: str, info: os.stat_result, what: str) -> ContentReader:
        from pyostree.objects.content import FileHeader

        if self.mode is RepoMode.BARE_USER:
            raise ObjectError(f"{what} is a symlink, but bare-user stores symlinks as files")
        try:
            raw_target = os.readlink(os.fsencode(path))
        except OSError as err:
            raise ObjectError(f"Cannot read {what}: {err.strerror}") from None
        try:
            target = raw_target.decode("utf-8")
        except UnicodeDecodeError:
            raise ObjectError(f"{what}: symlink target is not valid UTF-8") from None
        if self.mode is RepoMode.BARE:
            xattrs = () if self.disable_xattrs else _read_xattrs(path, what)
            header = FileHeader(info.st_uid, info.st_gid, info.st_mode, 0, target, xattrs)
        else:
            header = FileHeader(0, 0, info.st_mode, 0, target, ())
        return ContentReader(header, 0, iter(()))

    def _bare_user(
        self, path: str, handle: BinaryIO, info: os.stat_result, what: str
    ) -> ContentReader:
        from pyostree.objects.content import parse_ostreemeta

        try:
            raw = os.getxattr(handle.fileno(), OSTREEMETA_XATTR)
        except OSError as err:
            if err.errno == errno.ENODATA:
                raise ObjectError(f"{what} has no {OSTREEMETA_XATTR} xattr") from None
            raise ObjectError(f"Cannot read {OSTREEMETA_XATTR} of {what}: {err.strerror}") from None
        meta = parse_ostreemeta(raw, verify=False)
        if stat.S_ISLNK(meta.mode):
            if info.st_size > MAX_SYMLINK_TARGET + 1:
                raise ObjectError(f"{what}: symlink object of {info.st_size} bytes is too long")
            data = handle.read(MAX_SYMLINK_TARGET + 2)
            handle.close()
            if not data.endswith(b"\0") or b"\0" in data[:-1]:
                raise ObjectError(f"{what}: bare-user symlink object is not target + NUL")
            try:
                target = data[:-1].decode("utf-8")
            except UnicodeDecodeError:
                raise ObjectError(f"{what}: symlink target is not valid UTF-8") from None
            if not target:
                raise ObjectError(f"{what}: bare-user symlink object has an empty target")
            return ContentReader(meta.to_header(target), 0, iter(()))
        if not stat.S_ISREG(meta.mode):
            raise ObjectError(f"{what}: {OSTREEMETA_XATTR} mode 0o{meta.mode:o} is not a file")
        header = meta.to_header()
        return ContentReader(header, info.st_size, _file_chunks(handle, info.st_size, what), handle)

    # -- listing ----------------------------------------------------------------

    def list_objects(
        self, objtype: Optional[ObjectType] = None, prefix: str = ""
    ) -> Iterator[Tuple[str, ObjectType]]:
        """Loose objects (checksum, type), optionally of one type / checksum prefix.

        Files that are not objects (temp files, unknown extensions) are skipped.
        """
        archive = self.mode.is_archive
        if len(prefix) >= 2:
            fanouts = [prefix[:2]]
        else:
            try:
                fanouts = sorted(
                    e.name for e in os.scandir(self.root)
                    if len(e.name) == 2 and _HEX.issuperset(e.name) and e.name.startswith(prefix)
                )
            except FileNotFoundError:
                return
        for fanout in fanouts:
            try:
                entries = sorted(e.name for e in os.scandir(self.root / fanout))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in entries:
                stem, dot, ext = name.partition(".")
                checksum = fanout + stem
                if not dot or not is_checksum(checksum) or not checksum.startswith(prefix):
                    continue
                try:
                    found, is_archive_ext = ObjectType.from_extension(ext)
                except ObjectError:
                    continue
                if found is ObjectType.FILE and is_archive_ext != archive:
                    continue
                if objtype is None or found == objtype:
                    yield checksum, found


def _check_logical_header(header: FileHeader, size: int, what: str) -> None:
    """Trusted parsing still refuses what cannot be a content object."""
    if not (header.is_regular or header.is_symlink):
        raise ObjectError(f"{what}: mode 0o{header.mode:o} is not a regular file or symlink")
    if header.is_symlink and size != 0:
        raise ObjectError(f"{what}: symlink with payload size {size}")
    if header.is_symlink and not header.symlink_target:
        raise ObjectError(f"{what}: symlink with an empty target")


def _expect_eof(read: Callable[[int], bytes], what: str) -> Iterator[bytes]:
    if read(1):
        raise ObjectError(f"{what}: symlink object has data after its header")
    return
    yield b""  # pragma: no cover - makes this a generator


def open_repo_dir(path: Path) -> Path:
    """The repo directory, checked to exist and hold ``objects/`` (RepoError otherwise)."""
    if not path.is_dir():
        raise RepoError(f"No such repository directory: {path}")
    if not (path / "objects").is_dir():
        raise RepoError(f"Not an OSTree repository (no objects/ directory): {path}")
    return path
