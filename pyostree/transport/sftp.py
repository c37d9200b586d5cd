"""FileTransport over a paramiko SFTPClient (whatever carries it: a paramiko channel or ssh pipes).

Single operations go through paramiko. The bulk paths (``write_files``, ``rename_many``,
``make_dirs``, ``remove_dirs``) frame their requests themselves (:class:`_Pipeline`): many
requests per SSH packet, many replies per read, a bounded number unanswered. ``write_files``
is a stream spread over up to _SESSIONS sftp sessions, so that one server's fsync does not
stall the rest; a file is renamed over its target only after its writes, mode, fsync and
close all succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import io
import stat as statmod
import struct
from typing import BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _paramiko  # noqa: F401,I001  # first: paramiko without invoke
import paramiko  # type: ignore[import-untyped]
from paramiko import sftp as sftp_proto

from ..errors import TransportError
from ._errors import oserror_to_transport
from ._streams import CallableReader, CallableWriter
from .base import (
    FileTransport,
    RemoteExistsError,
    RemoteNotFoundError,
    RemoteStat,
    check_relpath,
)

__all__ = ["ExtensionAwareSFTPClient", "SftpFileTransport", "WriteItem", "remote_root"]

#: Reads and writes go in requests of this size (paramiko's and OpenSSH's limit).
_REQUEST_SIZE = 32768
#: Prefetch at most this many read requests ahead (2 MiB) so memory stays bounded-ish.
_PREFETCH_REQUESTS = 64



def _abandon(handle: paramiko.SFTPFile) -> None:
    """After a failed write or close the connection is gone: mark the file closed so that
    paramiko's ``SFTPFile.__del__`` does not retry the flush at garbage collection (which
    prints an "Exception ignored ... Traceback" after our one-line error)."""
    handle._closed = True  # paramiko.file.BufferedFile's flag; close() sets it only on success

class WriteItem:
    """One small file for :meth:`SftpFileTransport.write_files`: ``data`` goes to ``tmp``
    (created exclusively), which is then renamed over ``target``."""

    __slots__ = ("tmp", "target", "data", "mode", "mtime")

    def __init__(self, tmp: str, target: str, data: bytes, mode: int = 0o644,
                 mtime: Optional[int] = None) -> None:
        self.tmp, self.target, self.data, self.mode, self.mtime = tmp, target, data, mode, mtime


# -- our own framing for pipelined requests -------------------------------------------
# paramiko sends every sftp request as its own SSH packet and reads every reply with two
# small reads, each under locks: ~60 us of CPU per request, the bulk of a push of small
# files. _Pipeline frames the requests itself, sends them in chunks of one SSH packet and
# parses many replies out of each read.

_FXP_OPEN, _FXP_CLOSE, _FXP_WRITE, _FXP_FSETSTAT = 3, 4, 6, 10
_FXP_MKDIR, _FXP_RMDIR, _FXP_RENAME, _FXP_EXTENDED = 14, 15, 18, 200
_FXP_STATUS, _FXP_HANDLE = 101, 102
_ATTR_PERMISSIONS, _ATTR_ACMODTIME = 0x4, 0x8
_OPEN_CREATE_EXCL = (
    sftp_proto.SFTP_FLAG_WRITE | sftp_proto.SFTP_FLAG_CREATE | sftp_proto.SFTP_FLAG_EXCL
)
#: One channel message each: paramiko sends at most the peer's max packet (32 KiB for
#: OpenSSH sessions) minus 64 bytes per message.
_SEND_CHUNK = 32768 - 64
_RECV_CHUNK = 65536
#: poll() holds back a small queue while the server has at least this many requests.
_LOW_WATER = 16
#: Largest reply we accept (ours are STATUS and HANDLE: tens of bytes).
_MAX_REPLY = 1 << 18
#: Deadlock-freedom: we may block writing requests while the server is busy, and the
#: server only reads requests while it can write its replies. So the replies we have not
#: read must always fit in the return path without our help: the pipe from ssh (64 KiB on
#: Linux; the ssh client buffers up to its 2 MiB channel window on top) or paramiko's
#: channel buffer (read by its own thread, up to the 2 MiB window). A reply here is at most
#: ~70 bytes (OpenSSH's status texts are short). In steady state at most _MAX_WAITING
#: requests plus one file's burst (its writes of <= 2 MiB: 64 + 4) wait for theirs: ~23 KiB.
#: The bound that really holds is looser: several OPEN replies read at once each release
#: a whole file's writes, up to _MAX_HELD of data (~1,500 replies, ~100 KiB). That can
#: exceed a bare 64 KiB pipe, but not the 2 MiB channel window ssh and paramiko buffer.
_MAX_WAITING = 256
#: write_files keeps at most this much file data whose OPEN is not answered yet.
_MAX_HELD = 8 << 20
#: write_files spreads files over this many sftp sessions where the carrier can open more:
#: an OpenSSH sftp-server does one thing at a time, and an fsync is a wait for the disk.
#: (4105 small files, loopback sshd: 2 sessions -30% wall against 1, 3 or 4 another -25%.)
_SESSIONS = 4
_SESSION_TIMEOUT = 30.0

_Handler = Callable[[int, bytes], None]


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _path(path: str) -> bytes:
    return _string(path.encode("utf-8"))


def _attrs(mode: int, mtime: Optional[int] = None) -> bytes:
    if mtime is None:
        return struct.pack(">II", _ATTR_PERMISSIONS, mode & 0o7777)
    return struct.pack(">IIII", _ATTR_PERMISSIONS | _ATTR_ACMODTIME, mode & 0o7777, mtime, mtime)


def _status(kind: int, body: bytes) -> Tuple[int, str]:
    """(code, message) of a STATUS reply; (-1, ...) for anything else."""
    if kind != _FXP_STATUS or len(body) < 4:
        return -1, f"unexpected reply {kind}"
    code: int = struct.unpack_from(">I", body)[0]
    text = ""
    if len(body) >= 8:
        size = struct.unpack_from(">I", body, 4)[0]
        text = body[8:8 + size].decode("utf-8", "replace")
    return code, text or f"status {code}"


def _handle(kind: int, body: bytes) -> Optional[bytes]:
    """The handle of a HANDLE reply, None for anything else."""
    if kind != _FXP_HANDLE or len(body) < 4:
        return None
    size = struct.unpack_from(">I", body)[0]
    return body[4:4 + size] if len(body) >= 4 + size else None


class _Pipeline:
    """Pipelined requests on a paramiko SFTPClient's channel, framed by us. The request
    ids come from the client's counter, and every reply is read before the client is used
    again (see ``SftpFileTransport._client``), so paramiko never sees one of ours."""

    def __init__(self, client: paramiko.SFTPClient) -> None:
        self._client = client
        self._sock = client.sock
        self._out: List[bytes] = []
        self._out_size = 0
        self._unsent = 0
        self._in = bytearray()
        self._waiting: Dict[int, _Handler] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def request(self, kind: int, body: bytes, handler: _Handler) -> None:
        """Queue one request; ``handler(reply type, reply body after the id)`` must not raise."""
        client = self._client
        with client._lock:
            num: int = client.request_number
            client.request_number = num + 1
        self._out.append(struct.pack(">IBI", len(body) + 5, kind, num))
        self._out.append(body)
        self._out_size += len(body) + 9
        self._unsent += 1
        self._waiting[num] = handler
        if self._out_size >= _SEND_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Send what is queued, one SSH packet per chunk."""
        if not self._out:
            return
        data = b"".join(self._out)
        self._out, self._out_size, self._unsent = [], 0, 0
        view, pos, send = memoryview(data), 0, self._sock.send
        while pos < len(view):
            sent: int = send(view[pos:pos + _SEND_CHUNK])
            if sent <= 0:
                raise EOFError("the sftp channel is closed")
            pos += sent

    def poll(self) -> None:
        """Handle the replies already here, without blocking; send what is queued once it
        fills a good part of a packet or the server is about to run out of work (every
        SSH packet costs paramiko ~100 us of CPU)."""
        if self._out_size >= _SEND_CHUNK // 4 or len(self._waiting) - self._unsent < _LOW_WATER:
            self.flush()
        ready = getattr(self._sock, "recv_ready", None)
        while self._waiting and ready is not None and ready():
            self.receive()

    def wait(self, until: Callable[[], bool]) -> None:
        """Send what is queued and handle replies until ``until()`` or none is due."""
        while self._waiting and not until():
            self.flush()
            self.receive()
        self.flush()

    def drain(self) -> None:
        """Handle every reply still due."""
        self.wait(lambda: False)

    def receive(self) -> None:
        """Read once (blocking) and handle the replies that are complete."""
        chunk = self._sock.recv(_RECV_CHUNK)
        if not chunk:
            raise EOFError("the sftp channel is closed")
        buf = self._in
        buf += chunk
        pos, end = 0, len(buf)
        while end - pos >= 9:
            size: int = struct.unpack_from(">I", buf, pos)[0]
            if size < 5 or size > _MAX_REPLY:
                raise TransportError(f"sftp server sent a malformed reply ({size} bytes)")
            if pos + 4 + size > end:
                break
            kind, num = struct.unpack_from(">BI", buf, pos + 4)
            body = bytes(buf[pos + 9:pos + 4 + size])
            pos += 4 + size
            handler = self._waiting.pop(num, None)
            if handler is None:
                raise TransportError(f"sftp server answered request {num}, which is not pending")
            handler(kind, body)
        del buf[:pos]


