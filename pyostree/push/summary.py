"""Regenerate a remote repository's ``summary`` through a FileTransport.

Clients resolve refs only through the summary once one exists, so every push that moves
refs rewrites it (spec §6, Part C step 7). Existing member-1 keys (static deltas,
collection map, extra keys) are kept, entries of unchanged refs are reused, and a
``summary.sig`` that would no longer match is deleted right after the new summary lands.
"""

from __future__ import annotations

import secrets
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from pyostree import gvariant
from pyostree.errors import PushError
from pyostree.objects._endian import swap64
from pyostree.objects.checksum import to_hex, to_raw
from pyostree.objects.commit import Commit
from pyostree.objects.types import ObjectType
from pyostree.transport import FileTransport

__all__ = ["SUMMARY_TYPE", "build_summary", "summary_is_stale", "write_summary", "summary_tmp_name"]

SUMMARY_TYPE = "(a(s(taya{sv}))a{sv})"
MAX_SUMMARY_SIZE = 128 * 1024 * 1024
MAX_COMMIT_SIZE = 128 * 1024 * 1024

Entry = Tuple[str, Tuple[int, bytes, Dict[str, Tuple[str, object]]]]


def _object_path(checksum: str, objtype: ObjectType) -> str:
    return f"objects/{checksum[:2]}/{checksum[2:]}.{objtype.extension()}"


def _entry(ref: str, checksum: str, commit_bytes: bytes) -> Entry:
    commit = Commit.from_bytes(commit_bytes, verify=False)
    meta: Dict[str, Tuple[str, object]] = {}
    version = commit.metadata.get("version")
    if version is not None and version[0] == "s":
        meta["ostree.commit.version"] = version
    meta["ostree.commit.timestamp"] = ("t", swap64(commit.timestamp))
    return (ref, (len(commit_bytes), to_raw(checksum), meta))


def build_summary(
    refs: Mapping[str, str],
    read_commit: Callable[[str], bytes],
    previous: Optional[bytes],
    mode_name: str,
    *,
    now: Optional[int] = None,
    collection_id: Optional[str] = None,
) -> bytes:
    """The summary bytes for ``refs`` (name -> commit); ``previous`` supplies the extra
    keys and the entries of refs that did not move."""
    reuse: Dict[str, Entry] = {}
    extra: Dict[str, Tuple[str, object]] = {}
    if previous is not None:
        decoded = gvariant.decode(SUMMARY_TYPE, previous)
        assert isinstance(decoded, tuple)
        old_entries, old_extra = decoded
        for name, (size, raw, meta) in old_entries:
            if isinstance(raw, bytes) and len(raw) == 32:
                reuse[name] = (name, (size, raw, dict(meta)))
        extra = dict(old_extra)
    entries: List[Entry] = []
    for ref in sorted(refs, key=lambda r: r.encode("utf-8")):
        checksum = refs[ref]
        old = reuse.get(ref)
        if old is not None and to_hex(old[1][1]) == checksum:
            entries.append(old)
        else:
            entries.append(_entry(ref, checksum, read_commit(checksum)))
    extra["ostree.summary.mode"] = ("s", mode_name)
    extra["ostree.summary.last-modified"] = ("t", swap64(int(time.time()) if now is None else now))
    extra.setdefault("ostree.summary.tombstone-commits", ("b", False))
    extra.setdefault("ostree.summary.indexed-deltas", ("b", True))
    if collection_id is not None:
        extra["ostree.summary.collection-id"] = ("s", collection_id)
    return gvariant.encode(SUMMARY_TYPE, (entries, extra))


def summary_refs(data: bytes) -> Dict[str, str]:
    """The ref -> commit map a summary advertises (member 0)."""
    decoded = gvariant.decode(SUMMARY_TYPE, data)
    assert isinstance(decoded, tuple)
    refs: Dict[str, str] = {}
    for name, (_size, raw, _meta) in decoded[0]:
        if isinstance(raw, bytes) and len(raw) == 32:
            refs[name] = to_hex(raw)
    return refs


def summary_is_stale(files: FileTransport, refs: Mapping[str, str]) -> bool:
    """True when a summary exists but does not list exactly ``refs``: an earlier push
    died between moving refs and rewriting the summary."""
    if files.stat("summary") is None:
        return False
    return summary_refs(files.read_bytes("summary", MAX_SUMMARY_SIZE)) != dict(refs)


def summary_tmp_name(tmp_dir: str) -> str:
    return f"{tmp_dir}/summary-{secrets.token_hex(6)}"


def write_summary(
    files: FileTransport, refs: Mapping[str, str], mode_name: str, tmp_dir: str,
    *, collection_id: Optional[str] = None,
) -> None:
    """Build and atomically replace ``summary``; then drop the stale ``summary.sig``."""
    previous: Optional[bytes] = None
    if files.stat("summary") is not None:
        previous = files.read_bytes("summary", MAX_SUMMARY_SIZE)

    def read_commit(checksum: str) -> bytes:
        path = _object_path(checksum, ObjectType.COMMIT)
        if files.stat(path) is None:
            raise PushError(f"cannot write summary: commit {checksum} is missing on the remote")
        return files.read_bytes(path, MAX_COMMIT_SIZE)

    data = build_summary(refs, read_commit, previous, mode_name, collection_id=collection_id)
    tmp = summary_tmp_name(tmp_dir)
    with files.open_write(tmp) as handle:
        handle.write(data)
    files.fsync(tmp)
    files.rename(tmp, "summary", replace=True)
    # Unsigned push: a leftover signature would not match the new bytes (Part C step 7).
    if files.stat("summary.sig") is not None:
        files.remove("summary.sig")
