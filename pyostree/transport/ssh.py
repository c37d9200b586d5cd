"""Open a connection to an ssh destination with the chosen vendor (paramiko or OpenSSH)."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from ..errors import TransportError
from .base import ExecChannel, FileTransport
from .connection import SshConnection
from .local import LocalFileTransport, local_exec
from .destination import Destination
from .ssh_options import SshOptions, SshOptionError, parse_ssh_option

__all__ = [
    "SshConnection",
    "SshOptions",
    "SshOptionError",
    "parse_ssh_option",
    "connect",
    "open_transport",
    "ExecFunc",
    "CloseFunc",
]

ExecFunc = Callable[[List[str]], ExecChannel]
CloseFunc = Callable[[], None]


def connect(dest: Destination, opts: SshOptions) -> SshConnection:
    """Connect and authenticate (host key checked first: unknown/changed keys are refused)."""
    if dest.kind != "ssh" or dest.host is None:
        raise TransportError(f"not an ssh destination: {dest.path}")
    if opts.vendor == "paramiko":
        from .paramiko_vendor import connect_paramiko

        return connect_paramiko(dest, opts)
    if opts.vendor == "openssh":
        from .openssh_vendor import connect_openssh

        return connect_openssh(dest, opts)
    raise SshOptionError(f"unknown ssh vendor {opts.vendor!r} (expected paramiko or openssh)")


def open_transport(
    dest: Destination, opts: Optional[SshOptions] = None
) -> Tuple[FileTransport, ExecFunc, CloseFunc]:
    """File ops, exec and close for any destination, local or ssh; what push uses.

    For a local destination exec runs the command here (no shell), as ssh would there.
    """
    if dest.kind == "local":
        local = LocalFileTransport(dest.path)
        return local, local_exec, local.close
    connection = connect(dest, opts if opts is not None else SshOptions())
    try:
        files = connection.open_files(dest.path)
    except BaseException:
        connection.close()
        raise

    def close() -> None:
        try:
            files.close()
        finally:
            connection.close()

    return files, connection.exec, close
