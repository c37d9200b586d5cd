"""The OpenSSH vendor's extra sftp sessions for ``write_files``: more ssh processes with the
same options, started together, by default only through the user's ControlMaster; one that
fails (host key, hang) costs only speed, never a prompt or a hang; every process is reaped,
every stderr thread ended, at close."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

pytest.importorskip("paramiko")

from sshd import Sshd, real_sshd  # noqa: E402,F401

from pyostree.errors import TransportError  # noqa: E402
from pyostree.transport import Destination, SshOptions, connect  # noqa: E402
from pyostree.transport.openssh_vendor import OpenSshConnection, _ExtraSessions  # noqa: E402
from pyostree.transport.sftp import SftpFileTransport, WriteItem  # noqa: E402


def _children(name: str) -> List[int]:
    """Our child processes called ``name``, zombies included (so: not yet reaped)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == os.getpid() and comm == name:
            found.append(int(entry))
    return found


def _stderr_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "ssh-stderr")


def _options(server: Sshd, known_hosts: Path, *extra: Tuple[str, str]) -> SshOptions:
    known_hosts.write_text(Path(server.known_hosts).read_text())
    return SshOptions(
        port=server.port, user=server.user, identity_files=(server.client_key,),
        options=(("UserKnownHostsFile", str(known_hosts)), ("IdentitiesOnly", "yes")) + extra,
        vendor="openssh", config_file=os.devnull,
    )


def _write(files: SftpFileTransport, count: int) -> None:
    items = [WriteItem(f"f{i}.tmp", f"f{i}", b"x" * i) for i in range(count)]
    files.write_files(items, fsync=True)


def _accepted(server: Sshd) -> int:
    return (Path(server.workdir) / "sshd.log").read_text().count("Accepted publickey")


def _unconditional(connection: object) -> None:
    """Extra sessions even without a ControlMaster (each does its own handshake)."""
    assert isinstance(connection, OpenSshConnection)
    connection.extra_sessions_need_master = False


def test_write_files_spreads_over_four_ssh_processes(real_sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    options = _options(real_sshd, tmp_path / "known_hosts")
    before = _stderr_threads()
    connection = connect(Destination("ssh", str(tmp_path / "r"), host="127.0.0.1"), options)
    _unconditional(connection)
    try:
        files = connection.open_files(str(tmp_path / "r"))
        assert len(_children("ssh")) == 1  # no extra session until something is written
        assert isinstance(files, SftpFileTransport)
        _write(files, 40)
        assert len(_children("ssh")) == 4
    finally:
        connection.close()
    assert _children("ssh") == []
    assert _stderr_threads() == before
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(f"f{i}" for i in range(40))
    assert (tmp_path / "r" / "f7").read_bytes() == b"x" * 7


def test_extra_sessions_refused_host_key_costs_only_speed(real_sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    known_hosts = tmp_path / "known_hosts"
    options = _options(real_sshd, known_hosts, ("BatchMode", "no"), ("StrictHostKeyChecking", "ask"))
    connection = connect(Destination("ssh", str(tmp_path / "r"), host="127.0.0.1"), options)
    _unconditional(connection)
    try:
        files = connection.open_files(str(tmp_path / "r"))
        # The host key changes after the first session: the others must fail, not ask.
        known_hosts.write_text(f"[127.0.0.1]:{real_sshd.port} ssh-ed25519 "
                               "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
        assert isinstance(files, SftpFileTransport)
        _write(files, 10)
        assert len(_children("ssh")) == 1
    finally:
        connection.close()
    assert _children("ssh") == []
    assert len(list((tmp_path / "r").iterdir())) == 10


def test_extra_sessions_ride_the_users_control_master(real_sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    short = tempfile.mkdtemp()  # a unix socket path must stay short
    try:
        options = _options(real_sshd, tmp_path / "known_hosts", ("ControlMaster", "auto"),
                           ("ControlPath", f"{short}/cm-%C"), ("ControlPersist", "no"))
        accepted = _accepted(real_sshd)
        connection = connect(Destination("ssh", str(tmp_path / "r"), host="127.0.0.1"), options)
        try:
            files = connection.open_files(str(tmp_path / "r"))
            assert isinstance(files, SftpFileTransport)
            _write(files, 20)
            assert len(_children("ssh")) == 4
        finally:
            connection.close()
        assert _children("ssh") == []
        assert _accepted(real_sshd) == accepted + 1  # one connection carried all four
        assert len(list((tmp_path / "r").iterdir())) == 20
    finally:
        for name in os.listdir(short):
            os.unlink(os.path.join(short, name))
        os.rmdir(short)


@pytest.mark.parametrize("need_master, connections", [(True, 1), (False, 4)])
def test_without_a_control_master_no_extra_handshakes_by_default(
    real_sshd: Sshd, tmp_path: Path, need_master: bool, connections: int
) -> None:
    (tmp_path / "r").mkdir()
    accepted = _accepted(real_sshd)
    connection = connect(Destination("ssh", str(tmp_path / "r"), host="127.0.0.1"),
                         _options(real_sshd, tmp_path / "known_hosts"))
    assert isinstance(connection, OpenSshConnection)
    connection.extra_sessions_need_master = need_master
    try:
        files = connection.open_files(str(tmp_path / "r"))
        assert isinstance(files, SftpFileTransport)
        _write(files, 20)
        assert len(_children("ssh")) == connections
    finally:
        connection.close()
    assert _children("ssh") == []
    assert _accepted(real_sshd) == accepted + connections
    assert len(list((tmp_path / "r").iterdir())) == 20


def _fake_ssh(tmp_path: Path, body: str) -> str:
    """An executable that ignores its arguments and runs ``body`` (a shell command)."""
    path = tmp_path / "fake-ssh"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_hanging_extra_session_is_given_up_and_killed(tmp_path: Path) -> None:
    # It stands for an ssh that never answers (a stuck proxy, a prompt nobody sees).
    sessions = _ExtraSessions([_fake_ssh(tmp_path, "exec sleep 30"), "box"], "box", 3, timeout=0.3)
    with pytest.raises(TransportError, match="ssh to box failed: no answer from ssh within 0.3 s"):
        sessions.open()
    assert _children("sleep") == []  # all three: the failed one and those never handed out
    with pytest.raises(TransportError, match="no more sftp sessions"):
        sessions.open()
    sessions.close()


def test_an_extra_session_that_exits_reports_ssh_s_message(tmp_path: Path) -> None:
    fake = _fake_ssh(tmp_path, "echo 'Host key verification failed.' >&2; exit 255")
    sessions = _ExtraSessions([fake, "box"], "box", 2)
    with pytest.raises(TransportError, match="ssh to box failed: Host key verification failed."):
        sessions.open()
    assert _children("fake-ssh") == []


def test_extra_sessions_never_prompt() -> None:
    sessions = _ExtraSessions(["ssh", "-T", "-oBatchMode=no", "-s", "--", "box", "sftp"], "box", 1)
    # ssh takes the first value of an option: ours comes before the user's.
    assert sessions._argv[:3] == ["ssh", "-oBatchMode=yes", "-T"]
    sessions.close()


def test_an_interrupt_during_the_handshake_kills_every_extra_ssh(tmp_path: Path) -> None:
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    sessions = _ExtraSessions([_fake_ssh(tmp_path, "exec sleep 30"), "box"], "box", 3, timeout=30.0)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            sessions.open()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _children("sleep") == []
