"""known_hosts checking for the paramiko vendor, with OpenSSH's StrictHostKeyChecking rules."""

from __future__ import annotations

import binascii
import hmac
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import _paramiko  # noqa: F401,I001  # first: paramiko without invoke
import paramiko  # type: ignore[import-untyped]

from ..errors import TransportError
from .base import HostKeyError
from .ssh_options import NeedsOpenSsh

__all__ = [
    "HostKeyPolicy", "HostKeyError", "HostCertificateRequired", "KnownHosts", "KnownLine",
    "host_field_matches", "known_hosts_name", "parse_strict",
]


#: StrictHostKeyChecking values we accept, mapped to our three policies.
_STRICT_VALUES: Dict[str, str] = {
    "yes": "yes",
    "ask": "yes",  # we never prompt, so "ask" behaves like "yes" (as BatchMode does)
    "accept-new": "accept-new",
    "no": "no",
    "off": "no",
}


_FIELD_SEPARATOR = re.compile("[ \t]+")
_MARKERS = ("@revoked", "@cert-authority")


def _wildcard_match(name: str, pattern: str) -> bool:
    """OpenSSH's match_pattern: ``*`` is any run of characters, ``?`` one; nothing else is
    special (so ``[host]:port`` is literal, unlike fnmatch). Greedy with one backtrack
    point, so linear for the patterns known_hosts holds; no regex to compile per line."""
    if "*" not in pattern and "?" not in pattern:
        return name == pattern
    n = p = 0
    star, mark = -1, 0
    while n < len(name):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]):
            n += 1
            p += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, n
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            n = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _hashed_match(name: str, field: str) -> bool:
    if not field.startswith("|1|"):
        return False  # another hash scheme: OpenSSH knows none either
    try:
        hashed = paramiko.HostKeys.hash_host(name, field)
    except (ValueError, TypeError, IndexError, AssertionError, binascii.Error):
        return False  # a malformed salt
    return hmac.compare_digest(hashed.encode(), field.encode())


def host_field_matches(name: str, field: str) -> bool:
    """Whether a known_hosts hosts field names ``name``, as OpenSSH decides.

    A field starting with ``|`` is one hashed name (``|1|salt|hash``). Otherwise it is a
    comma-separated list of patterns (``*``, ``?``), compared without regard to case; a
    ``!pattern`` that matches excludes the line even when another pattern matches. A
    hashed name is compared as given: ssh lowercases host names before it looks them up
    (:func:`known_hosts_name`)."""
    if field.startswith("|"):
        return _hashed_match(name, field)
    name = name.lower()
    matched = False
    for pattern in field.lower().split(","):
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        if not pattern or not _wildcard_match(name, pattern):
            continue
        if negated:
            return False
        matched = True
    return matched


@dataclass(frozen=True)
class KnownLine:
    """One known_hosts line that names a host: its marker ("", "@revoked", "@cert-authority")."""

    marker: str
    key: paramiko.PKey
    where: str  # "FILE:LINE", for messages


def _split_line(line: str) -> Optional[Tuple[str, str, str]]:
    """(marker, hosts field, "type base64 ...") of a non-comment line, or None if too short."""
    fields = _FIELD_SEPARATOR.split(line, maxsplit=1)
    marker = ""
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS or len(fields) < 2:
            return None  # an unknown marker (they are case-sensitive): OpenSSH skips the line
        marker = fields[0]
        fields = _FIELD_SEPARATOR.split(fields[1], maxsplit=1)
    if len(fields) < 2:
        return None
    return marker, fields[0], fields[1]


def parse_strict(value: str) -> str:
    """Normalise a StrictHostKeyChecking value to ``yes``, ``accept-new`` or ``no``."""
    policy = _STRICT_VALUES.get(value.strip().lower())
    if policy is None:
        raise TransportError(
            f"bad StrictHostKeyChecking value {value!r} (expected yes, accept-new or no)"
        )
    return policy


def known_hosts_name(host: str, port: int) -> str:
    """The name a host goes under in known_hosts: ``host`` or ``[host]:port``, lowercased
    as ssh does."""
    host = host.lower()
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class HostKeyPolicy:
    """Where known keys live and what to do with a new one."""

    known_hosts_files: Tuple[str, ...]  # the user's files; the first one is written by accept-new
    strict: str = "yes"  # yes | accept-new | no
    global_files: Tuple[str, ...] = ()  # read, never written
    hash_names: bool = False  # HashKnownHosts: accept-new writes |1|salt|hash names

    @property
    def all_files(self) -> Tuple[str, ...]:
        return self.known_hosts_files + self.global_files


