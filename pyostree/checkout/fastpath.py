"""A cheap "stat" of a content object, for walks that touch thousands of them (ls, checkout, fsck).

The implementation lives with the rest of the per-mode object access, in
:meth:`pyostree.repo.store.ObjectStore.stat_content`; this module keeps the names the
walks have always imported. Anything unusual (xattrs present, odd headers, unknown mode)
gives None, so callers fall back to the repository's full, validating reader. It never
decides that an object is good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pyostree.repo.store import ARCHIVE_PREFIX, ContentStat, StatContent, parse_archive_prefix

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["ARCHIVE_PREFIX", "ContentStat", "StatFunction", "parse_archive_prefix", "stat_function"]

StatFunction = StatContent


def stat_function(repo: Repo, *, cache: bool = True) -> Optional[StatFunction]:
    """A checksum -> ContentStat function for REPO's mode, or None if no fast path exists.

    The returned function gives None (fall back) for unusual objects and raises OSError
    (e.g. ENOENT) when the object file cannot be read. CACHE remembers results (trees
    repeat content); callers visiting each object once should turn it off.
    """
    return repo.store.stat_content_function(cache=cache)
