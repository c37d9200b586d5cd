"""Transports: where push reads and writes the remote repo, and how it runs commands there.

Importing this package never imports paramiko; only connecting over ssh does.
"""

from __future__ import annotations

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
