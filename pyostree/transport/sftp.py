"""FileTransport over a paramiko SFTPClient (whatever carries it: a paramiko channel or ssh pipes)."""

from __future__ import annotations

import contextlib
import errno
import io
import stat as statmod
import struct
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple

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


class _Replies:
    """Collects the answers to pipelined requests (paramiko calls ``_async_response``)."""

    def __init__(self) -> None:
        self.replies: Dict[int, Tuple[int, paramiko.Message]] = {}

    def _async_response(self, kind: int, msg: paramiko.Message, num: int) -> None:
        self.replies[num] = (kind, msg)


def _status(reply: Tuple[int, paramiko.Message]) -> Tuple[int, str]:
    """(code, message) of a STATUS reply; (-1, ...) for anything else."""
    kind, msg = reply
    if kind != sftp_proto.CMD_STATUS:
        return -1, f"unexpected reply {kind}"
    code = msg.get_int()
    try:
        text = msg.get_text()
    except Exception:
        text = ""
    return code, text or f"status {code}"


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


class SftpFileTransport(FileTransport):
    """Remote files over sftp, rooted at ``root``; ``on_close`` releases the carrier."""

    def __init__(
        self,
        client: paramiko.SFTPClient,
        root: str,
        on_close: Optional[Callable[[], None]] = None,
    ) -> None:
        self._client = client
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

    # -- pipelined batches (many small requests, one round trip) -------------------

    def _pipeline(self, requests: List[Tuple[int, Tuple[Any, ...]]], what: str) -> List[Tuple[int, paramiko.Message]]:
        """Send every request without waiting, then read the replies (in request order).
        Batches must stay small enough that the replies fit in the pipe back to us."""
        collector = _Replies()
        client = self._client
        with self._errors(what, ""):
            nums = [client._async_request(collector, kind, *args) for kind, args in requests]
            while len(collector.replies) < len(nums):
                client._read_response()
        return [collector.replies[num] for num in nums]

    def write_files(self, items: List[WriteItem], *, fsync: bool) -> None:
        """Upload small files in two round trips: all OPENs, then every WRITE, SETSTAT,
        fsync, CLOSE and the ``posix-rename`` of each temp file over its target. Each file
        is complete (and fsynced when asked) before its rename, as with ``open_write``."""
        if not items:
            return
        flags = (
            sftp_proto.SFTP_FLAG_WRITE | sftp_proto.SFTP_FLAG_CREATE | sftp_proto.SFTP_FLAG_EXCL
        )
        opens: List[Tuple[int, Tuple[Any, ...]]] = []
        for item in items:
            attrs = paramiko.SFTPAttributes()
            attrs.st_mode = item.mode & 0o7777
            opens.append((sftp_proto.CMD_OPEN, (self._remote(item.tmp), flags, attrs)))
        replies = self._pipeline(opens, "create")
        handles: List[bytes] = []
        failed: Optional[str] = None
        for item, (kind, msg) in zip(items, replies):
            if kind == sftp_proto.CMD_HANDLE:
                handles.append(msg.get_binary())
            elif failed is None:
                failed = f"cannot create {item.tmp}: {_status((kind, msg))[1]}"
        if failed is not None:
            self._pipeline([(sftp_proto.CMD_CLOSE, (h,)) for h in handles], "close")
            raise TransportError(failed)
        requests: List[Tuple[int, Tuple[Any, ...]]] = []
        owners: List[str] = []
        for item, handle in zip(items, handles):
            view = memoryview(item.data)
            for offset in range(0, len(view), _REQUEST_SIZE):
                chunk = bytes(view[offset:offset + _REQUEST_SIZE])
                requests.append((sftp_proto.CMD_WRITE, (handle, sftp_proto.int64(offset), chunk)))
                owners.append(f"write {item.tmp}")
            attrs = paramiko.SFTPAttributes()
            attrs.st_mode = item.mode & 0o7777  # exact bits, whatever the server's umask
            if item.mtime is not None:
                attrs.st_atime = attrs.st_mtime = item.mtime
            requests.append((sftp_proto.CMD_FSETSTAT, (handle, attrs)))
            owners.append(f"chmod {item.tmp}")
            if fsync and self._has_fsync:
                requests.append((sftp_proto.CMD_EXTENDED, ("fsync@openssh.com", handle)))
                owners.append(f"fsync {item.tmp}")
            requests.append((sftp_proto.CMD_CLOSE, (handle,)))
            owners.append(f"close {item.tmp}")
        for item in items:
            requests.append((sftp_proto.CMD_EXTENDED, (
                "posix-rename@openssh.com", self._remote(item.tmp), self._remote(item.target))))
            owners.append(f"rename {item.tmp} to {item.target}")
        for owner, reply in zip(owners, self._pipeline(requests, "write")):
            code, text = _status(reply)
            if code != sftp_proto.SFTP_OK:
                raise TransportError(f"cannot {owner}: {text}")

    def rename_many(self, pairs: List[Tuple[str, str]]) -> List[Optional[str]]:
        """Pipelined renames that never replace (SFTPv3 RENAME); per pair None or the
        server's error text (the caller sorts out "exists" from real failures)."""
        requests = [(sftp_proto.CMD_RENAME, (self._remote(src), self._remote(dst)))
                    for src, dst in pairs]
        out: List[Optional[str]] = []
        for reply in self._pipeline(requests, "rename"):
            code, text = _status(reply)
            out.append(None if code == sftp_proto.SFTP_OK else text)
        return out

    def make_dirs(self, paths: List[str], mode: int = 0o775) -> None:
        """Pipelined ``mkdir``; failures (mostly: it exists) are ignored, a real one shows
        up at the first use of the dir."""
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = mode & 0o7777
        self._pipeline([(sftp_proto.CMD_MKDIR, (self._remote(p), attrs)) for p in paths], "mkdir")

    def remove_dirs(self, paths: List[str]) -> None:
        """Pipelined ``rmdir`` of empty dirs; failures are left to a later rmtree."""
        self._pipeline([(sftp_proto.CMD_RMDIR, (self._remote(p),)) for p in paths], "rmdir")

    @property
    def supports_fsync(self) -> bool:
        """Whether fsync() really reaches the disk (the server has fsync@openssh.com)."""
        return self._has_fsync

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        except Exception:  # closing a dead connection is not an error worth reporting
            pass
        finally:
            if self._on_close is not None:
                self._on_close()


