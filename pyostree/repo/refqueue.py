"""A transaction's refs and commit-state marks: queued while objects are staged, written
at commit once the objects are published (spec §1.7 steps 7–8).

The rules in one place: every queued ref's compare-and-swap is checked before the first
ref is written (all or nothing), their directories are fsynced before commit returns,
and a ``state/*.commitpartial`` mark goes only once the objects are durable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

from pyostree.objects.checksum import validate_checksum
from pyostree.repo.fsutil import fsync_dir, parallel_io
from pyostree.repo.refwrite import check_expected, check_ref_write, read_ref_file, write_ref

if TYPE_CHECKING:
    from pyostree.repo import Repo
    from pyostree.repo.writesettings import WriteSettings

__all__ = ["RefQueue"]


class RefQueue:
    """The ref updates and commitpartial marks of one transaction (not thread-safe: refs
    are queued by the thread that commits)."""

    def __init__(self, repo: Repo, root: str, settings: WriteSettings) -> None:
        self._repo = repo
        self._root = root
        self._settings = settings
        self._refs: List[Tuple[str, str, Optional[str], object]] = []
        self._clear_partial: Set[str] = set()

    def queue(self, relpath: str, refspec: str, checksum: Optional[str], expected_old: object) -> None:
        """Queue ``relpath`` (under the repo root) to move to ``checksum``; ``expected_old``
        ``...`` is the value it holds now (read under the caller's repo lock)."""
        if checksum is not None:
            validate_checksum(checksum)
        if expected_old is Ellipsis:
            expected_old = read_ref_file(os.path.join(self._root, relpath))
        self._refs.append((relpath, refspec, checksum, expected_old))

    def write(self) -> None:
        """All or nothing: every ref's compare-and-swap (and the shape of the refs dir it
        goes in) is checked before the first ref is written, as sftp-mode pushers do
        under the refs lock; each write re-checks the value it was checked against."""
        pending: Dict[str, Optional[str]] = {}
        checked: List[Optional[str]] = []
        for relpath, refspec, checksum, expected_old in self._refs:
            if relpath in pending:
                current = pending[relpath]
            else:
                current = read_ref_file(os.path.join(self._root, relpath))
            check_expected(refspec, current, expected_old)
            check_ref_write(self._root, relpath, checksum, refspec, pending=pending)
            pending[relpath] = checksum
            checked.append(current)
        for (relpath, refspec, checksum, _expected), current in zip(self._refs, checked):
            write_ref(self._root, relpath, checksum, expected_old=current, refspec=refspec)
        if not self._refs:
            return
        try:
            os.utime(self._root)
        except OSError:
            pass
        if self._settings.auto_update_summary:
            from pyostree.repo.summary import build_summary, replace_summary

            replace_summary(self._root, build_summary(self._repo), fsync=self._settings.fsync)

    def sync_dirs(self) -> None:
        """The renames that moved the refs (and the dirs made for them) durable, so that
        once commit returns (a receiver then answers DONE) no crash takes a ref back."""
        if not self._settings.fsync or not self._refs:
            return
        dirs: Set[str] = set()
        for relpath, _refspec, _checksum, _old in self._refs:
            parts = relpath.split("/")[:-1]
            while parts:
                dirs.add("/".join(parts))
                parts.pop()
        # deepest first: its fsync commits the journal, an unchanged parent then costs ~0
        paths = [os.path.join(self._root, rel) for rel in sorted(dirs, reverse=True)]
        parallel_io(fsync_dir, [path for path in paths if os.path.isdir(path)])

    def mark_partial(self, checksum: str) -> None:
        """Record now, before the commit's tree is complete, that it may be partial."""
        self._clear_partial.discard(checksum)
        state = os.path.join(self._root, "state")
        os.makedirs(state, 0o775, exist_ok=True)
        path = os.path.join(state, f"{checksum}.commitpartial")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.close(fd)

    def clear_partial(self, checksum: str) -> None:
        """Drop the mark once the objects are durable: see :meth:`drop_cleared_marks`."""
        self._clear_partial.add(checksum)

    def drop_cleared_marks(self) -> None:
        """The marks :meth:`clear_partial` named, once the objects are published."""
        for checksum in sorted(self._clear_partial):
            try:
                os.unlink(os.path.join(self._root, "state", f"{checksum}.commitpartial"))
            except FileNotFoundError:
                pass
