"""Linux OFD record locks, the primitive libostree uses for ``.lock`` and staging dirs.

BSD ``flock()`` locks do not conflict with OFD locks, so only these exclude libostree.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from typing import Callable, Optional

from pyostree.errors import LockError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_SECS",
    "OfdLock",
    "RepoLock",
    "ofd_lock",
    "ofd_unlock",
]

DEFAULT_LOCK_TIMEOUT_SECS = 300

# Values from <fcntl.h>; Python >= 3.9 exposes F_OFD_* on Linux but keep a fallback.
_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
_F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)


def _flock_struct(lock_type: int) -> bytes:
    """``struct flock`` for the whole file (x86-64/aarch64 layout: short, short, off_t, off_t, pid_t)."""
    return struct.pack("hhqqi4x", lock_type, os.SEEK_SET, 0, 0, 0)


def ofd_lock(fd: int, exclusive: bool, *, wait: bool) -> bool:
    """Take an OFD lock on the whole file; False when ``wait`` is off and it is held elsewhere."""
    lock_type = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
    command = _F_OFD_SETLKW if wait else _F_OFD_SETLK
    try:
        fcntl.fcntl(fd, command, _flock_struct(lock_type))
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES) and not wait:
            return False
        raise LockError(f"locking failed: {os.strerror(err.errno or 0)}") from None
    return True


def ofd_unlock(fd: int) -> None:
    """Release whatever OFD lock this open file description holds."""
    fcntl.fcntl(fd, _F_OFD_SETLK, _flock_struct(fcntl.F_UNLCK))


class OfdLock:
    """An open lock file plus the OFD lock held on it (released on close)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def try_acquire(cls, path: str, *, mode: int = 0o600, nofollow: bool = True) -> Optional[OfdLock]:
        """Exclusive, non-blocking: the staging-directory lock protocol."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        if nofollow:
            flags |= os.O_NOFOLLOW
        try:
            fd = os.open(path, flags, mode)
        except OSError as err:
            raise LockError(f"cannot open lock file {os.path.basename(path)}: {err.strerror}") from None
        try:
            if ofd_lock(fd, True, wait=False):
                return cls(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the description drops the OFD lock
            self.fd = -1


class RepoLock:
    """The repository's ``.lock``: shared while writing, exclusive while deleting objects.

    ``timeout_secs`` follows ``core.lock-timeout-secs``: -1 blocks, otherwise a
    non-blocking attempt once per second until it runs out, as libostree does.
    A lock may be upgraded from shared to exclusive and back (``prune`` inside a repo
    held shared is the same open file description, so no self-deadlock).
    """

    def __init__(
        self,
        repo_path: str,
        *,
        enabled: bool = True,
        timeout_secs: int = DEFAULT_LOCK_TIMEOUT_SECS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._path = os.path.join(repo_path, ".lock")
        self._enabled = enabled
        self._timeout = timeout_secs
        self._sleep = sleep
        self._fd = -1
        self._stack: list[bool] = []  # True = exclusive, innermost last

    @property
    def held(self) -> bool:
        return bool(self._stack)

    def acquire(self, exclusive: bool) -> None:
        """Push a lock level; the strongest level on the stack is what the kernel holds."""
        if not self._enabled:
            self._stack.append(exclusive)
            return
        if self._fd < 0:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
            except OSError as err:
                raise LockError(f"cannot open repo lock file: {err.strerror}") from None
        want_exclusive = exclusive or any(self._stack)
        have_exclusive = any(self._stack)
        if not self._stack or want_exclusive != have_exclusive:
            self._take(want_exclusive)
        self._stack.append(exclusive)

    def release(self) -> None:
        """Pop the innermost level, downgrading or unlocking as needed."""
        if not self._stack:
            raise LockError("repo lock released more often than taken")
        self._stack.pop()
        if not self._enabled:
            return
        if not self._stack:
            ofd_unlock(self._fd)
            os.close(self._fd)
            self._fd = -1
        elif not any(self._stack):
            self._take(False)  # downgrade exclusive -> shared, never blocks

    def _take(self, exclusive: bool) -> None:
        what = "exclusive" if exclusive else "shared"
        if self._timeout < 0:
            ofd_lock(self._fd, exclusive, wait=True)
            return
        waited = 0
        while not ofd_lock(self._fd, exclusive, wait=False):
            if waited >= self._timeout:
                raise LockError(f"locking repo {what} failed: timed out after {self._timeout}s")
            self._sleep(1.0)
            waited += 1

    def __enter__(self) -> RepoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._stack:
            self.release()
