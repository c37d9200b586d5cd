"""Fixtures shared by the transport tests: an embedded server, a real sshd, client options."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from pyostree.sshserver import EmbeddedSshServer, generate_key, write_private_key
from pyostree.transport import SshOptions
from sshd import Sshd, running_sshd


class EmbeddedSetup:
    """An embedded server plus a client key and a known_hosts file trusting it."""

    def __init__(self, base: Path) -> None:
        self.served = base / "served"
        self.served.mkdir()
        self.home = base / "home"
        (self.home / ".ssh").mkdir(parents=True)
        self.client_key = generate_key()
        self.key_path = str(base / "client_key")
        write_private_key(self.client_key, self.key_path)
        self.server = EmbeddedSshServer(str(self.served), [self.client_key])
        self.known_hosts = str(base / "known_hosts")

    def options(self, *extra: Tuple[str, str], trusted: bool = True) -> SshOptions:
        if trusted:
            Path(self.known_hosts).write_text(self.server.known_hosts_line() + "\n")
        return SshOptions(
            port=self.server.port,
            identity_files=(self.key_path,),
            options=(("UserKnownHostsFile", self.known_hosts), ("IdentitiesOnly", "yes")) + extra,
            home=str(self.home),
        )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSetup]:
    setup = EmbeddedSetup(tmp_path_factory.mktemp("embedded"))
    with setup.server:
        yield setup


@pytest.fixture(scope="module")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def sshd_options(server: Sshd, vendor: str, home: Path, *extra: Tuple[str, str]) -> SshOptions:
    """Options that reach ``server`` without touching the real ~/.ssh."""
    os.makedirs(home / ".ssh", exist_ok=True)
    return SshOptions(
        port=server.port,
        user=server.user,
        identity_files=(server.client_key,),
        options=(("UserKnownHostsFile", server.known_hosts), ("IdentitiesOnly", "yes")) + extra,
        vendor=vendor,
        home=str(home),
        config_file=os.devnull if vendor == "openssh" else None,
    )
