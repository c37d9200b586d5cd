"""``pull-local``: copy commits and everything they reach from another local repo.

Every object is re-hashed on the way in (content from its logical header + payload), so a
corrupt source cannot plant a mislabelled object, whatever its mode; metadata must also
be in normal form and pass libostree's structural checks, as for an untrusted pull. A commit is marked
``state/CSUM.commitpartial`` before its tree is copied and unmarked at commit time; with
``commit_metadata_only`` only the commit and its detached metadata are copied and the mark
stays, as libostree's ``--commit-metadata-only``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from pyostree.errors import NotFoundError, ObjectError
from pyostree.objects.checksum import is_checksum
from pyostree.objects.names import validate_filename
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo
from pyostree.repo.transaction import Transaction

__all__ = ["PullResult", "pull_local"]


@dataclass(frozen=True)
class PullResult:
    refs: Dict[str, str]  # ref written in the destination -> commit
    commits: int
    objects: int
    metadata: int = 0  # metadata objects copied (commits, dirtrees, dirmetas)
    content: int = 0  # content objects copied


def _check_metadata(objtype: ObjectType, checksum: str, data: bytes) -> None:
    """Normal form and structure: bytes two readers may decode differently, or that
    libostree refuses to pull, never get into the destination."""
    from pyostree import gvariant, objects
    from pyostree.errors import PyOstreeError

    try:
        if objtype is ObjectType.COMMIT:
            objects.Commit.from_bytes(data, verify=True)
        elif objtype is ObjectType.DIR_TREE:
            objects.DirTree.from_bytes(data, verify=True)
        elif objtype is ObjectType.DIR_META:
            objects.DirMeta.from_bytes(data, verify=True)
        elif not gvariant.is_normal("a{sv}", data):
            raise ObjectError("not a normal-form a{sv}")
    except PyOstreeError as err:
        raise ObjectError(f"{objtype.extension()} {checksum} in the source repo: {err}") from None


def _copy_metadata(src: Repo, txn: Transaction, checksum: str, objtype: ObjectType) -> bool:
    if txn.has_object(checksum, objtype):
        return False
    data = src.read_metadata_bytes(checksum, objtype)
    _check_metadata(objtype, checksum, data)
    txn.write_metadata_bytes(objtype, data, expected_checksum=checksum)
    return True


def _copy_content(src: Repo, txn: Transaction, checksum: str) -> bool:
    if txn.has_object(checksum, ObjectType.FILE):
        return False
    with src.open_content(checksum) as reader:
        txn.write_content(reader.header, reader.iter_chunks(), size=reader.size, expected_checksum=checksum)
    return True


def _copy_tree(src: Repo, txn: Transaction, tree: str, meta: str) -> Tuple[int, int]:
    """Metadata and content objects copied."""
    copied = 0
    content = 0
    stack = [(tree, meta)]
    done: Set[str] = set()
    while stack:
        tree_checksum, meta_checksum = stack.pop()
        copied += _copy_metadata(src, txn, meta_checksum, ObjectType.DIR_META)
        if tree_checksum in done:
            continue
        done.add(tree_checksum)
        dirtree = src.load_dirtree(tree_checksum)
        # like ostree pull: never copy a tree whose names could escape a checkout
        names = [entry.name for entry in dirtree.files] + [sub.name for sub in dirtree.dirs]
        for name in names:
            try:
                validate_filename(name)
            except ObjectError as err:
                raise ObjectError(f"dirtree {tree_checksum}: {err}") from None
        for entry in dirtree.files:
            content += _copy_content(src, txn, entry.checksum)
        for sub in dirtree.dirs:
            stack.append((sub.tree_checksum, sub.meta_checksum))
        # the dirtree itself only after its children (children before parents)
        copied += _copy_metadata(src, txn, tree_checksum, ObjectType.DIR_TREE)
    return copied, content


def _commit_chain(src: Repo, commit: str, depth: int) -> List[str]:
    chain = [commit]
    current: Optional[str] = commit
    while depth != 0 and current is not None:
        parent = src.load_commit(current).parent
        if parent is None or not src.has_object(parent, ObjectType.COMMIT):
            break
        chain.append(parent)
        current = parent
        depth -= 1
    return chain


def pull_local(
    dest: Repo,
    src: Repo,
    refs: Sequence[str] = (),
    *,
    depth: int = 0,
    remote: Optional[str] = None,
    on_commit: Optional[Callable[[str], None]] = None,
    commit_metadata_only: bool = False,
) -> PullResult:
    """Copy ``refs`` (all of the source's local refs when empty; a checksum copies that
    commit without writing a ref) with ``depth`` parents (-1: all)."""
    wanted: Dict[str, str] = {}
    commits: List[str] = []
    if not refs:
        wanted = {name: checksum for name, checksum in src.list_refs().items() if ":" not in name}
    for spec in refs:
        if is_checksum(spec):
            commits.append(spec)
            continue
        checksum = src.read_ref(spec)
        if checksum is None:
            raise NotFoundError(f"Refspec '{spec}' not found")
        wanted[spec] = checksum
    commits.extend(wanted.values())
    written: Dict[str, str] = {}
    count_commits = 0
    count_metadata = 0
    count_content = 0
    with dest.transaction() as txn:
        seen: Set[str] = set()
        for head in commits:
            if not src.has_object(head, ObjectType.COMMIT):
                raise NotFoundError(f"commit {head} not found in the source repo")
            for checksum in _commit_chain(src, head, depth):
                if checksum in seen:
                    continue
                seen.add(checksum)
                present = txn.has_object(checksum, ObjectType.COMMIT)
                if present and (commit_metadata_only or not dest.is_commit_partial(checksum)):
                    continue
                if src.is_commit_partial(checksum) and not commit_metadata_only:
                    raise NotFoundError(f"commit {checksum} is partial in the source repo")
                txn.mark_commit_partial(checksum)
                commit = src.load_commit(checksum)
                if not commit_metadata_only:
                    metadata, content = _copy_tree(src, txn, commit.root_tree, commit.root_meta)
                    count_metadata += metadata
                    count_content += content
                count_metadata += _copy_metadata(src, txn, checksum, ObjectType.COMMIT)
                detached = src.load_commitmeta(checksum)
                if detached is not None:
                    data = src.read_metadata_bytes(checksum, ObjectType.COMMIT_META)
                    _check_metadata(ObjectType.COMMIT_META, checksum, data)
                    txn.write_commitmeta(checksum, data)
                if not commit_metadata_only:
                    txn.clear_commit_partial(checksum)
                count_commits += 1
                if on_commit is not None:
                    on_commit(checksum)
        for name, checksum in sorted(wanted.items()):
            target = f"{remote}:{name}" if remote else name
            txn.set_ref(target, checksum)
            written[target] = checksum
    return PullResult(written, count_commits, count_metadata + count_content,
                      count_metadata, count_content)
