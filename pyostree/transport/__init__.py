"""Transports: where push reads and writes the remote repo, and how it runs commands there.

Importing this package never imports paramiko; only connecting over ssh does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:
    from .base import (
        ExecChannel,
        FileTransport,
        HostKeyError,
        RemoteExistsError,
        RemoteNotFoundError,
        RemoteStat,
        check_relpath,
    )
    from .destination import Destination, DestinationError, parse_destination
    from .local import LocalFileTransport, local_exec
    from .ssh import SshConnection, connect, open_transport
    from .ssh_options import SshOptionError, SshOptions, parse_ssh_option

# Each name loads its module on first use (PEP 562): the receiver, which needs only the
# local file transport for its refs lock, does not load ssh options and destinations.
_WHERE = {
    "Destination": "destination",
    "DestinationError": "destination",
    "ExecChannel": "base",
    "FileTransport": "base",
    "HostKeyError": "base",
    "LocalFileTransport": "local",
    "RemoteExistsError": "base",
    "RemoteNotFoundError": "base",
    "RemoteStat": "base",
    "SshConnection": "ssh",
    "SshOptionError": "ssh_options",
    "SshOptions": "ssh_options",
    "check_relpath": "base",
    "connect": "ssh",
    "local_exec": "local",
    "open_transport": "ssh",
    "parse_destination": "destination",
    "parse_ssh_option": "ssh_options",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "Destination",
    "DestinationError",
    "ExecChannel",
    "FileTransport",
    "HostKeyError",
    "LocalFileTransport",
    "RemoteExistsError",
    "RemoteNotFoundError",
    "RemoteStat",
    "SshConnection",
    "SshOptionError",
    "SshOptions",
    "check_relpath",
    "connect",
    "local_exec",
    "open_transport",
    "parse_destination",
    "parse_ssh_option",
]
