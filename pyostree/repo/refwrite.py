"""Writing refs: ``hex\\n`` files replaced by rename, with an optional compare-and-swap.

libostree takes no lock for ref updates, so a CAS here narrows (but cannot close) the
window against a concurrent libostree writer; against other pyostree writers holding the
repo lock it is exact for the value read under that lock.
"""

from __future__ import annotations

import errno
import os
import secrets
from typing import Dict, Optional, Union

from pyostree.errors import RefError, RepoError
from pyostree.objects.checksum import is_checksum, validate_checksum
from pyostree.objects.names import (
    parse_refspec,
    validate_collection_id,
    validate_ref_name,
)

__all__ = [
    "ANY",
    "RefMovedError",
    "check_expected",
    "check_ref_write",
    "delete_ref",
    "read_ref_file",
    "ref_relpath",
    "set_ref",
    "write_ref",
]


class _AnyValue:
    """Sentinel: do not check a ref's old value."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _AnyValue()


class RefMovedError(RefError):
    """A compare-and-swap ref update found a value other than the expected one."""


def ref_relpath(refspec: str, *, collection_id: Optional[str] = None, own_collection_id: Optional[str] = None) -> str:
    """Path of a ref relative to the repo: heads, ``remote:`` refs, or collection mirrors."""
    if collection_id is not None and collection_id != own_collection_id:
        validate_collection_id(collection_id)
        validate_ref_name(refspec, allow_checksum=False)
        return f"refs/mirrors/{collection_id}/{refspec}"
    remote, ref = parse_refspec(refspec)
    validate_ref_name(ref, allow_checksum=False)
    if remote is not None:
        return f"refs/remotes/{remote}/{ref}"
    return f"refs/heads/{ref}"


def read_ref_file(path: str) -> Optional[str]:
    """Current checksum of a ref file (following alias symlinks), None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(256)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None  # absent, a directory of refs, or below a ref file: no value
    except OSError as err:
        raise RepoError(f"cannot read ref {os.path.basename(path)}: {err.strerror}") from None
    text = data.decode("ascii", "replace").strip()
    if not is_checksum(text):
        raise RefError(f"ref file {os.path.basename(path)} does not hold a checksum")
    return text


def check_expected(refspec: str, current: Optional[str], expected_old: object) -> None:
    if expected_old is ANY or expected_old is Ellipsis:
        return
    if current != expected_old:
        was = current or "nothing"
        want = expected_old or "nothing"
        raise RefMovedError(f"ref {refspec} moved: it is {was}, expected {want}")


def _make_parent_dirs(repo_root: str, relpath: str) -> None:
    """Create the ref's directories; a ref file in the way is an error, as in libostree."""
    parts = relpath.split("/")[:-1]
    current = repo_root
    for part in parts:
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o775)
        except FileExistsError:
            if not os.path.isdir(current):
                raise RefError(f"cannot create ref {relpath}: {part} is a ref, not a directory") from None


def _remove_empty_ref_dir(path: str, relpath: str) -> None:
    """A directory where the ref file goes may be replaced only if it holds no refs."""
    for _dirpath, _dirnames, filenames in os.walk(path):
        if filenames:
            raise RefError(f"cannot create ref {relpath}: refs exist below it")
    for dirpath, _dirnames, _filenames in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
        os.rmdir(dirpath)


def check_ref_write(repo_root: str, relpath: str, checksum: Optional[str], refspec: Optional[str] = None,
                    *, pending: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Raise the error :func:`write_ref` would for the shape of the refs dir (an alias
    ref, a ref file where a directory goes, refs below the ref's name), without writing:
    a caller moving several refs checks them all first. ``pending``: relpaths already
    set (a checksum) or deleted (None) by earlier updates of the same batch."""
    name = refspec or relpath
    pending = pending or {}
    if checksum is None:
        return
    parts = relpath.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in pending:
            if pending[parent] is not None:
                raise RefError(f"cannot create ref {relpath}: {parts[depth - 1]} is a ref, not a directory")
            continue
        full = os.path.join(repo_root, parent)
        if os.path.lexists(full) and not os.path.isdir(full):
            raise RefError(f"cannot create ref {relpath}: {parts[depth - 1]} is a ref, not a directory")
    path = os.path.join(repo_root, relpath)
    if os.path.islink(path):
        raise RefError(f"cannot update {name}: it is an alias ref")
    if os.path.isdir(path):
        below = relpath + "/"
        if any(other.startswith(below) and value is not None for other, value in pending.items()):
            raise RefError(f"cannot create ref {name}: refs exist below it")
        for _dirpath, _dirnames, filenames in os.walk(path):
            if filenames:
                raise RefError(f"cannot create ref {name}: refs exist below it")


def write_ref(
    repo_root: Union[str, "os.PathLike[str]"],
    relpath: str,
    checksum: Optional[str],
    *,
    expected_old: object = ANY,
    refspec: Optional[str] = None,
) -> None:
    """Set (or with ``checksum=None`` delete) the ref at ``relpath``; rename makes it atomic."""
    root = os.fspath(repo_root)
    name = refspec or relpath
    path = os.path.join(root, relpath)
    current = read_ref_file(path)
    check_expected(name, current, expected_old)
    if checksum is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise RepoError(f"cannot delete ref {name}: {err.strerror}") from None
        return
    validate_checksum(checksum)
    if os.path.islink(path):
        raise RefError(f"cannot update {name}: it is an alias ref")
    _make_parent_dirs(root, relpath)
    if os.path.isdir(path):
        _remove_empty_ref_dir(path, name)
    directory = os.path.dirname(path)
    tmp_path = os.path.join(directory, f"tmp.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (checksum + "\n").encode("ascii"))
            os.fdatasync(fd)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.rename(tmp_path, path)
    except OSError as err:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        if err.errno == errno.EISDIR:
            raise RefError(f"cannot create ref {name}: a directory is in the way") from None
        raise RepoError(f"cannot write ref {name}: {err.strerror}") from None


def set_ref(
    repo_root: Union[str, "os.PathLike[str]"],
    refspec: str,
    checksum: Optional[str],
    *,
    expected_old: object = ANY,
    collection_id: Optional[str] = None,
    own_collection_id: Optional[str] = None,
) -> None:
    """Write ``refs/heads/REF``, ``refs/remotes/R/REF`` or ``refs/mirrors/C/REF`` immediately."""
    relpath = ref_relpath(refspec, collection_id=collection_id, own_collection_id=own_collection_id)
    write_ref(repo_root, relpath, checksum, expected_old=expected_old, refspec=refspec)
    _touch_repo(os.fspath(repo_root))


def delete_ref(repo_root: Union[str, "os.PathLike[str]"], refspec: str) -> None:
    """``ostree refs --delete REF``: a missing ref is not an error."""
    set_ref(repo_root, refspec, None)


def _touch_repo(root: str) -> None:
    """libostree bumps the repo dir mtime after ref changes (clients watch it)."""
    try:
        os.utime(root)
    except OSError:
        pass

