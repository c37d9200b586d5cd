"""One object arriving as DATA frames: a bounded byte stream the receiver verifies.

The receiver never trusts the announced checksum: metadata is re-hashed and validated
before staging, content is re-hashed by the transaction while it is written and dropped
if it does not match (nothing becomes visible under a wrong name).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Iterator, Union

from pyostree.errors import ObjectError
from pyostree.objects.content import CHUNK_SIZE, parse_content_header
from pyostree.objects.types import ObjectType
from pyostree.transport.wire import (
    DataCodec,
    Encoding,
    FrameKind,
    FrameReader,
    ObjectHeader,
    ProtocolError,
    SmallObject,
)

if TYPE_CHECKING:
    from pyostree.repo.transaction import Transaction

__all__ = [
    "MAX_METADATA_SIZE",
    "Ahead",
    "BufferedObject",
    "IncomingObject",
    "check_ahead",
    "read_whole_object",
    "receive_object",
    "stage_content",
    "stage_small",
    "validate_metadata",
]

MAX_METADATA_SIZE = 128 * 1024 * 1024
IN_MEMORY_DIRTREE = 16 << 20
"""A bigger dirtree is staged as it arrives and checked from its mapped file, never held
whole: a 128 MiB one would double the receiver's memory."""


class _ChunkedReader:
    """``chunks()`` over a subclass's ``read(size)``."""

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        raise NotImplementedError

    def chunks(self) -> Iterator[bytes]:
        while True:
            chunk = self.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk


class IncomingObject(_ChunkedReader):
    """``read(n)`` over the DATA frames of one object; never yields more than announced."""

    def __init__(self, reader: FrameReader, codec: DataCodec, header: ObjectHeader) -> None:
        self._reader = reader
        self._codec = codec
        self._header = header
        self._buffer = b""
        self._received = 0
        self._ended = False

    def _fill(self) -> bool:
        if self._ended:
            return False
        frame = self._reader.expect(FrameKind.DATA, FrameKind.END)
        if frame.kind is FrameKind.END:
            self._ended = True
            if self._received != self._header.size:
                raise ProtocolError(
                    f"object {self._header.checksum} announced {self._header.size} bytes, "
                    f"sent {self._received}"
                )
            return False
        chunk = self._codec.decode(frame.payload)
        self._received += len(chunk)
        if self._received > self._header.size:
            raise ProtocolError(
                f"object {self._header.checksum} sends more than its {self._header.size} bytes"
            )
        self._buffer += chunk
        return True

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        while not self._buffer and self._fill():
            pass
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def drain(self) -> None:
        """Consume the rest of an object whose bytes are not needed."""
        while self.read(CHUNK_SIZE):
            pass

    def finish(self) -> None:
        """The object must be fully consumed: trailing bytes are an error."""
        if self.read(1):
            raise ObjectError(f"trailing data after object {self._header.checksum}")


def _read_metadata(incoming: IncomingObject, size: int) -> bytes:
    data = b"".join(incoming.chunks())
    if len(data) != size:
        raise ProtocolError("metadata object shorter than announced")
    return data


def _read_in_place(incoming: IncomingObject, size: int) -> bytearray:
    """The whole object read into one buffer (a dirtree, which may be 128 MiB): held
    once, rather than as its chunks and then their join."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    for chunk in incoming.chunks():  # never more than announced
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    view.release()
    if filled != size:
        raise ProtocolError("metadata object shorter than announced")
    return buffer


def validate_metadata(objtype: ObjectType, data: Union[bytes, bytearray]) -> None:
    """Normal form and libostree's structural checks, as an untrusted pull does."""
    from pyostree import objects, gvariant

    if objtype is ObjectType.COMMIT:
        objects.Commit.from_bytes(data, verify=True)
    elif objtype is ObjectType.DIR_TREE:
        from pyostree.objects.dirtree import validate_dirtree_bytes

        validate_dirtree_bytes(data)  # no object per entry
    elif objtype is ObjectType.DIR_META:
        objects.DirMeta.from_bytes(data, verify=True)
    elif objtype is ObjectType.COMMIT_META:
        if not gvariant.is_normal("a{sv}", data):
            raise ObjectError("commitmeta is not a normal-form a{sv}")


class BufferedObject(_ChunkedReader):
    """A small content object already read whole (and size-checked): the same ``read`` /
    ``chunks`` / ``drain`` / ``finish`` as :class:`IncomingObject`, for a worker thread."""

    def __init__(self, checksum: str, data: bytes) -> None:
        self._checksum = checksum
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        chunk = bytes(self._view[self._pos:self._pos + size])
        self._pos += len(chunk)
        return chunk

    def drain(self) -> None:
        self._pos = len(self._view)

    def finish(self) -> None:
        if self._pos != len(self._view):
            raise ObjectError(f"trailing data after object {self._checksum}")


def _check_content_encoding(header: ObjectHeader) -> None:
    if header.encoding not in (Encoding.CONTENT, Encoding.FILEZ):
        raise ProtocolError("content objects must use the CONTENT or FILEZ encoding")


