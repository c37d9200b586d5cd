"""``ostree summary -u``: the ``ostree-metadata`` commit of a collection repo, then
``summary`` (built by ``pyostree.repo.summary``), under the repo lock.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Optional

from pyostree.objects.dirmeta import DirMeta
from pyostree.objects.dirtree import DirTree
from pyostree.repo.commitwrite import CommitRequest, write_commit
from pyostree.repo.lock import RepoLock
from pyostree.repo.summary import METADATA_REF, MetadataDict, build_summary, replace_summary
from pyostree.repo.writesettings import WriteSettings

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["update_summary"]


def _write_metadata_commit(repo: Repo, extra: MetadataDict, now: Optional[int]) -> str:
    """The ``ostree-metadata`` commit 2022.7's CLI writes before a collection repo's summary."""
    with repo.transaction() as txn:
        root_meta = txn.write_metadata(DirMeta(0, 0, 0o40755, ()))
        root_tree = txn.write_metadata(DirTree((), ()))
        request = CommitRequest(
            branch=METADATA_REF,
            timestamp=int(time.time()) if now is None else now,
            extra=dict(extra),
        )
        result = write_commit(txn, root_tree, root_meta, request, bindings_first=True)
    return result.checksum


def update_summary(
    repo: Repo,
    *,
    extra: Optional[MetadataDict] = None,
    now: Optional[int] = None,
) -> bytes:
    """``ostree summary -u``: write ``summary`` by temp file + rename and drop a stale ``.sig``."""
    extra = dict(extra or {})
    settings = WriteSettings(repo)
    root = os.fspath(repo.path)
    lock = RepoLock(root, enabled=settings.locking, timeout_secs=settings.lock_timeout)
    lock.acquire(exclusive=False)
    try:
        if repo.collection_id is not None:
            _write_metadata_commit(repo, extra, now)
        data = build_summary(repo, extra=extra, now=now)
        replace_summary(root, data, fsync=settings.fsync)
    finally:
        lock.release()
    return data
