"""Checks of local objects before sftp mode publishes them.

In receive mode the receiver re-hashes everything it is sent; in sftp mode nothing runs on
the far side, so the client checks each object it is about to upload: metadata is
re-hashed and parsed with ``verify=True`` (as an untrusted pull would), content is
re-hashed from its logical stream while it is read or converted anyway (bounded by the
header's size, so a deflate bomb costs one chunk). A failure is a one-line
:class:`PushError` naming the object.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from pyostree.errors import ObjectError, PushError
from pyostree.objects.content import (
    DEFAULT_ZLIB_LEVEL,
    ContentHasher,
    FileHeader,
    iter_archive,
    iter_inflate,
    parse_archive_header,
)
from pyostree.objects.types import ObjectType
from pyostree.receive.incoming import validate_metadata
from pyostree.repo.config import RepoMode

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = [
    "HashingChunks",
    "corrupt",
    "verify_content_digest",
    "verify_metadata",
    "write_verified_filez",
]


def corrupt(checksum: str, objtype: ObjectType, detail: str) -> PushError:
    """The one-line refusal for a local object that is not what its name says."""
    detail = " ".join(str(detail).split())
    return PushError(f"local object {checksum}.{objtype.extension()} is corrupt: {detail}; nothing published")


def verify_metadata(checksum: str, objtype: ObjectType, data: bytes) -> None:
    """The bytes hash to their name (commitmeta is named after its commit) and parse."""
    if objtype is not ObjectType.COMMIT_META:
        actual = hashlib.sha256(data).hexdigest()
        if actual != checksum:
            raise corrupt(checksum, objtype, f"its bytes hash to {actual}")
    try:
        validate_metadata(objtype, data)
    except ObjectError as err:
        raise corrupt(checksum, objtype, str(err)) from None


def verify_content_digest(checksum: str, actual: str) -> None:
    if actual != checksum:
        raise corrupt(checksum, ObjectType.FILE, f"its content hashes to {actual}")


def _checked_header(checksum: str, header: FileHeader) -> FileHeader:
    try:
        header.validate()
    except ObjectError as err:
        raise corrupt(checksum, ObjectType.FILE, str(err)) from None
    return header


class HashingChunks:
    """Payload chunks passed through while the content checksum is computed."""

    def __init__(self, checksum: str, header: FileHeader) -> None:
        self.checksum = checksum
        self._hasher = ContentHasher(_checked_header(checksum, header))

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        update = self._hasher.update
        for chunk in chunks:
            update(chunk)
            yield chunk

    def verify(self) -> None:
        verify_content_digest(self.checksum, self._hasher.hexdigest())


def write_verified_filez(
    repo: Repo, checksum: str, write: Callable[[bytes], object], level: int = DEFAULT_ZLIB_LEVEL
) -> None:
    """Write the ``.filez`` bytes of a content object to ``write``: an archive repo's file
    as stored (inflated on the way to hash it: the payload never exceeds what the header
    says), anything else deflated from the logical stream (hashed on the way). Raises a
    :class:`PushError` once the stream is complete if it does not match its name."""
    try:
        if repo.mode is RepoMode.ARCHIVE:
            _copy_archive(repo, checksum, write)
            return
        with repo.open_content(checksum) as reader:
            hashing = HashingChunks(checksum, reader.header)
            for out in iter_archive(reader.header, reader.size, hashing.wrap(reader.iter_chunks()),
                                    level=level):
                write(out)
            hashing.verify()
    except ObjectError as err:
        raise corrupt(checksum, ObjectType.FILE, str(err)) from None


def _copy_archive(repo: Repo, checksum: str, write: Callable[[bytes], object]) -> None:
    with open(repo.object_path(checksum, ObjectType.FILE), "rb") as handle:

        def tee(size: int) -> bytes:
            data = handle.read(size)
            write(data)
            return data

        header, size = parse_archive_header(tee, verify=True)
        hasher = ContentHasher(_checked_header(checksum, header))
        if header.is_regular:
            for chunk in iter_inflate(tee, size):
                hasher.update(chunk)
        elif size != 0:
            raise ObjectError(f"symlink with payload size {size}")
        elif tee(1):
            raise ObjectError("symlink object has data after its header")
        verify_content_digest(checksum, hasher.hexdigest())