def read_whole_object(reader: FrameReader, codec: DataCodec, header: ObjectHeader) -> BufferedObject:
    """Read all DATA frames of a (small) content object up to its END; sizes are checked
    against the announcement as for streaming, so memory is bounded by ``header.size``."""
    _check_content_encoding(header)
    incoming = IncomingObject(reader, codec, header)
    return BufferedObject(header.checksum, b"".join(incoming.chunks()))


def stage_content(source: "IncomingObject | BufferedObject", header: ObjectHeader, txn: Transaction) -> None:
    """Verify and stage one content object from ``source`` (thread-safe on ``txn``)."""
    _check_content_encoding(header)
    if header.encoding is Encoding.CONTENT:
        file_header = parse_content_header(source.read, verify=True)
        txn.write_content(file_header, source.chunks(), expected_checksum=header.checksum)
    else:
        if txn.has_object(header.checksum, ObjectType.FILE):
            source.drain()  # already there (e.g. staged by an interrupted push)
            return
        # Verified (inflated and hashed) before staging; an archive repo keeps the bytes.
        txn.write_raw(header.checksum, ObjectType.FILE, source.read)
    source.finish()


def _stage_metadata(header: ObjectHeader, data: bytes, txn: Transaction) -> None:
    if header.encoding is not Encoding.METADATA:
        raise ProtocolError(f"{header.objtype.name} must use the METADATA encoding")
    validate_metadata(header.objtype, data)
    if header.objtype is ObjectType.COMMIT_META:
        txn.write_commitmeta(header.checksum, data)
    else:
        txn.write_metadata_bytes(header.objtype, data, expected_checksum=header.checksum)


def stage_small(obj: SmallObject, txn: Transaction, *, known_absent: bool = False) -> None:
    """Verify and stage one whole object of an OBJECTS frame (thread-safe on ``txn``).

    ``known_absent`` (this receiver answered "absent" to a HAVE for it) skips the
    existence check of an archive ``.filez``: a duplicate staged meanwhile is harmless,
    publishing never replaces an object. Into other modes a ``.filez`` goes the streamed
    way, which also refuses bytes after a symlink's header."""
    header, data = obj.header, obj.data
    if header.objtype.is_meta:
        _stage_metadata(header, data, txn)
        return
    _check_content_encoding(header)
    if header.encoding is Encoding.CONTENT or not txn.settings.archive:
        stage_content(BufferedObject(header.checksum, data), header, txn)
        return
    # Inflated and hashed in memory, then written in one go if it matches.
    txn.write_filez_bytes(header.checksum, data, known_absent=known_absent)


class Ahead(enum.Enum):
    """What :func:`check_ahead` left for the worker to do with an object."""

    STAGE = "verify and stage it (stage_small)"
    WRITE = "write it: its bytes are verified (Transaction.stage_checked_filez)"
    SKIP = "nothing: the repo has it"


def check_ahead(obj: SmallObject, txn: Transaction, *, known_absent: bool) -> Ahead:
    """The part of staging ``obj`` that can run on the thread reading the stream: an
    archive ``.filez`` into an archive repo is verified here (inflate and hash, mostly
    outside the GIL), so the worker only writes it and the two overlap."""
    header = obj.header
    if header.encoding is not Encoding.FILEZ or not txn.settings.archive:
        return Ahead.STAGE
    if header.objtype is not ObjectType.FILE:
        return Ahead.STAGE  # refused by stage_small
    if not known_absent and txn.has_object(header.checksum, ObjectType.FILE):
        return Ahead.SKIP
    return Ahead.WRITE if txn.check_filez_bytes(header.checksum, obj.data) else Ahead.STAGE


def receive_object(
    reader: FrameReader, codec: DataCodec, header: ObjectHeader, txn: Transaction
) -> None:
    """Read, verify and stage one announced object; raises if anything does not match."""
    objtype = header.objtype
    if objtype.is_meta:
        if header.encoding is not Encoding.METADATA:
            raise ProtocolError(f"{objtype.name} must use the METADATA encoding")
        if header.size > MAX_METADATA_SIZE:
            raise ProtocolError(
                f"metadata object of {header.size} bytes exceeds {MAX_METADATA_SIZE}"
            )
        incoming = IncomingObject(reader, codec, header)
        if objtype is ObjectType.DIR_TREE and header.size > IN_MEMORY_DIRTREE:
            from pyostree.objects.dirtree import validate_dirtree_bytes

            txn.write_metadata_stream(objtype, incoming.chunks(), header.size, header.checksum,
                                      validate_dirtree_bytes)
            incoming.finish()
            return
        if objtype is ObjectType.DIR_TREE:
            tree = _read_in_place(incoming, header.size)
            validate_metadata(objtype, tree)
            txn.write_metadata_bytes(objtype, tree, expected_checksum=header.checksum)
            return
        data = _read_metadata(incoming, header.size)
        validate_metadata(objtype, data)
        if objtype is ObjectType.COMMIT_META:
            txn.write_commitmeta(header.checksum, data)
        else:
            txn.write_metadata_bytes(objtype, data, expected_checksum=header.checksum)
        return
    _check_content_encoding(header)
    stage_content(IncomingObject(reader, codec, header), header, txn)