class KnownHosts:
    """The known_hosts lines that name the given host names, from every readable file
    (missing files are simply empty), matched as OpenSSH matches them.

    Only the lines for ``names`` are parsed into keys: paramiko's own loader builds a key
    object for every line and checks each against all the others (about 70 us a line; a
    1,000-line file took 120 ms). ``names=None`` keeps every line's literal names (for tests).
    """

    def __init__(self, files: Sequence[str], names: Optional[Sequence[str]] = None) -> None:
        self._lines: Dict[str, List[KnownLine]] = {}
        for path in files:
            if not os.path.isfile(path):
                continue
            try:
                self._load(path, names)
            except (OSError, UnicodeDecodeError) as err:
                raise TransportError(f"cannot read known_hosts file {path}: {err}") from err

    def _load(self, path: str, names: Optional[Sequence[str]]) -> None:
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                parts = _split_line(line)
                if parts is None:
                    continue
                marker, field, rest = parts
                if names is None:
                    matched = [n for n in field.split(",") if n and not n.startswith(("!", "|"))]
                else:
                    matched = [name for name in names if host_field_matches(name, field)]
                if not matched:
                    continue
                key = _parse_key(rest, lineno)
                if key is None:
                    continue
                for name in matched:
                    self._lines.setdefault(name, []).append(KnownLine(marker, key, f"{path}:{lineno}"))

    def lines(self, name: str) -> List[KnownLine]:
        """The lines naming ``name``, in file order."""
        return list(self._lines.get(name, ()))

    def keys(self, name: str) -> List[paramiko.PKey]:
        """The plain (unmarked) keys known for ``name``, in file order."""
        return [line.key for line in self._lines.get(name, ()) if not line.marker]

    def key_types(self, name: str) -> List[str]:
        """Key types recorded for ``name`` (used to ask the server for a key we can check)."""
        return list(dict.fromkeys(key.get_name() for key in self.keys(name)))

    def verify(self, name: str, shown: str, key: paramiko.PKey, policy: HostKeyPolicy,
               portless_name: Optional[str] = None) -> None:
        """Raise HostKeyError unless ``key`` is acceptable for ``name`` under ``policy``.

        OpenSSH's order: a key listed ``@revoked`` is refused whatever else says (we refuse
        it under StrictHostKeyChecking=no too, where ssh goes on); a listed key is good;
        another plain key for the name, of any type, means the key CHANGED; for a
        ``[host]:port`` name, the key listed for the bare host is good too
        (``portless_name``). A host named by a ``@cert-authority`` line is not new: its
        keys are certified, which paramiko cannot check, so it needs OpenSSH's ssh."""
        key_type = key.get_name()
        fingerprint = key.fingerprint
        blob = key.asbytes()
        lines = self._lines.get(name, [])
        portless = self._lines.get(portless_name, []) if portless_name not in (None, name) else []
        for line in lines + portless:
            if line.marker == "@revoked" and line.key.asbytes() == blob:
                raise HostKeyError(
                    f"host key for {shown} is REVOKED ({key_type} {fingerprint}; @revoked at "
                    f"{line.where}); refusing to connect"
                )
        plain = [line.key for line in lines if not line.marker]
        if any(known.asbytes() == blob for known in plain):
            return
        if plain:
            if policy.strict == "no":
                return
            raise HostKeyError(
                f"host key for {shown} has CHANGED ({key_type} {fingerprint}); "
                "refusing to connect (possible man-in-the-middle): fix known_hosts if this is expected"
            )
        if any(not line.marker and line.key.asbytes() == blob for line in portless):
            return
        if policy.strict == "no":
            return
        authorities = [line for line in lines if line.marker == "@cert-authority"]
        if authorities:
            raise HostCertificateRequired(
                f"host {shown} is known through a @cert-authority line ({authorities[0].where}), "
                f"but the paramiko vendor cannot check host certificates and got a plain "
                f"{key_type} key; refusing to connect: use --ssh=openssh"
            )
        if policy.strict == "accept-new":
            add_known_host(policy.known_hosts_files, name, key, hashed=policy.hash_names)
            return
        where = ", ".join(policy.all_files) or "no known_hosts file"
        raise HostKeyError(
            f"host key for {shown} is unknown ({key_type} {fingerprint}; not in {where}); "
            "refusing to connect: add it to known_hosts or use -o StrictHostKeyChecking=accept-new"
        )


class HostCertificateRequired(HostKeyError, NeedsOpenSsh):
    """The host is vouched for by a certificate authority: only OpenSSH's ssh can check it."""

    def __init__(self, message: str) -> None:
        NeedsOpenSsh.__init__(self, "a @cert-authority line names the host", message)


def _parse_key(rest: str, lineno: int) -> Optional[paramiko.PKey]:
    """The key of a line's "type base64 [comment]" part, or None if unreadable (skipped, as
    OpenSSH and paramiko skip such lines)."""
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(f"x {rest}", lineno)
    except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError, binascii.Error):
        return None
    if entry is None or entry.key is None:
        return None
    key: paramiko.PKey = entry.key
    return key


def add_known_host(files: Sequence[str], name: str, key: paramiko.PKey, hashed: bool = False) -> None:
    """Append ``name``'s key to the first known_hosts file (creating ~/.ssh if needed)."""
    if not files:
        raise HostKeyError(f"cannot remember host key for {name}: no known_hosts file configured")
    path = files[0]
    shown = paramiko.HostKeys.hash_host(name) if hashed else name
    line = f"{shown} {key.get_name()} {key.get_base64()}\n"
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "a", encoding="ascii") as f:
            f.write(line)
    except OSError as err:
        raise HostKeyError(f"cannot add host key for {name} to {path}: {err.strerror}") from err
