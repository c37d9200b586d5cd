"""Write transactions: stage complete objects, then publish them children-first, refs last.

Follows spec §1.6–1.8 so pyostree and libostree can write one repository at once: a
shared OFD lock on ``.lock`` for the whole transaction, objects made complete in a locked
``tmp/staging-BOOTID-XXXXXX`` dir, published by ``renameat2(RENAME_NOREPLACE)`` (or ``link``
where that is missing; never replacing an object),
directories fsynced, then refs by compare-and-swap.

This module is the façade and the lifecycle (lock, staging dir, begin/abort/commit); each
job has a module of its own, holding its rules and its state: ``stagewrite.Stager``
writes the objects into the staging dir, ``publish.Publisher`` moves them into
``objects/`` (early and at commit), ``refqueue.RefQueue`` writes the refs and the
commitpartial marks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Collection, Iterable, List, Optional, Sequence, Tuple, Union

from pyostree.objects.checksum import validate_checksum
from pyostree.objects.types import ObjectType
from pyostree.repo.fsutil import parallel_io, process_umask
from pyostree.repo.lock import RepoLock
from pyostree.repo.publish import Publisher
from pyostree.repo.refqueue import RefQueue
from pyostree.repo.refwrite import ref_relpath
from pyostree.repo.staging import StagingDir, cleanup_tmp
from pyostree.repo.stagewrite import MAX_METADATA_SIZE, Stager, TransactionError
from pyostree.repo.writesettings import WriteSettings

if TYPE_CHECKING:
    import mmap

    from pyostree.objects import Commit, DirMeta, DirTree, FileHeader
    from pyostree.repo import Repo

__all__ = ["MAX_METADATA_SIZE", "Transaction", "TransactionError", "WriteSettings"]

ProgressCallback = Callable[[str, ObjectType], None]


class Transaction:
    """``with repo.transaction() as txn:`` — commits on normal exit, aborts on error.

    Content writes are thread-safe so a tree builder may stage files from a worker pool.
    """

    def __init__(self, repo: Repo, *, on_object: Optional[ProgressCallback] = None,
                 replace_commitmeta: bool = True, privileged_files: bool = True) -> None:
        """``replace_commitmeta``: a staged commitmeta replaces one already in ``objects/``
        (libostree's rule); False refuses to publish over one with other bytes.
        ``privileged_files``: False refuses content with setuid/setgid bits or a
        ``security.capability`` xattr in a bare repo, where the object file gets them."""
        self.repo = repo
        self.root = os.fspath(repo.path)
        self.settings = WriteSettings(repo)
        self._lock = RepoLock(self.root, enabled=self.settings.locking, timeout_secs=self.settings.lock_timeout)
        self._staging: Optional[StagingDir] = None
        self._state = "new"
        self._published = False  # publish_objects() done: objects visible, staging gone
        self._stager = Stager(self.root, self.settings, require_open=self._require_open,
                              require_staging=self._require_staging,
                              on_record=self._note_staged, on_bytes=self._staged_bytes,
                              on_object=on_object, privileged_files=privileged_files)
        self._publisher = Publisher(self.root, self.settings, self._stager,
                                    replace_commitmeta=replace_commitmeta)
        self._refs = RefQueue(repo, self.root, self.settings)

    @property
    def objects_written(self) -> int:
        return self._stager.objects_written

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        self.begin()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def begin(self) -> None:
        """Take the shared lock and a staging dir (resuming an interrupted one of this boot)."""
        if self._state != "new":
            raise TransactionError("transaction already started")
        self._lock.acquire(exclusive=False)
        try:
            tmp_dir = os.path.join(self.root, "tmp")
            os.makedirs(os.path.join(tmp_dir, "cache"), 0o775, exist_ok=True)
            self._staging = StagingDir.acquire(tmp_dir)
            self._stager.open(self._staging, process_umask())
            self._publisher.open(self._staging)
        except BaseException:
            self._lock.release()
            raise
        self._state = "open"

    @property
    def staging_path(self) -> str:
        return self._require_open().path

    def _require_open(self) -> StagingDir:
        if self._state != "open" or self._staging is None:
            raise TransactionError("transaction is not open")
        return self._staging

    def _require_staging(self) -> StagingDir:
        staging = self._require_open()
        if self._published:
            raise TransactionError("objects already published: nothing more can be staged")
        return staging

    def abort(self) -> None:
        """Drop the lock; staged content and dirmeta stay for a later transaction of this
        boot to reuse (a staging dir that holds none is removed: nothing to resume), staged
        dirtrees, commits and commitmeta go (nothing checked them)."""
        if self._state != "open":
            return
        self._publisher.stop_early()
        self._publisher.stop_sync()
        self._state = "aborted"
        if self._staging is not None:
            self._staging.drop_unchecked()
            if _stages_no_object(self._staging.path):
                self._staging.remove()
            else:
                self._staging.release()
        self._lock.release()

    def publish_objects(self, dirtrees: Optional[Sequence[str]] = None,
                        commits: Optional[Collection[str]] = None) -> None:
        """The first half of :meth:`commit`: make staged objects durable and visible
        (children first) and drop the staging dir, still holding the repo lock; refs are
        left for :meth:`commit` (or :meth:`abort`). A caller that serialises ref updates
        with a lock of its own can so keep that lock off the long part. After this,
        nothing more can be staged.

        ``dirtrees``: the staged dirtrees to publish, in that order (children first), as
        a caller that walked them down from ``commits``, which it checked complete, knows
        them; any other staged dirtree or commit is dropped with the staging dir. A dirtree
        in ``objects/`` is trusted to be complete below it, and ``ostree fsck`` walks every
        commit there: neither may get there unchecked. None: every staged one, ordered
        here."""
        staging = self._require_open()
        if self._published:
            return
        try:
            self._publish_objects(staging, dirtrees, commits)
            _empty_dir_parallel(staging.path)
            staging.remove()
            cleanup_tmp(os.path.join(self.root, "tmp"), expiry_secs=self.settings.tmp_expiry)
            self._refs.drop_cleared_marks()
        except BaseException:
            self._fail()
            raise
        self._published = True

    def commit(self) -> None:
        """Make staged objects durable and visible, then update refs (spec §1.7 steps 4–8)."""
        self._require_open()
        self.publish_objects()
        try:
            self._refs.write()
            self._refs.sync_dirs()
            try:
                os.unlink(os.path.join(self.root, "transaction"))
            except FileNotFoundError:
                pass
        except BaseException:
            self._fail()
            raise
        self._state = "committed"
        self._lock.release()

    def _fail(self) -> None:
        self._publisher.stop_early()
        self._publisher.stop_sync()
        self._state = "aborted"
        if self._staging is not None:
            self._staging.drop_unchecked()
            self._staging.release()
        self._lock.release()

    def _publish_objects(self, staging: StagingDir, dirtrees: Optional[Sequence[str]] = None,
                         commits: Optional[Collection[str]] = None) -> None:
        self._publisher.publish(staging, dirtrees, commits)

    # ---- staging (stagewrite.Stager holds the rules) --------------------------------

    def _note_staged(self, rel: str, objtype: ObjectType) -> None:
        self._publisher.note_staged(rel, objtype)

    def _staged_bytes(self, size: int) -> None:
        self._publisher.staged_bytes(size)

    def staged_metadata_path(self, checksum: str, objtype: ObjectType) -> str:
        """The staged file of a metadata object (it may not exist)."""
        return self._stager.staged_metadata_path(checksum, objtype)

    def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        """Present in ``objects/`` or already staged in this transaction's dir."""
        return self._stager.has_object(checksum, objtype)

    @property
    def staging_resumed(self) -> bool:
        """The staging dir is one an earlier transaction left: it may hold objects."""
        return self._require_open().resumed

    def write_metadata(self, obj: Union[DirMeta, DirTree, Commit]) -> str:
        """Serialise and stage a dirmeta, dirtree or commit; returns its checksum."""
        return self._stager.write_metadata(obj)

    def write_metadata_bytes(self, objtype: ObjectType, data: Union[bytes, bytearray],
                             expected_checksum: Optional[str] = None) -> str:
        """Stage already-serialised metadata; a given ``expected_checksum`` is verified first."""
        return self._stager.write_metadata_bytes(objtype, data, expected_checksum)

    def staged_dirtree_bytes(self, checksum: str) -> Optional[bytes]:
        """A dirtree this transaction staged, from memory; None if it did not, if it
        was past the bound (read it from the staging dir then), or if early publishing
        moved it into objects/ (complete below it, then)."""
        stager = self._stager
        rel = stager.relpath(checksum, ObjectType.DIR_TREE)
        with stager.guard:
            return None if self._publisher.published_early(rel) else stager.kept_trees.get(rel)

    def write_metadata_stream(self, objtype: ObjectType, chunks: Iterable[bytes], size: int,
                              expected_checksum: str,
                              check: Callable[["mmap.mmap", Callable[[int, int], None]], None]
                              ) -> str:
        """Stage a big metadata object as it arrives, never whole in memory (see
        :meth:`Stager.write_metadata_stream`)."""
        return self._stager.write_metadata_stream(objtype, chunks, size, expected_checksum, check)

    def write_commitmeta(self, commit_checksum: str, data: bytes) -> None:
        """Detached metadata is named after its commit and is replaced, not deduplicated."""
        self._stager.write_commitmeta(commit_checksum, data)

    def write_content(
        self,
        header: FileHeader,
        chunks: Iterable[bytes] = (),
        *,
        size: Optional[int] = None,
        expected_checksum: Optional[str] = None,
    ) -> str:
        """Stream one file or symlink into the repo in this mode; returns its content
        checksum (see :meth:`Stager.write_content`)."""
        return self._stager.write_content(header, chunks, size=size, expected_checksum=expected_checksum)

    def stage_content_bytes(self, checksum: str, stored: bytes, header: FileHeader) -> None:
        """Stage a regular file already hashed and in this repo's form (see
        :meth:`Stager.stage_content_bytes`)."""
        self._stager.stage_content_bytes(checksum, stored, header)

    def write_raw(
        self,
        checksum: str,
        objtype: ObjectType,
        source: Union[bytes, Callable[[int], bytes]],
        *,
        known_absent: bool = False,
    ) -> str:
        """Import an object in its archive (wire) form, verified before it becomes visible
        (see :meth:`Stager.write_raw`)."""
        return self._stager.write_raw(checksum, objtype, source, known_absent=known_absent)

    def write_filez_bytes(self, checksum: str, data: bytes, *, known_absent: bool = False) -> None:
        """Archive mode: stage a whole ``.filez`` held in memory (see
        :meth:`Stager.write_filez_bytes`)."""
        self._stager.write_filez_bytes(checksum, data, known_absent=known_absent)

    def check_filez_bytes(self, checksum: str, data: bytes) -> bool:
        """The verification half of :meth:`write_filez_bytes` (thread-safe, no file touched)."""
        return self._stager.check_filez_bytes(checksum, data)

    def stage_checked_filez(self, checksum: str, data: bytes) -> None:
        """The writing half: ``data`` must be bytes :meth:`check_filez_bytes` passed."""
        self._stager.stage_checked_filez(checksum, data)

    def helper_tmp_dir(self, tag: str) -> str:
        """A temp dir in the staging dir for a helper process that stages objects for this
        transaction (pyostree.receive.workers); like ours, it dies with the staging dir."""
        return self._stager.helper_tmp_dir(tag)

    def adopt_staged_files(self, staged: Sequence[Tuple[str, int]]) -> None:
        """Count content objects a helper process put at their staged names as staged by
        this transaction: (checksum, size in bytes) of each."""
        self._stager.adopt_staged_files(staged)

    # ---- refs and state (refqueue.RefQueue holds the rules) ---------------------------

    def set_ref(self, refspec: str, checksum: Optional[str], *, expected_old: object = ...) -> None:
        """Queue a ref update for commit time; by default it must still hold the value it
        has now (read under our lock), else commit raises ``RefMovedError``."""
        self._require_open()
        relpath = ref_relpath(refspec)
        self._refs.queue(relpath, refspec, checksum, expected_old)

    def set_collection_ref(
        self, collection_id: str, ref: str, checksum: Optional[str], *, expected_old: object = ...
    ) -> None:
        """Like :meth:`set_ref` for a (collection id, ref) pair (``refs/mirrors`` unless ours)."""
        self._require_open()
        relpath = ref_relpath(ref, collection_id=collection_id, own_collection_id=self.settings.collection_id)
        self._refs.queue(relpath, ref, checksum, expected_old)

    def mark_commit_partial(self, checksum: str) -> None:
        """Record now, before the commit's tree is complete, that it may be partial."""
        validate_checksum(checksum)
        self._require_open()
        self._refs.mark_partial(checksum)

    def clear_commit_partial(self, checksum: str) -> None:
        """Drop the marker once the objects are durable (at commit)."""
        validate_checksum(checksum)
        self._refs.clear_partial(checksum)

    # ---- publication (publish.Publisher holds the rules) ------------------------------

    def sync_ahead(self) -> None:
        """Begin the write-back that publishing starts with (``syncfs``) on a thread, then
        the renames early publishing would make of what it made durable, so that a
        caller's own checks before :meth:`publish_objects` overlap both (see
        :meth:`Publisher.sync_ahead`)."""
        self._require_open()
        self._publisher.sync_ahead()


def _empty_subdir(path: str) -> None:
    try:
        for name in os.listdir(path):
            try:
                os.unlink(os.path.join(path, name))
            except IsADirectoryError:
                pass
        os.rmdir(path)
    except OSError:
        pass  # whatever is left goes with the staging dir's rmtree


def _stages_no_object(path: str) -> bool:
    """No ``XX/`` dir of the staging dir holds an entry (helper temp dirs hold no object)."""
    try:
        with os.scandir(path) as entries:
            prefixes = [entry.path for entry in entries
                        if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False)]
        for prefix in prefixes:
            with os.scandir(prefix) as inside:
                if next(inside, None) is not None:
                    return False
    except OSError:
        return False  # keep what cannot be looked at
    return True


def _empty_dir_parallel(path: str) -> None:
    """Delete the fan-out dirs of a published staging dir: those left empty by renames at
    once (in threads that measured slower), the ones still holding files (published by
    link) emptied in parallel, as each ``unlink`` waits on the disk; the caller's rmtree
    removes the rest."""
    try:
        subdirs = [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    full: List[str] = []
    for subdir in subdirs:
        try:
            os.rmdir(subdir)
        except OSError:
            full.append(subdir)
    parallel_io(_empty_subdir, full)
