"""The abstract file and command operations every transport provides.

Push is written once against these ABCs; local, sftp (paramiko or OpenSSH) and the
exec channel plug in underneath and pass one contract test suite.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import BinaryIO, List, Optional, Tuple

from ..errors import TransportError

__all__ = [
    "RemoteStat",
    "FileTransport",
    "ExecChannel",
    "RemoteExistsError",
    "RemoteNotFoundError",
    "HostKeyError",
    "check_relpath",
]


class RemoteExistsError(TransportError, FileExistsError):
    """An exclusive create or no-replace rename hit an existing path."""


class RemoteNotFoundError(TransportError, FileNotFoundError):
    """The path (or its parent) does not exist on the remote."""


class HostKeyError(TransportError):
    """The server's host key is unknown or has changed; nothing was sent to it."""


@dataclass(frozen=True)
class RemoteStat:
    """What lstat tells us about a remote path; ``mode`` includes the type bits."""

    size: int
    mode: int


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a safe relative path, else raise TransportError.

    ``""`` and ``"."`` mean the root itself. Absolute paths, ``..``, empty components and
    NUL are refused so a caller can never step outside the repo root.
    """
    if path in ("", "."):
        return ""
    if "\x00" in path:
        raise TransportError(f"path {path!r} contains NUL")
    if path.startswith("/"):
        raise TransportError(f"path {path!r} is absolute; transport paths are relative")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise TransportError(f"path {path!r} has an empty, '.' or '..' component")
    return path


class FileTransport(abc.ABC):
    """File operations under one remote repo root.

    Paths are relative, '/'-separated, never absolute or '..' (see :func:`check_relpath`).
    Every failure is a :class:`TransportError` (or one of its subclasses above). Reads,
    chmod and utime follow symlinks (as sftp does); stat, remove, rename and rmtree do not.
    One instance is not safe to use from several threads at once: open one per thread.
    """

    @abc.abstractmethod
    def stat(self, path: str) -> Optional[RemoteStat]:
        """lstat ``path``; None if it does not exist."""

    @abc.abstractmethod
    def read_bytes(self, path: str, max_size: int) -> bytes:
        """Whole small file; TransportError if it is larger than ``max_size``."""

    @abc.abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """A stream for a possibly large file (prefetched over sftp)."""

    @abc.abstractmethod
    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        """Create ``path`` exclusively (O_EXCL); RemoteExistsError if it exists.

        Data may be pipelined: write errors can surface at ``close()``, which must be called.
        """

    @abc.abstractmethod
    def listdir(self, path: str) -> List[str]:
        """Names in a directory (no ``.``/``..``), in no particular order."""

    @abc.abstractmethod
    def mkdir(self, path: str, mode: int = 0o775, exist_ok: bool = True) -> None:
        """Create one directory (not parents)."""

    @abc.abstractmethod
    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        """replace=True: atomic replace (posix-rename@openssh.com over sftp).

        replace=False: RemoteExistsError if ``dst`` exists.
        """

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Unlink a file or symlink."""

    @abc.abstractmethod
    def rmtree(self, path: str) -> None:
        """Remove a directory tree without following symlinks; missing is fine."""

    @abc.abstractmethod
    def symlink(self, target: str, path: str) -> None:
        """Create symlink ``path`` pointing at ``target`` (stored verbatim)."""

    @abc.abstractmethod
    def readlink(self, path: str) -> str:
        """The target of symlink ``path``."""

    @abc.abstractmethod
    def chmod(self, path: str, mode: int) -> None:
        """Set permission bits."""

    @abc.abstractmethod
    def utime(self, path: str, times: Tuple[int, int]) -> None:
        """Set (atime, mtime) in seconds."""

    @abc.abstractmethod
    def fsync(self, path: str) -> None:
        """Flush a file to stable storage.

        Over sftp this uses ``fsync@openssh.com`` when the server supports it and is a
        no-op otherwise (and always for directories, which sftp cannot fsync).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; further calls fail."""

    def __enter__(self) -> "FileTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExecChannel(abc.ABC):
    """A command running on the remote host with its stdio as byte streams.

    Close ``stdin`` to send EOF. Read ``stdout``/``stderr`` concurrently (or one of them
    fully before the other) to avoid filling a pipe.
    """

    stdin: BinaryIO
    stdout: BinaryIO
    stderr: BinaryIO

    @abc.abstractmethod
    def wait(self) -> int:
        """Block until the command exits; its exit status (-1 if unknown)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the streams and release the command (kills it if still running)."""

    def finish(self) -> None:
        """Release a command that has said all it had to (its exit status is not wanted):
        here ``wait`` then ``close``; an ssh channel closes without waiting for the status,
        which would cost the remote's exit and one more message back."""
        try:
            self.wait()
        finally:
            self.close()

    def __enter__(self) -> "ExecChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
