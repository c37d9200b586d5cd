"""Small file-system helpers of the write side: durable syncs, temp files, full writes."""

from __future__ import annotations

import ctypes
import os
from typing import Optional

__all__ = ["BytesReader", "TmpFile", "fsync_dir", "syncfs", "unlink_quietly", "write_all"]


def syncfs(fd: int) -> None:
    """``syncfs`` via libc (stdlib ctypes); ``sync`` where that is unavailable."""
    try:
        libc = _libc()
        if libc.syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.sync()


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BytesReader:
    """``read(n)`` over bytes already in memory."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> bytes:
        chunk = bytes(self._view[self._pos:self._pos + size])
        self._pos += len(chunk)
        return chunk


class TmpFile:
    """An open temp object file in the staging dir."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        unlink_quietly(self.path)


_LIBC: Optional[ctypes.CDLL] = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
