"""Reading refs: ``refs/heads``, ``refs/remotes/REMOTE``, ``refs/mirrors/COLLECTION`` and aliases.

Ref names are validated before they become paths, so a refspec can never reach outside
``refs/``. Aliases are symlinks that must stay inside ``refs/heads``.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from pyostree.errors import NotFoundError, RefError, RepoError
from pyostree.objects.checksum import is_checksum
from pyostree.objects.names import (
    parse_refspec,
    validate_collection_id,
    validate_ref_name,
    validate_remote_name,
)

#: A ref file is 65 bytes; anything much larger is not a ref.
MAX_REF_FILE_SIZE = 4096
#: Alias chains longer than this are treated as loops.
MAX_ALIAS_DEPTH = 40

HEADS = "refs/heads"
REMOTES = "refs/remotes"
MIRRORS = "refs/mirrors"

_WHITESPACE = " \t\n\r\v\f"


def read_ref_file(path: Path, name: str) -> str:
    """The checksum held in the ref file PATH (symlinks followed by the caller).

    Like libostree, only trailing whitespace is stripped; the rest must be a checksum.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REF_FILE_SIZE + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"Refspec '{name}' not found") from None
    except IsADirectoryError:
        raise NotFoundError(f"Refspec '{name}' not found (it is a directory)") from None
    except OSError as err:
        raise RepoError(f"Couldn't open ref '{name}': {err.strerror}") from None
    if len(data) > MAX_REF_FILE_SIZE:
        raise RepoError(f"Ref '{name}' is not a ref file: larger than {MAX_REF_FILE_SIZE} bytes")
    try:
        text = data.decode("utf-8").rstrip(_WHITESPACE)
    except UnicodeDecodeError:
        raise RepoError(f"Ref '{name}' holds invalid UTF-8") from None
    if not is_checksum(text):
        # The content is not echoed: a symlinked ref could point at any file.
        raise RepoError(f"Ref '{name}' does not hold a 64-character lowercase hex checksum")
    return text


