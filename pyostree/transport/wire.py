"""The framed wire protocol between ``pyostree push`` and ``pyostree receive`` (versions 1-3).

Every frame is ``u8 kind | u32 BE length | payload``. Control payloads are UTF-8 JSON
objects; object data is binary. Each kind has its own size limit, checked *before* the
payload is read, because the receiver treats the client as untrusted. See
``docs/protocol.md`` for the conversation.
"""

from __future__ import annotations

import enum
import errno
import json
import os
import select
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

from pyostree.errors import PyOstreeError, RefError
from pyostree.objects.checksum import to_hex, to_raw
from pyostree.objects.names import validate_ref_name
from pyostree.objects.types import ObjectType

__all__ = [
    "BATCH_ENTRY",
    "BATCH_ENTRY_SIZE",
    "BATCH_VERSION",
    "CHUNK_SIZE",
    "HAVE_BATCH",
    "MAGIC",
    "MAX_CONTROL_SIZE",
    "MAX_DATA_SIZE",
    "PROTOCOL_VERSIONS",
    "REFS_BATCH",
    "REFS_BATCH_BYTES",
    "REFS_VERSION",
    "Encoding",
    "Frame",
    "FrameKind",
    "ObjectHeader",
    "ProtocolError",
    "RemoteError",
    "SmallObject",
    "decode_batch",
    "decode_have",
    "decode_have_reply",
    "decode_json",
    "decode_object_header",
    "encode_batch_entry",
    "encode_have",
    "encode_have_reply",
    "encode_json",
    "encode_object_header",
    "batch_ref_names",
    "parse_ref_request",
    "iter_batch",
    "FrameReader",
    "FrameWriter",
    "IdleTimeoutError",
    "IdleTimeoutReader",
    "DataCodec",
    "zstd_available",
]

MAGIC = "pyostree-receive"
PROTOCOL_VERSIONS: Tuple[int, ...] = (1, 2, 3)
BATCH_VERSION = 2
"""The first version with OBJECTS frames."""
REFS_VERSION = 3
"""The first version whose REPO carries only the refs OPEN asked for, with REFS frames for
more: a REPO listing every head is capped at MAX_CONTROL_SIZE (~12k refs)."""
REFS_BATCH = 1024
"""Ref names one OPEN or REFS asks for at most."""
REFS_BATCH_BYTES = 256 << 10
"""What one OPEN or REFS may ask for: each name JSON-encoded plus _REF_ANSWER bytes for
its answer, summed. The answer always fits one control frame."""
_REF_ANSWER = 72  # ``:"<64 hex>",`` and some slack
CHUNK_SIZE = 1 << 20
"""Largest decoded payload of one DATA frame."""
MAX_CONTROL_SIZE = 1 << 20
MAX_DATA_SIZE = CHUNK_SIZE + (64 << 10)
"""A DATA frame: one flag byte plus at most CHUNK_SIZE bytes, or a zstd frame of them."""
HAVE_BATCH = 4096
"""Object names per HAVE frame (33 bytes each)."""
_HAVE_ENTRY = 33
_HEADER = struct.Struct(">BI")
_OBJECT_HEADER = struct.Struct(">B32sBQ")
BATCH_ENTRY = struct.Struct(">B32sBI")
"""An OBJECTS entry header: ``u8 type, 32-byte digest, u8 encoding, u32 BE size``."""
BATCH_ENTRY_SIZE = BATCH_ENTRY.size
"""Bytes an OBJECTS entry adds in front of its object's data."""

DATA_RAW = 0
DATA_ZSTD = 1


class ProtocolError(PyOstreeError):
    """The peer sent something the protocol does not allow."""


class RemoteError(PyOstreeError):
    """The peer reported an error in an ERROR frame; the message is the peer's."""


