"""Reachability: every object a commit (and up to DEPTH of its parents) needs.

Iterative (explicit stack), so arbitrarily deep trees cannot exhaust Python's recursion
limit, and each object is reported once even when subtrees are shared.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Set, Tuple

from pyostree.errors import NotFoundError
from pyostree.objects.types import ObjectType

ObjectName = Tuple[str, ObjectType]


def walk_commits(
    commit: str,
    *,
    depth: int,
    load_parent: Callable[[str], Optional[str]],
    has_commit: Callable[[str], bool],
) -> Iterator[str]:
    """COMMIT then its ancestors, DEPTH parents at most (-1: all); stops quietly at the
    first parent that is absent (pruned or never pulled)."""
    if not has_commit(commit):
        raise NotFoundError(f"No such commit {commit}")
    current: Optional[str] = commit
    remaining = depth
    seen: Set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        yield current
        if remaining == 0:
            return
        if remaining > 0:
            remaining -= 1
        parent = load_parent(current)
        if parent is None or not has_commit(parent):
            return
        current = parent


def walk_tree(
    root_tree: str,
    root_meta: str,
    *,
    load_dirtree: Callable[[str], Tuple[List[str], List[Tuple[str, str]]]],
    seen: Set[ObjectName],
) -> Iterator[ObjectName]:
    """Objects under one root (dirtree, dirmeta, content), skipping those in SEEN.

    LOAD_DIRTREE returns (file checksums, [(tree checksum, meta checksum)]) of a dirtree.
    """
    stack: List[Tuple[str, str]] = [(root_tree, root_meta)]
    while stack:
        tree, meta = stack.pop()
        meta_name = (meta, ObjectType.DIR_META)
        if meta_name not in seen:
            seen.add(meta_name)
            yield meta_name
        tree_name = (tree, ObjectType.DIR_TREE)
        if tree_name in seen:
            continue
        seen.add(tree_name)
        yield tree_name
        files, dirs = load_dirtree(tree)
        for checksum in files:
            file_name = (checksum, ObjectType.FILE)
            if file_name not in seen:
                seen.add(file_name)
                yield file_name
        stack.extend(reversed(dirs))
