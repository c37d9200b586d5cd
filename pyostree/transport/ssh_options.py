"""ssh settings from the command line (-p, -i, -o K=V) as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..errors import TransportError

__all__ = [
    "SshOptions", "SshOptionError", "NeedsOpenSsh", "parse_ssh_option", "PARAMIKO_OPTION_KEYS",
    "HARMLESS_OPTIONS", "unsupported_option",
]


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


#: -o keys the paramiko vendor honours (canonical spelling). Any other key, and a value
#: of these it cannot honour, makes ``connect`` use the openssh vendor instead.
PARAMIKO_OPTION_KEYS: Tuple[str, ...] = (
    "Port",
    "User",
    "HostName",
    "IdentityFile",
    "IdentitiesOnly",
    "IdentityAgent",
    "CertificateFile",
    "UserKnownHostsFile",
    "GlobalKnownHostsFile",
    "StrictHostKeyChecking",
    "HashKnownHosts",
    "BatchMode",
    "ConnectTimeout",
    "ConnectionAttempts",
    "HostKeyAlias",
    "Ciphers",
    "HostKeyAlgorithms",
    "PubkeyAcceptedAlgorithms",
    "PubkeyAcceptedKeyTypes",  # the old name of PubkeyAcceptedAlgorithms
    "Compression",
    "ServerAliveInterval",
    "ServerAliveCountMax",
    "TCPKeepAlive",
    "ProxyJump",
    "ProxyCommand",
    "ControlPath",  # a live master there: the openssh vendor
    "ControlMaster",  # we never start a master (nor does the openssh vendor ask ssh to)
    "ControlPersist",
    "AddKeysToAgent",  # anything but "no": the openssh vendor
)

#: -o keys that change only what ssh logs or shows, or turn off what no push uses: accepted
#: and ignored, with the values for which that holds (None: any value). Another value
#: means the openssh vendor.
HARMLESS_OPTIONS: Dict[str, Optional[Tuple[str, ...]]] = {
    "LogLevel": ("quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3"),
    "LogVerbose": None,
    "VisualHostKey": ("yes", "no"),
    "EscapeChar": None,  # only for a session with a tty: we never ask for one
    "RequestTTY": ("no", "auto"),  # "auto" asks for a tty only for a login shell
    "ClearAllForwardings": ("yes", "no"),  # we set up no forwardings
    "ForwardAgent": ("no",),
    "ForwardX11": ("no",),
    "ForwardX11Trusted": ("yes", "no"),  # only with ForwardX11
    "CheckHostIP": ("no",),
    "UpdateHostKeys": ("no",),
    "PasswordAuthentication": ("yes", "no"),  # we authenticate by public key only, never prompt
    "KbdInteractiveAuthentication": ("yes", "no"),
    "ChallengeResponseAuthentication": ("yes", "no"),
    "GSSAPIAuthentication": ("no",),
    "PubkeyAuthentication": ("yes",),
    "NumberOfPasswordPrompts": None,
}


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

    A key the paramiko vendor knows comes back in its canonical spelling (matched
    case-insensitively); any other well-formed key passes through as given: for the
    paramiko vendor it means handing over to ssh (:func:`unsupported_option`).
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
    return _CANONICAL.get(key.lower(), key), value


def unsupported_option(key: str, value: str) -> Optional[NeedsOpenSsh]:
    """Why the paramiko vendor cannot take ``-o key=value``, or None if it can (it honours
    the key, or the key only changes logging and output)."""
    if key in PARAMIKO_OPTION_KEYS:
        return None
    harmless = _HARMLESS.get(key.lower())
    if harmless is not None:
        name, values = harmless
        if values is None or value.strip().lower() in values:
            return None
        return NeedsOpenSsh(f"-o {name}={value}",
                            f"ssh option {name}={value} is not supported by the paramiko vendor "
                            f"(it takes {name}={'|'.join(values)}); use --ssh=openssh")
    return NeedsOpenSsh(f"-o {key}", f"ssh option {key!r} is not supported by the paramiko vendor "
                                      "(see docs/DESIGN.md for those it is); use --ssh=openssh")


VENDORS: Tuple[str, ...] = ("paramiko", "openssh")

_CANONICAL = {key.lower(): key for key in PARAMIKO_OPTION_KEYS + tuple(HARMLESS_OPTIONS)}
_HARMLESS = {key.lower(): (key, values) for key, values in HARMLESS_OPTIONS.items()}


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