def _resolve_alias(heads: Path, name: str) -> Optional[str]:
    """Follow alias symlinks from ``refs/heads/NAME``; the final (regular file) ref name.

    None when NAME does not exist. RepoError for loops, dangling links or links leaving
    ``refs/heads``.
    """
    current = name
    for _ in range(MAX_ALIAS_DEPTH):
        path = heads / current
        try:
            target = os.readlink(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno == errno.EINVAL:  # not a symlink: the ref itself
                return current
            if err.errno == errno.ENOTDIR:
                return None
            raise RepoError(f"Couldn't read ref '{name}': {err.strerror}") from None
        if target.startswith("/"):
            raise RepoError(f"Alias ref '{current}' points outside refs/heads: {target!r}")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if joined.startswith("../") or joined in ("..", "."):
            raise RepoError(f"Alias ref '{current}' points outside refs/heads: {target!r}")
        try:
            validate_ref_name(joined)
        except RefError:
            raise RepoError(f"Alias ref '{current}' points at an invalid ref: {target!r}") from None
        current = joined
    raise RepoError(f"Alias ref '{name}' is a symlink loop")


class RefStore:
    """Read-only view of the ``refs/`` tree of one repository."""

    def __init__(self, repo_path: Path) -> None:
        self.root = repo_path
        self._real_refs = os.path.realpath(repo_path / "refs")

    @staticmethod
    def _realpath(path: Path, real_dirs: Optional[Dict[str, str]]) -> str:
        """``os.path.realpath``; a listing passes REAL_DIRS (its own, never kept) so that each
        directory is resolved once: a thousand refs cost a thousand full resolutions, an
        lstat per path component."""
        text = os.fspath(path)
        if real_dirs is None:
            return os.path.realpath(text)
        try:
            is_link = stat.S_ISLNK(os.lstat(text).st_mode)
        except OSError:
            is_link = True  # let realpath and the read report it
        if is_link:
            return os.path.realpath(text)
        parent, base = os.path.split(text)
        real_parent = real_dirs.get(parent)
        if real_parent is None:
            real_parent = real_dirs[parent] = os.path.realpath(parent)
        return os.path.join(real_parent, base)

    def _read(self, path: Path, name: str, real_dirs: Optional[Dict[str, str]] = None) -> str:
        """Read a ref file, refusing one whose real location is outside ``refs/`` (a
        symlinked directory on the way, say)."""
        real = self._realpath(path, real_dirs)
        if not real.startswith(self._real_refs + os.sep):
            raise RepoError(f"Ref '{name}' resolves outside the refs directory")
        return read_ref_file(path, name)

    # -- single refs ------------------------------------------------------------

    def read_head(self, name: str) -> Optional[str]:
        """Checksum of ``refs/heads/NAME`` (aliases followed), None if absent."""
        validate_ref_name(name)
        heads = self.root / HEADS
        real = _resolve_alias(heads, name)
        if real is None:
            return None
        return self._read_optional(heads / real, name)

    def read_remote(self, remote: str, name: str) -> Optional[str]:
        """Checksum of ``refs/remotes/REMOTE/NAME``, None if absent."""
        validate_remote_name(remote)
        validate_ref_name(name)
        return self._read_optional(self.root / REMOTES / remote / name, f"{remote}:{name}")

    def read_mirror(self, collection_id: str, name: str) -> Optional[str]:
        """Checksum of ``refs/mirrors/COLLECTION/NAME``, None if absent."""
        validate_collection_id(collection_id)
        validate_ref_name(name)
        return self._read_optional(
            self.root / MIRRORS / collection_id / name, f"({collection_id}, {name})"
        )

    def read_refspec(self, refspec: str) -> Optional[str]:
        """``[REMOTE:]REF`` read exactly (no search across remotes)."""
        remote, name = parse_refspec(refspec)
        if remote is None:
            return self.read_head(name)
        return self.read_remote(remote, name)

    def search(self, name: str) -> Optional[str]:
        """libostree's lookup of a bare REF: heads, then ``refs/remotes/REF``, then each remote."""
        found = self.read_head(name)
        if found is not None:
            return found
        found = self._read_optional(self.root / REMOTES / name, name)
        if found is not None:
            return found
        for remote in self.remote_dirs():
            found = self._read_optional(self.root / REMOTES / remote / name, name)
            if found is not None:
                return found
        return None

    def _read_optional(self, path: Path, name: str) -> Optional[str]:
        try:
            return self._read(path, name)
        except NotFoundError:
            return None

    # -- listing --------------------------------------------------------------

    def remote_dirs(self) -> List[str]:
        """Remotes that have a directory under ``refs/remotes`` (sorted)."""
        return sorted(name for name, _ in _subdirs(self.root / REMOTES))

    def mirror_collections(self) -> List[str]:
        return sorted(name for name, _ in _subdirs(self.root / MIRRORS))

    def heads(self, prefix: Optional[str] = None) -> Dict[str, str]:
        """Every ``refs/heads`` ref (aliases included, as their target's checksum)."""
        heads = self.root / HEADS
        out: Dict[str, str] = {}
        real_dirs: Dict[str, str] = {}
        for name, is_link in _walk_refs(heads, prefix):
            if is_link:
                real = _resolve_alias(heads, name)
                if real is None:
                    raise RepoError(f"Alias ref '{name}' is dangling")
                out[name] = self._read(heads / real, name, real_dirs)
            else:
                out[name] = self._read(heads / name, name, real_dirs)
        return out

    def remote(self, remote: str, prefix: Optional[str] = None) -> Dict[str, str]:
        """Refs of one remote, keyed by their name inside the remote."""
        base = self.root / REMOTES / remote
        real_dirs: Dict[str, str] = {}
        return {
            name: self._read(base / name, f"{remote}:{name}", real_dirs)
            for name, is_link in _walk_refs(base, prefix)
            if not is_link
        }

    def mirror(self, collection_id: str) -> Dict[str, str]:
        base = self.root / MIRRORS / collection_id
        real_dirs: Dict[str, str] = {}
        return {
            name: self._read(base / name, f"({collection_id}, {name})", real_dirs)
            for name, is_link in _walk_refs(base, None)
            if not is_link
        }

    def aliases(self) -> Dict[str, str]:
        """Alias name -> the ref it points at (one level, like ``ostree refs --alias``)."""
        heads = self.root / HEADS
        out: Dict[str, str] = {}
        for name, is_link in _walk_refs(heads, None):
            if not is_link:
                continue
            target = os.readlink(heads / name)
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            out[name] = joined
        return out

    def list_refs(self, prefix: Optional[str] = None) -> Dict[str, str]:
        """Refs named like ``ostree refs --list [PREFIX]`` prints them.

        Heads are plain names, remote refs ``REMOTE:NAME``. PREFIX is a ref (or directory of
        refs) under heads, or ``REMOTE:`` / ``REMOTE:PATH`` under one remote; mirrors are
        never listed here (see :meth:`collection_refs`).
        """
        if prefix is None:
            out = self.heads()
            for remote_dir in self.remote_dirs():
                for name, checksum in self.remote(remote_dir).items():
                    out[f"{remote_dir}:{name}"] = checksum
            return out
        if prefix.endswith(":"):
            whole_remote = prefix[:-1]
            validate_remote_name(whole_remote)
            return {f"{whole_remote}:{n}": c for n, c in self.remote(whole_remote).items()}
        remote, path = parse_refspec(prefix)
        if remote is None:
            return self.heads(path)
        return {f"{remote}:{n}": c for n, c in self.remote(remote, path).items()}

    def collection_refs(
        self, repo_collection_id: Optional[str], remote_collections: Dict[str, str]
    ) -> Dict[Tuple[str, str], str]:
        """``ostree refs --collections``: heads under the repo's own collection id (if it has
        one), every mirror, and remote refs of remotes that declare a ``collection-id``."""
        out: Dict[Tuple[str, str], str] = {}
        if repo_collection_id:
            for name, checksum in self.heads().items():
                out[(repo_collection_id, name)] = checksum
        for collection in self.mirror_collections():
            for name, checksum in self.mirror(collection).items():
                out[(collection, name)] = checksum
        for remote in self.remote_dirs():
            collection_id = remote_collections.get(remote)
            if not collection_id:
                continue
            for name, checksum in self.remote(remote).items():
                out[(collection_id, name)] = checksum
        return out


def _subdirs(path: Path) -> Iterator[Tuple[str, Path]]:
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield entry.name, Path(entry.path)


def _walk_refs(base: Path, prefix: Optional[str]) -> Iterator[Tuple[str, bool]]:
    """(relative name, is_symlink) of every ref file under BASE, depth first, sorted.

    PREFIX selects one ref or a directory of refs, by whole path components. Entries whose
    name is not a valid ref fragment (editor droppings, temp files) are skipped.
    """
    start = ""
    if prefix:
        validate_ref_name(prefix)
        target = base / prefix
        if target.is_symlink() or target.is_file():
            yield prefix, target.is_symlink()
            return
        if not target.is_dir():
            return
        start = prefix
    stack: List[str] = [start]
    while stack:
        rel = stack.pop()
        try:
            entries = sorted(os.scandir(base / rel) if rel else os.scandir(base),
                             key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue
        subdirs: List[str] = []
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                validate_ref_name(entry.name)
            except RefError:
                continue
            if entry.is_symlink():
                yield name, True
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
            elif entry.is_file(follow_symlinks=False):
                yield name, False
        stack.extend(reversed(subdirs))
