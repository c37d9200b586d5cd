"""Concurrency on one remote: two pushers racing for one ref over many rounds (exactly one
wins, the loser is told), pushes while the real ``ostree commit`` writes the same repo, and
``ostree pull`` over HTTP in a loop during pushes (never a missing object)."""

from __future__ import annotations

import itertools
import shlex
import shutil
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

import test_fault_support as F
from ostree_tool import needs_ostree

pytestmark = needs_ostree
ROUNDS = 6


def _repo(path: Path, mode: str = "archive") -> Path:
    F.ostree("init", f"--mode={mode}", f"--repo={path}")
    return path


def _tree(path: Path, files: int = 40) -> Path:
    path.mkdir(parents=True)
    for index in range(files):
        (path / f"f{index}.txt").write_bytes(f"{path.name} {index}\n".encode() * 30)
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """An archive remote whose ``main`` already exists (every round is a fast-forward race)."""
    seed = _repo(tmp_path / "seed")
    tree = _tree(tmp_path / "seed-tree")
    F.ostree("commit", f"--repo={seed}", "--branch=main", f"--tree=dir={tree}", "--owner-uid=0", "--owner-gid=0")
    remote = _repo(tmp_path / "remote")
    F.ostree("pull-local", f"--repo={remote}", str(seed), "main")
    F.ostree("summary", "-u", f"--repo={remote}")
    return remote


@pytest.mark.parametrize("vias,receiver", [(("receive", "receive"), "default"), (("sftp", "sftp"), "default"),
                                           (("receive", "sftp"), "default"), (("receive", "receive"), "early")])
def test_two_pushers_one_ref_many_rounds(remote: Path, tmp_path: Path, vias: Tuple[str, str], receiver: str) -> None:
    """``early``: receivers that publish leaves early (every 1 KiB staged, see
    ``F.EARLY_RECEIVE_ARGV``), so the loser's objects land in objects/ next to the winner's."""
    sides = [(_repo(tmp_path / f"side{k}"), _tree(tmp_path / f"tree{k}"), via) for k, via in enumerate(vias)]
    history: List[str] = []
    for index in range(ROUNDS):
        round_ = F.race_round(sides, remote, index, receive_argv=F.RECEIVERS[receiver])
        F.check_race(round_)
        history.append(round_.remote_ref)
    F.ostree("fsck", f"--repo={remote}")
    # every winner is in the remote's history: no accepted update was lost later
    log = F.ostree("log", f"--repo={remote}", "main").stdout
    assert all(commit in log for commit in history)


def test_push_while_ostree_commit_writes_the_same_repo(tmp_path: Path) -> None:
    remote = _repo(tmp_path / "remote")
    theirs = _tree(tmp_path / "their-tree", files=80)
    ours_repo = _repo(tmp_path / "ours")
    ours_tree = _tree(tmp_path / "our-tree")
    stop = threading.Event()
    their_commits: List[str] = []
    failures: List[str] = []

    def ostree_commits() -> None:
        for index in itertools.count():
            if stop.is_set():
                return
            (theirs / "n.txt").write_text(str(index))
            done = F.ostree("commit", f"--repo={remote}", "--branch=other", f"--tree=dir={theirs}", check=False)
            if done.returncode:
                failures.append(done.stderr)
            else:
                their_commits.append(done.stdout.strip())

    writer = threading.Thread(target=ostree_commits, daemon=True)
    writer.start()
    pushed = []
    try:
        for index, via in zip(range(ROUNDS), itertools.cycle(["receive", "sftp"])):
            (ours_tree / "n.txt").write_text(str(index))
            pushed.append(F.ostree("commit", f"--repo={ours_repo}", "--branch=main", f"--tree=dir={ours_tree}",
                                   "--owner-uid=0", "--owner-gid=0").stdout.strip())
            status, _out, err = F.finish(F.start([F.PY, "-m", "pyostree", "push", f"--repo={ours_repo}",
                                                  f"--via={via}", "-q", str(remote), "main"]))
            assert status == 0, err
    finally:
        stop.set()
        writer.join(F.WAIT)
    assert not failures, failures[:1]
    assert len(their_commits) >= 2  # they really overlapped
    F.ostree("fsck", f"--repo={remote}")
    assert F.ostree("rev-parse", f"--repo={remote}", "main").stdout.strip() == pushed[-1]
    assert F.ostree("rev-parse", f"--repo={remote}", "other").stdout.strip() == their_commits[-1]


