"""Write transactions: stage complete objects, then publish them children-first, refs last.

Follows spec §1.6–1.8 so pyostree and libostree can write one repository at once: a
shared OFD lock on ``.lock`` for the whole transaction, objects made complete in a locked
``tmp/staging-BOOTID-XXXXXX`` dir, published by ``renameat2(RENAME_NOREPLACE)`` (or ``link``
where that is missing; never replacing an object),
directories fsynced, then refs by compare-and-swap.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import secrets
import stat
import threading
import time
import zlib
from typing import (
    TYPE_CHECKING, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple,
    Union,
)

from pyostree.errors import ChecksumMismatchError, ObjectError, RepoError
from pyostree.objects.checksum import sha256_hex, validate_checksum
from pyostree.objects.types import ObjectType
from pyostree.repo.fsutil import (
    BytesReader,
    TmpFile,
    fsync_dir,
    parallel_io,
    process_umask,
    rename_noreplace,
    syncfs,
    unlink_quietly,
    write_all,
)
from pyostree.repo.lock import RepoLock
from pyostree.repo.modewrite import apply_file_metadata, check_header_for_mode, ostreemeta
from pyostree.repo.refqueue import RefQueue
from pyostree.repo.refwrite import ref_relpath
from pyostree.repo.staging import UNCHECKED_DIR, StagingDir, cleanup_tmp
from pyostree.repo.writesettings import WriteSettings

if TYPE_CHECKING:
    import mmap

    from pyostree.objects.content import FilezHeaderCache
    from pyostree.objects import Commit, DirMeta, DirTree, FileHeader
    from pyostree.repo import Repo

__all__ = ["MAX_METADATA_SIZE", "Transaction", "TransactionError", "WriteSettings"]

MAX_METADATA_SIZE = 128 * 1024 * 1024
_COPY_CHUNK = 1 << 20
_TMP_PREFIX = "tmpobj-"
_PUBLIC = 0o644  # final mode of archive objects and of metadata in every mode

# Publication order: children before parents (spec §1.8 rule 4).
_PUBLISH_RANK = {"file": 0, "filez": 0, "dirmeta": 1, "dirtree": 2, "commit": 3, "tombstone-commit": 4, "commitmeta": 5}
# Staged under UNCHECKED_DIR: what vouches for other objects (a dirtree in objects/ is
# trusted complete, a commit is walked by fsck, a commitmeta carries its signatures).
_UNCHECKED_TYPES = frozenset((ObjectType.DIR_TREE, ObjectType.COMMIT, ObjectType.COMMIT_META))
_PRIVILEGED_XATTR = b"security.capability\0"


def _created_public(tmp: TmpFile) -> bool:
    """Whether a file created 0644 really is: a default ACL or an odd file system may
    ignore the umask (checked once per temp dir)."""
    try:
        return stat.S_IMODE(os.fstat(tmp.fd).st_mode) == _PUBLIC
    except BaseException:
        tmp.discard()
        raise


def _refuse_privileged(header: FileHeader) -> None:
    """What a bare repo would make a real setuid/setgid or capability file."""
    if header.mode & (stat.S_ISUID | stat.S_ISGID) and not header.is_symlink:
        raise ObjectError(f"refusing a setuid/setgid file (mode 0o{header.mode:o})")
    if any(name == _PRIVILEGED_XATTR for name, _value in header.xattrs):
        raise ObjectError("refusing a file with a security.capability xattr")


class TransactionError(RepoError):
    """A transaction was used wrongly (outside ``with``, after commit/abort)."""


def _metadata_type(obj: object) -> ObjectType:
    from pyostree.objects import Commit, DirMeta, DirTree

    if isinstance(obj, DirMeta):
        return ObjectType.DIR_META
    if isinstance(obj, DirTree):
        return ObjectType.DIR_TREE
    if isinstance(obj, Commit):
        return ObjectType.COMMIT
    raise TransactionError(f"cannot write {type(obj).__name__} as a metadata object")


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
        self._replace_commitmeta = replace_commitmeta
        self._privileged_files = privileged_files
        self.root = os.fspath(repo.path)
        self.settings = WriteSettings(repo)
        self._on_object = on_object
        self._lock = RepoLock(self.root, enabled=self.settings.locking, timeout_secs=self.settings.lock_timeout)
        self._staging: Optional[StagingDir] = None
        self._guard = threading.Lock()
        self._sequence: Dict[str, int] = {}  # staged relpath -> write order
        self._refs = RefQueue(repo, self.root, self.settings)
        self._state = "new"
        self._published = False  # publish_objects() done: objects visible, staging gone
        self._present: Set[str] = set()  # relpaths known to exist in objects/ or staging
        self._unchecked: Set[str] = set()  # relpaths this transaction staged in UNCHECKED_DIR
        self._thread_tmp = threading.local()
        self._tmp_counter = itertools.count()
        self._public_tmp_mode = 0o600  # 0644 once begin() has seen a umask that keeps it
        self._noreplace = True  # renameat2(RENAME_NOREPLACE) works here, until it says otherwise
        self._filez_headers: Optional[FilezHeaderCache] = None  # made on first use
        self._kept_trees: Dict[str, bytes] = {}  # staged dirtree relpath -> bytes
        # early publishing's: what a kept dirtree names, and relpaths found in objects/
        self._tree_links: Dict[str, Tuple[List[str], List[Tuple[str, str]]]] = {}
        self._found_in_objects: Set[str] = set()
        self._absent_from_objects: Set[str] = set()  # not staged here, and not there once
        # Early publishing works through these in staging order, each item once: the
        # leaves, and the dirtrees it has ordered children first (and, for each dirtree
        # still waiting, one relpath it waits for), so a round costs what is new.
        self._early_leaves: List[str] = []
        self._early_leaves_done = 0
        self._early_trees: List[str] = []
        self._early_trees_taken = 0
        self._early_tree_order: List[str] = []
        self._early_waits_for: Dict[str, str] = {}
        self._kept_tree_bytes = 0
        self._unsynced = 0  # bytes staged since the last early syncfs began
        self._early_thread: Optional[threading.Thread] = None
        self._early_stop = False  # stop now (abort, publish)
        self._early_last = False  # no round after the running one (sync_ahead takes over)
        self._sync: Optional[_BackgroundSync] = None  # begun by sync_ahead()
        self._sync_stop = False
        self._early_published: Set[str] = set()  # relpaths already moved into objects/
        self._early_prefixes: Set[str] = set()  # objects/XX dirs those renames touched
        self.objects_written = 0

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
            umask = process_umask()
            if umask is not None and umask & _PUBLIC == 0:
                self._public_tmp_mode = _PUBLIC
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
        self._stop_early()
        self._stop_sync()
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
        self._stop_early()
        self._stop_sync()
        self._state = "aborted"
        if self._staging is not None:
            self._staging.drop_unchecked()
            self._staging.release()
        self._lock.release()

    # ---- paths and existence ---------------------------------------------------------

    def _relpath(self, checksum: str, objtype: ObjectType) -> str:
        return f"{checksum[:2]}/{checksum[2:]}.{objtype.extension(self.settings.archive)}"

    def _staged_path(self, rel: str) -> str:
        """Where a staged object is: under UNCHECKED_DIR if this transaction put it there."""
        staging = self._staging
        if staging is None:
            raise TransactionError("transaction is not open")
        if rel in self._unchecked:
            return os.path.join(staging.path, UNCHECKED_DIR, rel)
        return os.path.join(staging.path, rel)

    def staged_metadata_path(self, checksum: str, objtype: ObjectType) -> str:
        """The staged file of a metadata object (it may not exist)."""
        return self._staged_path(self._relpath(checksum, objtype))

    def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        """Present in ``objects/`` or already staged in this transaction's dir.

        Objects cannot vanish while we hold the shared lock (deletion needs it exclusive),
        so a positive answer is cached.
        """
        rel = self._relpath(checksum, objtype)
        if rel in self._present:
            return True
        staging = self._require_open()
        if os.path.lexists(os.path.join(self.root, "objects", rel)) or (
            staging.resumed and os.path.lexists(os.path.join(staging.path, rel))
        ):
            self._present.add(rel)
            return True
        return False

    @property
    def staging_resumed(self) -> bool:
        """The staging dir is one an earlier transaction left: it may hold objects."""
        return self._require_open().resumed

    def _new_tmp(self, public: bool = False) -> TmpFile:
        """A named temp file in a per-thread dir of the staging dir, so parallel writers do
        not serialise on one directory's lock (libostree uses ``O_TMPFILE``, which measured
        no faster here; leftovers die with the staging dir).

        ``public``: the object ends up 0644; create it so when the umask allows, so that
        :meth:`_make_public` has nothing left to do. The dir is 0700: only its owner can
        reach the incomplete file either way."""
        staging = self._require_staging()
        local = self._thread_tmp
        directory = getattr(local, "path", None)
        if directory is None or not directory.startswith(staging.path):
            directory = os.path.join(staging.path, f"{_TMP_PREFIX}{threading.get_ident():x}")
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                pass
            local.path = directory
            local.mode_ok = None  # unknown until a file made there has been checked
        mode = self._public_tmp_mode if public else 0o600
        for _ in range(100):
            path = os.path.join(directory, f"{next(self._tmp_counter):x}")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except FileExistsError:
                continue
            tmp = TmpFile(fd, path)
            if mode == _PUBLIC:
                if local.mode_ok is None:
                    local.mode_ok = _created_public(tmp)
                tmp.public = local.mode_ok
            return tmp
        raise RepoError("cannot create a temporary file in the staging dir")

    @staticmethod
    def _make_public(tmp: TmpFile) -> None:
        """Mode 0644 before the object gets its name; already so when created that way."""
        if not tmp.public:
            os.fchmod(tmp.fd, _PUBLIC)

    def _finish_file(self, tmp: TmpFile, header: FileHeader) -> None:
        """The mode's owner/mode/xattrs/mtime; in archive mode that is only the mode 0644."""
        if self.settings.archive:
            self._make_public(tmp)
        else:
            apply_file_metadata(tmp.fd, header, self.settings.mode_name)

    def _install(self, tmp: TmpFile, checksum: str, objtype: ObjectType) -> None:
        """Give a complete temp object its final name inside the staging dir (closes it)."""
        staging = self._require_staging()
        rel = self._relpath(checksum, objtype)
        if objtype in _UNCHECKED_TYPES:
            target = os.path.join(staging.unchecked_dir(checksum[:2]), rel[3:])
            with self._guard:
                self._unchecked.add(rel)
        else:
            staging.object_dir(checksum[:2])
            target = os.path.join(staging.path, rel)
        tmp.close()
        os.rename(tmp.path, target)
        self._record(rel, checksum, objtype)

    def _install_path(self, path: str, checksum: str, objtype: ObjectType) -> None:
        staging = self._require_staging()
        rel = self._relpath(checksum, objtype)
        staging.object_dir(checksum[:2])
        os.rename(path, os.path.join(staging.path, rel))
        self._record(rel, checksum, objtype)

    def _record(self, rel: str, checksum: str, objtype: ObjectType) -> None:
        with self._guard:
            self._sequence[rel] = len(self._sequence)
            self.objects_written += 1
            if self.settings.fsync:  # early publishing's queues, in staging order
                if objtype is ObjectType.DIR_TREE:
                    self._early_trees.append(rel)
                elif objtype in (ObjectType.FILE, ObjectType.DIR_META):
                    self._early_leaves.append(rel)
        if objtype is not ObjectType.COMMIT_META:
            self._present.add(rel)
        if self._on_object is not None:
            self._on_object(checksum, objtype)

    def _staged_bytes(self, size: int) -> None:
        """Write back and publish early: every EARLY_SYNC_BYTES staged, a background
        ``syncfs`` (one at a time); once it returns, the objects staged before it began
        are durable, and the leaves among them (content and dirmeta: nothing is trusted
        because of them), then the dirtrees whose whole subtree is in ``objects/`` by
        then, are moved there then and there. The publish at commit is left with the
        last few, the dirtrees above them and the commits, after a ``syncfs`` that finds
        little to do."""
        if not self.settings.fsync:
            return
        with self._guard:
            self._unsynced += size
            running = self._early_thread is not None
            if (self._unsynced < EARLY_SYNC_BYTES or running or self._early_stop
                    or self._early_last):
                return
            self._unsynced = 0
            upto = len(self._sequence)
            thread = threading.Thread(target=self._early_sync, args=(upto,),
                                      name="early-syncfs", daemon=True)
            self._early_thread = thread
        thread.start()

    def _early_sync(self, upto: int) -> None:
        """Rounds of syncfs and publish, as long as EARLY_SYNC_BYTES more were staged
        during the last one: objects staged while a round waited on the disk do not wait
        for the next object to be staged. Errors end early publishing quietly: the
        publish at commit meets them again."""
        try:
            while True:
                self._early_round(upto)
                with self._guard:
                    if (self._early_stop or self._early_last
                            or self._unsynced < EARLY_SYNC_BYTES):
                        self._early_thread = None  # done: the next call may start one
                        return
                    self._unsynced = 0
                    upto = len(self._sequence)
        except OSError:
            self._early_stop = True

    def _early_round(self, upto: int) -> None:
        """One syncfs, then what it made durable and may be visible goes into objects/."""
        _syncfs_at(self._sync_root())
        self._publish_durable(upto, lambda: self._early_stop)

    def _publish_durable(self, upto: int, stopped: Callable[[], bool]) -> None:
        """Rename into objects/, until ``stopped()``, what among the first ``upto`` objects
        staged (durable: a syncfs that began after them returned) may be visible before
        the commit: content and dirmeta, then the dirtrees whose files and subdirectories
        are all in objects/ by then, children first. Those are complete, as a dirtree
        found in objects/ is trusted to be; dirtrees still waiting for a file, and
        commits, are left for the publish at commit. One thread at a time."""
        staging = self._staging
        if staging is None:
            return
        with self._guard:
            sequence = self._sequence
            leaves = self._early_leaves
            first = end = self._early_leaves_done
            while end < len(leaves) and sequence.get(leaves[end], upto) < upto:
                end += 1
            durable = leaves[first:end]
            trees = self._early_trees
            taken = self._early_trees_taken
            while taken < len(trees) and sequence.get(trees[taken], upto) < upto:
                taken += 1
            new_trees = [(rel, self._kept_trees.get(rel))
                         for rel in trees[self._early_trees_taken:taken]]
            self._early_trees_taken = taken
        for index, rel in enumerate(durable):
            if stopped():
                self._early_leaves_done = first + index
                return
            if rel not in self._early_published:
                self._publish_early(rel)
        self._early_leaves_done = end
        links = self._tree_links
        if new_trees:
            for rel, data in new_trees:
                if rel not in links and data is not None:  # past the bound of kept trees: wait
                    links[rel] = self._links_of(data)
            known = [rel for rel in self._early_tree_order + [rel for rel, _ in new_trees]
                     if rel in links and rel not in self._early_published]
            among = set(known)
            self._early_tree_order = _post_order(
                known, {rel: [sub for sub, _meta in links[rel][1] if sub in among] for rel in known})
        waits_for = self._early_waits_for
        for rel in self._early_tree_order:
            if stopped():
                return
            if rel in self._early_published:
                continue
            blocker = waits_for.get(rel)
            if blocker is not None and not self._in_objects(blocker):
                continue  # still waiting for the same one: nothing else to look at
            blocker = self._first_missing(*links[rel])
            if blocker is None:
                self._publish_early(rel)
                waits_for.pop(rel, None)
            else:
                waits_for[rel] = blocker

    def _first_missing(self, files: List[str], dirs: List[Tuple[str, str]]) -> Optional[str]:
        """The first relpath a dirtree names that is not in objects/, else None."""
        for name in files:
            if not self._in_objects(name):
                return name
        for sub, meta in dirs:
            if not self._in_objects(sub):
                return sub
            if not self._in_objects(meta):
                return meta
        return None

    def _publish_early(self, rel: str) -> None:
        objects_dir = os.path.join(self.root, "objects")
        prefix = rel[:2]
        if prefix not in self._early_prefixes:
            try:
                os.mkdir(os.path.join(objects_dir, prefix), 0o777)
            except FileExistsError:
                pass
            self._early_prefixes.add(prefix)
        self._publish_one(self._staged_path(rel), f"{objects_dir}/{rel}")
        with self._guard:
            self._early_published.add(rel)

    def _links_of(self, data: bytes) -> Tuple[List[str], List[Tuple[str, str]]]:
        """Relpaths a staged dirtree names: its files, and (dirtree, dirmeta) per subdir."""
        from pyostree.objects import DirTree

        tree = DirTree.from_bytes(data, verify=False)
        return ([self._relpath(entry.checksum, ObjectType.FILE) for entry in tree.files],
                [(self._relpath(entry.tree_checksum, ObjectType.DIR_TREE),
                  self._relpath(entry.meta_checksum, ObjectType.DIR_META)) for entry in tree.dirs])

    def _in_objects(self, rel: str) -> bool:
        """In objects/: published early by this transaction, or there before it (looked
        up once) if this transaction did not stage it. An absent one is looked up once
        too: if another writer adds it meanwhile, the dirtree waiting for it waits for
        the publish at commit, which is all that costs."""
        if rel in self._early_published or rel in self._found_in_objects:
            return True
        if rel in self._sequence or rel in self._absent_from_objects:
            return False  # staged here and not published yet, or not there
        if os.path.lexists(os.path.join(self.root, "objects", rel)):
            self._found_in_objects.add(rel)
            return True
        self._absent_from_objects.add(rel)
        return False

    def _stop_early(self) -> None:
        """No more early publishing; waits for a running one (it may be renaming)."""
        with self._guard:
            self._early_stop = True
            thread = self._early_thread
        if thread is not None:
            thread.join()

    # ---- metadata --------------------------------------------------------------------

    def write_metadata(self, obj: Union[DirMeta, DirTree, Commit]) -> str:
        """Serialise and stage a dirmeta, dirtree or commit; returns its checksum."""
        return self.write_metadata_bytes(_metadata_type(obj), obj.to_bytes())

    def write_metadata_bytes(self, objtype: ObjectType, data: Union[bytes, bytearray],
                             expected_checksum: Optional[str] = None) -> str:
        """Stage already-serialised metadata; a given ``expected_checksum`` is verified first."""
        return self._write_metadata_bytes(objtype, data, expected_checksum, True)

    def _write_metadata_bytes(
        self, objtype: ObjectType, data: Union[bytes, bytearray], expected_checksum: Optional[str],
        check: bool
    ) -> str:
        if objtype not in (ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT):
            raise TransactionError(f"{objtype.name} objects are not content-addressed metadata")
        if len(data) > MAX_METADATA_SIZE:
            raise ObjectError(f"metadata object of {len(data)} bytes exceeds {MAX_METADATA_SIZE}")
        checksum = hashlib.sha256(data).hexdigest()  # a bytearray is not copied
        if expected_checksum is not None and checksum != validate_checksum(expected_checksum):
            raise ChecksumMismatchError(
                f"corrupted {objtype.extension()} object: expected {expected_checksum}, actual {checksum}"
            )
        if check and self.has_object(checksum, objtype):
            return checksum
        self._stage_public_bytes(data, checksum, objtype)
        if objtype is ObjectType.DIR_TREE:
            self._keep_tree(checksum, data)
        return checksum

    def _keep_tree(self, checksum: str, data: Union[bytes, bytearray]) -> None:
        """Remember a staged dirtree's bytes (up to _KEPT_TREE_BYTES in all, each up to
        _KEPT_TREE_MAX) so that publishing orders the dirtrees children-first without
        reading them back. Past the bounds nothing is copied: a big dirtree is read back
        once, by the completeness check, which reads each dirtree once per session."""
        if len(data) > _KEPT_TREE_MAX:
            return  # early publishing would build an entry per file: it waits for commit
        with self._guard:
            if self._kept_tree_bytes + len(data) <= _KEPT_TREE_BYTES:
                self._kept_tree_bytes += len(data)
                self._kept_trees[self._relpath(checksum, ObjectType.DIR_TREE)] = bytes(data)

    def staged_dirtree_bytes(self, checksum: str) -> Optional[bytes]:
        """A dirtree this transaction staged, from memory; None if it did not, if it
        was past the bound (read it from the staging dir then), or if early publishing
        moved it into objects/ (complete below it, then)."""
        rel = self._relpath(checksum, ObjectType.DIR_TREE)
        with self._guard:
            return None if rel in self._early_published else self._kept_trees.get(rel)

    def write_metadata_stream(self, objtype: ObjectType, chunks: Iterable[bytes], size: int,
                              expected_checksum: str,
                              check: Callable[["mmap.mmap", Callable[[int, int], None]], None]
                              ) -> str:
        """Stage a big metadata object as it arrives, never whole in memory: ``chunks``
        (``size`` bytes in all) go to a temp file of the staging dir while hashed, then
        ``check(mapped, release)`` validates the file mapped read-only, calling
        ``release(start, end)`` for what it has read (those pages are dropped)."""
        import mmap

        validate_checksum(expected_checksum)
        if objtype not in (ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT):
            raise TransactionError(f"{objtype.name} objects are not content-addressed metadata")
        if size > MAX_METADATA_SIZE:
            raise ObjectError(f"metadata object of {size} bytes exceeds {MAX_METADATA_SIZE}")
        tmp = self._new_tmp(public=True)
        try:
            hasher = hashlib.sha256()
            written = 0
            for chunk in chunks:
                hasher.update(chunk)
                write_all(tmp.fd, chunk)
                written += len(chunk)
            if written != size:
                raise ObjectError(f"metadata object of {written} bytes, announced {size}")
            checksum = hasher.hexdigest()
            if checksum != expected_checksum:
                raise ChecksumMismatchError(
                    f"corrupted {objtype.extension()} object: expected {expected_checksum}, "
                    f"actual {checksum}")
            if size:
                mapped = mmap.mmap(tmp.fd, size, prot=mmap.PROT_READ)
                page = mmap.PAGESIZE

                def release(start: int, end: int) -> None:
                    start = -(-start // page) * page
                    end = end // page * page
                    if end > start:
                        mapped.madvise(mmap.MADV_DONTNEED, start, end - start)

                try:
                    check(mapped, release)
                finally:
                    try:
                        mapped.close()
                    except BufferError:
                        pass  # a view still held by a traceback: it goes with it
            if self.has_object(checksum, objtype):
                tmp.discard()
                return checksum
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, objtype)
        self._staged_bytes(size)
        return checksum

    def write_commitmeta(self, commit_checksum: str, data: bytes) -> None:
        """Detached metadata is named after its commit and is replaced, not deduplicated."""
        validate_checksum(commit_checksum)
        if len(data) > MAX_METADATA_SIZE:
            raise ObjectError(f"commitmeta of {len(data)} bytes exceeds {MAX_METADATA_SIZE}")
        self._stage_public_bytes(data, commit_checksum, ObjectType.COMMIT_META)

    def _stage_public_bytes(self, data: Union[bytes, bytearray], checksum: str, objtype: ObjectType) -> None:
        """Stage bytes stored as they are, mode 0644 (metadata in every mode)."""
        tmp = self._new_tmp(public=True)
        try:
            write_all(tmp.fd, data)
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, objtype)
        self._staged_bytes(len(data))

    # ---- content ---------------------------------------------------------------------

    def write_content(
        self,
        header: FileHeader,
        chunks: Iterable[bytes] = (),
        *,
        size: Optional[int] = None,
        expected_checksum: Optional[str] = None,
    ) -> str:
        """Stream one file or symlink into the repo in this mode; returns its content checksum.

        ``size``, when given, must match the bytes in ``chunks`` (it is the stat size a tree
        builder saw; a file that changed while read is an error rather than a bad object).
        """
        return self._write_content(header, chunks, size, expected_checksum, True)

    def _write_content(
        self,
        header: FileHeader,
        chunks: Iterable[bytes],
        size: Optional[int],
        expected_checksum: Optional[str],
        check: bool,
    ) -> str:
        check_header_for_mode(header, self.settings.mode_name)
        if not self._privileged_files and self.settings.mode_name == "bare":
            _refuse_privileged(header)
        hasher = hashlib.sha256(header.framed())
        if header.is_symlink:
            checksum = hasher.hexdigest()
            self._verify(checksum, expected_checksum)
            if not (check and self.has_object(checksum, ObjectType.FILE)):
                self._stage_symlink(header, checksum)
            return checksum
        tmp = self._new_tmp(public=self.settings.archive)
        try:
            total = self._write_payload(tmp.fd, header, chunks, size, hasher)
            if size is not None and total != size:
                raise ObjectError(f"file changed while being read: {total} bytes, expected {size}")
            checksum = hasher.hexdigest()
            self._verify(checksum, expected_checksum)
            if check and self.has_object(checksum, ObjectType.FILE):
                tmp.discard()
                return checksum
            self._finish_file(tmp, header)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._staged_bytes(total)
        return checksum

    def stage_content_bytes(self, checksum: str, stored: bytes, header: FileHeader) -> None:
        """Stage a regular file whose checksum the caller computed from the logical stream and
        whose ``stored`` bytes are already in this repo's form (``.filez`` bytes in archive
        mode, the payload otherwise): one write, then the mode's owner/mode/xattrs. For a
        builder that read a small file whole; :meth:`write_content` is the streaming path."""
        tmp = self._new_tmp(public=self.settings.archive)
        try:
            write_all(tmp.fd, stored)
            self._finish_file(tmp, header)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._staged_bytes(len(stored))

    def write_raw(
        self,
        checksum: str,
        objtype: ObjectType,
        source: Union[bytes, Callable[[int], bytes]],
        *,
        known_absent: bool = False,
    ) -> str:
        """Import an object in its archive (wire) form, verified before it becomes visible:
        metadata bytes (``.commitmeta`` is stored as given), or a ``.filez`` read through
        ``source(n)`` and inflated in chunks.

        ``known_absent``: the caller has just learnt the object is missing (a push's HAVE
        answer), so skip the existence check. Should it be there after all, the cost is a
        redundant staged file: publishing never replaces an existing object."""
        validate_checksum(checksum)
        check = not known_absent
        if objtype is ObjectType.FILE:
            from pyostree.objects.content import iter_inflate, parse_archive_header

            read = source if callable(source) else BytesReader(source).read
            if self.settings.archive:
                return self._store_filez_verbatim(checksum, read, check)
            header, size = parse_archive_header(read)
            if header.is_regular:
                chunks: Iterable[bytes] = iter_inflate(read, size)
            elif read(1):
                raise ObjectError("archive symlink object has data after its header")
            else:
                chunks = ()
            return self._write_content(header, chunks, size, checksum, check)
        if callable(source):
            raise TransactionError("metadata objects are passed as bytes")
        if objtype is ObjectType.COMMIT_META:
            self.write_commitmeta(checksum, source)
            return checksum
        return self._write_metadata_bytes(objtype, source, checksum, check)

    def write_filez_bytes(self, checksum: str, data: bytes, *, known_absent: bool = False) -> None:
        """Archive mode: stage a whole ``.filez`` held in memory, as :meth:`write_raw`
        would, on the short path: header checks cached per owner/mode, one inflate call,
        one write. A payload too large to inflate whole goes :meth:`write_raw`'s way."""
        if not known_absent and self.has_object(checksum, ObjectType.FILE):
            return
        if self.check_filez_bytes(checksum, data):
            self.stage_checked_filez(checksum, data)
        else:
            self.write_raw(checksum, ObjectType.FILE, data, known_absent=True)

    def check_filez_bytes(self, checksum: str, data: bytes) -> bool:
        """The verification half of :meth:`write_filez_bytes` (thread-safe, no file
        touched), so a caller can verify on one thread and write on another. Raises for
        bad bytes; False when the payload is too large to check whole."""
        if not self.settings.archive:
            raise TransactionError("a .filez is stored as it is only in archive repos")
        from pyostree.objects.content import FilezHeaderCache, verify_filez_bytes

        validate_checksum(checksum)
        cache = self._filez_headers
        if cache is None:  # two threads may both make one: one is dropped, no harm
            cache = self._filez_headers = FilezHeaderCache()
        return verify_filez_bytes(data, checksum, cache) is not None

    def stage_checked_filez(self, checksum: str, data: bytes) -> None:
        """The writing half: ``data`` must be bytes :meth:`check_filez_bytes` passed
        under this ``checksum``."""
        self._stage_public_bytes(data, checksum, ObjectType.FILE)

    def helper_tmp_dir(self, tag: str) -> str:
        """A temp dir in the staging dir for a helper process that stages objects for this
        transaction (pyostree.receive.workers); like ours, it dies with the staging dir."""
        staging = self._require_staging()
        path = os.path.join(staging.path, f"{_TMP_PREFIX}{tag}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # a resumed dir: the helper skips names taken
            pass
        return path

    def adopt_staged_files(self, staged: Sequence[Tuple[str, int]]) -> None:
        """Count content objects a helper process put at their staged names (verified,
        complete: temp files renamed there) as staged by this transaction: (checksum,
        size in bytes) of each."""
        self._require_staging()
        for checksum, size in staged:
            self._record(self._relpath(checksum, ObjectType.FILE), checksum, ObjectType.FILE)
        self._staged_bytes(sum(size for _checksum, size in staged))

    def _store_filez_verbatim(self, checksum: str, read: Callable[[int], bytes], check: bool) -> str:
        """Archive into archive: keep the sender's compressed bytes (no recompression), but
        only after inflating them and checking the content checksum."""
        from pyostree.objects.content import iter_inflate, parse_archive_header

        if check and self.has_object(checksum, ObjectType.FILE):
            return checksum
        tmp = self._new_tmp(public=True)
        pending: List[bytes] = []
        pending_len = 0
        copied = 0

        def tee(size: int) -> bytes:  # batched: a small object is one write
            nonlocal pending_len, copied
            data = read(size)
            pending.append(data)
            pending_len += len(data)
            copied += len(data)
            if pending_len >= _COPY_CHUNK:
                write_all(tmp.fd, b"".join(pending))
                pending.clear()
                pending_len = 0
            return data

        try:
            header, size = parse_archive_header(tee)
            check_header_for_mode(header, self.settings.mode_name)
            hasher = hashlib.sha256(header.framed())
            if header.is_regular:
                for chunk in iter_inflate(tee, size):
                    hasher.update(chunk)
            elif tee(1):
                raise ObjectError("archive symlink object has data after its header")
            self._verify(hasher.hexdigest(), checksum)
            write_all(tmp.fd, b"".join(pending))
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._staged_bytes(copied)
        return checksum

    def _verify(self, checksum: str, expected: Optional[str]) -> None:
        if expected is not None and checksum != expected:
            raise ChecksumMismatchError(f"corrupted file object: checksum expected={expected} actual={checksum}")

    def _write_payload(
        self, fd: int, header: FileHeader, chunks: Iterable[bytes], size: Optional[int], hasher: "hashlib._Hash"
    ) -> int:
        total = 0
        if not self.settings.archive:
            for chunk in chunks:
                hasher.update(chunk)
                total += len(chunk)
                write_all(fd, chunk)
            return total
        placeholder = header.to_archive_bytes(size or 0)
        compressor = zlib.compressobj(self.settings.zlib_level, zlib.DEFLATED, -15)
        pending = [placeholder]
        pending_len = len(placeholder)
        for chunk in chunks:
            hasher.update(chunk)
            total += len(chunk)
            out = compressor.compress(chunk)
            if out:
                pending.append(out)
                pending_len += len(out)
                if pending_len >= _COPY_CHUNK:
                    write_all(fd, b"".join(pending))
                    pending = []
                    pending_len = 0
        pending.append(compressor.flush())
        write_all(fd, b"".join(pending))
        if size is None or total != size:
            os.pwrite(fd, header.to_archive_bytes(total), 0)  # header length does not depend on size
        return total

    def _stage_symlink(self, header: FileHeader, checksum: str) -> None:
        mode_name = self.settings.mode_name
        if self.settings.archive or mode_name == "bare-user":
            tmp = self._new_tmp(public=True)
            try:
                if self.settings.archive:
                    write_all(tmp.fd, header.to_archive_bytes(0))
                    self._make_public(tmp)
                else:
                    write_all(tmp.fd, header.symlink_target.encode("utf-8") + b"\0")
                    self._make_public(tmp)
                    os.setxattr(tmp.fd, "user.ostreemeta", ostreemeta(header))
                    os.utime(tmp.fd, ns=(time.time_ns(), 0))
            except BaseException:
                tmp.discard()
                raise
            self._install(tmp, checksum, ObjectType.FILE)
            return
        staging = self._require_staging()
        tmp_path = os.path.join(staging.path, "tmplink." + secrets.token_hex(8))
        os.symlink(header.symlink_target, tmp_path)
        try:  # ostree 2022.7 leaves a symlink object's mtime alone (unlike regular files)
            if mode_name == "bare":
                os.chown(tmp_path, header.uid, header.gid, follow_symlinks=False)
                for name, value in header.xattrs:
                    os.setxattr(tmp_path, name[:-1], value, follow_symlinks=False)
        except BaseException:
            os.unlink(tmp_path)
            raise
        self._install_path(tmp_path, checksum, ObjectType.FILE)

    # ---- refs and state --------------------------------------------------------------

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

    # ---- publication -----------------------------------------------------------------

    def sync_ahead(self) -> None:
        """Begin the write-back that publishing starts with (``syncfs``) on a thread, then
        the renames early publishing would make of what it made durable (content,
        dirmeta, dirtrees complete below them), so that a caller's own checks before
        :meth:`publish_objects` overlap both; publishing then waits for it, and syncs
        again only if something was staged since."""
        self._require_open()
        if self.settings.fsync and self._sync is None:
            with self._guard:
                self._early_last = True
                running = self._early_thread
                upto = len(self._sequence)
            # A running round finishes its renames first (on the new thread, not here:
            # the caller goes on at once); no other round begins.
            self._sync = _BackgroundSync(
                self._sync_root(), upto, after=running,
                then=lambda: self._publish_durable(upto, lambda: self._sync_stop))

    def _sync_root(self) -> str:
        """What ``syncfs`` is called on: the staging dir, whose file system holds the
        staged objects and (publishing renames them) ``objects/``, whichever of ``tmp/``
        and ``objects/`` is a symlink or a mount; the repo root's may be neither's."""
        staging = self._staging
        return staging.path if staging is not None else self.root

    def _stop_sync(self) -> None:
        """Stop what sync_ahead began (it may be renaming) and wait for it, errors and all."""
        self._sync_stop = True
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.join()

    def _publish_objects(self, staging: StagingDir, dirtrees: Optional[Sequence[str]] = None,
                         commits: Optional[Collection[str]] = None) -> None:
        self._stop_early()
        sync, self._sync = self._sync, None
        if self.settings.fsync and (sync is None or sync.upto != len(self._sequence)):
            if sync is not None:
                sync.wait()
            sync = _BackgroundSync(self._sync_root(), len(self._sequence))
        if sync is not None:
            sync.wait()
        staged = self._staged_objects(staging, dirtrees, commits)  # after sync_ahead's renames
        objects_dir = os.path.join(self.root, "objects")
        if not self._replace_commitmeta:
            staged = self._check_commitmeta(staged, objects_dir)
        touched: Set[str] = set(self._early_prefixes)  # made already, fsynced below
        for _rank, _seq, rel in staged:
            source = self._staged_path(rel)
            target = os.path.join(objects_dir, rel)
            prefix = rel[:2]
            if prefix not in touched:
                try:
                    os.mkdir(os.path.join(objects_dir, prefix), 0o777)
                except FileExistsError:
                    pass
                touched.add(prefix)
            if rel.endswith(".commitmeta") and self._replace_commitmeta:
                os.replace(source, target)
                continue
            self._publish_one(source, target)
            if rel.endswith(".commit"):
                try:
                    os.unlink(target[: -len("commit")] + "tombstone-commit")
                except FileNotFoundError:
                    pass
        if self.settings.fsync:
            # Each fsync waits for the journal: overlapped, they share its commits.
            parallel_io(fsync_dir, [os.path.join(objects_dir, prefix) for prefix in sorted(touched)])
            fsync_dir(objects_dir)

    def _check_commitmeta(self, staged: List[Tuple[int, int, str]],
                          objects_dir: str) -> List[Tuple[int, int, str]]:
        """Without ``replace_commitmeta``: a staged commitmeta whose commit has one with
        other bytes in ``objects/`` is refused before anything is published; one with the
        same bytes has nothing to publish."""
        kept: List[Tuple[int, int, str]] = []
        for item in staged:
            rel = item[2]
            if not rel.endswith(".commitmeta"):
                kept.append(item)
                continue
            try:
                with open(os.path.join(objects_dir, rel), "rb") as handle:
                    existing: Optional[bytes] = handle.read(MAX_METADATA_SIZE + 1)
            except FileNotFoundError:
                existing = None
            if existing is None:
                kept.append(item)
                continue
            with open(self._staged_path(rel), "rb") as handle:
                if handle.read(MAX_METADATA_SIZE + 1) != existing:
                    checksum = rel[:2] + rel[3:].partition(".")[0]
                    raise RepoError(
                        f"commit {checksum} already has other detached metadata, "
                        "and this repo does not replace it")
        return kept

    def _staged_objects(self, staging: StagingDir, dirtrees: Optional[Sequence[str]] = None,
                        commits: Optional[Collection[str]] = None) -> List[Tuple[int, int, str]]:
        """(rank, write order, relpath) of every staged object to publish, in publication
        order (``dirtrees``: see :meth:`publish_objects`). A fresh staging dir holds only
        what this transaction recorded (no one else writes a locked dir); a resumed one
        is listed, as earlier runs staged objects there too (not their UNCHECKED_DIR,
        dropped on resume). Given ``commits``, only the commitmeta this transaction
        staged for them goes."""
        if staging.resumed:
            with self._guard:
                unchecked = set(self._unchecked)
            rels: Iterable[str] = unchecked.union(_list_staged(staging.path))
        else:
            with self._guard:
                rels = list(self._sequence)
        staged: List[Tuple[int, int, str]] = []
        published = self._early_published
        for rel in rels:
            rank = _PUBLISH_RANK.get(rel.rpartition(".")[2])
            if rank is not None and rel not in published:
                staged.append((rank, self._sequence.get(rel, -1), rel))
        staged.sort()
        if commits is not None:
            wanted = {self._relpath(checksum, ObjectType.COMMIT) for checksum in commits}
            metas = {rel[:-len("commit")] + "commitmeta" for rel in wanted} & self._unchecked
            staged = [item for item in staged
                      if (item[0] != _COMMIT_RANK or item[2] in wanted)
                      and (item[0] != _COMMITMETA_RANK or item[2] in metas)]
        if dirtrees is not None:
            given = {self._relpath(checksum, ObjectType.DIR_TREE): index
                     for index, checksum in enumerate(dirtrees)}
            staged = [item for item in staged if item[0] != _DIRTREE_RANK or item[2] in given]
            staged.sort(key=lambda item: (item[0], given.get(item[2], item[1])))
            return staged
        trees = [rel for rank, _seq, rel in staged if rank == _DIRTREE_RANK]
        if len(trees) > 1:
            ordered = _children_first(self._staged_path, trees, self._kept_trees)
            order = {rel: index for index, rel in enumerate(ordered)}
            staged.sort(key=lambda item: (item[0], order.get(item[2], item[1])))
        return staged

    def _publish_one(self, source: str, target: str) -> None:
        """Move a staged object to its name in ``objects/``, never over an object already
        there (checkouts may hardlink it): then the staged duplicate is dropped. Without
        ``RENAME_NOREPLACE``, link and leave the staged name to the staging dir's removal."""
        if self._noreplace:
            moved = rename_noreplace(source, target)
            if moved is not None:
                if not moved:
                    unlink_quietly(source)
                return
            self._noreplace = False
        _link_or_skip(source, target)


_DIRTREE_RANK = _PUBLISH_RANK["dirtree"]
_COMMIT_RANK = _PUBLISH_RANK["commit"]
_COMMITMETA_RANK = _PUBLISH_RANK["commitmeta"]
_DIRMETA_RANK = _PUBLISH_RANK["dirmeta"]
EARLY_SYNC_BYTES = 8 << 20
"""Staged bytes between two background ``syncfs`` calls (see ``_staged_bytes``)."""
_KEPT_TREE_BYTES = 16 << 20
_KEPT_TREE_MAX = 1 << 20
"""A bigger dirtree is not kept: parsing it for early publishing (an object per entry)
took ~10 bytes of memory per byte of it."""


def _syncfs_at(path: str) -> None:
    """``syncfs`` of the file system that holds ``path``."""
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        syncfs(dir_fd)
    finally:
        os.close(dir_fd)


class _BackgroundSync:
    """One ``syncfs`` of the staging dir's file system on a thread (once thread ``after``, if
    given, has ended), then ``then()`` if given; :meth:`wait` raises their error.
    ``upto``: how many objects the transaction had staged when it began."""

    def __init__(self, root: str, upto: int, then: Optional[Callable[[], None]] = None,
                 after: Optional[threading.Thread] = None) -> None:
        self.upto = upto
        self._root = root
        self._then = then
        self._after = after
        self._error: Optional[OSError] = None
        self._thread = threading.Thread(target=self._run, name="syncfs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._after is not None:
                self._after.join()
            _syncfs_at(self._root)
            if self._then is not None:
                self._then()
        except OSError as err:
            self._error = err

    def join(self) -> None:
        self._thread.join()

    def wait(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error


def _children_first(staged_path: Callable[[str], str], trees: List[str],
                    kept: Optional[Dict[str, bytes]] = None) -> List[str]:
    """Staged dirtrees (``XX/NAME.dirtree``) ordered so each comes after the staged
    dirtrees it names. Staging order is not enough: parallel writers finish out of order,
    and a resumed dir has none. A crash mid-publish must never leave a dirtree in
    ``objects/`` whose subtree is not, since a dirtree found there is trusted complete."""
    from pyostree.objects import DirTree

    staged = set(trees)
    children: Dict[str, List[str]] = {}
    for rel in trees:
        data = kept.get(rel) if kept else None
        if data is None:
            with open(staged_path(rel), "rb") as handle:
                data = handle.read(MAX_METADATA_SIZE + 1)
        subdirs = DirTree.from_bytes(data, verify=False).dirs
        names = (f"{d.tree_checksum[:2]}/{d.tree_checksum[2:]}.dirtree" for d in subdirs)
        children[rel] = [name for name in names if name in staged]
    return _post_order(trees, children)


def _post_order(trees: List[str], children: Mapping[str, List[str]]) -> List[str]:
    """``trees`` with each after its ``children`` (which must be among ``trees``);
    iterative, so a hostile depth cannot hit the recursion limit."""
    ordered: List[str] = []
    done: Set[str] = set()
    for root in trees:
        if root in done:
            continue
        stack = [(root, iter(children[root]))]
        done.add(root)
        while stack:
            rel, pending = stack[-1]
            child = next((c for c in pending if c not in done), None)
            if child is None:
                stack.pop()
                ordered.append(rel)
            else:
                done.add(child)
                stack.append((child, iter(children[child])))
    return ordered


def _list_staged(path: str) -> List[str]:
    """``XX/NAME`` of everything in a staging dir's fan-out dirs."""
    rels: List[str] = []
    for prefix in os.listdir(path):
        prefix_dir = os.path.join(path, prefix)
        if len(prefix) != 2 or not os.path.isdir(prefix_dir):
            continue
        rels.extend(f"{prefix}/{name}" for name in os.listdir(prefix_dir))
    return rels


def _link_or_skip(source: str, target: str) -> None:
    """Publish by ``link`` (which never replaces); where there are no hard links, rename
    when nothing is there."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        pass  # never rewrite an existing object
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if not os.path.lexists(target):
            os.rename(source, target)


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
