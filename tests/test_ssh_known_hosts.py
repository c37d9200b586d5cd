"""known_hosts read for one host name: the same keys as paramiko's whole-file loader gives
for that name (plain, [host]:port and hashed lines; first key of a type wins), the other
lines skipped unparsed, malformed lines for the name skipped as paramiko skips them."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

paramiko = pytest.importorskip("paramiko")

from pyostree.sshserver import generate_key  # noqa: E402
from pyostree.transport.hostkeys import KnownHosts  # noqa: E402

NAME = "[server.example]:2222"


def _line(names: str, key: "paramiko.PKey") -> str:
    return f"{names} {key.get_name()} {key.get_base64()}"


def _hashed(name: str) -> str:
    return str(paramiko.HostKeys.hash_host(name))


def _keys_for(known: KnownHosts, name: str) -> List[bytes]:
    """The key verify() would compare with, for each key type known for ``name``."""
    entry = known._keys.lookup(name)
    return sorted(entry[t].asbytes() for t in set(entry.keys())) if entry else []


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


def test_same_keys_as_paramikos_loader(tmp_path: Path) -> None:
    first, second, third = generate_key(), generate_key(), generate_key()
    path = tmp_path / "known_hosts"
    path.write_text("\n".join([
        _line(_hashed(NAME), first),
        _line(NAME, second),  # same type again: paramiko keeps the first
        _line("a.example,b.example", third),
        _line(_hashed("b.example"), second),
    ]) + "\n")
    files = [str(path), str(tmp_path / "missing")]
    whole = KnownHosts(files)
    for name in (NAME, "a.example", "b.example", "c.example"):
        assert _keys_for(KnownHosts(files, names=(name,)), name) == _keys_for(whole, name)
    assert _keys_for(whole, NAME) == [first.asbytes()]


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
