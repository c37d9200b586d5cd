"""ssh settings from the command line (-p, -i, -o K=V) as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import TransportError

__all__ = ["SshOptions", "SshOptionError", "parse_ssh_option", "PARAMIKO_OPTION_KEYS"]


class SshOptionError(TransportError, ValueError):
    """An -o option is malformed or not supported by the chosen ssh vendor."""


#: -o keys the paramiko vendor understands (canonical spelling); others are refused.
PARAMIKO_OPTION_KEYS: Tuple[str, ...] = (
    "Port",
    "User",
    "HostName",
    "IdentityFile",
    "IdentitiesOnly",
    "IdentityAgent",
    "UserKnownHostsFile",
    "StrictHostKeyChecking",
    "BatchMode",
    "ConnectTimeout",
    "HostKeyAlias",
)


@dataclass(frozen=True)
class SshOptions:
    """How to reach an ssh destination. Nothing here is read from the environment.

    ``home`` is where ``.ssh/`` lives (config, known_hosts, default keys); the CLI passes it.
    ``agent_socket`` is the ssh-agent socket path (the CLI passes $SSH_AUTH_SOCK).
    ``config_file`` overrides ``HOME/.ssh/config`` (``ssh -F``).
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
    raise NotImplementedError