class _FileWriter:
    """The state of one ``write_files``: each file is OPENed; once its handle is here, its
    WRITEs, FSETSTAT, fsync and CLOSE follow; once all of those succeeded, its rename.
    A failed step never lets its file be renamed; the first failure is kept."""

    def __init__(self, pipe: _Pipeline, remote: Callable[[str], str], fsync: bool,
                 write_size: int) -> None:
        self.pipe, self._remote = pipe, remote
        self._fsync, self._write_size = fsync, write_size
        self.failure: Optional[str] = None
        self.held = 0

    def _fail(self, text: str) -> None:
        if self.failure is None:
            self.failure = text

    def start(self, item: WriteItem) -> None:
        body = _path(self._remote(item.tmp)) + struct.pack(">I", _OPEN_CREATE_EXCL)
        self.held += len(item.data)
        self.pipe.request(_FXP_OPEN, body + _attrs(item.mode),
                           lambda kind, reply: self._opened(item, kind, reply))

    def _opened(self, item: WriteItem, kind: int, reply: bytes) -> None:
        self.held -= len(item.data)
        handle = _handle(kind, reply)
        if handle is None:
            self._fail(f"cannot create {item.tmp}: {_status(kind, reply)[1]}")
            return
        request, string = self.pipe.request, _string(handle)
        if self.failure is not None:
            request(_FXP_CLOSE, string, lambda _k, _r: None)
            return
        steps: List[Tuple[int, bytes, str]] = []
        view, size = memoryview(item.data), self._write_size
        for offset in range(0, len(view), size):
            chunk = view[offset:offset + size]
            steps.append((_FXP_WRITE, b"".join((string, struct.pack(">QI", offset, len(chunk)),
                                                chunk)), "write"))
        steps.append((_FXP_FSETSTAT, string + _attrs(item.mode, item.mtime), "chmod"))
        if self._fsync:
            steps.append((_FXP_EXTENDED, _string(b"fsync@openssh.com") + string, "fsync"))
        steps.append((_FXP_CLOSE, string, "close"))
        state = [len(steps), True]  # replies due, all fine so far

        def step(what: str) -> _Handler:
            def done(kind: int, reply: bytes) -> None:
                code, text = _status(kind, reply)
                if code != sftp_proto.SFTP_OK:
                    state[1] = False
                    self._fail(f"cannot {what} {item.tmp}: {text}")
                state[0] -= 1
                if state[0] == 0 and state[1] and self.failure is None:
                    self._rename(item)
            return done

        for kind_, body, what in steps:
            request(kind_, body, step(what))

    def _rename(self, item: WriteItem) -> None:
        body = (_string(b"posix-rename@openssh.com") + _path(self._remote(item.tmp))
                + _path(self._remote(item.target)))

        def done(kind: int, reply: bytes) -> None:
            code, text = _status(kind, reply)
            if code != sftp_proto.SFTP_OK:
                self._fail(f"cannot rename {item.tmp} to {item.target}: {text}")

        self.pipe.request(_FXP_EXTENDED, body, done)


