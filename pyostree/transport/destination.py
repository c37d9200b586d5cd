"""Where a push goes: a local repo path or ``[user@]host:path`` over ssh.

Parsing follows scp's rules so users can type what they already know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import TransportError

__all__ = ["Destination", "DestinationError", "parse_destination"]


class DestinationError(TransportError, ValueError):
    """A destination string cannot be understood."""


@dataclass(frozen=True)
class Destination:
    """A parsed destination; ``kind`` is ``"local"`` or ``"ssh"``."""

    kind: str
    path: str
    host: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None


def parse_destination(text: str) -> Destination:
    """Parse ``[user@]host:path``, ``ssh://[user@]host[:port]/path``, ``file://path`` or a path.

    Like scp, a colon only means ssh when it comes before any ``/``: ``./a:b`` is local.
    """
    if not text:
        raise DestinationError("empty destination")
    if "\x00" in text or "\n" in text:
        raise DestinationError(f"destination {text!r} contains a control character")
    if text.startswith("file://"):
        path = text[len("file://"):]
        if not path:
            raise DestinationError(f"destination {text!r} has no path")
        return Destination(kind="local", path=path)
    if text.startswith("ssh://"):
        return _parse_ssh_url(text)
    colon = text.find(":")
    slash = text.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        return _parse_scp_form(text)
    if text.startswith("[") and "]:" in text:
        return _parse_scp_form(text)
    return Destination(kind="local", path=text)


def _parse_ssh_url(text: str) -> Destination:
    rest = text[len("ssh://"):]
    authority, sep, path = rest.partition("/")
    if not sep or not path:
        raise DestinationError(f"destination {text!r} has no repo path after the host")
    user, hostport = _split_user(authority, text)
    port: Optional[int] = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise DestinationError(f"destination {text!r} has an unclosed '['")
        host, tail = hostport[1:end], hostport[end + 1:]
        if tail:
            if not tail.startswith(":"):
                raise DestinationError(f"destination {text!r} has junk after ']'")
            port = _parse_port(tail[1:], text)
    else:
        host, has_port, port_text = hostport.partition(":")
        if has_port:
            port = _parse_port(port_text, text)
    _check_host(host, text)
    # ssh://host/~/repo is home-relative, like git; everything else is absolute.
    if path == "~" or path.startswith("~/"):
        full = path
    else:
        full = "/" + path
    return Destination(kind="ssh", path=full, host=host, user=user, port=port)


def _parse_scp_form(text: str) -> Destination:
    if text.startswith("[") or "@[" in text:
        close = text.find("]:")
        if close < 0:
            raise DestinationError(f"destination {text!r} has an unclosed '['")
        hostpart, path = text[:close + 1], text[close + 2:]
        user, bracketed = _split_user(hostpart, text)
        if not bracketed.startswith("[") or not bracketed.endswith("]"):
            raise DestinationError(f"destination {text!r} has a malformed [host]")
        host = bracketed[1:-1]
    else:
        hostpart, _, path = text.partition(":")
        user, host = _split_user(hostpart, text)
    _check_host(host, text)
    if not path:
        raise DestinationError(f"destination {text!r} has no repo path after ':'")
    return Destination(kind="ssh", path=path, host=host, user=user)


def _split_user(hostpart: str, text: str) -> "tuple[Optional[str], str]":
    user, at, host = hostpart.rpartition("@")
    if not at:
        return None, hostpart
    if not user:
        raise DestinationError(f"destination {text!r} has an empty user name")
    if user.startswith("-") or any(c.isspace() or ord(c) < 32 for c in user):
        raise DestinationError(f"destination {text!r} has an invalid user name")
    return user, host


def _check_host(host: str, text: str) -> None:
    if not host:
        raise DestinationError(f"destination {text!r} has an empty host")
    # A host starting with '-' would be read as an option by ssh.
    if host.startswith("-") or any(c.isspace() or ord(c) < 32 or c in "@/" for c in host):
        raise DestinationError(f"destination {text!r} has an invalid host name")


def _parse_port(port_text: str, text: str) -> int:
    if not port_text.isdigit() or not port_text.isascii():
        raise DestinationError(f"destination {text!r} has an invalid port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise DestinationError(f"destination {text!r} has a port out of range")
    return port
