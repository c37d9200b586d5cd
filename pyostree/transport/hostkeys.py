"""known_hosts checking for the paramiko vendor, with OpenSSH's StrictHostKeyChecking rules."""

from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import _paramiko  # noqa: F401,I001  # first: paramiko without invoke
import paramiko  # type: ignore[import-untyped]

from ..errors import TransportError
from .base import HostKeyError

__all__ = ["HostKeyPolicy", "HostKeyError", "KnownHosts", "known_hosts_name", "parse_strict"]


#: StrictHostKeyChecking values we accept, mapped to our three policies.
_STRICT_VALUES: Dict[str, str] = {
    "yes": "yes",
    "ask": "yes",  # we never prompt, so "ask" behaves like "yes" (as BatchMode does)
    "accept-new": "accept-new",
    "no": "no",
    "off": "no",
}


_FIELD_SEPARATOR = re.compile("[ \t]")


def _listed(name: str, patterns: Sequence[str]) -> bool:
    """Whether the hosts field of a line names ``name``: plainly or hashed (``|1|salt|hash``),
    exactly as paramiko matches them (no wildcards, no negation)."""
    for pattern in patterns:
        if pattern == name:
            return True
        if pattern.startswith("|1|") and not name.startswith("|1|"):
            try:
                hashed = paramiko.HostKeys.hash_host(name, pattern)
            except (ValueError, TypeError, IndexError, AssertionError):
                continue  # a malformed salt
            if hmac.compare_digest(hashed.encode(), pattern.encode()):
                return True
    return False


def parse_strict(value: str) -> str:
    """Normalise a StrictHostKeyChecking value to ``yes``, ``accept-new`` or ``no``."""
    policy = _STRICT_VALUES.get(value.strip().lower())
    if policy is None:
        raise TransportError(
            f"bad StrictHostKeyChecking value {value!r} (expected yes, accept-new or no)"
        )
    return policy


def known_hosts_name(host: str, port: int) -> str:
    """The name a host goes under in known_hosts: ``host`` or ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class HostKeyPolicy:
    """Where known keys live and what to do with a new one."""

    known_hosts_files: Tuple[str, ...]  # the user's files; the first one is written by accept-new
    strict: str = "yes"  # yes | accept-new | no
    global_files: Tuple[str, ...] = ()  # read, never written

    @property
    def all_files(self) -> Tuple[str, ...]:
        return self.known_hosts_files + self.global_files


class KnownHosts:
    """The keys of every readable known_hosts file (missing files are simply empty).

    Given ``names``, only the lines for those names are kept: paramiko's own loader builds a
    key object for every line and checks each against all the others (about 70 us a line;
    a 1,000-line file took 120 ms), then every lookup hashes the name again for each
    hashed line. For the first line of each key type per name, as paramiko kept before.
    """

    def __init__(self, files: Sequence[str], names: Optional[Sequence[str]] = None) -> None:
        self._keys = paramiko.HostKeys()
        for path in files:
            if not os.path.isfile(path):
                continue
            try:
                if names is None:
                    self._keys.load(path)
                else:
                    self._load_lines_for(path, names)
            except (OSError, UnicodeDecodeError) as err:
                raise TransportError(f"cannot read known_hosts file {path}: {err}") from err

    def _load_lines_for(self, path: str, names: Sequence[str]) -> None:
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                patterns = _FIELD_SEPARATOR.split(line, maxsplit=1)[0].split(",")
                matched = [name for name in names if _listed(name, patterns)]
                if matched:
                    self._add_line(line, lineno, matched)

    def _add_line(self, line: str, lineno: int, names: Sequence[str]) -> None:
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
            return  # unreadable, as paramiko's own loader skips it
        if entry is None or entry.key is None:
            return
        key_type = entry.key.get_name()
        for name in names:
            known = self._keys.lookup(name)
            if known is None or key_type not in known:
                self._keys.add(name, key_type, entry.key)

    def key_types(self, name: str) -> List[str]:
        """Key types recorded for ``name`` (used to ask the server for a key we can check)."""
        entry = self._keys.lookup(name)
        return list(entry.keys()) if entry else []

    def verify(self, name: str, shown: str, key: paramiko.PKey, policy: HostKeyPolicy) -> None:
        """Raise HostKeyError unless ``key`` is acceptable for ``name`` under ``policy``."""
        entry = self._keys.lookup(name)
        key_type = key.get_name()
        known = entry.get(key_type) if entry else None
        fingerprint = key.fingerprint
        if known is not None:
            if known.asbytes() == key.asbytes() or policy.strict == "no":
                return
            raise HostKeyError(
                f"host key for {shown} has CHANGED ({key_type} {fingerprint}); "
                "refusing to connect (possible man-in-the-middle): fix known_hosts if this is expected"
            )
        if policy.strict == "no":
            return
        if policy.strict == "accept-new" and not entry:
            add_known_host(policy.known_hosts_files, name, key)
            return
        where = ", ".join(policy.all_files) or "no known_hosts file"
        raise HostKeyError(
            f"host key for {shown} is unknown ({key_type} {fingerprint}; not in {where}); "
            "refusing to connect: add it to known_hosts or use -o StrictHostKeyChecking=accept-new"
        )


def add_known_host(files: Sequence[str], name: str, key: paramiko.PKey) -> None:
    """Append ``name``'s key to the first known_hosts file (creating ~/.ssh if needed)."""
    if not files:
        raise HostKeyError(f"cannot remember host key for {name}: no known_hosts file configured")
    path = files[0]
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "a", encoding="ascii") as f:
            f.write(line)
    except OSError as err:
        raise HostKeyError(f"cannot add host key for {name} to {path}: {err.strerror}") from err