class FrameKind(enum.IntEnum):
    """Frame kinds; the direction is fixed per kind (C = push client, S = receiver)."""

    HELLO = 1        # C→S json {"magic", "versions", "compression"}
    WELCOME = 2      # S→C json {"version", "compression"}
    OPEN = 3         # C→S json {"repo"}
    REPO = 4         # S→C json {"mode", "refs", "summary"}
    HAVE = 5         # C→S binary: n × (u8 type, 32-byte digest)
    HAVE_REPLY = 6   # S→C binary: n bytes, 1 = present (objects/ or staged)
    OBJECT = 7       # C→S binary header, see ObjectHeader
    DATA = 8         # C→S u8 flag (0 raw, 1 zstd) + bytes
    END = 9          # C→S empty: the current object is complete
    UPDATE = 10      # C→S json {"refs": [{"ref","old","new"}], "summary": bool|null}
    COMMIT = 11      # C→S empty
    DONE = 12        # S→C json {"refs", "objects", "summary"}
    ABORT = 13       # C→S empty
    ERROR = 14       # either way: json {"message"}
    OBJECTS = 15     # C→S (v2) u8 flag (0 raw, 1 zstd) + entries, see decode_batch
    REFS = 16        # C→S (v3) json {"refs": [names]}
    REFS_REPLY = 17  # S→C (v3) json {"refs": {name: checksum}}: the heads that exist


_LIMITS: Dict[FrameKind, int] = {kind: MAX_CONTROL_SIZE for kind in FrameKind}
_LIMITS[FrameKind.HAVE] = HAVE_BATCH * _HAVE_ENTRY
_LIMITS[FrameKind.HAVE_REPLY] = HAVE_BATCH
_LIMITS[FrameKind.OBJECT] = _OBJECT_HEADER.size
_LIMITS[FrameKind.DATA] = MAX_DATA_SIZE
_LIMITS[FrameKind.OBJECTS] = MAX_DATA_SIZE
_LIMITS[FrameKind.REFS] = 2 * REFS_BATCH_BYTES
_LIMITS[FrameKind.END] = 0
_LIMITS[FrameKind.COMMIT] = 0
_LIMITS[FrameKind.ABORT] = 0


class Encoding(enum.IntEnum):
    """How an object's bytes travel in its DATA frames."""

    METADATA = 0   # the metadata object's bytes as stored
    CONTENT = 1    # canonical content stream: u32BE(len) 0000 header payload
    FILEZ = 2      # an archive .filez (header + raw deflate): already compressed


@dataclass(frozen=True)
class Frame:
    kind: FrameKind
    payload: bytes


@dataclass(frozen=True)
class ObjectHeader:
    """Announces one object; ``size`` is the total byte count of its decoded DATA."""

    objtype: ObjectType
    checksum: str
    encoding: Encoding
    size: int


