"""Small file-system helpers of the write side: durable syncs, temp files, full writes."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import TYPE_CHECKING, Callable, List, Optional, Union

if TYPE_CHECKING:
    import mmap

__all__ = [
    "BytesReader",
    "TmpFile",
    "fsync_dir",
    "page_dropper",
    "parallel_io",
    "process_umask",
    "rename_noreplace",
    "syncfs",
    "unlink_quietly",
    "write_all",
]

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# What a kernel, libc or file system without RENAME_NOREPLACE answers (ENOTSUP is EOPNOTSUPP on Linux).
_NOREPLACE_UNSUPPORTED = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP))
_STATUS_PATH = "/proc/self/status"


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
    """An open temp object file in the staging dir; ``public`` once known to be mode 0644."""

    __slots__ = ("fd", "path", "public")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.public = False

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


_Renameat2 = Callable[[int, bytes, int, bytes, int], int]
_RENAMEAT2: Optional[_Renameat2] = None
_RENAMEAT2_LOOKED_UP = False


def _renameat2() -> Optional[_Renameat2]:
    """libc's ``renameat2`` (glibc ≥ 2.28), looked up once; None where there is none."""
    global _RENAMEAT2, _RENAMEAT2_LOOKED_UP
    if not _RENAMEAT2_LOOKED_UP:
        try:
            function = _libc().renameat2
            function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
            function.restype = ctypes.c_int
            _RENAMEAT2 = function
        except (OSError, AttributeError):
            _RENAMEAT2 = None
        _RENAMEAT2_LOOKED_UP = True
    return _RENAMEAT2


def rename_noreplace(source: str, target: str) -> Optional[bool]:
    """Move ``source`` to ``target`` unless ``target`` exists, atomically (``renameat2``
    with ``RENAME_NOREPLACE``): True when moved, False when ``target`` exists (``source``
    stays), None when this system or file system cannot do it (nothing happened)."""
    function = _renameat2()
    if function is None:
        return None
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        return False
    if err in _NOREPLACE_UNSUPPORTED:
        return None
    raise OSError(err, os.strerror(err), source, None, target)


def process_umask() -> Optional[int]:
    """The umask read from ``/proc/self/status`` (Linux ≥ 4.7), None if unreadable.

    ``os.umask`` cannot read it without setting it, which races with other threads."""
    try:
        fd = os.open(_STATUS_PATH, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)
    for line in data.split(b"\n"):
        if line.startswith(b"Umask:"):
            try:
                return int(line[6:].strip(), 8)
            except ValueError:
                return None
    return None


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_all(fd: int, data: Union[bytes, bytearray, memoryview]) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_PARALLEL_IO = 8


def parallel_io(function: Callable[[str], None], paths: List[str]) -> None:
    """``function`` on every path, blocking calls overlapped in a few threads; raises the
    first error (the others stop at their next path). Plain threads: concurrent.futures
    and the logging it imports cost a receiver ~4 ms to load at every commit."""
    import threading  # not at module level: the read path loads this module, not threads

    if len(paths) < 4:
        for path in paths:
            function(path)
        return
    pending = iter(paths)
    guard = threading.Lock()
    errors: List[BaseException] = []

    def work() -> None:
        while not errors:
            with guard:
                path = next(pending, None)
            if path is None:
                return
            try:
                function(path)
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=work, name="parallel-io", daemon=True)
               for _ in range(min(_PARALLEL_IO, len(paths)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def page_dropper(mapped: "mmap.mmap") -> Callable[[int, int], None]:
    """``release(start, end)`` for a read-only mapping read front to back: the whole pages
    in that range are dropped (MADV_DONTNEED), so a big mapped object is never resident
    whole however far the reader gets."""
    import mmap as mmap_module

    page = mmap_module.PAGESIZE

    def release(start: int, end: int) -> None:
        start = -(-start // page) * page
        end = end // page * page
        if end > start:
            mapped.madvise(mmap_module.MADV_DONTNEED, start, end - start)

    return release
