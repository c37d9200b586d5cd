"""One lock serialising "read refs, move refs, rewrite summary" across pushers.

sftp offers no locks, so the lock is a directory, ``tmp/pyostree-push-refs.lock``, holding one
entry named by its holder's random token (``TIME PID BOOT_ID PIDNS OFD MACHINE_ID``). It is taken by
building a full directory under a temp name and ``posix-rename``-ing it onto the lock's
name: rename(2) replaces a missing or empty directory but never a non-empty one, so the
lock appears with its owner in one step. Release and breaking remove only the entry of
the token they read (by its unique name), so a breaker that lost a race, or a holder whose
lock was broken, finds nothing to remove and can never remove another holder's lock; the
empty directory left behind counts as free (it is removed with rmdir where the transport
has one, which fails on a non-empty directory).

A holder's entry is broken when the holder is provably gone: a pusher local to the repo
(the receiver) first takes an OFD lock on ``tmp/pyostree-push-refs.ofd``, a file that
nobody unlinks, and names its inode in its entry; a breaker that holds that same OFD
lock on the same boot knows the entry's holder is dead, whatever PID namespace either is
in (the kernel drops the lock with the holder); so does one holding it on the same machine
(``/etc/machine-id``) after the holder's boot ended, as after a power cut. Without that, a holder of the same boot
*and the same PID namespace* whose pid is gone is dead; otherwise only age
(STALE_LOCK_SECS) breaks an entry: a pid not found in another namespace (a container)
says nothing. The receiver takes the same lock around its summary rewrite, so whichever
pusher writes the summary last has seen every ref update that finished before it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional

from pyostree.errors import LockError, PushError, TransportError
from pyostree.transport import FileTransport, RemoteNotFoundError

if TYPE_CHECKING:
    from pyostree.repo.lock import OfdLock

__all__ = [
    "LOCK_WAIT_SECS", "REFS_LOCK", "REFS_OFD_LOCK", "STALE_LOCK_SECS", "LockOwner", "lock_owners",
    "refs_lock",
]

REFS_LOCK = "tmp/pyostree-push-refs.lock"
REFS_OFD_LOCK = "tmp/pyostree-push-refs.ofd"
STALE_LOCK_SECS = 120
LOCK_WAIT_SECS = 10.0
MAX_OWNER_SIZE = 256
_NEW = ".new-"
_TOKEN = re.compile(r"[0-9a-f]{32}\Z")
_POLL_SECS = 0.05

INCOMPLETE_LOCK_SECS = 5.0
"""A lock *file* (pushers before the lock directory) still without its closing newline
after this long lost its writer."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            return handle.read(64).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _machine_id() -> str:
    """This machine's id ("" when unknown): a boot id other than ours from this machine is a
    boot that has ended, and every process of it with it."""
    try:
        with open("/etc/machine-id", "rb") as handle:
            text = handle.read(64).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if re.fullmatch(r"[0-9a-f]{32}", text) else ""


def _pid_ns() -> str:
    """The inode of our PID namespace ("" when unknown): a pid means something only there."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    inode = link.partition("[")[2].rstrip("]")
    return inode if inode.isdigit() else ""


@dataclass(frozen=True)
class LockOwner:
    """One holder's entry in the lock directory."""

    token: str
    stamp: int
    pid: int
    boot: str
    pidns: str  # "" when the holder did not know it
    ofd: str  # "DEV:INO" of the OFD lock file it held, "" when it held none
    machine: str = ""  # its /etc/machine-id, "" when unknown

    def line(self) -> str:
        return (f"{self.stamp} {self.pid} {self.boot or '-'} {self.pidns or '-'} {self.ofd or '-'} "
                f"{self.machine or '-'}\n")

    @classmethod
    def parse(cls, token: str, text: str) -> Optional[LockOwner]:
        fields = text.split()  # later versions may add fields
        if not text.endswith("\n") or len(fields) < 5 or not fields[0].isdigit() or not fields[1].isdigit():
            return None
        boot, pidns, ofd, machine = (("" if f == "-" else f) for f in (fields[2:6] + ["-"])[:4])
        return cls(token, int(fields[0]), int(fields[1]), boot, pidns, ofd, machine)


def lock_owners(files: FileTransport) -> List[str]:
    """Tokens of the entries in the lock directory (empty when it is free)."""
    try:
        info = files.stat(REFS_LOCK)
        if info is None or not stat.S_ISDIR(info.mode):
            return []
        return sorted(files.listdir(REFS_LOCK))
    except RemoteNotFoundError:
        return []


