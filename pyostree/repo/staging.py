"""Staging directories under ``tmp/``: where a transaction's objects are made complete.

Naming and locking follow libostree so the two can share a repository: a directory
``tmp/staging-BOOTID-XXXXXX`` is owned by whoever holds the exclusive OFD lock on its
sibling ``…-lock`` file; an unlocked one of this boot may be resumed, others deleted.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import time
from typing import Optional, Set

from pyostree.errors import RepoError
from pyostree.repo.lock import OfdLock

__all__ = ["STAGING_PREFIX", "UNCHECKED_DIR", "StagingDir", "cleanup_tmp", "read_boot_id"]

STAGING_PREFIX = "staging-"
UNCHECKED_DIR = "unchecked"
"""Where a transaction stages the objects that vouch for others (dirtree, commit,
commitmeta) until it publishes them itself: libostree's commit publishes every entry of
a resumed staging dir's two-character dirs, and nothing else, so a writer that dies or
aborts never leaves them where another writer of this boot would publish them unchecked."""
LOCK_SUFFIX = "-lock"
DEFAULT_TMP_EXPIRY_SECS = 86400
_RANDOM_ALPHABET = string.ascii_letters + string.digits
_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def read_boot_id() -> str:
    """The kernel boot id: staging dirs of another boot belong to no live process."""
    try:
        with open(_BOOT_ID_PATH, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return "nobootid"


def _random_suffix() -> str:
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(6))


class StagingDir:
    """A locked staging directory; objects sit at ``XX/YYYY.EXT`` inside it."""

    def __init__(self, path: str, lock: OfdLock, resumed: bool) -> None:
        self.path = path
        self.resumed = resumed
        self._lock: Optional[OfdLock] = lock
        self._made: Set[str] = set()

    @classmethod
    def acquire(cls, tmp_dir: str, boot_id: Optional[str] = None) -> StagingDir:
        """Resume an unlocked staging dir of this boot, else create a fresh one."""
        boot = boot_id or read_boot_id()
        prefix = f"{STAGING_PREFIX}{boot}-"
        try:
            names = sorted(os.listdir(tmp_dir))
        except OSError as err:
            raise RepoError(f"cannot list repo tmp dir: {err.strerror}") from None
        for name in names:
            if not name.startswith(prefix) or name.endswith(LOCK_SUFFIX):
                continue
            path = os.path.join(tmp_dir, name)
            if not os.path.isdir(path) or os.path.islink(path):
                continue
            lock = OfdLock.try_acquire(path + LOCK_SUFFIX)
            if lock is None:
                continue
            if not os.path.isdir(path):  # removed by its owner between listdir and lock
                lock.close()
                continue
            os.utime(path)  # libostree bumps the mtime of a resumed dir
            staging = cls(path, lock, resumed=True)
            staging.drop_unchecked()  # what its last owner left unpublished: unchecked
            return staging
        for _ in range(100):
            path = os.path.join(tmp_dir, prefix + _random_suffix())
            try:
                os.mkdir(path, 0o775)
            except FileExistsError:
                continue
            except OSError as err:
                raise RepoError(f"cannot create staging dir: {err.strerror}") from None
            lock = OfdLock.try_acquire(path + LOCK_SUFFIX)
            if lock is None:  # someone resumed our brand-new dir first: leave it to them
                continue
            return cls(path, lock, resumed=False)
        raise RepoError("cannot create a staging dir in tmp/")

    def object_dir(self, prefix: str) -> str:
        """``staging/XX``, created on demand like ``objects/XX``."""
        path = os.path.join(self.path, prefix)
        if prefix in self._made:
            return path
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            pass
        self._made.add(prefix)
        return path

    def unchecked_dir(self, prefix: str) -> str:
        """``staging/unchecked/XX``, created on demand (see UNCHECKED_DIR)."""
        key = f"{UNCHECKED_DIR}/{prefix}"
        path = os.path.join(self.path, UNCHECKED_DIR, prefix)
        if key in self._made:
            return path
        os.makedirs(path, 0o777, exist_ok=True)
        self._made.add(key)
        return path

    def drop_unchecked(self) -> None:
        """Delete what was staged under UNCHECKED_DIR: no later writer may use it."""
        shutil.rmtree(os.path.join(self.path, UNCHECKED_DIR), ignore_errors=True)
        self._made = {name for name in self._made if not name.startswith(UNCHECKED_DIR)}

    def remove(self) -> None:
        """Delete the dir first, then its lock file, then drop the lock (spec §1.8 rule 2)."""
        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            os.unlink(self.path + LOCK_SUFFIX)
        except FileNotFoundError:
            pass
        self.release()

    def release(self) -> None:
        """Unlock but keep the directory, so a later transaction of this boot may resume it."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def cleanup_tmp(
    tmp_dir: str,
    *,
    boot_id: Optional[str] = None,
    expiry_secs: int = DEFAULT_TMP_EXPIRY_SECS,
    now: Optional[float] = None,
) -> None:
    """Delete unlocked staging dirs of other boots and stale entries, as libostree does."""
    boot = boot_id or read_boot_id()
    current = time.time() if now is None else now
    try:
        names = os.listdir(tmp_dir)
    except OSError:
        return
    for name in names:
        if name == "cache" or name.endswith(LOCK_SUFFIX):
            continue
        path = os.path.join(tmp_dir, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        expired = current - st.st_mtime > expiry_secs
        if name.startswith(STAGING_PREFIX):
            other_boot = not name.startswith(f"{STAGING_PREFIX}{boot}-")
            if not (other_boot or expired):
                continue
            lock = OfdLock.try_acquire(path + LOCK_SUFFIX)
            if lock is None:
                continue
            try:
                shutil.rmtree(path, ignore_errors=True)
                try:
                    os.unlink(path + LOCK_SUFFIX)
                except FileNotFoundError:
                    pass
            finally:
                lock.close()
        elif expired:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
