"""Name rules: file names inside dirtrees, ref names, remote names, collection ids.

The ref rules mirror libostree's regular expressions (``[\\w\\d][-._\\w\\d]*`` per
``/``-separated fragment, ``\\w`` Unicode-aware as in GLib's PCRE with UCP).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from pyostree.errors import ObjectError, RefError

__all__ = [
    "MAX_COLLECTION_ID_LENGTH",
    "parse_refspec",
    "validate_collection_id",
    "validate_filename",
    "validate_ref_name",
    "validate_remote_name",
]

MAX_COLLECTION_ID_LENGTH = 255

_FRAGMENT = r"[\w\d][-._\w\d]*"
_REF_RE = re.compile(rf"(?:{_FRAGMENT}/)*{_FRAGMENT}")
_REMOTE_RE = re.compile(_FRAGMENT)
_REFSPEC_RE = re.compile(rf"(?:({_FRAGMENT}):)?((?:{_FRAGMENT}/)*{_FRAGMENT})")
_COLLECTION_ELEMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def validate_filename(name: str, what: str = "file name") -> None:
    """Reject names a dirtree may not hold: empty, ``.``, ``..``, ``/``, NUL, non-UTF-8."""
    if not isinstance(name, str):
        raise ObjectError(f"{what} {name!r} is not a str")
    if name == "":
        raise ObjectError(f"{what} is empty")
    if name in (".", ".."):
        raise ObjectError(f"{what} {name!r} is not allowed")
    if "/" in name:
        raise ObjectError(f"{what} {name!r} contains '/'")
    if "\0" in name:
        raise ObjectError(f"{what} {name!r} contains NUL")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ObjectError(f"{what} {name!r} is not valid UTF-8") from None


def _check_utf8(name: str, what: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise RefError(f"invalid {what} {name!r}: not valid UTF-8") from None


def validate_ref_name(name: str, *, allow_checksum: bool = True) -> None:
    """Check a ref name (``a/b/c``); ``allow_checksum=False`` also rejects 64-hex names,
    which libostree refuses when creating a ref because they would shadow checksums."""
    _check_utf8(name, "ref name")
    if _REF_RE.fullmatch(name) is None:
        raise RefError(f"invalid ref name {name!r}")
    if not allow_checksum and _HEX64_RE.fullmatch(name) is not None:
        raise RefError(f"invalid ref name {name!r}: looks like a checksum")


def validate_remote_name(name: str) -> None:
    """A remote name is a single ref fragment."""
    _check_utf8(name, "remote name")
    if _REMOTE_RE.fullmatch(name) is None:
        raise RefError(f"invalid remote name {name!r}")


def parse_refspec(refspec: str) -> Tuple[Optional[str], str]:
    """Split ``[REMOTE:]REF`` into ``(remote or None, ref)``, validating both."""
    _check_utf8(refspec, "refspec")
    match = _REFSPEC_RE.fullmatch(refspec)
    if match is None:
        raise RefError(f"invalid refspec {refspec!r}")
    return match.group(1), match.group(2)


def validate_collection_id(collection_id: str) -> None:
    """Collection ids follow D-Bus interface-name rules: reverse DNS, ASCII, >= 2 elements."""
    if not isinstance(collection_id, str) or collection_id == "":
        raise RefError("invalid collection ID: empty")
    if len(collection_id) > MAX_COLLECTION_ID_LENGTH:
        raise RefError(
            f"invalid collection ID {collection_id[:40]!r}...: longer than "
            f"{MAX_COLLECTION_ID_LENGTH} characters"
        )
    elements = collection_id.split(".")
    if len(elements) < 2:
        raise RefError(f"invalid collection ID {collection_id!r}: needs at least one '.'")
    for element in elements:
        if _COLLECTION_ELEMENT_RE.fullmatch(element) is None:
            raise RefError(
                f"invalid collection ID {collection_id!r}: bad element {element!r}"
            )