def _wait_for_pulls(pulls: List[Tuple[int, str]], count: int, puller: threading.Thread) -> None:
    """Until the puller has finished COUNT pulls. Each round waits for a pull that started
    after its push, so every pushed state is pulled however slow pulls are next to pushes
    (leaving it to relative speed, a loaded machine could finish all the pushes within one
    or two pulls and fail "at least two pulls succeeded"). A hung pull times out in the
    puller (``F.ostree``) and ends the thread: that fails here instead of waiting."""
    while len(pulls) < count:
        assert puller.is_alive(), f"the puller thread died: {pulls[-3:]}"
        time.sleep(0.01)


@pytest.mark.parametrize("receiver", ["default", "early"])
def test_http_pulls_during_pushes_never_miss_an_object(tmp_path: Path, receiver: str) -> None:
    """``early``: receivers that publish leaves early put objects in objects/ long before
    the ref moves; pulls still see complete commits only."""
    remote = _repo(tmp_path / "remote")
    source = _repo(tmp_path / "source")
    tree = _tree(tmp_path / "tree", files=60)
    stop = threading.Event()
    pulls: List[Tuple[int, str]] = []
    log = tmp_path / "http.log"
    with F.logged_http_server(remote, log) as url:
        client = _repo(tmp_path / "client", "bare-user")
        F.ostree("remote", "add", f"--repo={client}", "--no-gpg-verify", "origin", url)

        def puller() -> None:
            while not stop.is_set():
                done = F.ostree("pull", f"--repo={client}", "origin", "main", check=False)
                pulls.append((done.returncode, done.stderr.strip()))

        thread = threading.Thread(target=puller, daemon=True)
        thread.start()
        try:
            time.sleep(0.3)  # a few pulls before the ref exists
            for index, via in zip(range(ROUNDS), itertools.cycle(["receive", "sftp"])):
                (tree / "n.txt").write_text(str(index))
                (tree / f"new{index}.bin").write_bytes(bytes([index]) * 200_000)
                F.ostree("commit", f"--repo={source}", "--branch=main", f"--tree=dir={tree}",
                         "--owner-uid=0", "--owner-gid=0")
                status, _out, err = F.finish(F.start([F.PY, "-m", "pyostree", "push", f"--repo={source}",
                                                      f"--via={via}", "-q", "--update-summary", "--receive-command",
                                                      shlex.join(F.RECEIVERS[receiver]), str(remote), "main"]))
                assert status == 0, err
                # the pull in flight may predate this push; the one after it cannot
                _wait_for_pulls(pulls, len(pulls) + 2, thread)
        finally:
            stop.set()
            thread.join(F.WAIT)
        final = F.ostree("pull", f"--repo={client}", "origin", "main", check=False)
    assert final.returncode == 0, final.stderr
    assert not F.missing_objects_served(log), F.missing_objects_served(log)[:3]
    failed = [msg for status, msg in pulls if status]
    assert all("404" in msg for msg in failed), failed[:3]  # only "not there (yet)"
    assert sum(1 for status, _m in pulls if status == 0) >= 2, pulls[-3:]
    shutil.rmtree(client)


LOCK_WORKER = r"""
import sys, time
from pyostree.push.refslock import refs_lock
from pyostree.transport import LocalFileTransport
root, rounds = sys.argv[1], int(sys.argv[2])


class SftpLike(LocalFileTransport):
    # create and write are two round trips over sftp: the lock exists empty for a moment

    def open_write(self, path, mode=0o644):
        handle = super().open_write(path, mode)
        if path.endswith("refs.lock"):
            time.sleep(0.002)
        return handle


files = SftpLike(root)
counter = root + "/counter"
for _ in range(rounds):
    with refs_lock(files, lambda message: None, wait=60):
        value = int(open(counter).read())
        time.sleep(0.001)  # widen the read-modify-write window
        with open(counter, "w") as handle:
            handle.write(str(value + 1))
"""


def test_refs_lock_is_mutually_exclusive(tmp_path: Path) -> None:
    """The lock every pusher takes around "read refs, move refs, write summary": processes
    incrementing a counter under it never lose an increment (a lock read while its creator
    was still writing it used to look stale and was broken)."""
    (tmp_path / "counter").write_text("0")
    workers, rounds = 6, 40
    procs = [F.start([F.PY, "-c", LOCK_WORKER, str(tmp_path), str(rounds)]) for _ in range(workers)]
    for proc in procs:
        status, _out, err = F.finish(proc)
        assert status == 0, err
    assert int((tmp_path / "counter").read_text()) == workers * rounds
