"""Cipher choice of the paramiko vendor: AES-GCM first when the server offers it, the
user's ``Ciphers`` (``-o`` or ~/.ssh/config, OpenSSH's +/-/^ forms) otherwise; and its
socket sends small packets at once (TCP_NODELAY), as OpenSSH's does, and acknowledges
what it receives at once (TCP_QUICKACK), so that sshd's own Nagle wait never stalls."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional, Tuple

import pytest

pytest.importorskip("paramiko")

from sshd import Sshd, real_sshd, sshd_options  # noqa: E402,F401

from pyostree.errors import TransportError  # noqa: E402
from pyostree.transport import Destination, SshOptions, connect, parse_ssh_option  # noqa: E402
from pyostree.transport.paramiko_vendor import (  # noqa: E402
    ParamikoConnection, _quick_ack, _QuickAckSocket, cipher_order, resolve)

SUPPORTED = ("aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "3des-cbc",
             "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
DEFAULT = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr",
           "aes256-ctr")  # no CBC, no 3DES: as OpenSSH, only on request


@pytest.mark.parametrize("spec, expected", [
    (None, DEFAULT),
    ("aes256-ctr,aes128-ctr", ("aes256-ctr", "aes128-ctr")),
    ("chacha20-poly1305@openssh.com,aes256-ctr", ("aes256-ctr",)),  # unknown to paramiko: skipped
    ("aes256-ctr,aes256-ctr", ("aes256-ctr",)),
    ("-*-cbc,aes192-ctr", ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")),
    ("^aes256-ctr", ("aes256-ctr",) + tuple(c for c in DEFAULT if c != "aes256-ctr")),
    ("+aes128-ctr,blowfish-cbc", DEFAULT),
    ("+3des-cbc,aes128-cbc", DEFAULT + ("3des-cbc", "aes128-cbc")),
    ("aes128-cbc,aes256-ctr", ("aes128-cbc", "aes256-ctr")),
    ("^aes128-cbc", ("aes128-cbc",) + DEFAULT),
    ("-3des-cbc", DEFAULT),
])
def test_cipher_order(spec: Optional[str], expected: Tuple[str, ...]) -> None:
    assert cipher_order(spec, SUPPORTED) == expected


@pytest.mark.parametrize("spec", ["", "+", ",", "aes128 ctr", "aes128-ctr,\u00e9"])
def test_cipher_order_rejects_malformed(spec: str) -> None:
    with pytest.raises(TransportError, match="Ciphers"):
        cipher_order(spec, SUPPORTED)


@pytest.mark.parametrize("spec", ["chacha20-poly1305@openssh.com", "-aes*"])
def test_cipher_order_rejects_nothing_left(spec: str) -> None:
    with pytest.raises(TransportError, match="no cipher left"):
        cipher_order(spec, SUPPORTED)


def test_cipher_order_refuses_to_fall_back_to_cbc_alone() -> None:
    with pytest.raises(TransportError, match="no cipher but CBC or 3DES"):
        cipher_order(None, ("aes128-cbc", "3des-cbc"))
    assert cipher_order("3des-cbc", ("aes128-cbc", "3des-cbc")) == ("3des-cbc",)


def test_paramiko_default_offers_no_cbc_or_3des(tmp_path: Path) -> None:
    import paramiko  # type: ignore[import-untyped]

    assert "3des-cbc" in paramiko.Transport._preferred_ciphers  # what we filter out
    offered = resolve(Destination("ssh", "r", host="box"), SshOptions(home=str(tmp_path))).ciphers
    assert offered and not any("cbc" in c or "3des" in c for c in offered)
    asked = SshOptions(home=str(tmp_path), options=(("Ciphers", "+aes256-cbc"),))
    assert resolve(Destination("ssh", "r", host="box"), asked).ciphers[-1] == "aes256-cbc"


def test_ciphers_option_and_config(tmp_path: Path) -> None:
    assert parse_ssh_option("ciphers=aes256-ctr") == ("Ciphers", "aes256-ctr")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host box\n  Ciphers aes192-ctr\n")
    dest = Destination("ssh", "r", host="box")
    assert resolve(dest, SshOptions(home=str(tmp_path))).ciphers == ("aes192-ctr",)
    cli = SshOptions(home=str(tmp_path), options=(("Ciphers", "aes256-ctr"),))
    assert resolve(dest, cli).ciphers == ("aes256-ctr",)  # the command line wins
    assert resolve(Destination("ssh", "r", host="other"), SshOptions(home=str(tmp_path))).ciphers[0] == \
        "aes128-gcm@openssh.com"


@pytest.mark.parametrize("extra, expected", [
    ((), "aes128-gcm@openssh.com"),
    ((("Ciphers", "aes256-ctr"),), "aes256-ctr"),
])
def test_negotiated_cipher_with_openssh(real_sshd: Sshd, tmp_path: Path,
                                        extra: Tuple[Tuple[str, str], ...], expected: str) -> None:
    options = sshd_options(real_sshd, "paramiko", tmp_path / "home", *extra)
    connection = connect(Destination("ssh", ".", host="127.0.0.1", user=real_sshd.user), options)
    try:
        assert isinstance(connection, ParamikoConnection)
        transport = connection._transport
        assert (transport.local_cipher, transport.remote_cipher) == (expected, expected)
        assert not any("cbc" in c for c in transport.get_security_options().ciphers)
        assert transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert isinstance(transport.sock, _QuickAckSocket)
        channel = connection.exec(["echo", "ok"])
        assert channel.stdout.read() == b"ok\n" and channel.wait() == 0
        channel.close()
    finally:
        connection.close()


def _ack_mode_after_replies(wrap: bool) -> Tuple[str, int]:
    """A request/response exchange puts a Linux socket in delayed-ACK ("pingpong") mode,
    where ``getsockopt(TCP_QUICKACK)`` reads 0; the paramiko vendor's socket leaves it on
    every ``recv``."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=5)
        peer, _ = server.accept()
        try:
            if wrap:
                client = _quick_ack(client)
            assert client.gettimeout() == 5
            for _ in range(6):
                peer.sendall(b"request")
                assert client.recv(64) == b"request"
                client.sendall(b"reply")
                assert peer.recv(64) == b"reply"
            peer.sendall(b"last")
            assert client.recv(64) == b"last"
            return type(client).__name__, client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)
        finally:
            client.close()
            peer.close()


def test_quick_ack_socket_acknowledges_at_once() -> None:
    assert _ack_mode_after_replies(False) == ("socket", 0)  # the kernel's default
    assert _ack_mode_after_replies(True) == ("_QuickAckSocket", 1)


def test_quick_ack_leaves_other_sockets_alone() -> None:
    left, right = socket.socketpair()
    try:
        assert _quick_ack(left) is left
    finally:
        left.close()
        right.close()
