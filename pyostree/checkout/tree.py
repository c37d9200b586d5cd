"""Addressing entries inside a commit's tree by path, the way ``ostree ls/cat`` do.

libostree resolves a path one component at a time with a binary search in each dirtree
(files first, then subdirectories); a component that is empty, ``.`` or ``..`` is simply
not found, and a path that restarts with ``/`` jumps back to the root. Reproducing that
keeps our error messages and printed paths identical to ``ostree``'s.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

from pyostree.errors import NotFoundError

if TYPE_CHECKING:
    from pyostree.objects import DirTree
    from pyostree.repo import Repo

__all__ = ["TreeEntry", "NotADirectoryError_", "child_path", "commit_root", "find_child", "resolve_path"]


class NotADirectoryError_(NotFoundError):
    """A path goes through something that is not a directory."""


@dataclass(frozen=True)
class TreeEntry:
    """One node of a commit tree: a content object or a (dirtree, dirmeta) pair."""

    path: str                # as ostree prints it: "/", "/usr", "/usr/bin"
    is_dir: bool
    checksum: str            # content checksum, or dirtree checksum for a directory
    meta_checksum: str = ""  # dirmeta checksum for a directory

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def child_path(parent_path: str, name: str) -> str:
    """GFile-style path of a child: ``/`` + name under the root, ``parent/name`` below."""
    if parent_path == "/":
        return "/" + name
    return parent_path + "/" + name


def commit_root(repo: Repo, commit_checksum: str) -> TreeEntry:
    """The root directory entry of a commit."""
    commit = repo.load_commit(commit_checksum)
    return TreeEntry("/", True, commit.root_tree, commit.root_meta)


def _bsearch(names: Sequence[str], name: str) -> int:
    index = bisect.bisect_left(names, name)
    if index < len(names) and names[index] == name:
        return index
    return -1


def find_child(tree: DirTree, parent_path: str, name: str) -> Optional[TreeEntry]:
    """Binary search, files before dirs, as libostree's lookup (unsorted trees miss, like it)."""
    path = child_path(parent_path, name)
    file_names = [entry.name for entry in tree.files]
    index = _bsearch(file_names, name)
    if index >= 0:
        return TreeEntry(path, False, tree.files[index].checksum)
    dir_names = [entry.name for entry in tree.dirs]
    index = _bsearch(dir_names, name)
    if index >= 0:
        found = tree.dirs[index]
        return TreeEntry(path, True, found.tree_checksum, found.meta_checksum)
    return None


def resolve_path(repo: Repo, root: TreeEntry, path: str, start: Optional[TreeEntry] = None) -> TreeEntry:
    """The entry PATH names under ROOT (a relative PATH starts at START if given);
    NotFoundError with ostree's message otherwise."""
    if path == "/":
        return root
    current = root
    if path.startswith("/"):
        path = path[1:]
    elif start is not None:
        current = start
    while True:
        name, slash, rest = path.partition("/")
        if not current.is_dir:
            raise NotADirectoryError_("Not a directory")
        found = find_child(repo.load_dirtree(current.checksum), current.path, name)
        if found is None:
            raise NotFoundError(f"No such file or directory: {child_path(current.path, name)}")
        current = found
        if not slash:
            return current
        if rest.startswith("/"):
            if rest == "/":
                return root
            current, rest = root, rest[1:]
        path = rest