class _Kernel:
    """The OFD lock of a pusher local to the repo, and the inode it is on."""

    def __init__(self, lock: OfdLock, ident: str) -> None:
        self.lock, self.ident = lock, ident


def _local_root(files: FileTransport) -> Optional[str]:
    from pyostree.transport import LocalFileTransport

    if isinstance(files, LocalFileTransport):
        return files.root  # the repo is on this machine: its kernel can lock for us
    return None


def _take_kernel_lock(root: str, deadline: float, log: Callable[[str], None]) -> Optional[_Kernel]:
    from pyostree.repo.lock import OfdLock

    path = os.path.join(root, REFS_OFD_LOCK)
    while True:
        try:
            lock = OfdLock.try_acquire(path, mode=0o644)
        except LockError as err:  # a file system without OFD locks: the directory alone
            log(f"refs lock: no kernel lock ({err}); relying on the lock directory")
            return None
        if lock is not None:
            break
        if time.monotonic() >= deadline:
            raise PushError("another push is updating refs on the remote; try again")
        time.sleep(_POLL_SECS)
    try:
        os.utime(lock.fd)  # fresh: libostree expires tmp/ entries a day old
        st = os.fstat(lock.fd)
    except OSError:
        lock.close()
        raise
    return _Kernel(lock, f"{st.st_dev}:{st.st_ino}")


