"""Extended attributes as OSTree stores them: ``a(ayay)`` of (name + NUL, value), sorted."""

from __future__ import annotations

import errno
import os
from typing import Iterable, List, Tuple, Union

from pyostree.errors import ObjectError

__all__ = [
    "Xattrs",
    "canonical_xattrs",
    "read_xattrs",
    "validate_xattrs",
    "xattrs_from_value",
    "xattrs_to_value",
]

Xattrs = Tuple[Tuple[bytes, bytes], ...]
"""(name WITH its trailing NUL, value) pairs, as stored in objects."""

_NameLike = Union[str, bytes]


def _stored_name(name: _NameLike) -> bytes:
    raw = os.fsencode(name) if isinstance(name, str) else bytes(name)
    return raw if raw.endswith(b"\0") else raw + b"\0"


def canonical_xattrs(
    pairs: Iterable[Tuple[_NameLike, bytes]], *, drop_empty: bool = True
) -> Xattrs:
    """Build the stored form from (name, value) pairs the way libostree reads them from disk:
    names get their NUL, entries are sorted by name bytes, empty values are dropped."""
    stored: dict[bytes, bytes] = {}
    for name, value in pairs:
        key = _stored_name(name)
        if key in stored:
            raise ObjectError(f"xattr name {key[:-1]!r} given twice")
        stored[key] = bytes(value)
    result = tuple(
        (key, stored[key]) for key in sorted(stored) if not (drop_empty and stored[key] == b"")
    )
    validate_xattrs(result)
    return result


def validate_xattrs(xattrs: Xattrs, what: str = "xattrs") -> None:
    """libostree (>= 2024.7) rules: each name NUL-terminated and non-empty, sorted by
    ``strcmp``, no duplicates; values are arbitrary bytes."""
    previous: bytes | None = None
    for index, pair in enumerate(xattrs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ObjectError(f"{what}: entry {index} is not a (name, value) pair")
        name, value = pair
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise ObjectError(f"{what}: entry {index} name and value must be bytes")
        if not name.endswith(b"\0"):
            raise ObjectError(f"{what}: name {name[:80]!r} lacks its trailing NUL")
        bare = name[:-1]
        if bare == b"":
            raise ObjectError(f"{what}: entry {index} has an empty name")
        if b"\0" in bare:
            raise ObjectError(f"{what}: name {bare[:80]!r} contains NUL")
        if previous is not None:
            if bare == previous:
                raise ObjectError(f"{what}: duplicate name {bare[:80]!r}")
            if bare < previous:
                raise ObjectError(
                    f"{what}: name {bare[:80]!r} sorted after {previous[:80]!r}"
                )
        previous = bare


def xattrs_from_value(value: object) -> Xattrs:
    """Convert a decoded ``a(ayay)`` (list of tuples of bytes) to the stored tuple form."""
    assert isinstance(value, list)
    return tuple((bytes(name), bytes(data)) for name, data in value)


def xattrs_to_value(xattrs: Xattrs) -> List[Tuple[bytes, bytes]]:
    """The ``a(ayay)`` value the GVariant encoder takes."""
    return [(name, value) for name, value in xattrs]


def read_xattrs(path: Union[str, "os.PathLike[str]"], *, follow_symlinks: bool = False) -> Xattrs:
    """Read a file's xattrs as libostree does for a commit (sorted, empty values dropped).

    A filesystem without xattr support yields no xattrs rather than an error."""
    try:
        names = os.listxattr(path, follow_symlinks=follow_symlinks)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise ObjectError(f"cannot list xattrs of {os.fsdecode(path)!r}: {err.strerror}") from None
    pairs: List[Tuple[_NameLike, bytes]] = []
    for name in names:
        try:
            value = os.getxattr(path, name, follow_symlinks=follow_symlinks)
        except OSError as err:
            if err.errno == errno.ENODATA:  # removed between list and get
                continue
            raise ObjectError(
                f"cannot read xattr {name!r} of {os.fsdecode(path)!r}: {err.strerror}"
            ) from None
        pairs.append((name, value))
    return canonical_xattrs(pairs)
