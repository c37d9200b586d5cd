"""An OSTree repository on disk: open, read refs and objects, walk commits.

The read side lives here and in ``config``, ``refs``, ``revparse``, ``store`` and ``walk``;
writing (``init``, ``transaction`` …) is delegated to the write-side modules, imported
lazily so that reading needs nothing beyond the standard library.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Dict,
    Iterator,
    List,
    Literal,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from pyostree.errors import NotFoundError, ObjectError, PyOstreeError, RepoError
from pyostree.objects.checksum import is_checksum, validate_checksum
from pyostree.objects.types import ObjectType
from pyostree.repo.config import MAX_CONFIG_SIZE, RepoConfig, RepoMode, parse_core
from pyostree.repo.refs import RefStore
from pyostree.repo.revparse import is_partial_checksum, resolve
from pyostree.repo.store import MAX_METADATA_SIZE, ContentReader, ObjectStore, open_repo_dir
from pyostree.repo.walk import ObjectName, walk_commits, walk_tree

if TYPE_CHECKING:
    from pyostree.objects.commit import Commit
    from pyostree.objects.dirmeta import DirMeta
    from pyostree.objects.dirtree import DirTree
    from pyostree.repo.transaction import Transaction

__all__ = [
    "MAX_METADATA_SIZE",
    "ContentReader",
    "ObjectName",
    "Repo",
    "RepoConfig",
    "RepoMode",
]

StrPath = Union[str, "os.PathLike[str]"]
_T = TypeVar("_T", covariant=True)


class _Parser(Protocol[_T]):
    def __call__(self, data: bytes, *, verify: bool = ...) -> _T: ...


def _read_config(path: Path) -> RepoConfig:
    config_path = path / "config"
    try:
        with open(config_path, "rb") as handle:
            data = handle.read(MAX_CONFIG_SIZE + 1)
    except FileNotFoundError:
        raise RepoError(f"Not an OSTree repository (no config file): {path}") from None
    except OSError as err:
        raise RepoError(f"Cannot read repository config {config_path}: {err.strerror}") from None
    if len(data) > MAX_CONFIG_SIZE:
        raise RepoError(f"Repository config {config_path} is larger than {MAX_CONFIG_SIZE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RepoError(f"Repository config {config_path} is not valid UTF-8") from None
    return RepoConfig.parse(text)


class Repo:
    """A repository opened for reading (and, through the write side, for writing)."""

    def __init__(self, path: Path, config: RepoConfig, mode: RepoMode) -> None:
        self.path = path
        self.config = config
        self.mode = mode
        self.store = ObjectStore(
            path, mode,
            disable_xattrs=mode is RepoMode.BARE and config.getbool("core", "disable-xattrs"),
        )
        self.refs = RefStore(path)

    @classmethod
    def open(cls, path: StrPath) -> Repo:
        """Open the repository at PATH; RepoError (one line) if it is not a usable repo."""
        root = open_repo_dir(Path(os.fspath(path)))
        config = _read_config(root)
        try:
            mode = parse_core(config)
        except RepoError as err:
            raise RepoError(f"Cannot open repository {root}: {err}") from None
        return cls(root, config, mode)

    @classmethod
    def init(
        cls, path: StrPath, mode: Union[RepoMode, str], *, collection_id: Optional[str] = None
    ) -> Repo:
        """Create a repository (``ostree init``); implemented by ``pyostree.repo.init``."""
        from pyostree.repo.init import init_repo

        return init_repo(path, mode, collection_id=collection_id)

    def transaction(self) -> Transaction:
        """A write transaction (context manager); see ``pyostree.repo.transaction``."""
        from pyostree.repo.transaction import Transaction

        return Transaction(self)

    def __repr__(self) -> str:
        return f"Repo({str(self.path)!r}, mode={self.mode.value})"

    @property
    def collection_id(self) -> Optional[str]:
        return self.config.get("core", "collection-id") or None

    def reload_config(self) -> None:
        """Re-read ``config`` (after a writer changed it)."""
        self.config = _read_config(self.path)

    # -- objects ----------------------------------------------------------------

    def object_path(self, checksum: str, objtype: ObjectType) -> Path:
        return self.store.object_path(checksum, objtype)

    def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        return self.store.has_object(checksum, objtype)

    def read_metadata_bytes(self, checksum: str, objtype: ObjectType) -> bytes:
        """Stored bytes of a metadata object, at most MAX_METADATA_SIZE."""
        return self.store.read_metadata_bytes(checksum, objtype)

    def load_commit(self, checksum: str) -> Commit:
        return self.parse_commit(checksum, self.read_metadata_bytes(checksum, ObjectType.COMMIT))

    def parse_commit(self, checksum: str, data: bytes) -> Commit:
        """``load_commit`` of bytes already read (the summary needs both)."""
        from pyostree.objects.commit import Commit

        commit = _parse(Commit.from_bytes, data, f"commit {checksum}")
        for what, value in (("root dirtree", commit.root_tree), ("root dirmeta", commit.root_meta)):
            if not is_checksum(value):
                raise ObjectError(f"Commit {checksum} has an invalid {what} checksum")
        if commit.parent is not None and not is_checksum(commit.parent):
            raise ObjectError(f"Commit {checksum} has an invalid parent checksum")
        return commit

    def load_dirtree(self, checksum: str) -> DirTree:
        from pyostree.objects.dirtree import DirTree

        data = self.read_metadata_bytes(checksum, ObjectType.DIR_TREE)
        tree = _parse(DirTree.from_bytes, data, f"dirtree {checksum}")
        for entry in tree.files:
            if not is_checksum(entry.checksum):
                raise ObjectError(f"Dirtree {checksum}: entry {entry.name!r} has an invalid checksum")
        for sub in tree.dirs:
            if not (is_checksum(sub.tree_checksum) and is_checksum(sub.meta_checksum)):
                raise ObjectError(f"Dirtree {checksum}: entry {sub.name!r} has an invalid checksum")
        return tree

    def load_dirmeta(self, checksum: str) -> DirMeta:
        from pyostree.objects.dirmeta import DirMeta

        data = self.read_metadata_bytes(checksum, ObjectType.DIR_META)
        meta = _parse(DirMeta.from_bytes, data, f"dirmeta {checksum}")
        if not stat.S_ISDIR(meta.mode):
            raise ObjectError(f"Dirmeta {checksum}: mode 0o{meta.mode:o} is not a directory")
        return meta

    def load_commitmeta(self, checksum: str) -> Optional[Dict[str, Tuple[str, object]]]:
        """Detached metadata of commit CHECKSUM, or None when it has none."""
        from pyostree.objects.commitmeta import CommitMeta

        try:
            data = self.read_metadata_bytes(checksum, ObjectType.COMMIT_META)
        except NotFoundError:
            return None
        meta = _parse(CommitMeta.from_bytes, data, f"commitmeta {checksum}")
        return dict(meta.metadata)

    def open_content(self, checksum: str) -> ContentReader:
        """Open a content object; use ``with``. See :class:`ContentReader`."""
        return self.store.open_content(checksum)

    def list_objects(self, objtype: Optional[ObjectType] = None) -> Iterator[Tuple[str, ObjectType]]:
        return self.store.list_objects(objtype)

    def list_commits_with_prefix(self, prefix: str) -> Iterator[str]:
        """Commit objects whose checksum starts with PREFIX (lowercase hex)."""
        if not is_partial_checksum(prefix):
            return iter(())
        return (c for c, _ in self.store.list_objects(ObjectType.COMMIT, prefix))

    def is_commit_partial(self, checksum: str) -> bool:
        """True when ``state/CHECKSUM.commitpartial`` marks the commit's tree incomplete."""
        validate_checksum(checksum)
        return os.path.lexists(self.path / "state" / f"{checksum}.commitpartial")

    # -- refs -------------------------------------------------------------------

    def list_refs(self, prefix: Optional[str] = None) -> Dict[str, str]:
        """Refs as ``ostree refs --list [PREFIX]`` names them: heads plain (aliases
        included), remote refs ``REMOTE:NAME``."""
        return self.refs.list_refs(prefix)

    def list_aliases(self) -> Dict[str, str]:
        """Alias ref -> the ref it points to (``ostree refs --alias``)."""
        return self.refs.aliases()

    def list_collection_refs(self) -> Dict[Tuple[str, str], str]:
        """``ostree refs --collections``: (collection id, ref) -> checksum."""
        remote_collections: Dict[str, str] = {}
        for remote in self.config.remotes():
            collection_id = self.config.get(f'remote "{remote}"', "collection-id")
            if collection_id:
                remote_collections[remote] = collection_id
        return self.refs.collection_refs(self.collection_id, remote_collections)

    def read_ref(self, refspec: str) -> Optional[str]:
        """Checksum of exactly ``refs/heads/REF`` or ``refs/remotes/REMOTE/REF``; None if absent."""
        return self.refs.read_refspec(refspec)

    def read_collection_ref(self, collection_id: str, ref: str) -> Optional[str]:
        """A collection ref: ``refs/heads`` for the repo's own collection, else a mirror."""
        if collection_id == self.collection_id:
            return self.refs.read_head(ref)
        return self.refs.read_mirror(collection_id, ref)

    @overload
    def resolve_rev(self, rev: str, *, allow_missing: Literal[False] = ...) -> str: ...

    @overload
    def resolve_rev(self, rev: str, *, allow_missing: bool) -> Optional[str]: ...

    def resolve_rev(self, rev: str, *, allow_missing: bool = False) -> Optional[str]:
        """A commit checksum from a ref, ``remote:ref``, checksum, unique prefix, ``REV^``.

        NotFoundError for an unknown ref (None instead when ALLOW_MISSING), RefError for an
        invalid or ambiguous one.
        """
        return resolve(
            rev,
            commits_with_prefix=self.list_commits_with_prefix,
            read_refspec=self._read_refspec_searching,
            parent_of=lambda checksum: self.load_commit(checksum).parent,
            allow_missing=allow_missing,
        )

    def _read_refspec_searching(self, remote: Optional[str], ref: str) -> Optional[str]:
        if remote is not None:
            return self.refs.read_remote(remote, ref)
        return self.refs.search(ref)

    # -- reachability -------------------------------------------------------------

    def walk(
        self, commit: str, *, depth: int = 0, commitmeta: bool = False
    ) -> Iterator[Tuple[str, ObjectType]]:
        """Every object reachable from COMMIT and DEPTH parents (-1: all), each once.

        Content objects are listed, not opened. A missing parent ends the history quietly;
        a missing commit/dirtree/dirmeta raises NotFoundError. With COMMITMETA, detached
        metadata that exists is listed after its commit.
        """
        validate_checksum(commit)
        seen: set[ObjectName] = set()

        def parent_of(checksum: str) -> Optional[str]:
            return self.load_commit(checksum).parent

        def has_commit(checksum: str) -> bool:
            return self.has_object(checksum, ObjectType.COMMIT)

        def load_dirtree(checksum: str) -> Tuple[List[str], List[Tuple[str, str]]]:
            tree = self.load_dirtree(checksum)
            return (
                [entry.checksum for entry in tree.files],
                [(sub.tree_checksum, sub.meta_checksum) for sub in tree.dirs],
            )

        for checksum in walk_commits(commit, depth=depth, load_parent=parent_of,
                                     has_commit=has_commit):
            name = (checksum, ObjectType.COMMIT)
            if name in seen:
                continue
            seen.add(name)
            yield name
            if commitmeta and self.has_object(checksum, ObjectType.COMMIT_META):
                yield checksum, ObjectType.COMMIT_META
            loaded = self.load_commit(checksum)
            yield from walk_tree(loaded.root_tree, loaded.root_meta,
                                 load_dirtree=load_dirtree, seen=seen)


def _parse(parser: _Parser[_T], data: bytes, what: str) -> _T:
    """Trusted (``verify=False``) parse that still turns any failure into ObjectError."""
    try:
        return parser(data, verify=False)
    except PyOstreeError as err:
        if isinstance(err, ObjectError):
            raise ObjectError(f"Corrupt {what}: {err}") from None
        raise
    except (ValueError, TypeError, AssertionError, IndexError, KeyError, UnicodeError) as err:
        raise ObjectError(f"Corrupt {what}: {type(err).__name__}: {err}") from None
