"""Open a connection to an ssh destination with the chosen vendor (paramiko or OpenSSH)."""

from __future__ import annotations

import shutil
from typing import Callable, List, Optional, Tuple

from ..errors import TransportError
from .base import ExecChannel, FileTransport
from .connection import SshConnection
from .local import LocalFileTransport, local_exec
from .destination import Destination
from .ssh_options import NeedsOpenSsh, SshOptions, SshOptionError, parse_ssh_option

__all__ = [
    "SshConnection",
    "SshOptions",
    "SshOptionError",
    "parse_ssh_option",
    "connect",
    "open_transport",
    "ExecFunc",
    "CloseFunc",
    "LogFunc",
]

ExecFunc = Callable[[List[str]], ExecChannel]
CloseFunc = Callable[[], None]
LogFunc = Callable[[str], None]


def connect(dest: Destination, opts: SshOptions, on_log: Optional[LogFunc] = None) -> SshConnection:
    """Connect and authenticate (host key checked first: unknown/changed keys are refused).

    When the paramiko vendor cannot honour a setting (a ProxyJump it cannot reach, a live
    ControlMaster, a host vouched for by a certificate authority...), the connection is made
    with the openssh vendor instead, with the same settings, if ``ssh`` is installed;
    ``on_log`` hears why.
    """
    if dest.kind != "ssh" or dest.host is None:
        raise TransportError(f"not an ssh destination: {dest.path}")
    if opts.vendor == "paramiko":
        from .paramiko_vendor import connect_paramiko, openssh_equivalent

        try:
            return connect_paramiko(dest, opts)
        except NeedsOpenSsh as err:
            if shutil.which("ssh") is None:
                raise NeedsOpenSsh(err.reason, f"{err} (and OpenSSH's ssh is not installed)") from err
            if on_log is not None:
                on_log(f"using the openssh vendor: {err.reason}, which the paramiko vendor cannot honour")
            switched = openssh_equivalent(dest, opts)
            from .openssh_vendor import connect_openssh

            return connect_openssh(dest, switched)
    if opts.vendor == "openssh":
        from .openssh_vendor import connect_openssh

        return connect_openssh(dest, opts)
    raise SshOptionError(f"unknown ssh vendor {opts.vendor!r} (expected paramiko or openssh)")


def open_transport(
    dest: Destination, opts: Optional[SshOptions] = None, on_log: Optional[LogFunc] = None
) -> Tuple[FileTransport, ExecFunc, CloseFunc]:
    """File ops, exec and close for any destination, local or ssh; what push uses.

    For a local destination exec runs the command here (no shell), as ssh would there.
    """
    if dest.kind == "local":
        local = LocalFileTransport(dest.path)
        return local, local_exec, local.close
    connection = connect(dest, opts if opts is not None else SshOptions(), on_log)
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
