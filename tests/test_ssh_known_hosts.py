"""known_hosts read for one host name as OpenSSH reads it: plain, [host]:port and hashed
lines, wildcard and negated patterns, @revoked and @cert-authority markers (the lines that
match are compared with ``ssh-keygen -F``); other lines skipped unparsed, malformed lines
for the name skipped."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

paramiko = pytest.importorskip("paramiko")

from pyostree.sshserver import generate_key  # noqa: E402
from pyostree.transport import Destination, SshOptions, connect  # noqa: E402
from pyostree.transport.hostkeys import HostKeyError, KnownHosts, host_field_matches  # noqa: E402
from sshd import Sshd, real_sshd  # noqa: E402,F401

DEST = Destination("ssh", "repo", host="127.0.0.1")

NAME = "[server.example]:2222"


def _line(names: str, key: "paramiko.PKey") -> str:
    return f"{names} {key.get_name()} {key.get_base64()}"


def _hashed(name: str) -> str:
    return str(paramiko.HostKeys.hash_host(name))


def _keys_for(known: KnownHosts, name: str) -> List[bytes]:
    """The plain keys verify() accepts for ``name``."""
    return sorted(key.asbytes() for key in known.keys(name))


def test_hashed_plain_and_port_forms(tmp_path: Path) -> None:
    mine, other = generate_key(), generate_key()
    path = tmp_path / "known_hosts"
    path.write_text("\n".join([
        "# a comment", "",
        _line("other.example", other),
        _line(_hashed(NAME), mine),
        _line("server.example", other),  # port 22's entry: not ours
    ]) + "\n")
    known = KnownHosts([str(path)], names=(NAME,))
    assert _keys_for(known, NAME) == [mine.asbytes()]
    assert known.key_types("other.example") == []  # never parsed
    plain = tmp_path / "plain"
    plain.write_text(_line(f"alias,{NAME}", mine) + "\n")
    assert _keys_for(KnownHosts([str(plain)], names=(NAME,)), NAME) == [mine.asbytes()]


def test_every_listed_key_counts(tmp_path: Path) -> None:
    # OpenSSH takes any key listed for the host, not only the first of its type.
    first, second = generate_key(), generate_key()
    path = tmp_path / "known_hosts"
    path.write_text(_line(_hashed(NAME), first) + "\n" + _line(NAME, second) + "\n")
    known = KnownHosts([str(path), str(tmp_path / "missing")], names=(NAME,))
    assert _keys_for(known, NAME) == sorted([first.asbytes(), second.asbytes()])
    assert known.key_types(NAME) == [first.get_name()]


@pytest.mark.parametrize("bad", [
    f"{NAME} ecdsa-sha2-nistp256 !!notbase64!!",
    f"{NAME} ssh-unknown-type AAAAB3NzaC1yc2E=",
    f"{NAME} ecdsa-sha2-nistp256",
    "|1|notbase64|xyz ecdsa-sha2-nistp256 AAAA",
    "|1|c2hvcnQ=|xyz ecdsa-sha2-nistp256 AAAA",  # salt of the wrong length
    f"@cert-authority {NAME} ecdsa-sha2-nistp256 AAAA",
])
def test_malformed_lines_are_skipped(tmp_path: Path, bad: str) -> None:
    key = generate_key()
    path = tmp_path / "known_hosts"
    path.write_text(bad + "\n" + _line(NAME, key) + "\n")
    assert _keys_for(KnownHosts([str(path)], names=(NAME,)), NAME) == [key.asbytes()]


# --- matching as OpenSSH matches: compared with `ssh-keygen -F NAME -f FILE` -----------------

KEYGEN = shutil.which("ssh-keygen")
KEY = generate_key()

#: Hosts fields: literals, wildcards, negation, [host]:port forms, case, hashed names.
FIELDS = [
    "a.example", "A.Example", "*.example", "a.*", "?.example", "??.example", "*",
    "!a.example,*.example", "*.example,!b.example", "!*", "a.example,!a.example",
    "[a.example]:2222", "[a.example]:*", "[*.example]:2222", "[a.example]:22",
    "a.example:2222", "x.example,a.example", "!x.example", "*a*", "a.exampl?",
    "[127.0.0.1]:*", "127.0.0.*", "127.0.0.1", "!127.0.0.1,*",
    _hashed("a.example"), _hashed("[a.example]:2222"), _hashed("A.example"),
]
MARKERS = ["", "", "@revoked ", "@cert-authority ", "@REVOKED ", "@unknown "]
NAMES = ["a.example", "b.example", "ab.example", "[a.example]:2222", "[b.example]:2222",
         "127.0.0.1", "[127.0.0.1]:2222", "A.EXAMPLE", "x.example", "a.example:2222"]


def _keygen_lines(path: Path, name: str) -> List[int]:
    assert KEYGEN is not None
    done = subprocess.run([KEYGEN, "-F", name, "-f", str(path)], capture_output=True, text=True, check=False)
    return sorted(int(m) for m in re.findall(r"^# Host .* found: line (\d+)", done.stdout, re.M))


def _our_lines(path: Path, name: str) -> List[int]:
    return sorted(int(line.where.rsplit(":", 1)[1]) for line in KnownHosts([str(path)], names=(name,)).lines(name))


def test_matching_agrees_with_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    lines = [f"{MARKERS[i % len(MARKERS)]}{field} {KEY.get_name()} {KEY.get_base64()}"
             for i, field in enumerate(FIELDS)]
    path.write_text("\n".join(lines) + "\n")
    for name in NAMES:
        expected = _keygen_lines(path, name)
        assert _our_lines(path, name) == expected, name
    assert any(_keygen_lines(path, n) for n in NAMES)


_PATTERN = st.lists(st.sampled_from(list("ab.*?!x") + ["[a]:2"]), min_size=1, max_size=5).map("".join)


@settings(max_examples=60, deadline=None)
@given(fields=st.lists(st.lists(_PATTERN, min_size=1, max_size=3),
                       min_size=1, max_size=4),
       name=st.sampled_from(["a", "ab", "a.b", "[a]:2", "b", "A", "?"]))
def test_matching_property_agrees_with_ssh_keygen(tmp_path_factory: pytest.TempPathFactory,
                                                   fields: List[List[str]], name: str) -> None:
    path = tmp_path_factory.mktemp("kh") / "known_hosts"
    path.write_text("".join(f"{','.join(f)} {KEY.get_name()} {KEY.get_base64()}\n" for f in fields))
    assert _our_lines(path, name) == _keygen_lines(path, name)


def test_field_matching_rules() -> None:
    assert host_field_matches("a.example", "x,*.example")
    assert not host_field_matches("a.example", "!a.example,*.example")  # negation wins
    assert not host_field_matches("a.example", "!*")  # a negation alone never matches
    assert host_field_matches("[h]:2222", "[h]:*") and not host_field_matches("h", "[h]:*")
    assert host_field_matches("A.Example", "a.EXAMPLE")
    assert host_field_matches("a.example", _hashed("a.example"))
    assert not host_field_matches("a.example", "x," + _hashed("a.example"))  # a hash is a whole field


# --- accept/refuse decisions compared with a real `ssh` against a real sshd ---------------

#: known_hosts texts; {name} is [127.0.0.1]:PORT, {good} the server's key, {other} a stranger's,
#: {rsa} a stranger's of another type.
DECISION_CASES = {
    "exact": "{name} {good}",
    "wildcard_good": "[127.0.0.*]:* {good}",
    "wildcard_changed": "[127.0.0.*]:* {other}",
    "star_changed": "* {other}",
    "question_changed": "[127.0.0.?]:* {other}",
    "negated_changed": "*,!{name} {other}",
    "negated_only_line": "!{name},* {good}",
    "hashed_changed": "{hashed} {other}",
    "revoked_but_listed": "{name} {good}\n@revoked * {good}",
    "revoked_only": "@revoked {name} {good}",
    "revoked_other": "@revoked {name} {other}\n{name} {good}",
    "portless_good": "127.0.0.1 {good}",
    "portless_changed": "127.0.0.1 {other}",
    "other_type": "{name} {rsa}",
    "cert_authority": "@cert-authority {name} {other}",
    "empty": "",
}


@pytest.fixture(scope="module")
def stranger_keys(tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert KEYGEN is not None
    base = tmp_path_factory.mktemp("strangers")
    found = {}
    for label, kind in (("other", "ed25519"), ("rsa", "rsa")):
        subprocess.run([KEYGEN, "-q", "-t", kind, "-N", "", "-f", str(base / label)], check=True)
        found[label] = " ".join((base / f"{label}.pub").read_text().split()[:2])
    return found


def _known_hosts_text(case: str, server: Sshd, strangers: dict) -> str:
    name = f"[127.0.0.1]:{server.port}"
    text = DECISION_CASES[case].format(name=name, good=server.host_key_line, hashed=_hashed(name), **strangers)
    return text + "\n" if text else ""


def _real_ssh_accepts(server: Sshd, known: Path, strict: str) -> bool:
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-p", str(server.port), "-l", server.user, "-i", server.client_key,
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={strict}",
         "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
         "127.0.0.1", "true"],
        stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60)
    return done.returncode == 0


def _paramiko_options(server: Sshd, known: Path, strict: str, home: Path) -> SshOptions:
    home.mkdir(exist_ok=True)
    return SshOptions(
        port=server.port, user=server.user, identity_files=(server.client_key,),
        options=(("UserKnownHostsFile", str(known)), ("IdentitiesOnly", "yes"),
                 ("StrictHostKeyChecking", strict), ("GlobalKnownHostsFile", "/dev/null")),
        home=str(home))


def _we_accept(server: Sshd, known: Path, strict: str, home: Path, log: List[str]) -> bool:
    try:
        connection = connect(DEST, _paramiko_options(server, known, strict, home), log.append)
    except HostKeyError:
        return False
    try:
        channel = connection.exec(["true"])  # the openssh vendor connects only now
        return channel.wait() == 0
    finally:
        connection.close()


@pytest.mark.parametrize("strict", ["accept-new", "yes"])
@pytest.mark.parametrize("case", sorted(DECISION_CASES))
def test_decision_agrees_with_real_ssh(real_sshd: Sshd, stranger_keys: dict, tmp_path: Path,
                                       case: str, strict: str) -> None:
    text = _known_hosts_text(case, real_sshd, stranger_keys)
    theirs, ours = tmp_path / "kh_ssh", tmp_path / "kh_ours"
    theirs.write_text(text)
    ours.write_text(text)
    log: List[str] = []
    expected = _real_ssh_accepts(real_sshd, theirs, strict)
    assert _we_accept(real_sshd, ours, strict, tmp_path / "home", log) == expected
    assert ours.read_text() == theirs.read_text()  # a key was added by both or by neither
    # Only a @cert-authority host makes the paramiko vendor hand over to ssh.
    assert bool(log) == (case == "cert_authority"), log


def test_expected_decisions(real_sshd: Sshd, stranger_keys: dict, tmp_path: Path) -> None:
    """The table above, spelt out: what ssh (and so we) decide under accept-new."""
    refused = set()
    for case in DECISION_CASES:
        known = tmp_path / f"kh_{case}"
        known.write_text(_known_hosts_text(case, real_sshd, stranger_keys))
        if not _real_ssh_accepts(real_sshd, known, "accept-new"):
            refused.add(case)
    assert refused == {"wildcard_changed", "star_changed", "question_changed", "hashed_changed",
                       "revoked_but_listed", "revoked_only", "other_type"}


def test_revoked_key_refused_even_without_strict_checking(real_sshd: Sshd, tmp_path: Path) -> None:
    # ssh goes on under StrictHostKeyChecking=no (with a warning); we never talk to a revoked key.
    known = tmp_path / "kh"
    known.write_text(f"[127.0.0.1]:{real_sshd.port} {real_sshd.host_key_line}\n@revoked * {real_sshd.host_key_line}\n")
    with pytest.raises(HostKeyError, match=r"is REVOKED .*@revoked at .*kh:2"):
        connect(DEST, _paramiko_options(real_sshd, known, "no", tmp_path / "home"))


def test_key_revoked_under_the_bare_host_is_refused(real_sshd: Sshd, tmp_path: Path) -> None:
    # ssh lets the [host]:port name take the bare host's key; never when that name revokes it.
    known = tmp_path / "kh"
    known.write_text(f"127.0.0.1 {real_sshd.host_key_line}\n@revoked 127.0.0.1 {real_sshd.host_key_line}\n")
    with pytest.raises(HostKeyError, match="is REVOKED"):
        connect(DEST, _paramiko_options(real_sshd, known, "yes", tmp_path / "home"))


def test_cert_authority_host_without_ssh_is_refused(real_sshd: Sshd, stranger_keys: dict,
                                                    tmp_path: Path) -> None:
    from pyostree.transport.paramiko_vendor import connect_paramiko

    known = tmp_path / "kh"
    text = _known_hosts_text("cert_authority", real_sshd, stranger_keys)
    known.write_text(text)
    for strict in ("accept-new", "yes"):
        with pytest.raises(HostKeyError, match=r"@cert-authority line .* use --ssh=openssh") as info:
            connect_paramiko(DEST, _paramiko_options(real_sshd, known, strict, tmp_path / "home"))
        assert "\n" not in str(info.value)
    assert known.read_text() == text  # accept-new did not take the plain key