def encode_json(value: Dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def decode_json(frame: Frame) -> Dict[str, object]:
    """A control payload must be a JSON object; anything else is a protocol error."""
    try:
        value = json.loads(frame.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(f"{frame.kind.name} frame is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{frame.kind.name} frame is not a JSON object")
    return value


def _ref_cost(name: str) -> int:
    return len(json.dumps(name)) + _REF_ANSWER


def batch_ref_names(names: Sequence[str]) -> List[List[str]]:
    """``names`` (duplicates dropped) split into the lists one OPEN or REFS may ask for."""
    batches: List[List[str]] = []
    batch: List[str] = []
    cost = 0
    for name in dict.fromkeys(names):
        each = _ref_cost(name)
        if batch and (len(batch) >= REFS_BATCH or cost + each > REFS_BATCH_BYTES):
            batches.append(batch)
            batch, cost = [], 0
        batch.append(name)
        cost += each
    if batch:
        batches.append(batch)
    return batches


def parse_ref_request(value: object, what: str) -> List[str]:
    """The ref names of an OPEN's or a REFS frame's ``refs``: a list of valid head names
    within REFS_BATCH and REFS_BATCH_BYTES, or a protocol error."""
    if not isinstance(value, list) or len(value) > REFS_BATCH:
        raise ProtocolError(f"{what} 'refs' must be a list of at most {REFS_BATCH} ref names")
    cost = 0
    for name in value:
        if not isinstance(name, str):
            raise ProtocolError(f"{what} 'refs' must hold strings")
        cost += _ref_cost(name)
        if cost > REFS_BATCH_BYTES:
            raise ProtocolError(f"{what} asks for more than {REFS_BATCH_BYTES} bytes of refs")
        try:
            validate_ref_name(name, allow_checksum=False)
        except RefError as err:
            raise ProtocolError(f"{what}: {err}") from None
    return list(dict.fromkeys(value))


def _objtype(value: int) -> ObjectType:
    try:
        objtype = ObjectType(value)
    except ValueError:
        raise ProtocolError(f"unknown object type {value}") from None
    if objtype not in (
        ObjectType.FILE, ObjectType.DIR_TREE, ObjectType.DIR_META,
        ObjectType.COMMIT, ObjectType.COMMIT_META,
    ):
        raise ProtocolError(f"object type {objtype.name} cannot be pushed")
    return objtype


def encode_object_header(header: ObjectHeader) -> bytes:
    return _OBJECT_HEADER.pack(
        int(header.objtype), to_raw(header.checksum), int(header.encoding), header.size
    )


def decode_object_header(payload: bytes) -> ObjectHeader:
    if len(payload) != _OBJECT_HEADER.size:
        raise ProtocolError("OBJECT frame has the wrong length")
    objtype, raw, encoding, size = _OBJECT_HEADER.unpack(payload)
    try:
        enc = Encoding(encoding)
    except ValueError:
        raise ProtocolError(f"unknown object encoding {encoding}") from None
    return ObjectHeader(_objtype(objtype), to_hex(raw), enc, size)


@dataclass(frozen=True)
class SmallObject:
    """One whole object from an OBJECTS frame: ``header.size == len(data)``."""

    header: ObjectHeader
    data: bytes


def encode_batch_entry(objtype: ObjectType, checksum: str, encoding: Encoding,
                       data: Union[bytes, memoryview]) -> bytes:
    """One OBJECTS entry: ``u8 type, 32-byte digest, u8 encoding, u32 BE size`` + data."""
    return BATCH_ENTRY.pack(int(objtype), to_raw(checksum), int(encoding), len(data)) + data


def decode_batch(body: bytes) -> List[SmallObject]:
    """The entries of a decoded OBJECTS body (at most CHUNK_SIZE bytes); every entry must
    be complete and the body must hold nothing else."""
    return [SmallObject(header, body[start:start + header.size])
            for header, start in iter_batch(body)]


def iter_batch(body: Union[bytes, bytearray, memoryview]) -> Iterator[Tuple[ObjectHeader, int]]:
    """Each entry's header and the offset of its data in ``body``, checked as
    :func:`decode_batch` checks them (a staging worker slices a buffer it reuses)."""
    pos, end = 0, len(body)
    if not end:
        raise ProtocolError("empty OBJECTS frame")
    while pos < end:
        if end - pos < BATCH_ENTRY.size:
            raise ProtocolError("OBJECTS frame ends inside an entry header")
        objtype, raw, encoding, size = BATCH_ENTRY.unpack_from(body, pos)
        pos += BATCH_ENTRY.size
        if size > end - pos:
            raise ProtocolError(f"OBJECTS entry announces {size} bytes, {end - pos} left")
        try:
            enc = Encoding(encoding)
        except ValueError:
            raise ProtocolError(f"unknown object encoding {encoding}") from None
        yield ObjectHeader(_objtype(objtype), to_hex(raw), enc, size), pos
        pos += size


def encode_have(names: Sequence[Tuple[str, ObjectType]]) -> bytes:
    if len(names) > HAVE_BATCH:
        raise ProtocolError(f"HAVE batch of {len(names)} exceeds {HAVE_BATCH}")
    return b"".join(bytes([int(objtype)]) + to_raw(csum) for csum, objtype in names)


def decode_have(payload: bytes) -> List[Tuple[str, ObjectType]]:
    if len(payload) % _HAVE_ENTRY:
        raise ProtocolError("HAVE frame length is not a multiple of 33")
    return [
        (to_hex(payload[i + 1:i + _HAVE_ENTRY]), _objtype(payload[i]))
        for i in range(0, len(payload), _HAVE_ENTRY)
    ]


def encode_have_reply(present: Sequence[bool]) -> bytes:
    return bytes(1 if flag else 0 for flag in present)


def decode_have_reply(payload: bytes, expected: int) -> List[bool]:
    if len(payload) != expected or any(b > 1 for b in payload):
        raise ProtocolError("HAVE_REPLY does not answer the HAVE it follows")
    return [b == 1 for b in payload]


class IdleTimeoutError(ProtocolError):
    """Nothing arrived from the peer for longer than the idle timeout."""


class ByteSource(Protocol):
    """What :class:`FrameReader` reads from: ``read(n)`` returns 1..n bytes, b"" at EOF."""

    def read(self, __size: int) -> bytes: ...


class IdleTimeoutReader:
    """Reads a file descriptor through its own buffer and gives up with
    :class:`IdleTimeoutError` when no byte arrives for ``timeout`` seconds.

    Every ``os.read`` is preceded by one ``poll`` on the fd, nothing else: a half-open
    connection (the peer vanished without FIN or RST) cannot block the reader forever.
    The fd must not have been read through another buffer before (``sys.stdin.buffer``
    would hold bytes the poll cannot see)."""

    def __init__(self, fd: int, timeout: float, buffer_size: int = 256 << 10) -> None:
        if timeout <= 0:
            raise ValueError("the idle timeout must be positive")
        self._fd = fd
        self.timeout = timeout
        self._timeout_ms = max(1, int(min(timeout, 2_000_000.0) * 1000))  # poll takes an int
        self._buffer_size = buffer_size
        self._buffer = b""
        self._pos = 0
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLPRI)
        self._splice = hasattr(os, "splice")

    def _wait(self) -> None:
        # poll is retried after a signal with the remaining time (PEP 475)
        if not self._poll.poll(self._timeout_ms):
            raise IdleTimeoutError(
                f"no data from the client for {self.timeout:g} s (idle timeout): "
                "connection abandoned"
            )

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (at least one), or b"" at end of stream."""
        if size <= 0:
            return b""
        if self._pos < len(self._buffer):
            data = self._buffer[self._pos:self._pos + size]
            self._pos += len(data)
            return data
        while True:
            self._wait()
            try:
                if size >= self._buffer_size:
                    return os.read(self._fd, size)
                chunk = os.read(self._fd, self._buffer_size)
            except BlockingIOError:
                continue  # a non-blocking fd woke up without data: wait again
            if len(chunk) <= size:
                return chunk
            self._buffer, self._pos = chunk, size
            return chunk[:size]

    def read_unbuffered(self, size: int) -> bytes:
        """Like :meth:`read`, but never reads past ``size`` bytes from the fd: what follows
        stays there for :meth:`splice_to`."""
        if size <= 0 or self._pos < len(self._buffer):
            return self.read(size)
        while True:
            self._wait()
            try:
                return os.read(self._fd, size)
            except BlockingIOError:
                continue

    def splice_to(self, out: int, size: int) -> None:
        """Move exactly ``size`` bytes into the pipe ``out``: with ``splice``, so they never
        enter this process (a worker reads them), else through a read and a write.

        Raises :class:`ProtocolError` if the stream ends first; an error writing ``out``
        (``BrokenPipeError``: its reader died) as it is."""
        left = size
        if self._pos < len(self._buffer):
            view = memoryview(self._buffer)[self._pos:self._pos + left]
            _write_all(out, view)
            self._pos += len(view)
            left -= len(view)
        while left:
            self._wait()
            try:
                if self._splice:
                    moved = os.splice(self._fd, out, left)
                else:
                    chunk = os.read(self._fd, min(left, self._buffer_size))
                    _write_all(out, chunk)
                    moved = len(chunk)
            except BlockingIOError:
                # A non-blocking stdin makes splice non-blocking on both ends: wait for
                # room in ``out`` too, or this would spin while the worker catches up.
                _wait_writable(out)
                continue
            except OSError as err:
                if self._splice and err.errno in (errno.EINVAL, errno.ENOSYS):
                    self._splice = False  # not a pipe, socket or file, or an old kernel
                    continue
                raise
            if not moved:
                raise ProtocolError("connection closed in the middle of a frame")
            left -= moved


def _write_all(fd: int, data: Union[bytes, memoryview]) -> None:
    # fsutil.write_all's twin: importing fsutil (and its ctypes) here would put it on
    # every receiver's and client's start-up path, before REPO.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _wait_writable(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()  # a pipe whose reader is gone polls as an error: the write then says so


class FrameReader:
    """Reads frames from a byte stream, enforcing each kind's size limit first."""

    def __init__(self, stream: Union[BinaryIO, ByteSource]) -> None:
        self._stream = stream

    def _reader(self, exact: bool) -> Callable[[int], bytes]:
        if exact and isinstance(self._stream, IdleTimeoutReader):
            return self._stream.read_unbuffered
        return self._stream.read

    def _read_exactly(self, size: int, exact: bool = False) -> bytes:
        read = self._reader(exact)
        parts: List[bytes] = []
        left = size
        while left:
            chunk = read(left)
            if not chunk:
                raise ProtocolError("connection closed in the middle of a frame")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def read(self) -> Optional[Frame]:
        """The next frame, or None at a clean end of stream (between frames)."""
        head = self.read_head()
        if head is None:
            return None
        kind, length = head
        return Frame(kind, self._read_exactly(length))

    def read_head(self, *, exact: bool = False) -> Optional[Tuple[FrameKind, int]]:
        """The next frame's kind and payload length, checked against the kind's limit, or
        None at a clean end of stream. ``exact``: read no byte of the payload yet (then
        :meth:`splice_payload` moves it without this process touching it)."""
        first = self._reader(exact)(_HEADER.size)
        if not first:
            return None
        if len(first) < _HEADER.size:
            first += self._read_exactly(_HEADER.size - len(first), exact)
        kind_value, length = _HEADER.unpack(first)
        try:
            kind = FrameKind(kind_value)
        except ValueError:
            raise ProtocolError(f"unknown frame kind {kind_value}") from None
        if length > _LIMITS[kind]:
            raise ProtocolError(
                f"{kind.name} frame of {length} bytes exceeds the limit of {_LIMITS[kind]}"
            )
        return kind, length

    def read_payload(self, length: int, *, exact: bool = False) -> bytes:
        """``length`` bytes of the payload whose head was read (``exact``: and no more)."""
        return self._read_exactly(length, exact)

    @property
    def can_splice(self) -> bool:
        """:meth:`splice_payload` moves bytes without copying them through this process."""
        return isinstance(self._stream, IdleTimeoutReader)

    def splice_payload(self, out: int, length: int) -> None:
        """Move ``length`` bytes of the payload whose head was read into the pipe ``out``."""
        if isinstance(self._stream, IdleTimeoutReader):
            self._stream.splice_to(out, length)
            return
        left = length
        while left:
            chunk = self._read_exactly(min(left, CHUNK_SIZE))
            _write_all(out, chunk)
            left -= len(chunk)

    def expect_head(self, *kinds: FrameKind, exact: bool = False) -> Tuple[FrameKind, int]:
        """The next frame's head, which must be one of ``kinds``; an ERROR frame raises
        RemoteError (its payload read)."""
        head = self.read_head(exact=exact)
        if head is None:
            raise ProtocolError("connection closed by the peer")
        kind, length = head
        if kind is FrameKind.ERROR and FrameKind.ERROR not in kinds:
            frame = Frame(kind, self._read_exactly(length))
            raise RemoteError(str(decode_json(frame).get("message", "unknown error")))
        if kind not in kinds:
            wanted = "/".join(kind.name for kind in kinds)
            raise ProtocolError(f"expected {wanted}, got {kind.name}")
        return kind, length

    def expect(self, *kinds: FrameKind) -> Frame:
        """The next frame, which must be one of ``kinds``; an ERROR frame raises RemoteError."""
        kind, length = self.expect_head(*kinds)
        return Frame(kind, self._read_exactly(length))


class FrameWriter:
    """Writes frames through its own buffer (raw channels make every write a packet);
    the caller decides when to flush (batching is the point)."""

    def __init__(self, stream: BinaryIO, buffer_size: int = 256 << 10) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._buffer_size = buffer_size

    def write(self, kind: FrameKind, payload: bytes = b"") -> None:
        if len(payload) > _LIMITS[kind]:
            raise ProtocolError(f"{kind.name} frame of {len(payload)} bytes is too large")
        self._buffer += _HEADER.pack(int(kind), len(payload))
        if len(payload) >= self._buffer_size:  # a big payload is not copied again
            self._drain()
            self._stream.write(payload)
            return
        self._buffer += payload
        if len(self._buffer) >= self._buffer_size:
            self._drain()

    def write_json(self, kind: FrameKind, value: Dict[str, object]) -> None:
        self.write(kind, encode_json(value))

    def _drain(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        self._stream.write(data)

    def flush(self) -> None:
        if self._buffer:
            self._drain()
        self._stream.flush()


class DataCodec:
    """Encodes and decodes DATA payloads; zstd only where it pays.

    zstandard is imported lazily, at the first chunk worth compressing or the first
    compressed frame: the core must import without it, and a push that moves no
    compressible data (a no-op, say) never pays for the import on either side."""

    def __init__(self, zstd: bool) -> None:
        self._compressor: Optional[object] = None
        self._decompressor: Optional[object] = None
        self.zstd = zstd

    def _get_compressor(self) -> object:
        if self._compressor is None:
            import zstandard  # lazy: the core must import without it

            self._compressor = zstandard.ZstdCompressor(level=3)
        return self._compressor

    def _get_decompressor(self) -> object:
        if self._decompressor is None:
            import zstandard

            self._decompressor = zstandard.ZstdDecompressor()
        return self._decompressor

    def encode(self, chunk: bytes, *, compress: bool) -> bytes:
        """Flag byte + chunk; compressed when asked, enabled, and actually smaller."""
        if len(chunk) > CHUNK_SIZE:
            raise ProtocolError(f"DATA chunk of {len(chunk)} bytes exceeds {CHUNK_SIZE}")
        if compress and self.zstd and len(chunk) >= 256:
            packed: bytes = self._get_compressor().compress(chunk)  # type: ignore[attr-defined]
            if len(packed) + 64 < len(chunk):
                return bytes([DATA_ZSTD]) + packed
        return bytes([DATA_RAW]) + chunk

    def raw_view(self, payload: bytes) -> Optional[memoryview]:
        """The chunk of an uncompressed payload, not copied; None for a compressed one
        (or one :meth:`decode` refuses, so that it says why)."""
        if not payload or self.raw_size(payload[0], len(payload)) is None:
            return None
        return memoryview(payload)[1:]

    @staticmethod
    def raw_size(flag: int, length: int) -> Optional[int]:
        """Size of the chunk a payload of ``length`` bytes with flag byte ``flag`` carries
        if it is uncompressed and :meth:`decode` would accept it whole, else None."""
        if flag != DATA_RAW or length - 1 > CHUNK_SIZE:
            return None
        return length - 1

    def decode(self, payload: bytes) -> bytes:
        """The chunk a DATA payload carries; a zstd frame must declare a size <= CHUNK_SIZE."""
        if not payload:
            raise ProtocolError("empty DATA frame")
        flag, body = payload[0], payload[1:]
        if flag == DATA_RAW:
            if len(body) > CHUNK_SIZE:
                raise ProtocolError(f"DATA chunk of {len(body)} bytes exceeds {CHUNK_SIZE}")
            return body
        if flag != DATA_ZSTD or not self.zstd:
            raise ProtocolError(f"DATA frame uses an unnegotiated encoding {flag}")
        decompressor = self._get_decompressor()
        import zstandard

        try:
            declared = zstandard.frame_content_size(body)
        except zstandard.ZstdError:
            raise ProtocolError("DATA frame holds a corrupt zstd frame") from None
        if declared < 0 or declared > CHUNK_SIZE:
            raise ProtocolError("zstd DATA frame must declare a size of at most 1 MiB")
        try:
            out: bytes = decompressor.decompress(  # type: ignore[attr-defined]
                body, max_output_size=CHUNK_SIZE
            )
        except zstandard.ZstdError:
            raise ProtocolError("DATA frame holds a corrupt zstd frame") from None
        if len(out) != declared:
            raise ProtocolError("zstd DATA frame decodes to the wrong size")
        return out


def zstd_available() -> bool:
    """True when the optional zstandard module can be imported."""
    import importlib.util

    return importlib.util.find_spec("zstandard") is not None
