"""-o parsing and option resolution for the paramiko vendor; OpenSSH command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyostree.transport import Destination, SshOptionError, SshOptions, connect, parse_ssh_option
from pyostree.transport.openssh_vendor import ssh_base_argv
from pyostree.transport.paramiko_vendor import resolve
from pyostree.errors import TransportError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Port=22", ("Port", "22")),
        ("port 2222", ("Port", "2222")),
        ("StrictHostKeyChecking = accept-new", ("StrictHostKeyChecking", "accept-new")),
        ("userknownhostsfile=/tmp/kh", ("UserKnownHostsFile", "/tmp/kh")),
        ("IdentityFile=~/.ssh/k with space", ("IdentityFile", "~/.ssh/k with space")),
    ],
)
def test_parse_ssh_option(text: str, expected: tuple) -> None:
    assert parse_ssh_option(text) == expected


@pytest.mark.parametrize("bad", ["Port", "=22", "Port=", "", "Po-rt=1", "Port=1\x01"])
def test_parse_ssh_option_malformed(bad: str) -> None:
    with pytest.raises(SshOptionError):
        parse_ssh_option(bad)


def test_keys_are_canonical_and_unknown_ones_pass_through() -> None:
    assert parse_ssh_option("proxyjump=gw") == ("ProxyJump", "gw")
    assert parse_ssh_option("loglevel=ERROR") == ("LogLevel", "ERROR")
    # A key the paramiko vendor does not know is for ssh to judge (connect hands over to it).
    assert parse_ssh_option("SendEnv=LANG") == ("SendEnv", "LANG")
    assert parse_ssh_option("ProxyJump=gw", vendor="openssh") == ("ProxyJump", "gw")
    with pytest.raises(SshOptionError, match="vendor"):
        parse_ssh_option("Port=1", vendor="putty")


def test_unsupported_option() -> None:
    from pyostree.transport.ssh_options import unsupported_option

    assert unsupported_option("LogLevel", "ERROR") is None
    assert unsupported_option("ProxyCommand", "nc %h %p") is None
    refusal = unsupported_option("LogLevel", "LOUD")
    assert refusal is not None and "LogLevel=LOUD" in str(refusal)
    refusal = unsupported_option("SendEnv", "LANG")
    assert refusal is not None and "'SendEnv'" in str(refusal) and "--ssh=openssh" in str(refusal)


def test_connect_rejects_unknown_vendor() -> None:
    with pytest.raises(SshOptionError, match="vendor"):
        connect(Destination("ssh", "r", host="127.0.0.1"), SshOptions(vendor="putty"))


def test_resolve_precedence_and_config(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "config").write_text(
        "Host box\n  HostName 127.0.0.7\n  Port 2200\n  User cfguser\n"
        "  IdentityFile ~/.ssh/cfgkey\n  StrictHostKeyChecking accept-new\n"
        "  UserKnownHostsFile ~/.ssh/kh_cfg\n"
    )
    dest = Destination("ssh", "repo", host="box")
    resolved = resolve(dest, SshOptions(home=str(tmp_path)))
    assert (resolved.hostname, resolved.port, resolved.user) == ("127.0.0.7", 2200, "cfguser")
    assert resolved.identity_files == (str(ssh_dir / "cfgkey"),)
    assert resolved.host_key_policy.strict == "accept-new"
    assert resolved.host_key_policy.known_hosts_files[0] == str(ssh_dir / "kh_cfg")
    assert resolved.host_key_name == "[127.0.0.7]:2200"

    # Command line beats config; the first -o wins, like OpenSSH.
    opts = SshOptions(
        user="cli",
        identity_files=("/k1",),
        options=(("Port", "2300"), ("Port", "2400"), ("StrictHostKeyChecking", "no")),
        home=str(tmp_path),
    )
    resolved = resolve(dest, opts)
    assert (resolved.port, resolved.user) == (2300, "cli")
    assert resolved.identity_files[0] == "/k1"
    assert resolved.host_key_policy.strict == "no"
    # The destination's own user/port beat everything.
    resolved = resolve(Destination("ssh", "r", host="box", user="d", port=22), opts)
    assert (resolved.port, resolved.user, resolved.host_key_name) == (22, "d", "127.0.0.7")


def test_resolve_defaults(tmp_path: Path) -> None:
    resolved = resolve(Destination("ssh", "r", host="h"), SshOptions(home=str(tmp_path)))
    assert resolved.port == 22 and resolved.host_key_policy.strict == "yes"
    assert resolved.identity_files == tuple(
        str(tmp_path / ".ssh" / n) for n in ("id_ed25519", "id_ecdsa", "id_rsa")
    )
    assert resolved.host_key_policy.known_hosts_files[0] == str(tmp_path / ".ssh" / "known_hosts")
    assert resolved.agent_socket is None


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("StrictHostKeyChecking", "maybe", "StrictHostKeyChecking"),
        ("BatchMode", "perhaps", "BatchMode"),
        ("IdentitiesOnly", "2", "IdentitiesOnly"),
        ("ConnectTimeout", "soon", "ConnectTimeout"),
        ("ConnectTimeout", "0", "ConnectTimeout"),
        ("Port", "99999", "port"),
        ("Port", "x", "port"),
    ],
)
def test_resolve_rejects_bad_values(tmp_path: Path, key: str, value: str, match: str) -> None:
    with pytest.raises(TransportError, match=match):
        resolve(Destination("ssh", "r", host="h"), SshOptions(options=((key, value),), home=str(tmp_path)))


def test_openssh_argv() -> None:
    opts = SshOptions(
        port=2222,
        user="u",
        identity_files=("/k",),
        options=(("Compression", "yes"),),
        vendor="openssh",
        agent_socket="/run/agent.sock",
        config_file="/dev/null",
    )
    argv = ssh_base_argv(Destination("ssh", "r", host="h"), opts)
    assert argv == [
        "ssh", "-T", "-x", "-F", "/dev/null", "-oCompression=yes", "-oBatchMode=yes",
        "-oIdentityAgent=/run/agent.sock", "-p", "2222", "-l", "u", "-i", "/k",
    ]
    explicit = SshOptions(options=(("BatchMode", "no"),), vendor="openssh")
    argv = ssh_base_argv(Destination("ssh", "r", host="h", port=22), explicit)
    assert "-oBatchMode=yes" not in argv and "-oBatchMode=no" in argv and argv[-2:] == ["-p", "22"]
