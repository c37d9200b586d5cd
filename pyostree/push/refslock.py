"""One lock file serialising "read refs, move refs, rewrite summary" across pushers.

sftp has no locks, so it is a file created exclusively, holding its creation time, pid
and boot id; one left by a crashed pusher is broken after STALE_LOCK_SECS, or at once by a
process of the same boot that finds the holder's pid gone (a killed receiver). The receiver takes the same
lock around its summary rewrite, so whichever pusher writes the summary last has seen
every ref update that finished before it: the final summary is never stale.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from typing import Callable, Iterator, List, Optional

from pyostree.errors import PushError
from pyostree.transport import FileTransport, RemoteExistsError, RemoteNotFoundError

__all__ = ["LOCK_WAIT_SECS", "REFS_LOCK", "STALE_LOCK_SECS", "refs_lock"]

REFS_LOCK = "tmp/pyostree-push-refs.lock"
STALE_LOCK_SECS = 120
LOCK_WAIT_SECS = 10.0


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            return handle.read(64).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _try_create(files: FileTransport) -> bool:
    """Write the whole line to a temp file, then rename it to the lock's name without
    replacing: the lock never exists without its content, so no stall of ours (between
    creating and writing) can make a live lock look abandoned to another pusher."""
    temp = f"{REFS_LOCK}.{secrets.token_hex(8)}"
    with files.open_write(temp, mode=0o644) as handle:
        # "time pid boot": a holder on this very boot can be checked for life
        handle.write(f"{int(time.time())} {os.getpid()} {_boot_id()}\n".encode("ascii"))
    try:
        files.rename(temp, REFS_LOCK, replace=False)
    except RemoteExistsError:
        return False
    finally:
        try:
            files.remove(temp)
        except RemoteNotFoundError:
            pass
    return True


INCOMPLETE_LOCK_SECS = 5.0
"""A lock file still without its closing newline after this long lost its writer (only
pushers before the rename-into-place lock write one in place)."""


def _read_lock(files: FileTransport) -> Optional[str]:
    try:
        return files.read_bytes(REFS_LOCK, 128).decode("ascii", "replace")
    except RemoteNotFoundError:
        return None


def _is_stale(text: str, incomplete_since: List[float]) -> bool:
    """Older than STALE_LOCK_SECS, or written by a process of this boot that is gone (a
    killed receiver must not block every push for two minutes). A lock whose content is
    not complete yet is being written by its creator right now: never stale (reading it
    as time 0 let a second pusher break a live lock and both moved the same ref)."""
    if not text.endswith("\n"):
        now = time.monotonic()
        if not incomplete_since:
            incomplete_since.append(now)
        return now - incomplete_since[0] > INCOMPLETE_LOCK_SECS
    incomplete_since.clear()
    fields = text.split()
    try:
        stamp = int(fields[0])
    except (IndexError, ValueError):
        return True  # complete but not ours: garbage
    if time.time() - stamp > STALE_LOCK_SECS:
        return True
    if len(fields) >= 3 and fields[1].isdigit() and fields[2] == _boot_id():
        try:
            os.kill(int(fields[1]), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # alive (maybe another user's)
    return False


@contextlib.contextmanager
def refs_lock(
    files: FileTransport, log: Callable[[str], None], *, wait: float = LOCK_WAIT_SECS
) -> Iterator[None]:
    """Hold the refs lock of the repo behind ``files``; a live holder is waited for up to
    ``wait`` seconds, a stale one (see ``_is_stale``) is broken at once."""
    files.mkdir("tmp", exist_ok=True)
    deadline = time.monotonic() + wait
    incomplete_since: List[float] = []
    while not _try_create(files):
        text = _read_lock(files)
        if text is not None and _is_stale(text, incomplete_since) and _read_lock(files) == text:
            # (re-read just before removing: a breaker that lost the race must not remove
            # the lock the winner has just created)
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
