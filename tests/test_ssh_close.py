"""Closing an ssh connection leaves no thread behind (so ``pyostree push`` may end with
``os._exit``), with both vendors, and a CLI push over ssh still prints its whole summary."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

pytest.importorskip("paramiko")

from ostree_tool import needs_ostree  # noqa: E402
from sshd import EmbeddedSetup, Sshd, embedded, real_sshd, sshd_options  # noqa: E402,F401
from test_push_support import commit, init, make_tree  # noqa: E402

from pyostree.transport import Destination, connect  # noqa: E402
from pyostree.transport.paramiko_vendor import ParamikoConnection  # noqa: E402

RECEIVE = f"{sys.executable} -m pyostree receive"


def _threads() -> List[str]:
    return sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())


def test_paramiko_close_ends_the_transport_thread(embedded: EmbeddedSetup) -> None:
    connection = connect(Destination("ssh", ".", host="127.0.0.1"), embedded.options())
    assert isinstance(connection, ParamikoConnection)
    transport = connection._transport  # the client's thread (the server's lives here too)
    files = connection.open_files(".")
    assert files.stat(".") is not None
    assert transport.is_alive()
    files.close()
    connection.close()
    assert not transport.is_alive()


def test_paramiko_close_twice_is_harmless(embedded: EmbeddedSetup) -> None:
    connection = connect(Destination("ssh", ".", host="127.0.0.1"), embedded.options())
    connection.close()
    connection.close()


@needs_ostree
def test_openssh_sftp_close_ends_the_stderr_thread(real_sshd: Sshd, tmp_path: Path) -> None:
    repo = init(tmp_path / "remote", "archive")
    options = sshd_options(real_sshd, "openssh", tmp_path / "home")
    connection = connect(Destination("ssh", str(repo), host="127.0.0.1", user=real_sshd.user), options)
    files = connection.open_files(str(repo))
    assert files.stat("config") is not None
    assert "ssh-stderr" in _threads()
    connection.close()
    assert "ssh-stderr" not in _threads()


@needs_ostree
@pytest.mark.parametrize("via", ["sftp", "receive"])
def test_cli_push_over_ssh_prints_its_summary(real_sshd: Sshd, tmp_path: Path, via: str) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree"))
    dst = init(tmp_path / "dst", "archive")
    argv = [sys.executable, "-m", "pyostree", f"--repo={src}", "push", f"--via={via}", "--ssh=paramiko",
            "-p", str(real_sshd.port), "-i", real_sshd.client_key,
            "-o", f"UserKnownHostsFile={real_sshd.known_hosts}", "-o", "IdentitiesOnly=yes",
            f"--receive-command={RECEIVE}", f"{real_sshd.user}@127.0.0.1:{dst}"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("updated main: (new) -> ")
    assert lines[-1].startswith("sent ") and f"via {via}" in lines[-1]
