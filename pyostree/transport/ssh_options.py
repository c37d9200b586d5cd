"""ssh settings from the command line (-p, -i, -o K=V) as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import TransportError

__all__ = ["SshOptions", "SshOptionError", "NeedsOpenSsh", "parse_ssh_option", "PARAMIKO_OPTION_KEYS"]


class SshOptionError(TransportError, ValueError):
    """An -o option is malformed or not supported by the chosen ssh vendor."""


class NeedsOpenSsh(TransportError):
    """The paramiko vendor cannot honour a setting that OpenSSH's ``ssh`` can.

    ``connect`` catches it and connects with the openssh vendor instead when ``ssh`` is
    installed; otherwise the user gets the message. ``reason`` says what needs ssh.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: -o keys the paramiko vendor understands (canonical spelling); others are refused.
PARAMIKO_OPTION_KEYS: Tuple[str, ...] = (
    "Port",
    "User",
    "HostName",
    "IdentityFile",
    "IdentitiesOnly",
    "IdentityAgent",
    "UserKnownHostsFile",
    "GlobalKnownHostsFile",
    "StrictHostKeyChecking",
    "BatchMode",
    "ConnectTimeout",
    "HostKeyAlias",
    "Ciphers",
)


@dataclass(frozen=True)
class SshOptions:
    """How to reach an ssh destination. Nothing here is read from the environment.

    ``home`` is where ``.ssh/`` lives (config, known_hosts, default keys); the CLI passes it.
    ``agent_socket`` is the ssh-agent socket path (the CLI passes $SSH_AUTH_SOCK).
    ``config_file`` overrides ``HOME/.ssh/config`` (``ssh -F``).
    The openssh vendor ignores ``home``: ssh finds ``~/.ssh`` itself (pass ``config_file``
    and ``-o UserKnownHostsFile=`` to point it elsewhere); ``agent_socket`` becomes
    ``-o IdentityAgent=``.
    """

    port: Optional[int] = None
    user: Optional[str] = None
    identity_files: Tuple[str, ...] = ()
    options: Tuple[Tuple[str, str], ...] = ()
    vendor: str = "paramiko"
    home: Optional[str] = None
    agent_socket: Optional[str] = None
    config_file: Optional[str] = None


def parse_ssh_option(text: str, *, vendor: str = "paramiko") -> Tuple[str, str]:
    """Parse ``"Port=22"`` or ``"Port 22"`` into ``("Port", "22")``.

    For the paramiko vendor the key must be one of PARAMIKO_OPTION_KEYS (matched
    case-insensitively, returned in canonical spelling); for openssh any key passes
    through for ssh itself to judge.
    """
    if vendor not in VENDORS:
        raise SshOptionError(f"unknown ssh vendor {vendor!r} (expected paramiko or openssh)")
    stripped = text.strip()
    if not stripped or any(ord(c) < 32 and c != "\t" for c in stripped):
        raise SshOptionError(f"malformed ssh option {text!r}")
    key, value = _split_key_value(stripped)
    if not key or not value or not key.isascii() or not key.isalnum():
        raise SshOptionError(f"malformed ssh option {text!r} (expected Key=Value)")
    if vendor == "openssh":
        return key, value
    canonical = _CANONICAL.get(key.lower())
    if canonical is None:
        raise SshOptionError(
            f"ssh option {key!r} is not supported by the paramiko vendor "
            f"(supported: {', '.join(PARAMIKO_OPTION_KEYS)}; or use the openssh vendor)"
        )
    return canonical, value


VENDORS: Tuple[str, ...] = ("paramiko", "openssh")

_CANONICAL = {key.lower(): key for key in PARAMIKO_OPTION_KEYS}


def _split_key_value(text: str) -> Tuple[str, str]:
    # ssh accepts "Key=Value", "Key Value" and "Key = Value".
    for index, char in enumerate(text):
        if char == "=" or char.isspace():
            key = text[:index]
            rest = text[index:].strip()
            if rest.startswith("="):
                rest = rest[1:].strip()
            return key, rest
    return text, ""
