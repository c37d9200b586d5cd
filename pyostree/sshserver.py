"""An embedded paramiko SSH server for the demo and the tests.

Public-key auth only, an sftp subsystem jailed to ``root_dir`` (``/`` and the home
directory both map to it), and exec requests run as subprocesses in ``root_dir`` —
optionally limited to an allow-list of argv prefixes. No shell, no pty, no forwarding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:
    import paramiko  # type: ignore[import-untyped]

__all__ = [
    "EmbeddedSshServer",
    "RECEIVE_ALLOW_LIST",
    "generate_key",
    "public_key_line",
    "known_hosts_line",
    "write_private_key",
]

#: argv prefixes the demo lets clients exec: only ``pyostree receive``.
RECEIVE_ALLOW_LIST: Tuple[Tuple[str, ...], ...] = (
    ("pyostree", "receive"),
    ("python", "-m", "pyostree", "receive"),
    ("python3", "-m", "pyostree", "receive"),
)


def generate_key() -> "paramiko.PKey":
    """A throwaway ECDSA P-256 key (paramiko cannot generate ed25519)."""
    raise NotImplementedError


def write_private_key(key: "paramiko.PKey", path: str) -> None:
    """Write ``key`` unencrypted with mode 0600 (usable by ``ssh -i`` and paramiko)."""
    raise NotImplementedError


def public_key_line(key: "paramiko.PKey", comment: str = "") -> str:
    """``"TYPE BASE64 [comment]"`` as in authorized_keys / .pub files."""
    raise NotImplementedError


def known_hosts_line(host: str, port: int, key: "paramiko.PKey") -> str:
    """A known_hosts line for ``host:port`` (``[host]:port`` unless port is 22)."""
    raise NotImplementedError


class EmbeddedSshServer:
    """Serve ``root_dir`` over ssh on 127.0.0.1, an ephemeral port, one thread per connection.

    ``exec_allow``: None allows any command; otherwise argv (parsed with shlex) must start
    with one of the prefixes. ``exec_env``: environment for exec'd commands (None: inherit).
    """

    def __init__(
        self,
        root_dir: str,
        authorized_keys: Sequence["paramiko.PKey"],
        host_key: Optional["paramiko.PKey"] = None,
        *,
        exec_allow: Optional[Sequence[Sequence[str]]] = None,
        exec_env: Optional[Mapping[str, str]] = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        raise NotImplementedError

    host: str
    port: int
    host_key: "paramiko.PKey"

    def start(self) -> None:
        """Bind and start accepting (called by ``__enter__``)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        raise NotImplementedError

    def known_hosts_line(self) -> str:
        """The known_hosts line clients need to trust this server."""
        raise NotImplementedError

    def __enter__(self) -> "EmbeddedSshServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