class ExtensionAwareSFTPClient(paramiko.SFTPClient):  # type: ignore[misc]
    """An SFTPClient that remembers the extensions the server announced (fsync@openssh.com...)."""

    server_extensions: Dict[str, bytes]

    def _send_version(self) -> int:
        # Same handshake as paramiko's, but the VERSION packet's extension pairs are kept.
        message = paramiko.Message()
        message.add_int(3)
        self._send_packet(sftp_proto.CMD_INIT, message)
        kind, data = self._read_packet()
        if kind != sftp_proto.CMD_VERSION:
            raise paramiko.SFTPError("Incompatible sftp protocol")
        version: int = struct.unpack(">I", data[:4])[0]
        extensions: Dict[str, bytes] = {}
        reply = paramiko.Message(data[4:])
        try:
            while reply.get_remainder():
                name = reply.get_text()
                extensions[name] = reply.get_binary()
        except Exception:  # a malformed extension list only costs us the extensions
            pass
        self.server_extensions = extensions
        return version


def remote_root(path: str) -> str:
    """The sftp path for a destination path: ``~/x`` and ``x`` are both home-relative."""
    if path in ("", "~", "~/"):
        return "."
    if path.startswith("~/"):
        return path[2:]
    return path.rstrip("/") or "/"


def paramiko_sessions(client: paramiko.SFTPClient) -> Optional[Callable[[], paramiko.SFTPClient]]:
    """How to open more sftp sessions on the ssh connection of ``client``, if it runs on a
    paramiko channel (None otherwise)."""
    channel = getattr(client, "sock", None)
    if not isinstance(channel, paramiko.Channel):
        return None
    transport = channel.get_transport()

    def open_session() -> paramiko.SFTPClient:
        more = transport.open_session(timeout=_SESSION_TIMEOUT)
        try:
            more.invoke_subsystem("sftp")
            return ExtensionAwareSFTPClient(more)
        except BaseException:
            more.close()
            raise

    return open_session


