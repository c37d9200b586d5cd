"""Host key checking (unknown, changed, accept-new, no) and authentication failures."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pyostree.errors import TransportError
from pyostree.sshserver import generate_key, known_hosts_line, write_private_key
from pyostree.transport import Destination, SshOptions, connect, open_transport
from pyostree.transport.hostkeys import HostKeyError
from sshd import EmbeddedSetup, Sshd, embedded, real_sshd, sshd_options  # noqa: F401

DEST = Destination("ssh", "repo", host="127.0.0.1")


def _counts(setup: EmbeddedSetup) -> tuple:
    return setup.server.auth_attempts, len(setup.server.exec_requests)


def test_unknown_host_key_refused_and_nothing_sent(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(trusted=False)
    Path(embedded.known_hosts).write_text("")
    before = _counts(embedded)
    with pytest.raises(HostKeyError) as info:
        connect(DEST, opts)
    message = str(info.value)
    assert f"host key for 127.0.0.1:{embedded.server.port} is unknown" in message
    assert "\n" not in message
    assert _counts(embedded) == before  # no auth attempt reached the server
    assert Path(embedded.known_hosts).read_text() == ""


def test_missing_known_hosts_file_means_unknown(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    opts = dataclasses.replace(
        embedded.options(trusted=False),
        options=(("UserKnownHostsFile", str(tmp_path / "absent")),),
    )
    with pytest.raises(HostKeyError, match="is unknown"):
        connect(DEST, opts)
    assert not (tmp_path / "absent").exists()


def test_changed_host_key_refused(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(trusted=False)
    impostor = generate_key()
    Path(embedded.known_hosts).write_text(known_hosts_line("127.0.0.1", embedded.server.port, impostor) + "\n")
    before = _counts(embedded)
    for strict in ("yes", "accept-new"):
        strict_opts = dataclasses.replace(opts, options=opts.options + (("StrictHostKeyChecking", strict),))
        with pytest.raises(HostKeyError, match=f"host key for 127.0.0.1:{embedded.server.port} has CHANGED"):
            connect(DEST, strict_opts)
    assert _counts(embedded) == before


def test_accept_new_adds_key(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(("StrictHostKeyChecking", "accept-new"), trusted=False)
    Path(embedded.known_hosts).write_text("")
    connect(DEST, opts).close()
    assert Path(embedded.known_hosts).read_text().strip() == embedded.server.known_hosts_line()
    # Now it is known: the default (strict) policy accepts it.
    connect(DEST, embedded.options(trusted=False)).close()


def test_strict_no_allows_unknown_without_recording(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(("StrictHostKeyChecking", "no"), trusted=False)
    Path(embedded.known_hosts).write_text("")
    connect(DEST, opts).close()
    assert Path(embedded.known_hosts).read_text() == ""


def test_hashed_known_hosts_entry_is_honoured(embedded: EmbeddedSetup) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen missing")
    opts = embedded.options()
    subprocess.run([keygen, "-q", "-H", "-f", embedded.known_hosts], check=True, capture_output=True)
    assert "|1|" in Path(embedded.known_hosts).read_text()
    connect(DEST, opts).close()


def test_auth_failure_is_one_line(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    write_private_key(generate_key(), str(stranger))
    opts = dataclasses.replace(embedded.options(), identity_files=(str(stranger),))
    with pytest.raises(TransportError) as info:
        connect(DEST, opts)
    message = str(info.value)
    assert message.startswith("authentication to ") and "failed: tried 1 key(s)" in message
    assert f"@127.0.0.1:{embedded.server.port}" in message
    assert "\n" not in message


def test_no_keys_at_all(embedded: EmbeddedSetup) -> None:
    opts = dataclasses.replace(embedded.options(), identity_files=())
    with pytest.raises(TransportError, match="no keys to offer"):
        connect(DEST, opts)


def test_missing_explicit_identity_file(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    opts = dataclasses.replace(embedded.options(), identity_files=(str(tmp_path / "nokey"),))
    with pytest.raises(TransportError, match="identity file .* not found"):
        connect(DEST, opts)


def test_passphrase_key_is_skipped_with_note(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    generate_key().write_private_key_file(str(locked), password="secret")
    opts = dataclasses.replace(embedded.options(), identity_files=(str(locked),))
    with pytest.raises(TransportError, match="passphrase-protected"):
        connect(DEST, opts)


def test_default_key_from_home(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(embedded.key_path, home / ".ssh" / "id_ecdsa")
    (home / ".ssh" / "known_hosts").write_text(embedded.server.known_hosts_line() + "\n")
    opts = SshOptions(port=embedded.server.port, home=str(home))
    connect(DEST, opts).close()


def test_ssh_config_alias(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "kh").write_text(embedded.server.known_hosts_line() + "\n")
    (home / ".ssh" / "config").write_text(
        f"Host myrepo\n  HostName 127.0.0.1\n  Port {embedded.server.port}\n  User pusher\n"
        f"  IdentityFile {embedded.key_path}\n  UserKnownHostsFile ~/.ssh/kh\n"
    )
    (embedded.served / "aliased").mkdir()
    files, _run, close = open_transport(Destination("ssh", "aliased", host="myrepo"), SshOptions(home=str(home)))
    try:
        with files.open_write("f") as stream:
            stream.write(b"via alias")
    finally:
        close()
    assert (embedded.served / "aliased" / "f").read_bytes() == b"via alias"


def test_ssh_agent_key(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    agent, add = shutil.which("ssh-agent"), shutil.which("ssh-add")
    if agent is None or add is None:
        pytest.skip("ssh-agent missing")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen([agent, "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.01)
        subprocess.run([add, embedded.key_path], env={"SSH_AUTH_SOCK": str(sock)}, check=True, capture_output=True)
        base = embedded.options()
        opts = dataclasses.replace(
            base, identity_files=(), agent_socket=str(sock), options=base.options[:1]
        )
        connect(DEST, opts).close()
        # IdentitiesOnly=yes: agent keys that match no identity file are not offered.
        only = dataclasses.replace(base, identity_files=(str(tmp_path / "other"),), agent_socket=str(sock))
        write_private_key(generate_key(), str(tmp_path / "other"))
        with pytest.raises(TransportError, match="tried 1 key"):
            connect(DEST, only)
    finally:
        proc.terminate()
        proc.wait()


def test_connection_refused_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    opts = SshOptions(port=port, home=str(tmp_path), options=(("ConnectTimeout", "5"),))
    with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}"):
        connect(DEST, opts)


def test_openssh_unknown_host_key_refused(real_sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    opts = sshd_options(real_sshd, "openssh", tmp_path / "home")
    opts = dataclasses.replace(opts, options=(("UserKnownHostsFile", str(empty)),))
    with pytest.raises(TransportError, match="Host key verification failed"):
        open_transport(Destination("ssh", str(tmp_path), host="127.0.0.1"), opts)


def test_openssh_auth_failure(real_sshd: Sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    write_private_key(generate_key(), str(stranger))
    opts = dataclasses.replace(
        sshd_options(real_sshd, "openssh", tmp_path / "home"), identity_files=(str(stranger),)
    )
    with pytest.raises(TransportError, match="Permission denied"):
        open_transport(Destination("ssh", str(tmp_path), host="127.0.0.1"), opts)


def test_paramiko_unknown_host_key_real_sshd(real_sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "kh"
    empty.write_text("")
    opts = dataclasses.replace(
        sshd_options(real_sshd, "paramiko", tmp_path / "home"), options=(("UserKnownHostsFile", str(empty)),)
    )
    with pytest.raises(HostKeyError, match=f"127.0.0.1:{real_sshd.port} is unknown"):
        connect(Destination("ssh", "r", host="127.0.0.1"), opts)


def test_garbage_identity_file_rejected(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("-----BEGIN NONSENSE-----\nxx\n")
    opts = dataclasses.replace(embedded.options(), identity_files=(str(garbage),))
    with pytest.raises(TransportError, match="cannot load identity file"):
        connect(DEST, opts)


def test_undecodable_known_hosts_rejected(embedded: EmbeddedSetup) -> None:
    opts = embedded.options(trusted=False)
    Path(embedded.known_hosts).write_bytes(b"\xff\xfe\x00 not text\n")
    with pytest.raises(TransportError, match="cannot read known_hosts"):
        connect(DEST, opts)


def test_bad_ssh_config_rejected(embedded: EmbeddedSetup, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host\n")
    opts = dataclasses.replace(embedded.options(), config_file=str(config))
    with pytest.raises(TransportError, match="cannot read ssh config"):
        connect(DEST, opts)


def test_connect_needs_an_ssh_destination() -> None:
    with pytest.raises(TransportError, match="not an ssh destination"):
        connect(Destination("local", "/srv/repo"), SshOptions())


def test_accept_new_without_user_file_never_writes_global(embedded: EmbeddedSetup) -> None:
    opts = dataclasses.replace(
        embedded.options(),
        options=(("UserKnownHostsFile", "none"), ("StrictHostKeyChecking", "accept-new")),
    )
    with pytest.raises(HostKeyError, match="no known_hosts file configured"):
        connect(DEST, opts)


def test_default_keys_load_only_when_their_turn_comes(tmp_path: Path) -> None:
    from pyostree.transport.paramiko_vendor import _file_keys, resolve

    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    write_private_key(generate_key(), str(ssh_dir / "id_ed25519"))
    (ssh_dir / "id_rsa").write_text("-----BEGIN NONSENSE-----\nxx\n")
    resolved = resolve(DEST, SshOptions(home=str(tmp_path)))
    notes: list[str] = []
    keys = _file_keys(resolved, notes)
    assert next(keys)[0] == str(ssh_dir / "id_ed25519")
    assert notes == []  # id_rsa not read yet: the first key may be accepted
    assert list(keys) == []
    assert notes == [f"{ssh_dir / 'id_rsa'} unreadable"]


def test_explicit_keys_are_checked_before_any_is_tried(tmp_path: Path) -> None:
    from pyostree.transport.paramiko_vendor import _file_keys, resolve

    good, bad = tmp_path / "good", tmp_path / "bad"
    write_private_key(generate_key(), str(good))
    bad.write_text("-----BEGIN NONSENSE-----\nxx\n")
    resolved = resolve(DEST, SshOptions(identity_files=(str(good), str(bad)), home=str(tmp_path)))
    with pytest.raises(TransportError, match="cannot load identity file"):
        _file_keys(resolved, [])
