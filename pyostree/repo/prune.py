"""Delete unreachable objects like ``ostree prune`` (under the exclusive repo lock).

Roots are every ref with ``refs_only``, else every commit object (so without
``refs_only`` only loose trees/files are collected, as in libostree). ``depth`` limits
how many parents of each root are kept (-1: all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Set, Tuple

from pyostree.errors import NotFoundError
from pyostree.objects.tombstone import Tombstone
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo
from pyostree.repo.lock import RepoLock
from pyostree.repo.writesettings import WriteSettings

__all__ = ["PruneResult", "prune", "reachable_objects"]

ObjectName = Tuple[str, ObjectType]
_PRUNABLE = (ObjectType.FILE, ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT)


@dataclass(frozen=True)
class PruneResult:
    total: int
    pruned: int
    freed_bytes: int


def _walk_tree(repo: Repo, tree: str, meta: str, seen: Set[ObjectName], tolerant: bool) -> None:
    stack = [(tree, meta)]
    while stack:
        tree_checksum, meta_checksum = stack.pop()
        seen.add((meta_checksum, ObjectType.DIR_META))
        if (tree_checksum, ObjectType.DIR_TREE) in seen:
            continue
        seen.add((tree_checksum, ObjectType.DIR_TREE))
        try:
            dirtree = repo.load_dirtree(tree_checksum)
        except NotFoundError:
            if tolerant:
                continue
            raise
        for entry in dirtree.files:
            seen.add((entry.checksum, ObjectType.FILE))
        for sub in dirtree.dirs:
            stack.append((sub.tree_checksum, sub.meta_checksum))


def reachable_objects(repo: Repo, roots: Iterable[str], depth: int) -> Set[ObjectName]:
    """Objects reachable from ``roots`` and up to ``depth`` parents (-1: all); a partial
    commit may lack parts of its tree and a missing parent ends a history quietly."""
    seen: Set[ObjectName] = set()
    budget: Dict[str, float] = {}  # commit -> most parents still to walk when visited
    for root in roots:
        checksum: Optional[str] = root
        remaining = float("inf") if depth < 0 else float(depth)
        while checksum is not None and repo.has_object(checksum, ObjectType.COMMIT):
            if budget.get(checksum, -1.0) >= remaining:
                break
            budget[checksum] = remaining
            seen.add((checksum, ObjectType.COMMIT))
            commit = repo.load_commit(checksum)
            _walk_tree(repo, commit.root_tree, commit.root_meta, seen, repo.is_commit_partial(checksum))
            if remaining <= 0:
                break
            remaining -= 1
            checksum = commit.parent
    return seen


def prune(
    repo: Repo,
    *,
    refs_only: bool = False,
    depth: int = -1,
    dry_run: bool = False,
    on_delete: Optional[Callable[[str, ObjectType], None]] = None,
) -> PruneResult:
    """Delete what no root reaches; returns counts like ``ostree prune`` prints."""
    settings = WriteSettings(repo)
    root = os.fspath(repo.path)
    lock = RepoLock(root, enabled=settings.locking, timeout_secs=settings.lock_timeout)
    lock.acquire(exclusive=True)
    try:
        everything = list(repo.list_objects())
        objects = [name for name in everything if name[1] in _PRUNABLE]
        if refs_only:
            roots = set(repo.list_refs().values()) | set(repo.list_collection_refs().values())
        else:
            roots = {checksum for checksum, objtype in objects if objtype is ObjectType.COMMIT}
        keep = reachable_objects(repo, sorted(roots), depth)
        pruned = 0
        freed = 0
        tombstones = repo.config.getbool("core", "tombstone-commits", False)
        for checksum, objtype in objects:
            if (checksum, objtype) in keep:
                continue
            pruned += 1
            path = repo.object_path(checksum, objtype)
            try:
                freed += path.lstat().st_size
            except FileNotFoundError:
                continue
            if dry_run:
                continue
            _delete_object(repo, checksum, objtype, tombstones)
            if on_delete is not None:
                on_delete(checksum, objtype)
        return PruneResult(len(everything), pruned, freed)
    finally:
        lock.release()


def _delete_object(repo: Repo, checksum: str, objtype: ObjectType, tombstones: bool) -> None:
    paths = [repo.object_path(checksum, objtype)]
    if objtype is ObjectType.COMMIT:
        paths.append(repo.object_path(checksum, ObjectType.COMMIT_META))
        paths.append(repo.path / "state" / f"{checksum}.commitpartial")
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if objtype is ObjectType.COMMIT and tombstones:
        target = repo.object_path(checksum, ObjectType.TOMBSTONE_COMMIT)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(Tombstone(checksum).to_bytes())
        os.rename(tmp, target)
