"""Helpers shared by command modules: opening the repo, writing output."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional

from pyostree.errors import RepoError
from pyostree.repo.gvtext import member_types

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["MISSING_REPO_MESSAGE", "format_variant", "open_repo", "repo_path", "write_bytes"]

MISSING_REPO_MESSAGE = "Command requires a --repo argument"


def repo_path(args: argparse.Namespace) -> str:
    """The repo path the frame resolved (--repo, cwd, $OSTREE_REPO), or a clear error."""
    path: Optional[str] = getattr(args, "repo", None)
    if not path:
        raise RepoError(MISSING_REPO_MESSAGE)
    return path


def open_repo(args: argparse.Namespace) -> Repo:
    """Open the repository the command line names; RepoError if there is none."""
    from pyostree.repo import Repo  # imported late: commands that need no repo stay light

    return Repo.open(repo_path(args))


def write_bytes(data: bytes) -> None:
    """Write raw bytes to stdout after whatever text is already buffered."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)


def add_signing_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--gpg-sign``, ``--gpg-homedir``, ``--sign`` and ``--sign-type``, as ostree's commit
    and summary take them; WHAT is what gets signed ("commit", "summary")."""
    parser.add_argument("--gpg-sign", action="append", default=[], metavar="KEY-ID",
                        help=f"GPG Key ID to sign the {what} with (repeatable)")
    parser.add_argument("--gpg-homedir", metavar="HOMEDIR", help="GPG Homedir to use when looking for keyrings")
    parser.add_argument("--sign", action="append", default=[], metavar="KEY_ID",
                        help=f"sign the {what} with this key (repeatable)")
    parser.add_argument("--sign-type", metavar="NAME", help="signature type to use (defaults to 'ed25519')")


# -- GVariant text format (g_variant_print), for ``ls -X`` and ``show`` ---------------

_INT_FORMATS = {"n": (2, True), "q": (2, False), "i": (4, True), "u": (4, False),
                "x": (8, True), "t": (8, False), "h": (4, True)}
_INT_ANNOTATIONS = {"n": "int16 ", "q": "uint16 ", "u": "uint32 ", "x": "int64 ",
                    "t": "uint64 ", "h": "handle ", "i": ""}
_C_ESCAPES = {0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v",
              0x5C: "\\\\", 0x22: '\\"'}
# g_unichar_isprint: everything but control, format, unassigned and surrogate characters.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Cs"})
_STRING_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                   "\t": "\\t", "\v": "\\v"}


def _swap_int(value: int, size: int, signed: bool) -> int:
    return int.from_bytes(value.to_bytes(size, "little", signed=signed), "big", signed=signed)


def _quote_string(text: str) -> str:
    import unicodedata  # only ``show``/``ls -X`` print strings: keep it off the common path

    quote = '"' if "'" in text else "'"
    out = [quote]
    for char in text:
        if char in (quote, "\\"):
            out.append("\\" + char)
        elif char in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[char])
        elif unicodedata.category(char) not in _UNPRINTABLE_CATEGORIES:
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append(quote)
    return "".join(out)


def _bytestring(data: bytes) -> str | None:
    """g_variant_print's b'...' form, used when the bytes are NUL-terminated with no other NUL."""
    if not data or data[-1] != 0 or 0 in data[:-1]:
        return None
    escaped = "".join(_C_ESCAPES.get(b, chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}")
                      for b in data[:-1])
    return f'b"{escaped}"' if b"'" in data else f"b'{escaped}'"


def format_variant(type_string: str, value: object, annotate: bool = True,
                   byteswap: bool = False) -> str:
    """``g_variant_print(value, annotate)``; BYTESWAP mimics ostree's ``ot_dump_variant``."""
    char = type_string[0]
    if char == "b":
        return "true" if value else "false"
    if char == "y":
        assert isinstance(value, int)
        return f"{'byte ' if annotate else ''}0x{value:02x}"
    if char in _INT_FORMATS:
        assert isinstance(value, int)
        size, signed = _INT_FORMATS[char]
        number = _swap_int(value, size, signed) if byteswap else value
        return f"{_INT_ANNOTATIONS[char] if annotate else ''}{number}"
    if char == "d":
        assert isinstance(value, float)
        real: float = value
        if byteswap:
            import struct

            (real,) = struct.unpack(">d", struct.pack("<d", value))
        return repr(real)
    if char in "sog":
        assert isinstance(value, str)
        prefix = {"s": "", "o": "objectpath ", "g": "signature "}[char] if annotate else ""
        return prefix + _quote_string(value)
    if char == "v":
        assert isinstance(value, tuple)
        inner_type, inner = value
        return f"<{format_variant(str(inner_type), inner, True, byteswap)}>"
    if char == "m":
        prefix = f"@{type_string} " if annotate else ""
        if value is None:
            return prefix + "nothing"
        inner_value = value[0] if isinstance(value, tuple) and type_string[1] == "m" else value
        return prefix + format_variant(type_string[1:], inner_value, False, byteswap)
    if char == "a":
        return _format_array(type_string, value, annotate, byteswap)
    if char == "(":
        assert isinstance(value, (tuple, list))
        members = member_types(type_string)
        parts = [format_variant(t, v, annotate, byteswap) for t, v in zip(members, value)]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    raise ValueError(f"cannot print GVariant type {type_string!r}")


def _format_array(type_string: str, value: object, annotate: bool, byteswap: bool) -> str:
    element = type_string[1:]
    if element == "y":
        assert isinstance(value, (bytes, bytearray))
        as_string = _bytestring(bytes(value))
        if as_string is not None:
            return as_string
        items: list[object] = list(value)
    elif element.startswith("{"):
        assert isinstance(value, dict)
        if not value:
            return f"@{type_string} {{}}" if annotate else "{}"
        key_type, value_type = member_types(element)
        parts = []
        for key, item in value.items():
            parts.append(f"{format_variant(key_type, key, annotate, byteswap)}: "
                         f"{format_variant(value_type, item, annotate, byteswap)}")
            annotate = False
        return "{" + ", ".join(parts) + "}"
    else:
        assert isinstance(value, (list, tuple))
        items = list(value)
    if not items:
        return f"@{type_string} []" if annotate else "[]"
    parts = []
    for item in items:
        parts.append(format_variant(element, item, annotate, byteswap))
        annotate = False
    return "[" + ", ".join(parts) + "]"
