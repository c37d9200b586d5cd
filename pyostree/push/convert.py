"""Local objects in the form another repository mode (or the wire) needs them.

Content objects are defined by their logical header + payload, so any local mode can feed
any remote mode: an archive ``.filez`` travels as is when the far side wants archive
bytes, everything else is rebuilt from the logical stream, chunk by chunk.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Tuple

from pyostree.errors import PushError
from pyostree.objects.types import ObjectType
from pyostree.transport.wire import Encoding
from pyostree.repo.config import RepoMode

if TYPE_CHECKING:
    from pyostree.objects.content import FileHeader
    from pyostree.repo import Repo

__all__ = [
    "WholeWireObject",
    "WireObject",
    "iter_file_chunks",
    "iter_filez",
    "local_size_hint",
    "open_wire_object",
    "read_whole_wire",
    "read_whole_wire_object",
    "check_bare_user_only",
]


@dataclass(frozen=True)
class WireObject:
    """An object ready to stream: ``size`` bytes from ``chunks`` in ``encoding``."""

    encoding: Encoding
    size: int
    chunks: Iterator[bytes]
    compressible: bool


@dataclass(frozen=True)
class WholeWireObject:
    """A small object read whole, for an OBJECTS frame: ``data`` in ``encoding``."""

    encoding: Encoding
    data: bytes
    compressible: bool


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _read_small_file(path: str, limit: int) -> Optional[bytes]:
    """The whole file if it has at most ``limit`` bytes (one open, fstat, read), else None."""
    fd = os.open(path, _READ_FLAGS)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return None
        parts = []
        left = size
        while left:  # a regular file reads whole in one call; loop for safety
            chunk = os.read(fd, left)
            if not chunk:
                raise PushError(f"local object {path} shrank while being read")
            parts.append(chunk)
            left -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


def read_whole_wire(
    repo: Repo, checksum: str, objtype: ObjectType, limit: int
) -> Optional[Tuple[Encoding, bytes, bool]]:
    """:func:`read_whole_wire_object` as a plain ``(encoding, data, compressible)`` tuple:
    the receive client calls it once per object, so no dataclass on the hot path."""
    if objtype.is_meta:
        data = repo.read_metadata_bytes(checksum, objtype)
        return (Encoding.METADATA, data, True) if len(data) <= limit else None
    if repo.mode is RepoMode.ARCHIVE:
        filez = _read_small_file(repo.store.object_str(checksum, objtype), limit)
        return None if filez is None else (Encoding.FILEZ, filez, False)
    with repo.open_content(checksum) as reader:
        framed = reader.header.framed()
        if len(framed) + reader.size > limit:
            return None
        data = b"".join([framed, *reader.iter_chunks()])
    if len(data) != len(framed) + reader.size:
        raise PushError(f"local object {checksum} changed while being read")
    return (Encoding.CONTENT, data, True)


def read_whole_wire_object(
    repo: Repo, checksum: str, objtype: ObjectType, limit: int
) -> Optional[WholeWireObject]:
    """The object as :func:`open_wire_object` would stream it, read whole, if its wire
    form has at most ``limit`` bytes; None for a bigger object (stream it instead)."""
    whole = read_whole_wire(repo, checksum, objtype, limit)
    return None if whole is None else WholeWireObject(*whole)


_CHUNK_SIZE = 1 << 20  # objects.content.CHUNK_SIZE, without loading that module


def iter_file_chunks(path: "os.PathLike[str] | str") -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK_SIZE)
            if not chunk:
                return
            yield chunk


def local_size_hint(repo: Repo, checksum: str, objtype: ObjectType) -> int:
    """Bytes the object occupies locally: the progress estimate of what will travel."""
    try:
        return os.lstat(repo.store.object_str(checksum, objtype)).st_size
    except OSError:
        return 0


@contextlib.contextmanager
def open_wire_object(repo: Repo, checksum: str, objtype: ObjectType) -> Iterator[WireObject]:
    """How the receive-mode client sends one object: metadata as stored, a local
    ``.filez`` as is (already deflated: no zstd), other content as the canonical stream."""
    if objtype.is_meta:
        data = repo.read_metadata_bytes(checksum, objtype)
        yield WireObject(Encoding.METADATA, len(data), iter((data,)), True)
        return
    if repo.mode is RepoMode.ARCHIVE:
        path = repo.object_path(checksum, objtype)
        size = os.path.getsize(path)
        yield WireObject(Encoding.FILEZ, size, iter_file_chunks(path), False)
        return
    with repo.open_content(checksum) as reader:
        framed = reader.header.framed()

        def chunks() -> Iterator[bytes]:
            yield framed
            yield from reader.iter_chunks()

        yield WireObject(Encoding.CONTENT, len(framed) + reader.size, chunks(), True)


def iter_filez(repo: Repo, checksum: str, level: int = 6) -> Iterator[bytes]:
    """The ``.filez`` bytes of a content object: copied from an archive repo, else built."""
    if repo.mode is RepoMode.ARCHIVE:
        yield from iter_file_chunks(repo.object_path(checksum, ObjectType.FILE))
        return
    from pyostree.objects.content import iter_archive

    with repo.open_content(checksum) as reader:
        yield from iter_archive(reader.header, reader.size, reader.iter_chunks(), level=level)


def check_bare_user_only(header: FileHeader, checksum: str) -> None:
    """A bare-user-only repo can only hold canonical content (root, no xattrs, 0755 max):
    anything else would hash differently there, so the push is refused."""
    if header != header.canonical_bare_user_only():
        raise PushError(
            f"content object {checksum} has owner, xattrs or mode bits a bare-user-only "
            "remote cannot store; push to an archive remote instead"
        )
