"""ssh options users pass (-o, and ~/.ssh/config Host and Match blocks), against a real sshd:
the paramiko vendor honours them, ignores those that only change logging or output, and
hands over to the openssh vendor (saying why) for those it cannot honour."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

paramiko = pytest.importorskip("paramiko")

from pyostree.errors import TransportError  # noqa: E402
from pyostree.transport import Destination, SshOptions, connect  # noqa: E402
from pyostree.transport.openssh_vendor import OpenSshConnection  # noqa: E402
from pyostree.transport.paramiko_vendor import ParamikoConnection, resolve  # noqa: E402
from pyostree.transport.ssh_options import NeedsOpenSsh  # noqa: E402
from sshd import EmbeddedSetup, Sshd, TcpRelay, embedded, real_sshd, running_sshd, sshd_options  # noqa: E402,F401

DEST = Destination("ssh", "repo", host="127.0.0.1")
KEYGEN = shutil.which("ssh-keygen") or "ssh-keygen"


def _opts(server: Sshd, home: Path, *extra: Tuple[str, str]) -> SshOptions:
    return sshd_options(server, "paramiko", home, *extra)


def _runs(connection: object) -> bool:
    channel = connection.exec(["true"])  # type: ignore[attr-defined]
    try:
        return bool(channel.wait() == 0)
    finally:
        channel.close()


def _connect(opts: SshOptions, dest: Destination = DEST) -> Tuple[object, List[str]]:
    log: List[str] = []
    return connect(dest, opts, log.append), log


def _real_ssh(server: Sshd, *options: str) -> bool:
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(server.port), "-l", server.user, "-i", server.client_key,
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={server.known_hosts}",
         *(f"-o{o}" for o in options), "127.0.0.1", "true"],
        stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60)
    return done.returncode == 0


@pytest.mark.parametrize("option", [
    ("LogLevel", "ERROR"), ("LogLevel", "quiet"), ("VisualHostKey", "yes"), ("EscapeChar", "none"),
    ("RequestTTY", "no"), ("ForwardAgent", "no"), ("ClearAllForwardings", "yes"), ("CheckHostIP", "no"),
    ("PasswordAuthentication", "no"), ("KbdInteractiveAuthentication", "no"), ("UpdateHostKeys", "no"),
])
def test_logging_and_output_options_are_accepted(real_sshd: Sshd, tmp_path: Path, option: Tuple[str, str]) -> None:
    # -o LogLevel=ERROR used to fail every paramiko push: "ssh option 'LogLevel' is not supported".
    connection, log = _connect(_opts(real_sshd, tmp_path, option))
    try:
        assert isinstance(connection, ParamikoConnection) and log == []
        assert _runs(connection)
    finally:
        connection.close()  # type: ignore[attr-defined]


def test_push_cli_takes_loglevel(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    from test_push_support import commit, init, make_tree, rev_parse

    src = init(tmp_path / "src", "archive")
    checksum = commit(src, make_tree(tmp_path / "tree"))
    init(embedded.served / "cli-dst", "archive")
    Path(embedded.known_hosts).write_text(embedded.server.known_hosts_line() + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pyostree", f"--repo={src}", "push", "--via=sftp", "-p", str(embedded.server.port),
         "-i", embedded.key_path, "-o", f"UserKnownHostsFile={embedded.known_hosts}", "-o", "LogLevel=ERROR",
         "-o", "ServerAliveInterval=30", "-o", "Compression=yes", "127.0.0.1:cli-dst"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(embedded.home)})
    assert done.returncode == 0, done.stderr
    assert rev_parse(embedded.served / "cli-dst", "main") == checksum
    # An option only ssh honours: -v says that the push goes through ssh instead.
    done = subprocess.run(
        [sys.executable, "-m", "pyostree", f"--repo={src}", "push", "-v", "--via=sftp", "-p", str(embedded.server.port),
         "-i", embedded.key_path, "-o", f"UserKnownHostsFile={embedded.known_hosts}", "-o", "SendEnv=LANG",
         "127.0.0.1:cli-dst"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(embedded.home)})
    assert done.returncode == 0, done.stderr
    assert "push: using the openssh vendor: -o SendEnv, which the paramiko vendor cannot honour" in done.stderr
    assert "main: up to date" in done.stdout


@pytest.mark.parametrize("option", [("SendEnv", "LANG"), ("RequestTTY", "force"), ("AddKeysToAgent", "yes"),
                                    ("CheckHostIP", "yes")])
def test_options_paramiko_cannot_honour_hand_over_to_ssh(real_sshd: Sshd, tmp_path: Path,
                                                          option: Tuple[str, str]) -> None:
    connection, log = _connect(_opts(real_sshd, tmp_path, option))
    try:
        assert isinstance(connection, OpenSshConnection)
        assert len(log) == 1 and "using the openssh vendor" in log[0] and option[0] in log[0]
        if option[0] != "RequestTTY":  # ssh -T and RequestTTY=force: ssh's own business
            assert _runs(connection)
    finally:
        connection.close()


def test_without_ssh_the_error_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NeedsOpenSsh, match=r"'SendEnv' is not supported by the paramiko vendor.*not installed") as info:
        connect(DEST, SshOptions(port=9, home=str(tmp_path), options=(("SendEnv", "LANG"),)))
    assert "\n" not in str(info.value)


def test_compression_is_negotiated(real_sshd: Sshd, tmp_path: Path) -> None:
    for value, expected in (("yes", "zlib@openssh.com"), ("no", "none")):
        connection, _log = _connect(_opts(real_sshd, tmp_path, ("Compression", value)))
        try:
            assert isinstance(connection, ParamikoConnection)
            assert connection._transport.local_compression == expected
            assert _runs(connection)
        finally:
            connection.close()


def test_server_alive_drops_a_silent_server(real_sshd: Sshd, tmp_path: Path) -> None:
    relay = TcpRelay(real_sshd.port)
    opts = dataclasses.replace(_opts(real_sshd, tmp_path, ("ServerAliveInterval", "1"), ("ServerAliveCountMax", "2"),
                                     ("HostKeyAlias", f"[127.0.0.1]:{real_sshd.port}")), port=relay.port)
    connection, _log = _connect(opts)
    try:
        assert isinstance(connection, ParamikoConnection)
        assert _runs(connection)
        channel = connection.exec(["sleep", "600"])
        relay.frozen.set()
        ended = threading.Event()

        def read() -> None:
            channel.stdout.read()
            ended.set()

        threading.Thread(target=read, daemon=True).start()
        # Without ServerAlive the read waits for the 600 s sleep; the bound only stops a hang.
        assert ended.wait(120)
        assert connection.dead_reason is not None and "not responding" in connection.dead_reason
    finally:
        connection.close()
        relay.close()


def test_server_alive_keeps_a_quiet_live_session(real_sshd: Sshd, tmp_path: Path) -> None:
    # Several keepalives go out (and are answered) while the command says nothing for 5 s.
    connection, _log = _connect(_opts(real_sshd, tmp_path, ("ServerAliveInterval", "1"), ("ServerAliveCountMax", "3")))
    try:
        channel = connection.exec(["sleep", "5"])  # type: ignore[attr-defined]
        assert channel.wait() == 0
        assert connection.dead_reason is None  # type: ignore[attr-defined]
    finally:
        connection.close()  # type: ignore[attr-defined]


RELAY = ("import socket,sys,threading;s=socket.create_connection(('127.0.0.1',int(sys.argv[1])));"
         "threading.Thread(target=lambda:[s.sendall(b) for b in iter(lambda:sys.stdin.buffer.read1(65536),b'')]"
         "+[s.shutdown(1)],daemon=True).start();"
         "[sys.stdout.buffer.write(b) or sys.stdout.buffer.flush() for b in iter(lambda:s.recv(65536),b'')]")


def test_proxy_command(real_sshd: Sshd, tmp_path: Path) -> None:
    command = f"{sys.executable} -c \"{RELAY}\" %p"
    # The host name does not resolve: only the command, given %p, reaches sshd. HostKeyAlias
    # names the key in known_hosts.
    opts = _opts(real_sshd, tmp_path, ("HostKeyAlias", f"[127.0.0.1]:{real_sshd.port}"), ("ProxyCommand", command))
    connection, log = _connect(opts, Destination("ssh", "repo", host="no-such-host.invalid"))
    try:
        assert isinstance(connection, ParamikoConnection) and log == []
        assert _runs(connection)
    finally:
        connection.close()
    failing = dataclasses.replace(opts, options=opts.options[:-1] + (("ProxyCommand", "exit 3"),))
    with pytest.raises(TransportError, match="handshake"):
        connect(DEST, failing)


@pytest.fixture(scope="module")
def jump_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("jump"), ["LogLevel DEBUG1"]) as server:
        yield server


def test_proxy_jump_reaches_the_target_through_the_jump_host(real_sshd: Sshd, jump_sshd: Sshd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    config = home / ".ssh" / "config"
    config.write_text(
        f"Host jump\n  HostName 127.0.0.1\n  Port {jump_sshd.port}\n  User {jump_sshd.user}\n"
        f"  IdentityFile {jump_sshd.client_key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {jump_sshd.known_hosts}\n")
    log_before = Path(jump_sshd.workdir, "sshd.log").read_text()
    opts = dataclasses.replace(_opts(real_sshd, home, ("ProxyJump", "jump")))
    connection, log = _connect(opts)
    try:
        assert isinstance(connection, ParamikoConnection) and log == []
        assert _runs(connection)
        assert len(connection._jumps) == 1
    finally:
        connection.close()
    jump_log = Path(jump_sshd.workdir, "sshd.log").read_text()[len(log_before):]
    assert f"target 127.0.0.1 port {real_sshd.port}" in jump_log  # the jump host opened the forward
    # Two hops: jump, then jump again (as "jump2" reached through the first).
    config.write_text(config.read_text() + config.read_text().replace("Host jump", "Host jump2"))
    connection, log = _connect(dataclasses.replace(opts, options=opts.options[:-1] + (("ProxyJump", "jump,jump2"),)))
    try:
        assert _runs(connection) and len(connection._jumps) == 2  # type: ignore[attr-defined]
    finally:
        connection.close()  # type: ignore[attr-defined]


def test_proxy_jump_refuses_an_unknown_jump_host(real_sshd: Sshd, jump_sshd: Sshd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    opts = _opts(real_sshd, home, ("ProxyJump", f"{jump_sshd.user}@127.0.0.1:{jump_sshd.port}"))
    with pytest.raises(TransportError, match=f"host key for 127.0.0.1:{jump_sshd.port} is unknown"):
        connect(DEST, opts)


def test_control_path_with_a_live_master_uses_ssh(real_sshd: Sshd, tmp_path: Path) -> None:
    control = tmp_path / "cm.sock"
    base = ["ssh", "-F", "/dev/null", "-p", str(real_sshd.port), "-l", real_sshd.user, "-i", real_sshd.client_key,
            "-o", f"UserKnownHostsFile={real_sshd.known_hosts}", "-o", "BatchMode=yes", "-S", str(control)]
    opts = _opts(real_sshd, tmp_path, ("ControlPath", str(control)))
    connection, log = _connect(opts)  # no master yet: paramiko connects by itself
    try:
        assert isinstance(connection, ParamikoConnection) and log == []
    finally:
        connection.close()
    subprocess.run(base + ["-M", "-f", "-N", "-o", "ControlPersist=60", "127.0.0.1"], check=True, timeout=60,
                   stdin=subprocess.DEVNULL, capture_output=True)
    try:
        connection, log = _connect(opts)
        try:
            assert isinstance(connection, OpenSshConnection)
            assert log and "ControlMaster is running" in log[0]
            assert _runs(connection)
        finally:
            connection.close()
    finally:
        subprocess.run(base + ["-O", "exit", "127.0.0.1"], check=False, timeout=60, capture_output=True)


@pytest.mark.parametrize("option", [
    ("HostKeyAlgorithms", "ssh-ed25519"), ("HostKeyAlgorithms", "ecdsa-sha2-nistp256"),
    ("HostKeyAlgorithms", "-ssh-ed25519"), ("HostKeyAlgorithms", "^ecdsa-*"),
    ("PubkeyAcceptedAlgorithms", "ssh-ed25519"), ("PubkeyAcceptedAlgorithms", "-ssh-ed25519"),
    ("PubkeyAcceptedAlgorithms", "rsa-sha2-512"), ("PubkeyAcceptedKeyTypes", "+ssh-rsa"),
])
def test_algorithm_lists_decide_as_ssh_does(real_sshd: Sshd, tmp_path: Path, option: Tuple[str, str]) -> None:
    expected = _real_ssh(real_sshd, f"{option[0]}={option[1]}")
    try:
        connection, log = _connect(_opts(real_sshd, tmp_path, option))
    except TransportError:
        assert not expected
        return
    try:
        assert isinstance(connection, ParamikoConnection) and log == []
        assert expected
    finally:
        connection.close()


def test_an_algorithm_only_ssh_knows_hands_over(real_sshd: Sshd, tmp_path: Path) -> None:
    connection, log = _connect(_opts(real_sshd, tmp_path, ("HostKeyAlgorithms", "ssh-ed25519-cert-v01@openssh.com")))
    assert isinstance(connection, OpenSshConnection) and "HostKeyAlgorithms" in log[0]
    connection.close()


@pytest.fixture(scope="module")
def ca_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Sshd, Path]]:
    base = tmp_path_factory.mktemp("ca")
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(base / "ca")], check=True)
    with running_sshd(base / "sshd", [f"TrustedUserCAKeys {base / 'ca.pub'}"]) as server:
        yield server, base


def test_certificate_file(ca_sshd: Tuple[Sshd, Path], tmp_path: Path) -> None:
    server, base = ca_sshd
    key = tmp_path / "certified"
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run([KEYGEN, "-q", "-s", str(base / "ca"), "-I", "pusher", "-n", server.user, f"{key}.pub"],
                   check=True, capture_output=True)
    cert = tmp_path / "elsewhere-cert.pub"
    os.rename(f"{key}-cert.pub", cert)
    plain = dataclasses.replace(_opts(server, tmp_path), identity_files=(str(key),))
    with pytest.raises(TransportError, match="authentication"):  # the key alone is in no authorized_keys
        connect(DEST, plain)
    with_cert = dataclasses.replace(plain, options=plain.options + (("CertificateFile", str(cert)),))
    connection, _log = _connect(with_cert)
    try:
        assert isinstance(connection, ParamikoConnection) and _runs(connection)
    finally:
        connection.close()
    os.rename(cert, f"{key}-cert.pub")  # beside the key, as ssh finds it by itself
    connection, _log = _connect(plain)
    connection.close()  # type: ignore[attr-defined]


def test_config_host_and_match_blocks(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "config").write_text(
        "Host box\n  HostName 127.0.0.9\n  ServerAliveInterval 15\n  ServerAliveCountMax 4\n"
        "  ConnectionAttempts 3\n  LogLevel ERROR\n  ForwardAgent yes\n  ControlMaster auto\n"
        "Match host 127.0.0.9 originalhost box\n  Compression yes\n  TCPKeepAlive no\n"
        "  HostKeyAlgorithms ssh-ed25519\n  PubkeyAcceptedAlgorithms -ssh-rsa,rsa-*\n"
        "Match host 127.0.0.9 user nobody-such\n  HashKnownHosts yes\n"
        "Host *\n  ProxyJump gw\n"
    )
    resolved = resolve(Destination("ssh", "r", host="box"), SshOptions(home=str(tmp_path)))
    assert (resolved.server_alive_interval, resolved.server_alive_count_max) == (15, 4)
    assert resolved.connection_attempts == 3 and resolved.compression and not resolved.tcp_keepalive
    assert resolved.host_key_types == ("ssh-ed25519",)
    assert resolved.pubkey_algorithms is not None and "rsa-sha2-512" not in resolved.pubkey_algorithms
    assert not resolved.host_key_policy.hash_names
    assert resolved.proxy_jump == ("gw",)
    # The command line beats the config.
    resolved = resolve(Destination("ssh", "r", host="box"),
                       SshOptions(home=str(tmp_path), options=(("ProxyJump", "none"), ("Compression", "no"))))
    assert resolved.proxy_jump == () and not resolved.compression


def test_config_add_keys_to_agent_stays_with_paramiko(tmp_path: Path) -> None:
    """``AddKeysToAgent yes`` under ``Host *`` is common and meant for interactive ssh:
    from the config it does not send every push through ssh; from ``-o`` it does."""
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "config").write_text("Host *\n  AddKeysToAgent yes\n")
    resolve(Destination("ssh", "r", host="box"), SshOptions(home=str(tmp_path)))
    with pytest.raises(NeedsOpenSsh, match="AddKeysToAgent"):
        resolve(Destination("ssh", "r", host="box"),
                SshOptions(home=str(tmp_path), options=(("AddKeysToAgent", "yes"),)))


@pytest.mark.parametrize("key, value, match", [
    ("ServerAliveInterval", "often", "ServerAliveInterval"), ("ServerAliveCountMax", "-1", "ServerAliveCountMax"),
    ("ConnectionAttempts", "x", "ConnectionAttempts"), ("Compression", "maybe", "Compression"),
    ("HostKeyAlgorithms", ",", "HostKeyAlgorithms"), ("ProxyJump", "a,,b", "ProxyJump"),
    ("ProxyCommand", "nc %h %Z", "token"), ("TCPKeepAlive", "2", "TCPKeepAlive"),
])
def test_bad_option_values(tmp_path: Path, key: str, value: str, match: str) -> None:
    with pytest.raises(TransportError, match=match):
        resolve(DEST, SshOptions(options=((key, value),), home=str(tmp_path)))


def test_hash_known_hosts_with_accept_new(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(("StrictHostKeyChecking", "accept-new"), ("HashKnownHosts", "yes"), trusted=False)
    Path(embedded.known_hosts).write_text("")
    connect(DEST, opts).close()
    text = Path(embedded.known_hosts).read_text()
    assert text.startswith("|1|") and str(embedded.server.port) not in text
    found = subprocess.run([KEYGEN, "-F", f"[127.0.0.1]:{embedded.server.port}", "-f", embedded.known_hosts],
                           capture_output=True, text=True, check=False)
    assert "found: line 1" in found.stdout


def test_proxy_jump_loop_is_an_error_before_connecting(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "config").write_text("Host *\n  ProxyJump gw.invalid\n")  # gw.invalid jumps through itself
    with pytest.raises(TransportError, match="ProxyJump nests deeper than 8 hops"):
        connect(DEST, SshOptions(home=str(tmp_path)))


@pytest.mark.parametrize("hop, expected", [
    ("gw", (None, "gw", None)), ("u@gw:2200", ("u", "gw", 2200)), ("ssh://u@gw:2200", ("u", "gw", 2200)),
    ("[::1]:2200", (None, "::1", 2200)), ("a@b@gw", ("a@b", "gw", None)),
])
def test_jump_hops_parse(hop: str, expected: tuple) -> None:
    from pyostree.transport.paramiko_vendor import _jump_destination

    dest = _jump_destination(hop)
    assert (dest.user, dest.host, dest.port) == expected


@pytest.mark.parametrize("hop", ["gw:port", "gw:99999", "[::1]x", "@", "g w"])
def test_bad_jump_hops(hop: str) -> None:
    from pyostree.transport.paramiko_vendor import _jump_destination

    with pytest.raises(TransportError, match="bad ProxyJump hop"):
        _jump_destination(hop)
