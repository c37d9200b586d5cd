"""Closing an ssh connection leaves no thread behind (so ``pyostree push`` may end with
``os._exit``), with both vendors, and a CLI push over ssh still prints its whole summary."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, List

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


_LINGER = ("import subprocess, sys, time\n"
           "status = subprocess.call([sys.executable, '-m', 'pyostree', 'receive'])\n"
           "time.sleep(60)\n"
           "sys.exit(status)\n")


def _in_thread(target: Callable[[], object], timeout: float = 30.0) -> List[object]:
    """Run ``target`` in a thread and wait for it at most ``timeout`` seconds: what it
    returned, or nothing if it is still running (it stays a daemon thread then)."""
    results: List[object] = []
    thread = threading.Thread(target=lambda: results.append(target()), daemon=True)
    thread.start()
    thread.join(timeout)
    return results


def test_paramiko_exec_close_ends_a_blocked_stderr_read(embedded: EmbeddedSetup) -> None:
    """A thread reading the command's stderr does not hold close() up until the command
    exits (60 s here): the channel closes first, which ends that read."""
    connection = connect(Destination("ssh", ".", host="127.0.0.1"), embedded.options())
    try:
        channel = connection.exec([sys.executable, "-c", "import time; time.sleep(60)"])
        reads = _in_thread(lambda: channel.stderr.read(4096), timeout=0.5)
        assert reads == []  # blocked: the command has written nothing
        assert _in_thread(lambda: channel.close()) == [None]
    finally:
        connection.close()


@needs_ostree
def test_a_push_does_not_wait_for_the_receivers_exit_status(
        embedded: EmbeddedSetup, tmp_path: Path) -> None:
    """After DONE the remote's work is over: a receive command that lingers (60 s) after
    answering does not keep the push waiting for its exit status."""
    from pyostree.push import PushOptions, push
    from pyostree.repo import Repo
    from test_push_support import rev_parse

    src = init(tmp_path / "src", "archive")
    head = commit(src, make_tree(tmp_path / "tree", files=5))
    init(embedded.served / "dst", "archive")
    options = PushOptions(via="receive", ssh=embedded.options(),
                          receive_command=(sys.executable, "-c", _LINGER))
    results = _in_thread(lambda: push(Repo.open(src), "127.0.0.1:dst", (), options))
    assert len(results) == 1, "the push waited for the lingering receive command"
    assert rev_parse(embedded.served / "dst", "main") == head
