"""The refs lock: a holder in another PID namespace (a container) keeps it, a crashed
holder's lock goes (kernel-released OFD lock, or a dead pid of our own namespace), two
breakers of one stale lock never both hold it, and release removes only our own entry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

import pyostree.push.refslock as refslock
from pyostree.errors import PushError
from pyostree.push.refslock import REFS_LOCK, LockOwner, lock_owners, refs_lock
from pyostree.transport import LocalFileTransport
from sshd import embedded, real_sshd  # noqa: F401  (fixtures)
from test_transport_contract import Remote, remote  # noqa: F401  (the fixture)

UNSHARE = shutil.which("unshare")

TRY_LOCK = r"""
import sys
from pyostree.errors import PushError
from pyostree.push.refslock import refs_lock
from pyostree.transport import LocalFileTransport
root, kernel = sys.argv[1], {"ofd": None, "file": False}[sys.argv[2]]
try:
    with refs_lock(LocalFileTransport(root), lambda m: print(m, flush=True), wait=1.0, kernel_lock=kernel):
        print("acquired", flush=True)
except PushError as err:
    print(err, flush=True)
    sys.exit(3)
"""

HOLD_THEN_DIE = r"""
import os, signal, sys
from pyostree.push.refslock import refs_lock
from pyostree.transport import LocalFileTransport
root, kernel = sys.argv[1], {"ofd": None, "file": False}[sys.argv[2]]
with refs_lock(LocalFileTransport(root), lambda m: None, kernel_lock=kernel):
    print("held", os.getpid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _in_new_pid_ns(argv: List[str]) -> List[str]:
    """A fresh PID namespace with its own /proc; the command runs as pid 2 (not init:
    the namespace's init cannot be sent SIGKILL from inside)."""
    assert UNSHARE is not None, "unshare(1) is needed"
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return [UNSHARE, "--pid", "--fork", "--mount-proc", "sh", "-c", f"{quoted}; exit $?"]


def _run(argv: List[str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "tmp").mkdir()
    return tmp_path


def _owner(root: Path) -> LockOwner:
    (token,) = lock_owners(LocalFileTransport(root))
    owner = LockOwner.parse(token, (root / REFS_LOCK / token).read_text())
    assert owner is not None
    return owner


def test_unshare_gives_another_pid_namespace() -> None:
    mine = os.readlink("/proc/self/ns/pid")
    done = _run(_in_new_pid_ns([sys.executable, "-c",
                                "import os; print(os.getpid(), os.readlink('/proc/self/ns/pid'))"]))
    assert done.returncode == 0, done.stderr
    pid, ns = done.stdout.split()
    assert ns != mine and pid == "2"


@pytest.mark.parametrize("kind", ["file", "ofd"])
def test_holder_in_another_pid_namespace_keeps_its_lock(tmp_path: Path, kind: str) -> None:
    """The holder (this process) is invisible from the container's PID namespace: its pid
    looks gone there, which used to break the lock at once. "file" is an sftp-style
    holder and breaker (the lock directory alone); "ofd" adds the kernel lock, as the
    receiver does."""
    root = _repo(tmp_path)
    kernel = None if kind == "ofd" else False
    with refs_lock(LocalFileTransport(root), lambda _m: None, kernel_lock=kernel):
        token = lock_owners(LocalFileTransport(root))
        done = _run(_in_new_pid_ns([sys.executable, "-c", TRY_LOCK, str(root), kind]))
        assert done.returncode == 3, done.stdout + done.stderr
        assert "another push is updating refs" in done.stdout
        assert "stale" not in done.stdout
        assert lock_owners(LocalFileTransport(root)) == token  # still ours
    assert lock_owners(LocalFileTransport(root)) == []


def test_crashed_holder_in_another_pid_namespace_is_released_by_the_kernel(tmp_path: Path) -> None:
    """A receiver in a container killed -9 while holding the lock: its entry stays, fresh,
    from a namespace whose pids mean nothing here; the kernel dropped its OFD lock, and
    the next local pusher that takes it breaks the entry at once (not after 120 s)."""
    root = _repo(tmp_path)
    died = _run(_in_new_pid_ns([sys.executable, "-c", HOLD_THEN_DIE, str(root), "ofd"]))
    assert died.stdout.startswith("held"), died.stdout + died.stderr
    owner = _owner(root)
    assert owner.ofd and owner.pidns != refslock._pid_ns()
    assert time.time() - owner.stamp < refslock.STALE_LOCK_SECS
    messages: List[str] = []
    with refs_lock(LocalFileTransport(root), messages.append, wait=5):
        assert lock_owners(LocalFileTransport(root)) != [owner.token]
    assert any("stale refs lock" in m for m in messages)
    assert lock_owners(LocalFileTransport(root)) == []


def test_crashed_sftp_style_holder_of_our_namespace_is_broken(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    died = _run([sys.executable, "-c", HOLD_THEN_DIE, str(root), "file"])
    assert died.stdout.startswith("held"), died.stdout + died.stderr
    owner = _owner(root)
    assert not owner.ofd and owner.pidns == refslock._pid_ns()
    messages: List[str] = []
    with refs_lock(LocalFileTransport(root), messages.append, wait=5, kernel_lock=False):
        pass
    assert any("stale refs lock" in m for m in messages)


def test_crashed_sftp_style_holder_of_another_namespace_waits_for_the_age(tmp_path: Path) -> None:
    """Nothing proves it dead: it is broken only once older than STALE_LOCK_SECS."""
    root = _repo(tmp_path)
    died = _run(_in_new_pid_ns([sys.executable, "-c", HOLD_THEN_DIE, str(root), "file"]))
    assert died.stdout.startswith("held"), died.stdout + died.stderr
    with pytest.raises(PushError, match="another push"):
        with refs_lock(LocalFileTransport(root), lambda _m: None, wait=0.3):
            pass
    owner = _owner(root)
    entry = root / REFS_LOCK / owner.token
    entry.write_text(LockOwner(owner.token, owner.stamp - refslock.STALE_LOCK_SECS - 5, owner.pid,
                               owner.boot, owner.pidns, owner.ofd).line())
    with refs_lock(LocalFileTransport(root), lambda _m: None, wait=5):
        pass
    assert not entry.exists()


@pytest.mark.parametrize("same_machine", [True, False])
def test_kernel_lock_holder_of_an_ended_boot_of_this_machine_is_broken(tmp_path: Path, same_machine: bool) -> None:
    """After a power cut the entry of a receiver that died with the old boot can come back
    from the journal: its boot id is not ours, so neither the kernel lock nor its pid proved
    it dead, and every push waited for the age rule (120 s). Its boot having ended on this
    machine (same /etc/machine-id, same OFD lock file) proves it; an entry from another
    machine still waits."""
    root = _repo(tmp_path)
    died = _run([sys.executable, "-c", HOLD_THEN_DIE, str(root), "ofd"])
    assert died.stdout.startswith("held"), died.stdout + died.stderr
    owner = _owner(root)
    assert owner.ofd and owner.machine == refslock._machine_id() != ""
    machine = owner.machine if same_machine else "0" * 32
    entry = root / REFS_LOCK / owner.token
    entry.write_text(LockOwner(owner.token, owner.stamp, owner.pid, "an-ended-boot", owner.pidns,
                               owner.ofd, machine).line())
    if same_machine:
        with refs_lock(LocalFileTransport(root), lambda _m: None, wait=0.3):
            pass
        assert not entry.exists()
    else:
        with pytest.raises(PushError, match="another push"):
            with refs_lock(LocalFileTransport(root), lambda _m: None, wait=0.3):
                pass
        assert entry.exists()


def test_lock_entries_of_other_versions_parse() -> None:
    """Five fields (no machine id) and more than six (a later version's) both parse."""
    five = LockOwner.parse("a" * 32, "1 2 boot 3 4:5\n")
    assert five is not None and five.machine == "" and five.ofd == "4:5"
    seven = LockOwner.parse("a" * 32, "1 2 boot 3 4:5 " + "f" * 32 + " later\n")
    assert seven is not None and seven.machine == "f" * 32


def test_release_never_removes_a_lock_that_is_not_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holds the lock too long, B breaks it as stale and holds it: A's release must leave
    B's lock alone (it used to remove the lock file whoever's it was)."""
    root = _repo(tmp_path)
    files = LocalFileTransport(root)
    log_a: List[str] = []
    first = refs_lock(files, log_a.append, kernel_lock=False)
    first.__enter__()
    (a_token,) = lock_owners(files)
    monkeypatch.setattr(refslock, "STALE_LOCK_SECS", -1)  # A's entry is stale now
    second = refs_lock(files, lambda _m: None, wait=5, kernel_lock=False)
    second.__enter__()
    (b_token,) = lock_owners(files)
    assert b_token != a_token
    first.__exit__(None, None, None)
    assert lock_owners(files) == [b_token]  # B still holds it
    assert any("broken while this push held it" in m for m in log_a)
    second.__exit__(None, None, None)
    assert lock_owners(files) == []


class _Racing(LocalFileTransport):
    """Both breakers read the stale lock before either removes it; the first to reach the
    removal goes on (breaks, takes the lock, and holds it), the second removes only once
    the first holds the lock: the widest window two breakers can have. The first holds
    it until the second has either entered too or gone back to waiting."""

    def __init__(self, root: str, gate: Dict[str, object]) -> None:
        super().__init__(root)
        self.gate = gate

    def _lock_path(self, path: str) -> bool:
        return path == REFS_LOCK or (path.startswith(REFS_LOCK + "/"))

    def read_bytes(self, path: str, max_size: int) -> bytes:
        data = super().read_bytes(path, max_size)
        seen: Dict[str, bool] = self.gate["read"]  # type: ignore[assignment]
        name = threading.current_thread().name
        if self.gate["second_removed"].is_set() and self.gate.get("first") != name:  # type: ignore[attr-defined]
            self.gate["second_moved_on"].set()  # type: ignore[attr-defined]  # back to waiting
        if self._lock_path(path) and not seen.get(name):
            seen[name] = True
            self.gate["read_barrier"].wait(30)  # type: ignore[attr-defined]
        return data

    def remove(self, path: str) -> None:
        if self._lock_path(path) and "first" not in self.gate:
            index = self.gate["remove_barrier"].wait(30)  # type: ignore[attr-defined]
            if index == 0:
                self.gate["first"] = threading.current_thread().name
            else:
                while "first" not in self.gate:
                    time.sleep(0.001)
        if self._lock_path(path) and self.gate.get("first") != threading.current_thread().name:
            self.gate["first_holds"].wait(30)  # type: ignore[attr-defined]
            try:
                super().remove(path)
            finally:
                self.gate["second_removed"].set()  # type: ignore[attr-defined]
            return
        super().remove(path)


@pytest.mark.parametrize("legacy", [False, True])
def test_two_breakers_of_one_stale_lock_never_both_hold_it(tmp_path: Path, legacy: bool) -> None:
    """``legacy``: the stale lock is a lock *file* of an older pyostree."""
    root = _repo(tmp_path)
    stale = int(time.time()) - refslock.STALE_LOCK_SECS - 60
    if legacy:
        (root / REFS_LOCK).write_text(f"{stale} 999999 someboot\n")
    else:
        token = "ab" * 16
        (root / REFS_LOCK).mkdir()
        (root / REFS_LOCK / token).write_text(LockOwner(token, stale, 999999, "boot", "", "").line())
    gate: Dict[str, object] = {
        "read": {}, "read_barrier": threading.Barrier(2), "remove_barrier": threading.Barrier(2),
        "first_holds": threading.Event(), "second_removed": threading.Event(),
        "second_moved_on": threading.Event(),
    }
    inside: List[str] = []
    overlaps: List[str] = []
    errors: List[BaseException] = []

    def push(name: str) -> None:
        try:
            with refs_lock(_Racing(str(root), gate), lambda _m: None, wait=30, kernel_lock=False):
                if inside:
                    overlaps.append(f"{name} entered while {inside} held it")
                inside.append(name)
                if gate.get("first") == name:
                    gate["first_holds"].set()  # type: ignore[attr-defined]
                    gate["second_moved_on"].wait(30)  # type: ignore[attr-defined]
                else:
                    gate["second_moved_on"].set()  # type: ignore[attr-defined]
                inside.remove(name)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=push, args=(n,), name=n) for n in ("p1", "p2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert "first" in gate and gate["second_removed"].is_set()  # type: ignore[attr-defined]
    assert gate["second_moved_on"].is_set()  # type: ignore[attr-defined]
    assert not overlaps, overlaps
    assert lock_owners(LocalFileTransport(root)) == []


LOCK_WORKER = r"""
import sys, time
from pyostree.push.refslock import refs_lock
from pyostree.transport import LocalFileTransport
root, rounds = sys.argv[1], int(sys.argv[2])
files = LocalFileTransport(root)
counter = root + "/counter"
for _ in range(rounds):
    with refs_lock(files, lambda message: None, wait=60, kernel_lock=False):
        value = int(open(counter).read())
        time.sleep(0.001)
        with open(counter, "w") as handle:
            handle.write(str(value + 1))
"""


def test_lock_directory_alone_is_mutually_exclusive(tmp_path: Path) -> None:
    """sftp-style pushers (no kernel lock), half of them in other PID namespaces, never
    lose an increment of a counter they update under the lock."""
    root = _repo(tmp_path)
    (root / "counter").write_text("0")
    workers, rounds = 4, 30
    argv = [sys.executable, "-c", LOCK_WORKER, str(root), str(rounds)]
    procs = [subprocess.Popen(_in_new_pid_ns(argv) if i % 2 else argv, stderr=subprocess.PIPE, text=True)
             for i in range(workers)]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert int((root / "counter").read_text()) == workers * rounds
    assert lock_owners(LocalFileTransport(root)) == []


def test_refs_lock_over_every_transport(remote: Remote) -> None:  # noqa: F811
    """The directory is renamed onto the lock's name with posix-rename: over sftp too
    (paramiko's embedded server, OpenSSH's sftp-server) a held lock is not replaced, an
    empty one is, and release leaves it free."""
    files = remote.files
    (remote.disk / "tmp").mkdir()
    local = LocalFileTransport(remote.disk)
    with refs_lock(files, lambda _m: None):
        assert len(lock_owners(local)) == 1
        with pytest.raises(PushError, match="another push"):
            with refs_lock(local, lambda _m: None, wait=0.3):
                pass
    assert lock_owners(local) == []
    (remote.disk / REFS_LOCK).mkdir(exist_ok=True)  # a free lock whose rmdir was missed
    token = "cd" * 16
    stale = LockOwner(token, int(time.time()) - refslock.STALE_LOCK_SECS - 5, 1, "x", "", "")
    (remote.disk / REFS_LOCK / token).write_text(stale.line())  # and a stale entry in it
    messages: List[str] = []
    with refs_lock(files, messages.append, wait=5):
        assert token not in lock_owners(local) and len(lock_owners(local)) == 1
    assert any("stale" in m for m in messages)
    assert lock_owners(local) == []


def test_a_rename_that_fails_with_nobody_in_the_way_is_reported(tmp_path: Path) -> None:
    """Not "another push is updating refs": the real error, and no temp dir left."""
    from pyostree.errors import TransportError

    class _NoRename(LocalFileTransport):
        def rename(self, src: str, dst: str, *, replace: bool) -> None:
            raise TransportError(f"cannot rename {src} to {dst}: Permission denied")

    root = _repo(tmp_path)
    with pytest.raises(PushError, match="cannot take the refs lock: .*Permission denied"):
        with refs_lock(_NoRename(str(root)), lambda _m: None, wait=0.2, kernel_lock=False):
            pass
    assert os.listdir(root / "tmp") == []
