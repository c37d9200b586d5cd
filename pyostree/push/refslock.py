"""One lock file serialising "read refs, move refs, rewrite summary" across pushers.

sftp has no locks, so it is a file created exclusively, holding its creation time; one
left by a crashed pusher is broken after STALE_LOCK_SECS. The receiver takes the same
lock around its summary rewrite, so whichever pusher writes the summary last has seen
every ref update that finished before it: the final summary is never stale.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from pyostree.errors import PushError
from pyostree.transport import FileTransport, RemoteExistsError, RemoteNotFoundError

__all__ = ["LOCK_WAIT_SECS", "REFS_LOCK", "STALE_LOCK_SECS", "refs_lock"]

REFS_LOCK = "tmp/pyostree-push-refs.lock"
STALE_LOCK_SECS = 120
LOCK_WAIT_SECS = 10.0


def _try_create(files: FileTransport) -> bool:
    try:
        with files.open_write(REFS_LOCK, mode=0o644) as handle:
            handle.write(f"{int(time.time())}\n".encode("ascii"))
    except RemoteExistsError:
        return False
    return True


def _lock_age(files: FileTransport) -> float:
    try:
        stamp = int(files.read_bytes(REFS_LOCK, 64).decode("ascii").strip())
    except (ValueError, RemoteNotFoundError):
        stamp = 0
    return time.time() - stamp


@contextlib.contextmanager
def refs_lock(
    files: FileTransport, log: Callable[[str], None], *, wait: float = LOCK_WAIT_SECS
) -> Iterator[None]:
    """Hold the refs lock of the repo behind ``files``; a live holder is waited for up to
    ``wait`` seconds, a stale one (older than STALE_LOCK_SECS) is broken at once."""
    files.mkdir("tmp", exist_ok=True)
    deadline = time.monotonic() + wait
    while not _try_create(files):
        if _lock_age(files) > STALE_LOCK_SECS:
            log("removing a stale refs lock left by a crashed push")
            try:
                files.remove(REFS_LOCK)
            except RemoteNotFoundError:
                pass
            continue
        if time.monotonic() >= deadline:
            raise PushError("another push is updating refs on the remote; try again")
        time.sleep(0.05)
    try:
        yield
    finally:
        try:
            files.remove(REFS_LOCK)
        except RemoteNotFoundError:
            pass
