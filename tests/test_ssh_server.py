"""The embedded server's own promises: the sftp jail, the exec allow-list, key-only auth."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import List

import paramiko
import pytest

from pyostree.errors import TransportError
from pyostree.sshserver import (
    RECEIVE_ALLOW_LIST,
    EmbeddedSshServer,
    generate_key,
    known_hosts_line,
    public_key_line,
    write_private_key,
)
from pyostree.transport import Destination, SshOptions, connect
from pyostree.transport.sftp import SftpFileTransport
from sshd import EmbeddedSetup, Sshd, embedded, real_sshd, sshd_options  # noqa: F401


def _sftp(setup: EmbeddedSetup) -> paramiko.SFTPClient:
    transport = paramiko.Transport(("127.0.0.1", setup.server.port))
    transport.connect(hostkey=setup.server.host_key, username="x", pkey=setup.client_key)
    return paramiko.SFTPClient.from_transport(transport)


def test_sftp_jail_maps_root_and_blocks_escapes(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_text("do not read")
    (embedded.served / "jailtest").mkdir()
    os.symlink(str(tmp_path), embedded.served / "jailtest" / "out")
    client = _sftp(embedded)
    try:
        assert client.normalize("/../../..") == "/"
        assert "jailtest" in client.listdir("/")
        assert "jailtest" in client.listdir("../..")
        with pytest.raises(PermissionError):
            client.open("jailtest/out/secret").read()
        with pytest.raises(PermissionError):
            client.open("jailtest/out/new", "w").close()
        with pytest.raises(PermissionError):
            client.listdir("jailtest/out")
        # The link itself can still be seen and removed; the target is untouched.
        assert client.readlink("jailtest/out") == str(tmp_path)
        client.remove("jailtest/out")
    finally:
        client.close()
    assert outside.read_text() == "do not read"
    assert not (tmp_path / "new").exists()


def test_sftp_never_chowns(embedded: EmbeddedSetup) -> None:
    (embedded.served / "owned").write_text("x")
    before = os.stat(embedded.served / "owned")
    client = _sftp(embedded)
    try:
        attrs = paramiko.SFTPAttributes()
        attrs.st_uid, attrs.st_gid = 12345, 12345
        attrs._flags = attrs.FLAG_UIDGID
        client._request(paramiko.sftp.CMD_SETSTAT, "owned", attrs)
    finally:
        client.close()
    after = os.stat(embedded.served / "owned")
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


def _run(conn_opts: SshOptions, port: int, argv: List[str]) -> tuple:
    with connect(Destination("ssh", "x", host="127.0.0.1", port=port), conn_opts) as conn:
        with conn.exec(argv) as channel:
            channel.stdin.close()
            out, err = channel.stdout.read(), channel.stderr.read()
            return out, err, channel.wait()


def test_exec_allow_list(tmp_path: Path) -> None:
    key = generate_key()
    key_path = tmp_path / "k"
    write_private_key(key, str(key_path))
    (tmp_path / "served").mkdir()
    allow = [("echo", "ok")]
    with EmbeddedSshServer(str(tmp_path / "served"), [key], exec_allow=allow) as server:
        (tmp_path / "kh").write_text(server.known_hosts_line() + "\n")
        opts = SshOptions(
            identity_files=(str(key_path),),
            options=(("UserKnownHostsFile", str(tmp_path / "kh")),),
            home=str(tmp_path),
        )
        assert _run(opts, server.port, ["echo", "ok", "go"]) == (b"ok go\n", b"", 0)
        out, err, status = _run(opts, server.port, ["sh", "-c", "touch pwned"])
        assert (out, status) == (b"", 126) and b"not allowed" in err
        out, err, status = _run(opts, server.port, ["echo"])  # a prefix of the prefix is not enough
        assert status == 126
        assert ["sh", "-c", "touch pwned"] in server.exec_requests
    assert not (tmp_path / "served" / "pwned").exists()


def test_exec_unparsable_command_refused(embedded: EmbeddedSetup) -> None:
    transport = paramiko.Transport(("127.0.0.1", embedded.server.port))
    try:
        transport.connect(hostkey=embedded.server.host_key, username="x", pkey=embedded.client_key)
        channel = transport.open_session()
        channel.exec_command("echo 'unterminated")
        err = channel.makefile_stderr("rb").read()
        assert channel.recv_exit_status() == 2
        assert b"cannot parse command" in err
    finally:
        transport.close()


def test_exec_runs_in_root_dir(embedded: EmbeddedSetup) -> None:
    opts = embedded.options()
    out, _err, status = _run(opts, embedded.server.port, [sys.executable, "-c", "import os; print(os.getcwd())"])
    assert status == 0 and out.decode().strip() == str(embedded.served.resolve())


def test_receive_allow_list_shape() -> None:
    assert ("pyostree", "receive") in RECEIVE_ALLOW_LIST
    assert all(prefix[-1] == "receive" for prefix in RECEIVE_ALLOW_LIST)


def test_server_requires_a_key(tmp_path: Path) -> None:
    with pytest.raises(TransportError):
        EmbeddedSshServer(str(tmp_path), [])


def test_key_helpers(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "key"
    write_private_key(key, str(path))
    assert (os.stat(path).st_mode & 0o777) == 0o600
    assert paramiko.PKey.from_path(str(path)).asbytes() == key.asbytes()
    line = public_key_line(key, "me@test")
    assert line.split() == [key.get_name(), key.get_base64(), "me@test"]
    assert known_hosts_line("h", 22, key).startswith("h ")
    assert known_hosts_line("h", 2222, key).startswith("[h]:2222 ")


def test_server_stop_closes_live_connections(tmp_path: Path) -> None:
    key = generate_key()
    key_path = tmp_path / "k"
    write_private_key(key, str(key_path))
    server = EmbeddedSshServer(str(tmp_path), [key])
    server.start()
    (tmp_path / "kh").write_text(server.known_hosts_line() + "\n")
    opts = SshOptions(
        identity_files=(str(key_path),),
        options=(("UserKnownHostsFile", str(tmp_path / "kh")),),
        home=str(tmp_path),
    )
    conn = connect(Destination("ssh", ".", host="127.0.0.1", port=server.port), opts)
    files = conn.open_files(".")
    server.stop()
    with pytest.raises(TransportError):
        files.listdir("")
    conn.close()
    with pytest.raises(TransportError, match="cannot connect"):
        connect(Destination("ssh", ".", host="127.0.0.1", port=server.port), opts)


@pytest.mark.parametrize("vendor", ["paramiko", "openssh"])
def test_real_sshd_announces_fsync(real_sshd: Sshd, tmp_path: Path, vendor: str) -> None:
    opts = sshd_options(real_sshd, vendor, tmp_path / "home")
    with connect(Destination("ssh", str(tmp_path), host="127.0.0.1"), opts) as conn:
        files = conn.open_files(str(tmp_path))
        assert isinstance(files, SftpFileTransport) and files.supports_fsync
        files.close()


def test_embedded_has_no_fsync_and_it_is_a_no_op(embedded: EmbeddedSetup) -> None:
    with connect(Destination("ssh", ".", host="127.0.0.1"), embedded.options()) as conn:
        files = conn.open_files(".")
        assert isinstance(files, SftpFileTransport) and not files.supports_fsync
        (embedded.served / "synced").write_bytes(b"x")
        files.fsync("synced")
        files.close()


def test_a_dead_connection_at_the_exec_end_leaves_no_thread_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the command ends, the exec thread closes the channel; if the connection can no
    longer be written then (the client vanished: paramiko raises EOFError), no exception
    escapes the thread (the demo's server printed a traceback). The write failure is
    injected: a vanished client wins that race only now and then."""
    errors: List[str] = []
    monkeypatch.setattr("threading.excepthook",
                        lambda args: errors.append(f"{args.thread.name if args.thread else '?'}: "
                                                   f"{args.exc_type.__name__}"))
    send = paramiko.Transport._send_user_message
    failed: List[str] = []

    def dead_on_close(transport: paramiko.Transport, message: paramiko.Message) -> None:
        if (threading.current_thread().name == "sshserver-exec"
                and message.asbytes()[:1] == bytes([paramiko.common.MSG_CHANNEL_CLOSE])):
            failed.append("close")
            raise EOFError()
        send(transport, message)

    monkeypatch.setattr(paramiko.Transport, "_send_user_message", dead_on_close)
    monkeypatch.setattr("pyostree.sshserver._CLOSE_GRACE_POLLS", 1)  # do not wait for us
    key = generate_key()
    key_path = tmp_path / "k"
    write_private_key(key, str(key_path))
    server = EmbeddedSshServer(str(tmp_path), [key])
    server.start()
    try:
        (tmp_path / "kh").write_text(server.known_hosts_line() + "\n")
        opts = SshOptions(identity_files=(str(key_path),),
                          options=(("UserKnownHostsFile", str(tmp_path / "kh")),),
                          home=str(tmp_path))
        conn = connect(Destination("ssh", ".", host="127.0.0.1", port=server.port), opts)
        channel = conn.exec(["true"])
        assert channel.wait() == 0
        for thread in list(server._threads):
            if thread.name == "sshserver-exec":
                thread.join(10)  # it closes the channel itself, into a dead connection
        conn.close()
    finally:
        server.stop()
    assert failed == ["close"] and errors == []
