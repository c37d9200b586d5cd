"""Regenerate ``summary`` like ``ostree summary -u`` (spec §6); ``update_summary``
itself, which may write a commit, is in ``pyostree.repo.summaryupdate`` (a transaction
writes the summary through this module, so it cannot import the commit writer).

Refs sorted by ``strcmp``, commit sizes little-endian, timestamps big-endian, the
``ostree.summary.*`` keys, and with a collection id: an ``ostree-metadata`` commit first
and other collections' refs in ``ostree.summary.collection-map``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from pyostree import gvariant
from pyostree.errors import RepoError
from pyostree.objects.checksum import from_mb64, to_raw
from pyostree.objects.types import ObjectType
from pyostree.repo.writesettings import WriteSettings

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["SUMMARY_TYPE", "build_summary", "replace_summary"]

SUMMARY_TYPE = "(a(s(taya{sv}))a{sv})"
METADATA_REF = "ostree-metadata"
MetadataDict = Dict[str, Tuple[str, object]]
#: Makes ``summary.sig`` (an ``a{sv}``) for the given summary bytes (``pyostree.sign``).
SummarySigner = Callable[[bytes], bytes]
#: Signs a commit written in an open transaction: (txn, checksum, commit bytes).
CommitSigner = Callable[[object, str, bytes], None]
RefEntry = Tuple[str, Tuple[int, bytes, MetadataDict]]


def _be64(value: int) -> int:
    """GVariant ``t`` values OSTree stores big-endian are given to the encoder pre-swapped."""
    return int.from_bytes(struct.pack(">Q", value), "little")


def _ref_entry(repo: Repo, name: str, checksum: str) -> RefEntry:
    data = repo.read_metadata_bytes(checksum, ObjectType.COMMIT)
    commit = repo.parse_commit(checksum, data)  # one read: the size and the fields
    meta: MetadataDict = {}
    version = commit.metadata.get("version")
    if version is not None and version[0] == "s":
        meta["ostree.commit.version"] = ("s", version[1])
    meta["ostree.commit.timestamp"] = ("t", _be64(commit.timestamp))
    return name, (len(data), to_raw(checksum), meta)


def _sorted_entries(repo: Repo, refs: Dict[str, str]) -> List[RefEntry]:
    return [_ref_entry(repo, name, refs[name]) for name in sorted(refs, key=lambda ref: ref.encode("utf-8"))]


def _static_deltas(repo: Repo) -> Dict[str, Tuple[str, object]]:
    """Delta name (``FROM-TO`` or ``TO`` in hex) -> SHA-256 of its superblock."""
    deltas: Dict[str, Tuple[str, object]] = {}
    top = os.path.join(os.fspath(repo.path), "deltas")
    if not os.path.isdir(top):
        return deltas
    for prefix in sorted(os.listdir(top)):
        prefix_dir = os.path.join(top, prefix)
        if not os.path.isdir(prefix_dir):
            continue
        for rest in sorted(os.listdir(prefix_dir)):
            superblock = os.path.join(prefix_dir, rest, "superblock")
            if not os.path.isfile(superblock):
                continue
            encoded = prefix + rest
            try:
                if "-" in encoded:
                    from_part, to_part = encoded.split("-", 1)
                    name = f"{from_mb64(from_part)}-{from_mb64(to_part)}"
                else:
                    name = from_mb64(encoded)
            except RepoError:
                continue
            except ValueError:
                continue
            digest = hashlib.sha256()
            with open(superblock, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            deltas[name] = ("ay", digest.digest())
    return deltas


def build_summary(repo: Repo, *, extra: Optional[MetadataDict] = None, now: Optional[int] = None) -> bytes:
    """Serialise the summary for the repo's current refs (no ref or object is written)."""
    own_collection = repo.collection_id
    heads = {name: checksum for name, checksum in repo.list_refs().items() if ":" not in name}
    collection_map: Dict[str, Dict[str, str]] = {}
    if own_collection is not None:
        for (collection, ref), checksum in repo.list_collection_refs().items():
            if collection != own_collection:
                collection_map.setdefault(collection, {})[ref] = checksum
    settings = WriteSettings(repo)
    meta: MetadataDict = {}
    for key, value in (extra or {}).items():
        meta[key] = value
    meta["ostree.summary.mode"] = ("s", settings.mode_name)
    stamp = int(time.time()) if now is None else now
    meta["ostree.summary.last-modified"] = ("t", _be64(stamp))
    tombstones = repo.config.getbool("core", "tombstone-commits", False)
    meta["ostree.summary.tombstone-commits"] = ("b", tombstones)
    meta["ostree.summary.indexed-deltas"] = ("b", True)
    if not repo.config.getbool("core", "no-deltas-in-summary", False):
        deltas = _static_deltas(repo)
        if deltas:
            meta["ostree.static-deltas"] = ("a{sv}", deltas)
    if own_collection is not None:
        meta["ostree.summary.collection-id"] = ("s", own_collection)
        if collection_map:
            mapped = {
                collection: _sorted_entries(repo, collection_map[collection])
                for collection in sorted(collection_map, key=lambda text: text.encode("utf-8"))
            }
            meta["ostree.summary.collection-map"] = ("a{sa(s(taya{sv}))}", mapped)
    return gvariant.encode(SUMMARY_TYPE, (_sorted_entries(repo, heads), meta))


def replace_summary(root: str, data: bytes, *, fsync: bool, signature: Optional[bytes] = None) -> None:
    """Install new summary bytes, then their ``summary.sig`` (libostree's order), or drop the
    ``summary.sig`` that no longer matches them. Both files are written before either is
    renamed, so the two renames are all that separates a matching old pair from a new one."""
    sig_tmp = _write_tmp(root, "summary.sig", signature, fsync=fsync) if signature is not None else None
    try:
        _replace_file(root, "summary", data, fsync=fsync)
    except BaseException:
        if sig_tmp is not None:
            os.unlink(sig_tmp)
        raise
    if sig_tmp is not None:
        _rename(sig_tmp, root, "summary.sig")
        return
    try:
        os.unlink(os.path.join(root, "summary.sig"))
    except FileNotFoundError:
        pass


def _replace_file(root: str, name: str, data: bytes, *, fsync: bool) -> None:
    _rename(_write_tmp(root, name, data, fsync=fsync), root, name)


def _write_tmp(root: str, name: str, data: bytes, *, fsync: bool) -> str:
    tmp_path = os.path.join(root, f".{name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp_path)
        raise
    os.close(fd)
    return tmp_path


def _rename(tmp_path: str, root: str, name: str) -> None:
    try:
        os.rename(tmp_path, os.path.join(root, name))
    except OSError as err:
        os.unlink(tmp_path)
        raise RepoError(f"cannot write {name}: {err.strerror}") from None


def parse_extra(pairs: Sequence[Tuple[str, str]]) -> MetadataDict:
    """``-m KEY=GVARIANT-TEXT`` options as ``ostree summary`` parses them."""
    from pyostree.repo.gvtext import parse_gvariant_text

    return {key: parse_gvariant_text(text) for key, text in pairs}
