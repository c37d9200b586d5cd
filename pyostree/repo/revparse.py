"""Turning a revision string into a commit checksum, in libostree's order.

1. a full 64-hex checksum is returned as is (even if the object is absent, like ostree);
2. a string of lowercase hex digits that starts exactly one commit object's name is that
   commit (several: "not unique" error);
3. ``REV^`` is the parent of REV (repeatable);
4. otherwise a refspec: ``REMOTE:REF`` is ``refs/remotes/REMOTE/REF``; a bare ``REF`` is
   looked up in ``refs/heads``, then ``refs/remotes/REF``, then every remote.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from pyostree.errors import NotFoundError, RefError
from pyostree.objects.checksum import is_checksum
from pyostree.objects.names import parse_refspec

_HEX = frozenset("0123456789abcdef")

#: ``REV^^^…`` longer than this is refused instead of walking a huge history.
MAX_PARENT_STEPS = 100_000


def is_partial_checksum(text: str) -> bool:
    return len(text) <= 64 and _HEX.issuperset(text)


def resolve(
    rev: str,
    *,
    commits_with_prefix: Callable[[str], Iterable[str]],
    read_refspec: Callable[[Optional[str], str], Optional[str]],
    parent_of: Callable[[str], Optional[str]],
    allow_missing: bool = False,
) -> Optional[str]:
    """Resolve REV with the repository accessors given; None only when ALLOW_MISSING."""
    base = rev
    steps = 0
    while True:
        found = _resolve_base(base, commits_with_prefix, read_refspec, allow_missing)
        if found is not None or not base.endswith("^"):
            break
        base = base[:-1]
        steps += 1
        if steps > MAX_PARENT_STEPS:
            raise RefError(f"Refspec '{rev[:80]}…' has too many '^'")
    if found is None:
        return None
    for _ in range(steps):
        parent = parent_of(found)
        if parent is None:
            raise NotFoundError(f"Commit {found} has no parent")
        found = parent
    return found


def _resolve_base(
    rev: str,
    commits_with_prefix: Callable[[str], Iterable[str]],
    read_refspec: Callable[[Optional[str], str], Optional[str]],
    allow_missing: bool,
) -> Optional[str]:
    """Steps 1, 2 and 4 for one string; None means "try stripping a ``^``" or missing."""
    if is_checksum(rev):
        return rev
    if is_partial_checksum(rev):
        matches = []
        for checksum in commits_with_prefix(rev):
            matches.append(checksum)
            if len(matches) > 1:
                raise RefError(f"Refspec {rev} not unique")
        if matches:
            return matches[0]
    if rev.endswith("^"):
        return None
    try:
        remote, ref = parse_refspec(rev)
    except RefError:
        raise RefError(f"Invalid refspec {rev}") from None
    found = read_refspec(remote, ref)
    if found is None and not allow_missing:
        raise NotFoundError(f"Refspec '{rev}' not found")
    return found
