"""``ostree summary -u``: the ``ostree-metadata`` commit of a collection repo, then
``summary`` (built by ``pyostree.repo.summary``) and its signature, under the repo lock.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Optional

from pyostree.repo.lock import RepoLock
from pyostree.repo.summary import (
    METADATA_REF, CommitSigner, MetadataDict, SummarySigner, build_summary, replace_summary,
)
from pyostree.repo.writesettings import WriteSettings

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["update_summary"]


def _write_metadata_commit(repo: Repo, extra: MetadataDict, now: Optional[int],
                           sign_commit: Optional[CommitSigner] = None) -> str:
    """The ``ostree-metadata`` commit 2022.7's CLI writes before a collection repo's summary
    (signed in the same transaction, before its ref moves, as the CLI signs it)."""
    # imported here: the writing machinery costs a plain repo's summary -u a third of its time
    from pyostree.objects.dirmeta import DirMeta
    from pyostree.objects.dirtree import DirTree
    from pyostree.repo.commitwrite import CommitRequest, write_commit

    with repo.transaction() as txn:
        root_meta = txn.write_metadata(DirMeta(0, 0, 0o40755, ()))
        root_tree = txn.write_metadata(DirTree((), ()))
        request = CommitRequest(
            branch=METADATA_REF,
            timestamp=int(time.time()) if now is None else now,
            extra=dict(extra),
        )
        result = write_commit(txn, root_tree, root_meta, request, bindings_first=True)
        if sign_commit is not None and result.commit is not None:
            sign_commit(txn, result.checksum, result.commit.to_bytes())
    return result.checksum


def update_summary(
    repo: Repo,
    *,
    extra: Optional[MetadataDict] = None,
    now: Optional[int] = None,
    sign: Optional[SummarySigner] = None,
    sign_commit: Optional[CommitSigner] = None,
) -> bytes:
    """``ostree summary -u``: write ``summary`` by temp file + rename and drop a stale ``.sig``.

    SIGN makes the new ``summary.sig`` before anything is written (a failing key leaves the
    old pair); SIGN_COMMIT signs a collection repo's ``ostree-metadata`` commit."""
    extra = dict(extra or {})
    settings = WriteSettings(repo)
    root = os.fspath(repo.path)
    lock = RepoLock(root, enabled=settings.locking, timeout_secs=settings.lock_timeout)
    lock.acquire(exclusive=False)
    try:
        if repo.collection_id is not None:
            _write_metadata_commit(repo, extra, now, sign_commit)
        data = build_summary(repo, extra=extra, now=now)
        signature = sign(data) if sign is not None else None
        replace_summary(root, data, fsync=settings.fsync, signature=signature)
    finally:
        lock.release()
    return data
