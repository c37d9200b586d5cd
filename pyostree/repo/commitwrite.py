"""Write a commit object the way ``ostree commit`` does: parent chaining, bindings, skip.

The tree itself comes from a :class:`~pyostree.repo.treebuilder.TreeBuilder`; this module
adds what the CLI adds around it so the same inputs give the same commit checksum.
"""

from __future__ import annotations

import calendar
import datetime
import os
import re
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from pyostree.errors import PyOstreeError
from pyostree.objects.checksum import validate_checksum
from pyostree.objects.commit import Commit
from pyostree.objects.types import ObjectType
from pyostree.repo.refwrite import read_ref_file, ref_relpath
from pyostree.repo.transaction import Transaction

__all__ = ["CommitRequest", "CommitResult", "build_metadata", "parse_timestamp", "write_commit"]

MetadataDict = Dict[str, Tuple[str, object]]


class CommitError(PyOstreeError):
    """A commit request is inconsistent (bad timestamp, parent, …)."""


@dataclass(frozen=True)
class CommitRequest:
    """What to record around a root tree; ``parent=None`` means "the branch's current commit"."""

    branch: Optional[str] = None
    subject: str = ""
    body: str = ""
    timestamp: Optional[int] = None
    parent: Optional[str] = None
    orphan: bool = False  # no default parent (``-b`` still moves the ref, as in ostree)
    no_parent: bool = False  # ``--parent=none``: a root commit even if the branch exists
    metadata: Sequence[Tuple[str, str, object]] = ()  # (key, type, value) in CLI order
    bind_refs: Sequence[str] = ()
    no_bindings: bool = False
    skip_if_unchanged: bool = False
    extra: MetadataDict = field(default_factory=dict)


@dataclass(frozen=True)
class CommitResult:
    checksum: str
    skipped: bool
    commit: Optional[Commit] = None   # the commit written (None when skipped): what signers sign


def build_metadata(
    request: CommitRequest, collection_id: Optional[str], *, bindings_first: bool = False
) -> MetadataDict:
    """User keys in order, then ``ostree.ref-binding`` (sorted) and ``ostree.collection-binding``
    (``bindings_first``: collection binding, ref binding, then the keys, as ``summary -u`` does)."""
    user: MetadataDict = {}
    for key, type_string, value in request.metadata:
        user[key] = (type_string, value)
    user.update(request.extra)
    bindings: MetadataDict = {}
    if not request.no_bindings:
        if request.branch is not None and "ostree.ref-binding" not in user:
            refs = sorted({request.branch, *request.bind_refs}, key=lambda ref: ref.encode("utf-8"))
            bindings["ostree.ref-binding"] = ("as", refs)
        if collection_id is not None and "ostree.collection-binding" not in user:
            bindings["ostree.collection-binding"] = ("s", collection_id)
    if bindings_first:
        ordered = dict(sorted(bindings.items()))
        ordered.update(user)
        return ordered
    user.update(bindings)
    return user


_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(text: str) -> int:
    """``@SECONDS``, ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM[:SS][Z|±HH:MM]``, taken as UTC."""
    original, text = text, text.strip()
    if text.startswith("@") and re.fullmatch(r"@-?\d+", text):
        return int(text[1:])
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise CommitError(f"Could not parse '{original}'")
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = calendar.timegm(
            datetime.datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            ).timetuple()
        )
    except (ValueError, OverflowError):
        raise CommitError(f"Could not parse '{original}'") from None
    if zone and zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return moment


def _default_parent(txn: Transaction, request: CommitRequest) -> Optional[str]:
    if request.no_parent:
        return None
    if request.orphan:
        return request.parent
    if request.parent is not None:
        return request.parent
    if request.branch is None:
        return None
    return read_ref_file(os.path.join(txn.root, ref_relpath(request.branch)))


def write_commit(
    txn: Transaction,
    root_tree: str,
    root_meta: str,
    request: CommitRequest,
    *,
    now: Optional[int] = None,
    bindings_first: bool = False,
) -> CommitResult:
    """Write the commit (or reuse the parent under ``skip_if_unchanged``) and queue the ref."""
    parent = _default_parent(txn, request)
    if parent is not None:
        validate_checksum(parent)
    if request.skip_if_unchanged and parent is not None and txn.repo.has_object(parent, ObjectType.COMMIT):
        previous = txn.repo.load_commit(parent)
        if (previous.root_tree, previous.root_meta) == (root_tree, root_meta):
            return CommitResult(parent, True)
    timestamp = request.timestamp if request.timestamp is not None else (now if now is not None else int(time.time()))
    commit = Commit.create(
        root_tree,
        root_meta,
        timestamp=timestamp,
        subject=request.subject,
        body=request.body,
        parent=parent,
        metadata=build_metadata(request, txn.settings.collection_id, bindings_first=bindings_first),
    )
    checksum = txn.write_metadata(commit)
    if request.branch is not None:  # ostree writes the ref even with --orphan
        txn.set_ref(request.branch, checksum)
    return CommitResult(checksum, False, commit)


def split_key_value(text: str, what: str) -> Tuple[str, str]:
    """``KEY=VALUE`` as the CLI takes it for metadata options."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CommitError(f"invalid {what} {text!r}: expected KEY=VALUE")
    return key, value


