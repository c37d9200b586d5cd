"""Publishing: how a transaction's staged objects get into ``objects/`` (spec §1.8),
durable first and children before parents, early while staging goes on or all at once
at commit.

The rules in one place: nothing is renamed into ``objects/`` before a ``syncfs`` of the
staging dir's file system that began after it was staged returned; content and dirmeta
(nothing is trusted because of them) may go early, a dirtree only once everything it
names is in ``objects/`` (a dirtree there is trusted complete), commits and commitmeta
only at commit; within that, order of type (content, dirmeta, dirtree, commit,
tombstone, commitmeta), dirtrees children first; ``renameat2(RENAME_NOREPLACE)`` (else
``link``) never replaces an object; a commitmeta is replaced only where the repo's
policy allows; the touched ``objects/XX`` dirs and ``objects/`` are fsynced after.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from pyostree.errors import RepoError
from pyostree.objects.types import ObjectType
from pyostree.repo.fsutil import fsync_dir, parallel_io, rename_noreplace, syncfs, unlink_quietly
from pyostree.repo.stagewrite import MAX_METADATA_SIZE

if TYPE_CHECKING:
    from pyostree.repo.staging import StagingDir
    from pyostree.repo.stagewrite import Stager
    from pyostree.repo.writesettings import WriteSettings

__all__ = ["EARLY_SYNC_BYTES", "Publisher"]

# Publication order: children before parents (spec §1.8 rule 4).
_PUBLISH_RANK = {"file": 0, "filez": 0, "dirmeta": 1, "dirtree": 2, "commit": 3, "tombstone-commit": 4, "commitmeta": 5}


class Publisher:
    """Publishes what one transaction's :class:`Stager` staged: early publishing (a
    background ``syncfs`` every EARLY_SYNC_BYTES staged, then the renames it made safe),
    :meth:`sync_ahead`, and the publish at commit. It reads the stager's record under
    the stager's ``guard`` and keeps its own state: what it moved and what it waits for."""

    def __init__(self, root: str, settings: WriteSettings, stager: Stager, *,
                 replace_commitmeta: bool = True) -> None:
        self._root = root
        self._settings = settings
        self._stager = stager
        self._replace_commitmeta = replace_commitmeta
        self._dir: Optional[StagingDir] = None  # set by open()
        self._noreplace = True  # renameat2(RENAME_NOREPLACE) works here, until it says otherwise
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
        self._unsynced = 0  # bytes staged since the last early syncfs began
        self._early_thread: Optional[threading.Thread] = None
        self._early_stop = False  # stop now (abort, publish)
        self._early_last = False  # no round after the running one (sync_ahead takes over)
        self._sync: Optional[_BackgroundSync] = None  # begun by sync_ahead()
        self._sync_stop = False
        self._early_published: Set[str] = set()  # relpaths already moved into objects/
        self._early_prefixes: Set[str] = set()  # objects/XX dirs those renames touched

    def open(self, staging: StagingDir) -> None:
        """The transaction has begun with ``staging``."""
        self._dir = staging

    def note_staged(self, rel: str, objtype: ObjectType) -> None:
        """An object got its staged name (called under the stager's guard): early
        publishing's queues, in staging order."""
        if self._settings.fsync:
            if objtype is ObjectType.DIR_TREE:
                self._early_trees.append(rel)
            elif objtype in (ObjectType.FILE, ObjectType.DIR_META):
                self._early_leaves.append(rel)

    def published_early(self, rel: str) -> bool:
        """Moved into objects/ by early publishing (ask under the stager's guard)."""
        return rel in self._early_published

    def staged_bytes(self, size: int) -> None:
        """Write back and publish early: every EARLY_SYNC_BYTES staged, a background
        ``syncfs`` (one at a time); once it returns, the objects staged before it began
        are durable, and the leaves among them (content and dirmeta: nothing is trusted
        because of them), then the dirtrees whose whole subtree is in ``objects/`` by
        then, are moved there then and there. The publish at commit is left with the
        last few, the dirtrees above them and the commits, after a ``syncfs`` that finds
        little to do."""
        if not self._settings.fsync:
            return
        with self._stager.guard:
            self._unsynced += size
            running = self._early_thread is not None
            if (self._unsynced < EARLY_SYNC_BYTES or running or self._early_stop
                    or self._early_last):
                return
            self._unsynced = 0
            upto = len(self._stager.sequence)
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
                with self._stager.guard:
                    if (self._early_stop or self._early_last
                            or self._unsynced < EARLY_SYNC_BYTES):
                        self._early_thread = None  # done: the next call may start one
                        return
                    self._unsynced = 0
                    upto = len(self._stager.sequence)
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
        staging = self._dir
        if staging is None:
            return
        with self._stager.guard:
            sequence = self._stager.sequence
            leaves = self._early_leaves
            first = end = self._early_leaves_done
            while end < len(leaves) and sequence.get(leaves[end], upto) < upto:
                end += 1
            durable = leaves[first:end]
            trees = self._early_trees
            taken = self._early_trees_taken
            while taken < len(trees) and sequence.get(trees[taken], upto) < upto:
                taken += 1
            new_trees = [(rel, self._stager.kept_trees.get(rel))
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
        objects_dir = os.path.join(self._root, "objects")
        prefix = rel[:2]
        if prefix not in self._early_prefixes:
            try:
                os.mkdir(os.path.join(objects_dir, prefix), 0o777)
            except FileExistsError:
                pass
            self._early_prefixes.add(prefix)
        self._publish_one(self._stager.staged_path(rel), f"{objects_dir}/{rel}")
        with self._stager.guard:
            self._early_published.add(rel)

    def _links_of(self, data: bytes) -> Tuple[List[str], List[Tuple[str, str]]]:
        """Relpaths a staged dirtree names: its files, and (dirtree, dirmeta) per subdir."""
        from pyostree.objects import DirTree

        tree = DirTree.from_bytes(data, verify=False)
        return ([self._stager.relpath(entry.checksum, ObjectType.FILE) for entry in tree.files],
                [(self._stager.relpath(entry.tree_checksum, ObjectType.DIR_TREE),
                  self._stager.relpath(entry.meta_checksum, ObjectType.DIR_META)) for entry in tree.dirs])

    def _in_objects(self, rel: str) -> bool:
        """In objects/: published early by this transaction, or there before it (looked
        up once) if this transaction did not stage it. An absent one is looked up once
        too: if another writer adds it meanwhile, the dirtree waiting for it waits for
        the publish at commit, which is all that costs."""
        if rel in self._early_published or rel in self._found_in_objects:
            return True
        if rel in self._stager.sequence or rel in self._absent_from_objects:
            return False  # staged here and not published yet, or not there
        if os.path.lexists(os.path.join(self._root, "objects", rel)):
            self._found_in_objects.add(rel)
            return True
        self._absent_from_objects.add(rel)
        return False

    def stop_early(self) -> None:
        """No more early publishing; waits for a running one (it may be renaming)."""
        with self._stager.guard:
            self._early_stop = True
            thread = self._early_thread
        if thread is not None:
            thread.join()

    def sync_ahead(self) -> None:
        """Begin the write-back that publishing starts with (``syncfs``) on a thread, then
        the renames early publishing would make of what it made durable (content,
        dirmeta, dirtrees complete below them), so that a caller's own checks before
        ``Transaction.publish_objects`` overlap both; publishing then waits for it, and syncs
        again only if something was staged since."""
        if self._settings.fsync and self._sync is None:
            with self._stager.guard:
                self._early_last = True
                running = self._early_thread
                upto = len(self._stager.sequence)
            # A running round finishes its renames first (on the new thread, not here:
            # the caller goes on at once); no other round begins.
            self._sync = _BackgroundSync(
                self._sync_root(), upto, after=running,
                then=lambda: self._publish_durable(upto, lambda: self._sync_stop))

    def _sync_root(self) -> str:
        """What ``syncfs`` is called on: the staging dir, whose file system holds the
        staged objects and (publishing renames them) ``objects/``, whichever of ``tmp/``
        and ``objects/`` is a symlink or a mount; the repo root's may be neither's."""
        staging = self._dir
        return staging.path if staging is not None else self._root

    def stop_sync(self) -> None:
        """Stop what sync_ahead began (it may be renaming) and wait for it, errors and all."""
        self._sync_stop = True
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.join()

    def publish(self, staging: StagingDir, dirtrees: Optional[Sequence[str]] = None,
                commits: Optional[Collection[str]] = None) -> None:
        """The publish at commit (see ``Transaction.publish_objects``): wait for a durable
        staging dir, then every staged object not yet published, in order, then fsyncs."""
        self.stop_early()
        sync, self._sync = self._sync, None
        if self._settings.fsync and (sync is None or sync.upto != len(self._stager.sequence)):
            if sync is not None:
                sync.wait()
            sync = _BackgroundSync(self._sync_root(), len(self._stager.sequence))
        if sync is not None:
            sync.wait()
        staged = self._staged_objects(staging, dirtrees, commits)  # after sync_ahead's renames
        objects_dir = os.path.join(self._root, "objects")
        if not self._replace_commitmeta:
            staged = self._check_commitmeta(staged, objects_dir)
        touched: Set[str] = set(self._early_prefixes)  # made already, fsynced below
        for _rank, _seq, rel in staged:
            source = self._stager.staged_path(rel)
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
        if self._settings.fsync:
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
            with open(self._stager.staged_path(rel), "rb") as handle:
                if handle.read(MAX_METADATA_SIZE + 1) != existing:
                    checksum = rel[:2] + rel[3:].partition(".")[0]
                    raise RepoError(
                        f"commit {checksum} already has other detached metadata, "
                        "and this repo does not replace it")
        return kept

    def _staged_objects(self, staging: StagingDir, dirtrees: Optional[Sequence[str]] = None,
                        commits: Optional[Collection[str]] = None) -> List[Tuple[int, int, str]]:
        """(rank, write order, relpath) of every staged object to publish, in publication
        order (``dirtrees``: see ``Transaction.publish_objects``). A fresh staging dir holds only
        what this transaction recorded (no one else writes a locked dir); a resumed one
        is listed, as earlier runs staged objects there too (not their UNCHECKED_DIR,
        dropped on resume). Given ``commits``, only the commitmeta this transaction
        staged for them goes."""
        if staging.resumed:
            with self._stager.guard:
                unchecked = set(self._stager.unchecked)
            rels: Iterable[str] = unchecked.union(_list_staged(staging.path))
        else:
            with self._stager.guard:
                rels = list(self._stager.sequence)
        staged: List[Tuple[int, int, str]] = []
        published = self._early_published
        for rel in rels:
            rank = _PUBLISH_RANK.get(rel.rpartition(".")[2])
            if rank is not None and rel not in published:
                staged.append((rank, self._stager.sequence.get(rel, -1), rel))
        staged.sort()
        if commits is not None:
            wanted = {self._stager.relpath(checksum, ObjectType.COMMIT) for checksum in commits}
            metas = {rel[:-len("commit")] + "commitmeta" for rel in wanted} & self._stager.unchecked
            staged = [item for item in staged
                      if (item[0] != _COMMIT_RANK or item[2] in wanted)
                      and (item[0] != _COMMITMETA_RANK or item[2] in metas)]
        if dirtrees is not None:
            given = {self._stager.relpath(checksum, ObjectType.DIR_TREE): index
                     for index, checksum in enumerate(dirtrees)}
            staged = [item for item in staged if item[0] != _DIRTREE_RANK or item[2] in given]
            staged.sort(key=lambda item: (item[0], given.get(item[2], item[1])))
            return staged
        trees = [rel for rank, _seq, rel in staged if rank == _DIRTREE_RANK]
        if len(trees) > 1:
            ordered = _children_first(self._stager.staged_path, trees, self._stager.kept_trees)
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
"""Staged bytes between two background ``syncfs`` calls (see ``Publisher.staged_bytes``)."""


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