class SftpFileTransport(FileTransport):
    """Remote files over sftp, rooted at ``root``; ``on_close`` releases the carrier;
    ``open_session`` opens another sftp session to the same server (paramiko channels:
    found by itself), for :meth:`write_files`."""

    def __init__(
        self,
        client: paramiko.SFTPClient,
        root: str,
        on_close: Optional[Callable[[], None]] = None,
        open_session: Optional[Callable[[], paramiko.SFTPClient]] = None,
    ) -> None:
        self._sftp = client
        self._pipe = _Pipeline(client)
        self._open_session = open_session or paramiko_sessions(client)
        self._lanes: Optional[List[_Pipeline]] = None  # opened by the first write_files
        self._helpers: List[paramiko.SFTPClient] = []
        self._root = remote_root(root)
        self._on_close = on_close
        self._closed = False
        extensions: Dict[str, bytes] = getattr(client, "server_extensions", {})
        self._has_fsync = "fsync@openssh.com" in extensions

    def _remote(self, path: str) -> str:
        if self._closed:
            raise TransportError("sftp transport is closed")
        rel = check_relpath(path)
        if not rel:
            return self._root
        if self._root == "/":
            return "/" + rel
        return f"{self._root}/{rel}"

    @contextlib.contextmanager
    def _errors(self, op: str, path: str) -> Iterator[None]:
        try:
            yield
        except TransportError:
            raise
        except OSError as err:
            raise oserror_to_transport(op, path, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot {op} {path or '.'}: connection lost ({err})") from err

    def _lstat(self, remote: str, path: str) -> Optional[paramiko.SFTPAttributes]:
        try:
            return self._client.lstat(remote)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return None
            raise oserror_to_transport("stat", path, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot stat {path or '.'}: connection lost ({err})") from err

    def stat(self, path: str) -> Optional[RemoteStat]:
        attrs = self._lstat(self._remote(path), path)
        if attrs is None:
            return None
        return RemoteStat(size=int(attrs.st_size or 0), mode=int(attrs.st_mode or 0))

    def read_bytes(self, path: str, max_size: int) -> bytes:
        remote = self._remote(path)
        with self._errors("read", path):
            with self._client.open(remote, "rb", _REQUEST_SIZE) as handle:
                chunks: List[bytes] = []
                total = 0
                while total <= max_size:
                    chunk = handle.read(min(_REQUEST_SIZE, max_size + 1 - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
        if total > max_size:
            raise TransportError(f"{path} is larger than the {max_size}-byte limit")
        return b"".join(chunks)

    def open_read(self, path: str) -> BinaryIO:
        remote = self._remote(path)
        with self._errors("open", path):
            handle = self._client.open(remote, "rb", _REQUEST_SIZE)
            try:
                size = handle.stat().st_size
                try:
                    handle.prefetch(size, max_concurrent_requests=_PREFETCH_REQUESTS)
                except TypeError:  # paramiko < 3.3 has no request limit
                    handle.prefetch(size)
            except BaseException:
                handle.close()
                raise

        def read(n: int) -> bytes:
            with self._errors("read", path):
                data: bytes = handle.read(n)
                return data

        def close() -> None:
            with self._errors("close", path):
                handle.close()

        return io.BufferedReader(CallableReader(read, close), buffer_size=_REQUEST_SIZE)

    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        remote = self._remote(path)
        flags = (
            sftp_proto.SFTP_FLAG_WRITE | sftp_proto.SFTP_FLAG_CREATE | sftp_proto.SFTP_FLAG_EXCL
        )
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = mode & 0o7777  # applied at create, subject to the server's umask
        try:
            kind, reply = self._client._request(sftp_proto.CMD_OPEN, remote, flags, attrs)
            if kind != sftp_proto.CMD_HANDLE:
                raise TransportError(f"cannot create {path}: server sent no file handle")
            handle = paramiko.SFTPFile(self._client, reply.get_binary(), "wb", _REQUEST_SIZE)
        except TransportError:
            raise
        except OSError as err:
            # SFTPv3 has no "exists" status: OpenSSH answers a generic failure.
            if err.errno is None and self._lstat(remote, path) is not None:
                raise RemoteExistsError(f"cannot create {path}: File exists") from err
            raise oserror_to_transport("create", path, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot create {path}: connection lost ({err})") from err
        handle.set_pipelined(True)

        def write(data: bytes) -> None:
            try:
                with self._errors("write", path):
                    handle.write(data)
            except TransportError:
                _abandon(handle)
                raise

        def close() -> None:
            try:
                with self._errors("write", path):
                    handle.close()
            except TransportError:
                _abandon(handle)
                raise

        return io.BufferedWriter(CallableWriter(write, close), buffer_size=_REQUEST_SIZE)

    def listdir(self, path: str) -> List[str]:
        remote = self._remote(path)
        with self._errors("list", path):
            names: List[str] = self._client.listdir(remote)
            return names

    def mkdir(self, path: str, mode: int = 0o775, exist_ok: bool = True) -> None:
        remote = self._remote(path)
        try:
            self._client.mkdir(remote, mode & 0o7777)
        except OSError as err:
            attrs = self._lstat(remote, path)
            if attrs is not None:
                if exist_ok and statmod.S_ISDIR(attrs.st_mode or 0):
                    return
                raise RemoteExistsError(f"cannot mkdir {path}: File exists") from err
            raise oserror_to_transport("mkdir", path, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot mkdir {path}: connection lost ({err})") from err

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        remote_src, remote_dst = self._remote(src), self._remote(dst)
        what = f"{src} to {dst}"
        try:
            if replace:
                self._client.posix_rename(remote_src, remote_dst)
            else:
                # SFTPv3 RENAME fails when the target exists (OpenSSH: link + unlink).
                self._client.rename(remote_src, remote_dst)
        except OSError as err:
            if err.errno is None and self._lstat(remote_src, src) is not None:
                if not replace and self._lstat(remote_dst, dst) is not None:
                    raise RemoteExistsError(f"cannot rename {what}: File exists") from err
                if replace and "unsupported" in str(err).lower():
                    raise TransportError(
                        f"cannot rename {what}: server lacks posix-rename@openssh.com"
                    ) from err
            raise oserror_to_transport("rename", what, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot rename {what}: connection lost ({err})") from err

    def remove(self, path: str) -> None:
        remote = self._remote(path)
        with self._errors("remove", path):
            self._client.remove(remote)

    def rmtree(self, path: str) -> None:
        if not check_relpath(path):
            raise TransportError("refusing to rmtree the transport root")
        self._rmtree(self._remote(path), path)

    def _rmtree(self, remote: str, path: str) -> None:
        attrs = self._lstat(remote, path)
        if attrs is None:
            return
        with self._errors("rmtree", path):
            if not statmod.S_ISDIR(attrs.st_mode or 0):
                self._client.remove(remote)
                return
            for entry in self._client.listdir_attr(remote):
                child, child_path = f"{remote}/{entry.filename}", f"{path}/{entry.filename}"
                if statmod.S_ISDIR(entry.st_mode or 0):
                    self._rmtree(child, child_path)
                else:
                    self._client.remove(child)
            self._client.rmdir(remote)

    def symlink(self, target: str, path: str) -> None:
        remote = self._remote(path)
        try:
            self._client.symlink(target, remote)
        except OSError as err:
            if err.errno is None and self._lstat(remote, path) is not None:
                raise RemoteExistsError(f"cannot symlink {path}: File exists") from err
            raise oserror_to_transport("symlink", path, err) from err
        except (paramiko.SSHException, EOFError) as err:
            raise TransportError(f"cannot symlink {path}: connection lost ({err})") from err

    def readlink(self, path: str) -> str:
        remote = self._remote(path)
        with self._errors("readlink", path):
            target: Optional[str] = self._client.readlink(remote)
        if target is None:
            raise TransportError(f"cannot readlink {path}: server returned no target")
        return target

    def chmod(self, path: str, mode: int) -> None:
        remote = self._remote(path)
        with self._errors("chmod", path):
            self._client.chmod(remote, mode & 0o7777)

    def utime(self, path: str, times: Tuple[int, int]) -> None:
        remote = self._remote(path)
        with self._errors("utime", path):
            self._client.utime(remote, times)

    def fsync(self, path: str) -> None:
        remote = self._remote(path)
        if not self._has_fsync:
            return  # documented: a no-op when the server lacks fsync@openssh.com
        attrs = self._lstat(remote, path)
        if attrs is None:
            raise RemoteNotFoundError(f"cannot fsync {path}: No such file")
        if not statmod.S_ISREG(attrs.st_mode or 0):
            return  # sftp can only fsync open files, not directories
        with self._errors("fsync", path):
            with self._client.open(remote, "rb") as handle:
                self._client._request(sftp_proto.CMD_EXTENDED, "fsync@openssh.com", handle.handle)

    # -- pipelined batches (many small requests, few round trips) -------------------

    @property
    def _client(self) -> paramiko.SFTPClient:
        """The paramiko client, once every pipelined request has had its reply."""
        for pipe in self._lanes or [self._pipe]:
            if len(pipe):
                with self._errors("finish", ""):
                    pipe.drain()
        return self._sftp

    def _write_lanes(self) -> List[_Pipeline]:
        """Our session plus up to _SESSIONS - 1 more (fewer if they cannot be opened or
        lack an extension we use: that only costs speed)."""
        if self._lanes is not None:
            return self._lanes
        self._lanes = [self._pipe]
        while self._open_session is not None and len(self._lanes) < _SESSIONS:
            try:
                helper = self._open_session()
            except (paramiko.SSHException, OSError, EOFError, TransportError):
                break
            extensions: Dict[str, bytes] = getattr(helper, "server_extensions", {})
            if self._has_fsync and "fsync@openssh.com" not in extensions:
                helper.close()
                break
            self._helpers.append(helper)
            self._lanes.append(_Pipeline(helper))
        return self._lanes

    def _pipeline(self, requests: Iterable[Tuple[int, bytes]], what: str, *,
                  spread: bool = False) -> List[Tuple[int, bytes]]:
        """Send the requests without waiting (at most _MAX_WAITING unanswered per session),
        return their replies (type, body) in request order. They run in order on our
        session, or, with ``spread``, in any order over the sessions write_files opened."""
        replies: List[Tuple[int, bytes]] = []
        lanes = (self._lanes or [self._pipe]) if spread else [self._pipe]

        def keep(index: int) -> _Handler:
            def handler(kind: int, body: bytes) -> None:
                replies[index] = (kind, body)
            return handler

        with self._errors(what, ""):
            for kind, body in requests:
                pipe = lanes[len(replies) % len(lanes)]
                replies.append((-1, b""))
                pipe.request(kind, body, keep(len(replies) - 1))
                if len(pipe) >= _MAX_WAITING:
                    for other in lanes:
                        other.flush()
                    pipe.wait(lambda: len(pipe) < _MAX_WAITING // 2)
            for pipe in lanes:
                pipe.flush()
            for pipe in lanes:
                pipe.drain()
        return replies

    def write_files(self, items: Iterable[WriteItem], *, fsync: bool) -> None:
        """Upload small files as a stream: each file is written, FSETSTATed (exact mode,
        whatever the server's umask) and fsynced (when asked), closed, and only when all of
        that succeeded renamed (``posix-rename``) over its target, as with ``open_write``.
        ``items`` may be a generator: its next file is read while earlier ones are on the
        wire, and it may call other methods of this transport (they wait for the stream)."""
        with self._errors("start", "more sftp sessions"):
            lanes = self._write_lanes()
        writers = [_FileWriter(pipe, self._remote, fsync and self._has_fsync, _REQUEST_SIZE)
                   for pipe in lanes]
        iterator = iter(items)
        try:
            for item in iterator:  # the producer's own errors pass through untouched
                with self._errors("write", item.tmp):
                    min(writers, key=lambda w: len(w.pipe)).start(item)
                    self._keep_up(writers)
                if any(w.failure is not None for w in writers):
                    break
            with self._errors("write", "files"):
                for pipe in lanes:
                    pipe.drain()
        except BaseException:
            for pipe in lanes:
                self._abandon_stream(pipe)
            raise
        for writer in writers:
            if writer.failure is not None:
                raise TransportError(writer.failure)

    @staticmethod
    def _keep_up(writers: List[_FileWriter]) -> None:
        """Handle the replies that are here; block (on the session owing the most) while
        too many requests or too much data wait for replies."""
        for writer in writers:
            writer.pipe.poll()
        while (sum(w.held for w in writers) >= _MAX_HELD
               or any(len(w.pipe) >= _MAX_WAITING for w in writers)):
            for writer in writers:
                writer.pipe.flush()
            max(writers, key=lambda w: len(w.pipe)).pipe.receive()

    @staticmethod
    def _abandon_stream(pipe: _Pipeline) -> None:
        """After an error elsewhere (the items' producer, say), collect what is due so the
        client stays usable; a dead connection is the first error's business."""
        try:
            pipe.drain()
        except Exception:
            pass

    def rename_many(self, pairs: List[Tuple[str, str]]) -> List[Optional[str]]:
        """Pipelined renames that never replace (SFTPv3 RENAME), in any order (spread over
        the sessions); per pair None or the server's error text (the caller sorts out
        "exists" from real failures)."""
        requests = ((_FXP_RENAME, _path(self._remote(src)) + _path(self._remote(dst)))
                    for src, dst in pairs)
        out: List[Optional[str]] = []
        for kind, body in self._pipeline(requests, "rename", spread=True):
            code, text = _status(kind, body)
            out.append(None if code == sftp_proto.SFTP_OK else text)
        return out

    def make_dirs(self, paths: List[str], mode: int = 0o775) -> None:
        """Pipelined ``mkdir``; failures (mostly: it exists) are ignored, a real one shows
        up at the first use of the dir."""
        attrs = _attrs(mode)
        self._pipeline(((_FXP_MKDIR, _path(self._remote(p)) + attrs) for p in paths), "mkdir")

    def remove_dirs(self, paths: List[str]) -> None:
        """Pipelined ``rmdir`` of empty dirs; failures are left to a later rmtree."""
        self._pipeline(((_FXP_RMDIR, _path(self._remote(p))) for p in paths), "rmdir")

    @property
    def supports_fsync(self) -> bool:
        """Whether fsync() really reaches the disk (the server has fsync@openssh.com)."""
        return self._has_fsync

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for client in [*self._helpers, self._sftp]:
                try:
                    client.close()
                except Exception:  # closing a dead connection is not an error worth reporting
                    pass
        finally:
            if self._on_close is not None:
                self._on_close()


