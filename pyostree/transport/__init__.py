"""Transports: where push reads and writes the remote repo, and how it runs commands there.

Importing this package never imports paramiko; only connecting over ssh does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyostree._lazy import lazy_names

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
    from .connection import SshConnection
    from .ssh import connect, open_transport
    from .ssh_options import NeedsOpenSsh, SshOptionError, SshOptions, parse_ssh_option

# Each name loads its module on first use (PEP 562): the receiver, which needs only the
# local file transport for its refs lock, does not load ssh options and destinations.
_WHERE = {
    "Destination": "pyostree.transport.destination",
    "DestinationError": "pyostree.transport.destination",
    "ExecChannel": "pyostree.transport.base",
    "FileTransport": "pyostree.transport.base",
    "HostKeyError": "pyostree.transport.base",
    "LocalFileTransport": "pyostree.transport.local",
    "NeedsOpenSsh": "pyostree.transport.ssh_options",
    "RemoteExistsError": "pyostree.transport.base",
    "RemoteNotFoundError": "pyostree.transport.base",
    "RemoteStat": "pyostree.transport.base",
    "SshConnection": "pyostree.transport.connection",
    "SshOptionError": "pyostree.transport.ssh_options",
    "SshOptions": "pyostree.transport.ssh_options",
    "check_relpath": "pyostree.transport.base",
    "connect": "pyostree.transport.ssh",
    "local_exec": "pyostree.transport.local",
    "open_transport": "pyostree.transport.ssh",
    "parse_destination": "pyostree.transport.destination",
    "parse_ssh_option": "pyostree.transport.ssh_options",
}


__getattr__, __dir__ = lazy_names(globals(), _WHERE)

__all__ = [
    "Destination",
    "DestinationError",
    "ExecChannel",
    "FileTransport",
    "HostKeyError",
    "LocalFileTransport",
    "NeedsOpenSsh",
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