def _owner_is_gone(owner: LockOwner, kernel: Optional[_Kernel]) -> bool:
    """Only what proves the holder dead, or an age no push needs (see the module doc)."""
    boot = _boot_id()
    if kernel is not None and owner.ofd == kernel.ident and owner.boot == boot and boot:
        return True  # it held this very lock while its entry stood, and we hold it now
    if (kernel is not None and owner.ofd == kernel.ident and owner.boot and boot and owner.boot != boot
            and owner.machine and owner.machine == _machine_id()):
        return True  # this machine's kernel lock, from a boot of this machine that has ended
    if owner.boot == boot and boot and owner.pidns and owner.pidns == _pid_ns():
        try:
            os.kill(owner.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass  # alive (maybe another user's)
    return time.time() - owner.stamp > STALE_LOCK_SECS


def _legacy_is_stale(text: str, incomplete_since: List[float]) -> bool:
    """A lock file of an older pyostree: older than STALE_LOCK_SECS, or unparsable, or
    without its newline for INCOMPLETE_LOCK_SECS. Its pid is not trusted (another PID
    namespace may have written it)."""
    if not text.endswith("\n"):
        now = time.monotonic()
        if not incomplete_since:
            incomplete_since.append(now)
        return now - incomplete_since[0] > INCOMPLETE_LOCK_SECS
    incomplete_since.clear()
    try:
        stamp = int(text.split()[0])
    except (IndexError, ValueError):
        return True
    return time.time() - stamp > STALE_LOCK_SECS


class _Acquirer:
    def __init__(self, files: FileTransport, log: Callable[[str], None], kernel: Optional[_Kernel]) -> None:
        self.files, self.log, self.kernel = files, log, kernel
        self.owner = LockOwner(secrets.token_hex(16), int(time.time()), os.getpid(), _boot_id(),
                               _pid_ns(), kernel.ident if kernel else "", _machine_id())
        self.new = f"{REFS_LOCK}{_NEW}{self.owner.token}"
        self.incomplete_since: List[float] = []

    def prepare(self) -> None:
        """The whole lock directory under a temp name: it can only appear complete."""
        self.files.mkdir(self.new, exist_ok=False)
        with self.files.open_write(f"{self.new}/{self.owner.token}", mode=0o644) as handle:
            handle.write(self.owner.line().encode("ascii"))

    def try_take(self) -> Optional[TransportError]:
        try:
            self.files.rename(self.new, REFS_LOCK, replace=True)
        except TransportError as err:
            return err
        return None

    def clear_way(self) -> bool:
        """Break what provably holds no lock; True if the lock now looks free (or was
        just broken), False if a live holder has it."""
        files = self.files
        info = files.stat(REFS_LOCK)
        if info is None:
            return True
        if not stat.S_ISDIR(info.mode):
            return self._clear_legacy(info.mode)
        try:
            names = files.listdir(REFS_LOCK)
        except RemoteNotFoundError:
            return True
        live = False
        for name in names:
            path = f"{REFS_LOCK}/{name}"
            try:
                owner = (LockOwner.parse(name, files.read_bytes(path, MAX_OWNER_SIZE).decode("ascii", "replace"))
                         if _TOKEN.match(name) else None)
            except RemoteNotFoundError:
                continue  # released or broken meanwhile
            except TransportError:
                owner = None  # a directory, or too big: not an entry we wrote
            if owner is not None and not _owner_is_gone(owner, self.kernel):
                live = True
                continue
            self.log("removing a stale refs lock left by a crashed push")
            try:  # by its unique name: only one breaker removes it, never a new holder's
                files.remove(path)
            except RemoteNotFoundError:
                pass  # another breaker won
            except TransportError:
                files.rmtree(path)  # junk: a directory
        return not live

    def _clear_legacy(self, mode: int) -> bool:
        """A lock file of an older pyostree (or junk). ``remove`` never unlinks a
        directory, so whatever it removes is not a lock of this protocol."""
        text: Optional[str] = ""
        if stat.S_ISREG(mode):
            try:
                text = self.files.read_bytes(REFS_LOCK, MAX_OWNER_SIZE).decode("ascii", "replace")
            except RemoteNotFoundError:
                return True
            if not _legacy_is_stale(text, self.incomplete_since):
                return False
            if self._read_legacy() != text:
                return False
        self.log("removing a stale refs lock left by a crashed push")
        try:
            self.files.remove(REFS_LOCK)
        except TransportError:  # gone, or a directory of this protocol by now
            pass
        return True

    def _read_legacy(self) -> Optional[str]:
        try:
            return self.files.read_bytes(REFS_LOCK, MAX_OWNER_SIZE).decode("ascii", "replace")
        except TransportError:
            return None

    def release(self) -> None:
        """Remove our entry, only ours; then the empty directory if we can."""
        try:
            self.files.remove(f"{REFS_LOCK}/{self.owner.token}")
        except RemoteNotFoundError:
            self.log(f"warning: the refs lock was broken while this push held it (held over {STALE_LOCK_SECS} s?)")
            return
        _remove_if_empty(self.files, REFS_LOCK)

    def discard(self) -> None:
        try:
            self.files.rmtree(self.new)
        except TransportError:
            pass


def _remove_if_empty(files: FileTransport, path: str) -> None:
    """rmdir: fails, harmlessly, once another holder's directory took the name."""
    root = _local_root(files)
    try:
        if root is not None:
            os.rmdir(os.path.join(root, path))
        elif callable(getattr(files, "remove_dirs", None)):
            files.remove_dirs([path])  # type: ignore[attr-defined]
    except (OSError, TransportError):
        pass


@contextlib.contextmanager
def refs_lock(
    files: FileTransport, log: Callable[[str], None], *, wait: float = LOCK_WAIT_SECS,
    kernel_lock: Optional[bool] = None,
) -> Iterator[None]:
    """Hold the refs lock of the repo behind ``files``; a live holder is waited for up to
    ``wait`` seconds, a dead one (see the module doc) is broken at once. ``kernel_lock``
    (default: when ``files`` is local) also takes the OFD lock."""
    files.mkdir("tmp", exist_ok=True)
    deadline = time.monotonic() + wait
    root = _local_root(files) if kernel_lock is not False else None
    kernel = _take_kernel_lock(root, deadline, log) if root is not None else None
    try:
        acquirer = _Acquirer(files, log, kernel)
        taken = False
        try:
            acquirer.prepare()
            looked_free = 0
            while True:
                failure = acquirer.try_take()
                if failure is None:
                    taken = True
                    break
                looked_free = looked_free + 1 if acquirer.clear_way() else 0
                if 0 < looked_free <= 3:
                    continue  # released or broken just now: at once, whatever the time
                if time.monotonic() >= deadline:
                    if looked_free:  # nobody in the way, yet the rename fails: a real error
                        raise PushError(f"cannot take the refs lock: {failure}")
                    raise PushError("another push is updating refs on the remote; try again")
                time.sleep(_POLL_SECS)
        finally:
            if not taken:
                acquirer.discard()
        try:
            yield
        finally:
            acquirer.release()
    finally:
        if kernel is not None:
            kernel.lock.close()  # after the entry is gone: an entry never outlives its lock
