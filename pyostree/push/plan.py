"""What a push changes and sends: ref decisions (fast-forward only) and missing objects.

The object set is what the pushed commits reach minus what the remote's current commits
reach (walked locally when we have them), then filtered by batched ``have`` queries, and
ordered children first so the commit is the last object a reader could ever see.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple,
)

from pyostree.errors import PushError
from pyostree.objects.types import ObjectType
from pyostree.repo.walk import walk_tree

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = [
    "ObjectName",
    "RefUpdate",
    "TreePrefetch",
    "decide_updates",
    "is_ancestor",
    "missing_objects",
    "order_children_first",
    "reachable",
]

ObjectName = Tuple[str, ObjectType]
HaveFn = Callable[[Sequence[ObjectName]], List[bool]]
TreeLinks = Tuple[List[str], List[Tuple[str, str]]]
"""A dirtree's file checksums and (subtree, dirmeta) pairs: what a walk needs of it."""

_RANK = {
    ObjectType.FILE: 0,
    ObjectType.DIR_META: 1,
    ObjectType.DIR_TREE: 2,
    ObjectType.COMMIT_META: 3,
    ObjectType.COMMIT: 4,
}


@dataclass(frozen=True)
class RefUpdate:
    """One ref the push moves: ``old`` is the remote value it must still hold (CAS)."""

    ref: str
    old: Optional[str]
    new: str
    forced: bool = False


def is_ancestor(repo: Repo, ancestor: str, commit: str) -> bool:
    """True if ``ancestor`` is ``commit`` or on its local parent chain."""
    current: Optional[str] = commit
    seen: Set[str] = set()
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        if not repo.has_object(current, ObjectType.COMMIT):
            return False
        current = repo.load_commit(current).parent
    return False


def decide_updates(
    repo: Repo,
    local: Mapping[str, str],
    remote: Mapping[str, str],
    *,
    force: bool,
) -> Tuple[List[RefUpdate], List[str]]:
    """(updates, up-to-date refs); raises PushError naming every non-fast-forward ref."""
    updates: List[RefUpdate] = []
    current: List[str] = []
    refused: List[str] = []
    for ref in sorted(local):
        new = local[ref]
        old = remote.get(ref)
        if old == new:
            current.append(ref)
            continue
        if repo.is_commit_partial(new):
            raise PushError(f"cannot push {ref}: local commit {new} is partial")
        forced = False
        if old is not None and not is_ancestor(repo, old, new):
            if not force:
                refused.append(ref)
                continue
            forced = True
        updates.append(RefUpdate(ref, old, new, forced))
    if refused:
        names = ", ".join(refused)
        raise PushError(
            f"non-fast-forward update of {names} refused (the remote commit is not an "
            "ancestor of the local one); use --force to overwrite"
        )
    return updates, current


def _tree_links(repo: Repo, checksum: str) -> TreeLinks:
    tree = repo.load_dirtree(checksum)
    return [f.checksum for f in tree.files], [(d.tree_checksum, d.meta_checksum) for d in tree.dirs]


class TreePrefetch:
    """Loads, on a background thread, the dirtrees of the commits a push will walk: the
    pushed heads and their parents (the usual remote value). It runs while the client
    connects and the remote receiver starts, time the client otherwise spends waiting;
    the walks then find the trees parsed. Anything it did not get to is loaded as usual."""

    MAX_TREES = 100_000
    """Dirtrees kept at most (a few hundred bytes each, plus their checksum strings)."""

    def __init__(self, repo: Repo, commits: Iterable[str]) -> None:
        self._repo = repo
        self._commits = list(dict.fromkeys(commits))
        self._links: Dict[str, TreeLinks] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tree-prefetch", daemon=True)

    def start(self) -> None:
        """Begin loading; call it once the client has only waiting left to do (after the
        ssh handshake: the loader would take the GIL from it)."""
        if self._thread.ident is None:
            self._thread.start()

    def _run(self) -> None:
        try:
            roots: List[str] = []
            for commit in self._commits:
                commit_obj = self._repo.load_commit(commit)
                roots.append(commit_obj.root_tree)
                parent = commit_obj.parent
                if parent is not None and self._repo.has_object(parent, ObjectType.COMMIT):
                    roots.append(self._repo.load_commit(parent).root_tree)
            stack = roots
            while stack and not self._stop and len(self._links) < self.MAX_TREES:
                tree = stack.pop()
                if tree in self._links:
                    continue
                links = _tree_links(self._repo, tree)
                self._links[tree] = links
                stack.extend(sub for sub, _meta in links[1])
        except Exception:  # noqa: BLE001 - a guess only: the walk itself reports errors
            pass

    def load(self, repo: Repo, checksum: str) -> TreeLinks:
        links = self._links.get(checksum)
        return links if links is not None else _tree_links(repo, checksum)

    def finish(self) -> None:
        """Stop early if still running and wait for the thread (it is between two files)."""
        self._stop = True
        if self._thread.ident is not None:
            self._thread.join()


def reachable(repo: Repo, commit: str, seen: Set[ObjectName],
              prefetch: Optional[TreePrefetch] = None) -> List[ObjectName]:
    """Objects of ``commit`` (itself, commitmeta, tree) not in ``seen``; updates ``seen``.

    A dirtree already in ``seen`` prunes its whole subtree: that is what makes an
    incremental push cost the size of the change, not of the tree.
    """
    found: List[ObjectName] = []
    commit_obj = repo.load_commit(commit)

    def load_dirtree(checksum: str) -> TreeLinks:
        return prefetch.load(repo, checksum) if prefetch is not None else _tree_links(repo, checksum)

    found.extend(walk_tree(
        commit_obj.root_tree, commit_obj.root_meta, load_dirtree=load_dirtree, seen=seen
    ))
    if repo.has_object(commit, ObjectType.COMMIT_META):
        found.append((commit, ObjectType.COMMIT_META))
    name = (commit, ObjectType.COMMIT)
    if name not in seen:
        seen.add(name)
        found.append(name)
    return found


def order_children_first(names: Iterable[ObjectName]) -> List[ObjectName]:
    """Content, dirmeta, dirtrees deepest first, commitmeta, commits: a visible parent
    implies present children even for a reader racing the publisher."""
    indexed = list(enumerate(names))
    # walk_tree yields parents before children, so reverse walk order within a rank.
    indexed.sort(key=lambda item: (_RANK[item[1][1]], -item[0]))
    return [name for _index, name in indexed]


def missing_objects(
    repo: Repo,
    updates: Sequence[RefUpdate],
    remote_commits: Iterable[str],
    have: HaveFn,
    prefetch: Optional[TreePrefetch] = None,
) -> List[ObjectName]:
    """Objects the remote lacks for ``updates``, children first. ``have`` gets every
    candidate in one call: publishers batch and pipeline their queries themselves (HAVE
    frames in flight, one listing per fan-out dir)."""
    seen: Set[ObjectName] = set()
    for commit in set(remote_commits):
        if repo.has_object(commit, ObjectType.COMMIT) and not repo.is_commit_partial(commit):
            reachable(repo, commit, seen, prefetch)
    candidates: List[ObjectName] = []
    for update in updates:
        candidates.extend(reachable(repo, update.new, seen, prefetch))
    missing: List[ObjectName] = []
    answers = have(candidates) if candidates else []
    if len(answers) != len(candidates):
        raise PushError(f"the remote answered {len(answers)} of {len(candidates)} object queries")
    for name, present in zip(candidates, answers):
        # commitmeta is not content-addressed: always resend it with its commit
        if not present or name[1] is ObjectType.COMMIT_META:
            missing.append(name)
    return order_children_first(missing)
