"""What a push means: fast-forward only, exact checksums, minimal transfer, CAS on refs,
summary upkeep, and resuming after an interrupted push without re-sending."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO, List, Sequence, Set, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import (
    commit,
    do_push,
    init,
    make_tree,
    object_files,
    ostree_fsck,
    pull_over_http,
    receive_process,
    rev_parse,
    two_commit_history,
)

from pyostree.errors import PushError, TransportError
from pyostree.objects.types import ObjectType
from pyostree.push import PushOptions, push, push_with
from pyostree.push.receive_client import ReceiveClient
from pyostree.push.sftp import SftpPublisher
from pyostree.repo import Repo
from pyostree.transport import ExecChannel, LocalFileTransport

pytestmark = needs_ostree
VIAS = ("receive", "sftp")


def _objects_of(repo: Path) -> Set[str]:
    return set(object_files(repo))


@pytest.fixture
def two_commits(tmp_path: Path) -> Tuple[Path, str, str]:
    """Source archive repo: main = c1, then c2 changing one file and adding one."""
    return two_commit_history(tmp_path, files=30, changed="sub/file1.txt", new=b"new file\n")


@pytest.mark.parametrize("via", VIAS)
def test_incremental_push_sends_only_new_objects(tmp_path: Path, two_commits: Tuple[Path, str, str], via: str) -> None:
    src, c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    first = do_push(src, dst, via=via)
    # first push of c2 directly would include everything; push c1 first via a branch
    assert rev_parse(dst, "main") == c2
    assert first.objects_sent > 10

    # Fresh remote at c1, then push c2: exactly the objects c2 adds.
    dst2 = init(tmp_path / "dst2", "archive")
    mid = init(tmp_path / "mid", "archive")
    run_ostree("pull-local", str(src), c1, repo=mid)
    run_ostree("refs", "--create=main", c1, repo=mid)
    do_push(mid, dst2, via=via)
    before = _objects_of(dst2)
    result = do_push(src, dst2, via=via)
    added = _objects_of(dst2) - before
    sent = {f"objects/{c[:2]}/{c[2:]}.{ObjectType[t].extension(True)}" for c, t in result.objects}
    assert sent == added
    # new file, changed file, two dirtrees (root, sub), the commit: nothing else
    kinds = sorted(t for _c, t in result.objects)
    assert kinds == ["COMMIT", "DIR_TREE", "DIR_TREE", "FILE", "FILE"]
    assert rev_parse(dst2, "main") == c2
    assert "no errors found" in ostree_fsck(dst2)

    noop = do_push(src, dst2, via=via)
    assert noop.objects_sent == 0 and noop.up_to_date == ("main",) and not noop.updates
    assert _objects_of(dst2) == before | added


@pytest.mark.parametrize("via", VIAS)
def test_non_fast_forward_refused_unless_forced(tmp_path: Path, via: str) -> None:
    tree = make_tree(tmp_path / "tree")
    src = init(tmp_path / "src", "archive")
    local = commit(src, tree, subject="local")
    other_src = init(tmp_path / "other", "archive")
    (tree / "diverged.txt").write_bytes(b"diverged\n")
    remote_commit = commit(other_src, tree, subject="diverged")
    dst = init(tmp_path / "dst", "archive")
    do_push(other_src, dst, via=via)
    before = _objects_of(dst)

    with pytest.raises(PushError, match="non-fast-forward update of main refused"):
        do_push(src, dst, via=via)
    assert rev_parse(dst, "main") == remote_commit
    assert _objects_of(dst) == before  # nothing uploaded for a refused ref

    result = do_push(src, dst, via=via, force=True)
    assert result.updates[0].forced
    assert rev_parse(dst, "main") == local
    assert "no errors found" in ostree_fsck(dst)


@pytest.mark.parametrize("via", VIAS)
def test_dry_run_changes_nothing(tmp_path: Path, two_commits: Tuple[Path, str, str], via: str) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    result = do_push(src, dst, via=via, dry_run=True)
    assert result.dry_run and result.updates[0].new == c2 and len(result.objects) > 10
    assert _objects_of(dst) == set()
    assert not (dst / "refs" / "heads" / "main").exists()


@pytest.mark.parametrize("via", VIAS)
def test_summary_kept_up_to_date(tmp_path: Path, two_commits: Tuple[Path, str, str], via: str) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    # No summary on the remote: none is created by default...
    assert not do_push(src, dst, "main", via=via).summary_updated
    assert not (dst / "summary").exists()
    # ...but --update-summary creates it, and a stale summary.sig is dropped.
    run_ostree("refs", "--create=other", c2, repo=src)
    (dst / "summary.sig").write_bytes(b"stale")
    assert do_push(src, dst, "other", via=via, update_summary=True).summary_updated
    assert not (dst / "summary.sig").exists()
    listed = run_ostree("summary", "-v", repo=dst)
    assert "* main" in listed and "* other" in listed
    assert pull_over_http(dst, "main", tmp_path / "client") == c2  # "other" is ref-bound to main


def test_push_selected_refs_only_and_all_by_default(tmp_path: Path) -> None:
    # Ref names that are not hex: `ostree rev-parse a` would also match a commit whose
    # checksum starts with "a" (this test failed 1 run in 16 when it used "a").
    tree = make_tree(tmp_path / "tree")
    src = init(tmp_path / "src", "archive")
    first = commit(src, tree, branch="first")
    second = commit(src, tree, branch="deep/second")
    dst = init(tmp_path / "dst", "archive")
    do_push(src, dst, "first", via="sftp")
    assert run_ostree("refs", repo=dst).split() == ["first"]
    do_push(src, dst, via="receive")
    assert sorted(run_ostree("refs", repo=dst).split()) == ["deep/second", "first"]
    assert rev_parse(dst, "deep/second") == second and rev_parse(dst, "first") == first
    with pytest.raises(PushError, match="no local ref"):
        do_push(src, dst, "missing", via="sftp")


@pytest.mark.parametrize("via", VIAS)
def test_concurrent_push_of_one_ref_one_wins(tmp_path: Path, via: str) -> None:
    """A second push lands while the first is between planning and publishing: the first
    is rejected by the compare-and-swap and the remote keeps the winner, consistent."""
    tree = make_tree(tmp_path / "tree")
    base_src = init(tmp_path / "base", "archive")
    commit(base_src, tree, subject="base")
    dst = init(tmp_path / "dst", "archive")
    do_push(base_src, dst, via=via)
    src_a = tmp_path / "a"
    src_b = tmp_path / "b"
    for path, name in ((src_a, "a"), (src_b, "b")):
        init(path, "archive")
        run_ostree("pull-local", str(base_src), "main", repo=path)
        (tree / f"{name}.txt").write_bytes(name.encode())
    winner = commit(src_b, tree, subject="b")
    loser = commit(src_a, tree, subject="a")
    assert winner != loser

    def interfere(message: str) -> None:
        if "objects to send" in message:
            do_push(src_b, dst, via=via)

    with pytest.raises(PushError, match="moved"):
        push(Repo.open(src_a), str(dst), (), PushOptions(via=via), on_log=interfere)
    assert rev_parse(dst, "main") == winner
    assert "no errors found" in ostree_fsck(dst)


class _CutTransport(LocalFileTransport):
    """A connection that drops after ``budget`` uploads (an interrupted sftp push)."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget
        self.uploads: List[str] = []

    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        if "/pyostree-push-" in path and ".part-" in path:
            if len(self.uploads) >= self.budget:
                raise TransportError("connection lost")
            self.uploads.append(path)
        return super().open_write(path, mode)


def test_sftp_resume_after_cut_connection_resends_nothing_staged(
    tmp_path: Path, two_commits: Tuple[Path, str, str]
) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    repo = Repo.open(src)
    local = {"main": c2}

    cut = _CutTransport(dst, budget=7)
    with pytest.raises(TransportError, match="connection lost"):
        push_with(SftpPublisher(cut), repo, local)
    assert _objects_of(dst) == set()  # nothing visible
    assert not (dst / "refs" / "heads" / "main").exists()
    run_ostree("fsck", repo=dst)  # no commit yet, but the repo must still check clean

    again = _CutTransport(dst, budget=10**6)
    result = push_with(SftpPublisher(again), repo, local)
    assert result.objects_reused == 7
    assert len(again.uploads) == result.objects_sent - 7
    assert not set(again.uploads) & set(cut.uploads)
    assert rev_parse(dst, "main") == c2
    assert "no errors found" in ostree_fsck(dst)
    leftovers = [n for n in os.listdir(dst / "tmp") if n.startswith("pyostree-push")]
    assert leftovers == ["pyostree-push-refs.ofd"]  # the refs lock's kernel lock file stays


class _PopenChannel(ExecChannel):
    """A receiver subprocess the test can kill (local_exec hides the process)."""

    def __init__(self, proc: "subprocess.Popen[bytes]") -> None:
        assert proc.stdin and proc.stdout and proc.stderr
        self.proc = proc
        self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr

    def wait(self) -> int:
        return self.proc.wait()

    def close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _staged(dst: Path) -> Set[str]:
    found: Set[str] = set()
    for entry in (dst / "tmp").iterdir():
        if entry.name.startswith("staging-") and entry.is_dir():
            for path in entry.rglob("*.*"):
                if path.parent != entry:
                    found.add(path.parent.name + path.name.split(".")[0])
    return found


class _KillingClient(ReceiveClient):
    """Sends half the objects, waits until the receiver staged some, then kills it."""

    def __init__(self, channel: _PopenChannel, path: str) -> None:
        super().__init__(channel, path)
        self.channel = channel
        self.repo_dir = Path(path)

    def send_objects(self, repo, names, tracker):  # type: ignore[no-untyped-def]
        half = len(names) // 2
        super().send_objects(repo, names[:half], tracker)
        deadline = time.monotonic() + 30
        while len(_staged(self.repo_dir)) < half and time.monotonic() < deadline:
            time.sleep(0.02)
        self.channel.proc.kill()
        self.channel.proc.wait()
        super().send_objects(repo, names[half:], tracker)


def test_receive_resume_after_killed_receiver_resends_nothing_staged(
    tmp_path: Path, two_commits: Tuple[Path, str, str]
) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    repo = Repo.open(src)
    local = {"main": c2}

    client = _KillingClient(_PopenChannel(receive_process()), str(dst))
    with pytest.raises(PushError):
        push_with(client, repo, local)
    client.close()
    staged = _staged(dst)
    assert len(staged) >= 5
    assert _objects_of(dst) == set()
    assert not (dst / "refs" / "heads" / "main").exists()

    result = do_push(src, dst, via="receive")
    sent = {c for c, _t in result.objects}
    assert not sent & staged
    assert rev_parse(dst, "main") == c2
    assert "no errors found" in ostree_fsck(dst)


def test_sftp_have_lists_fanout_dirs_for_large_sets(tmp_path: Path) -> None:
    """Above 64 names `have` lists objects/XX instead of stat-ing; both must agree with disk."""
    tree = make_tree(tmp_path / "tree", files=120)
    src = init(tmp_path / "src", "archive")
    commit(src, tree)
    dst = init(tmp_path / "dst", "archive")
    half = init(tmp_path / "half", "archive")
    commit(half, make_tree(tmp_path / "tree2", files=60))
    do_push(half, dst, via="sftp")
    repo = Repo.open(src)
    names = [(c, t) for c, t in repo.list_objects() if t in (ObjectType.FILE, ObjectType.DIR_TREE, ObjectType.COMMIT)]
    names.append(("00" * 32, ObjectType.FILE))
    assert len(names) > 64
    expected = [
        (dst / "objects" / c[:2] / f"{c[2:]}.{t.extension(True)}").exists() for c, t in names
    ]
    assert any(expected) and not all(expected)
    publisher = SftpPublisher(LocalFileTransport(dst))
    assert publisher.have(names) == expected
    assert publisher.have(names[:10]) == expected[:10]


@pytest.mark.parametrize("via", VIAS)
def test_stale_refs_lock_of_a_crashed_push_is_broken(tmp_path: Path, via: str) -> None:
    src = init(tmp_path / "src", "archive")
    checksum = commit(src, make_tree(tmp_path / "tree"))
    dst = init(tmp_path / "dst", "archive")
    run_ostree("summary", "-u", repo=dst)
    (dst / "tmp" / "pyostree-push-refs.lock").write_text(f"{int(time.time()) - 3600}\n")
    do_push(src, dst, via=via)
    assert rev_parse(dst, "main") == checksum
    assert not (dst / "tmp" / "pyostree-push-refs.lock").exists()


def test_live_refs_lock_makes_the_other_pusher_give_up(tmp_path: Path) -> None:
    from pyostree.push.refslock import refs_lock

    dst = init(tmp_path / "dst", "archive")
    files = LocalFileTransport(dst)
    with refs_lock(files, lambda _m: None):
        with pytest.raises(PushError, match="another push is updating refs"):
            with refs_lock(files, lambda _m: None, wait=0.2):
                pass
    with refs_lock(files, lambda _m: None, wait=0.2):
        pass  # released: free again


class _DyingClient(ReceiveClient):
    """The client dies mid-stream: half the objects, then its end of the pipe closes."""

    def send_objects(self, repo, names, tracker):  # type: ignore[no-untyped-def]
        super().send_objects(repo, names[: len(names) // 2], tracker)
        self._channel.stdin.close()
        raise TransportError("client killed")


def test_killed_client_leaves_remote_consistent_and_resumable(
    tmp_path: Path, two_commits: Tuple[Path, str, str]
) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    proc = receive_process()
    client = _DyingClient(_PopenChannel(proc), str(dst))
    with pytest.raises(TransportError):
        push_with(client, Repo.open(src), {"main": c2})
    assert proc.wait(timeout=30) == 1  # the receiver saw EOF mid-session and aborted
    client.close()
    assert _objects_of(dst) == set()
    run_ostree("fsck", repo=dst)
    staged = _staged(dst)
    assert staged
    result = do_push(src, dst, via="receive")
    assert not {c for c, _t in result.objects} & staged
    assert rev_parse(dst, "main") == c2


def test_progress_reports_reach_the_totals(tmp_path: Path, two_commits: Tuple[Path, str, str]) -> None:
    src, _c1, _c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    seen: list = []
    push(Repo.open(src), str(dst), (), PushOptions(via="receive"), on_progress=seen.append)
    assert seen and seen[-1].phase == "done"
    last = seen[-1]
    assert last.objects_done == last.objects_total > 10
    assert last.bytes_done > 0 and last.elapsed >= 0


@pytest.mark.parametrize("via", VIAS)
def test_up_to_date_push_repairs_a_stale_summary(tmp_path: Path, two_commits: Tuple[Path, str, str], via: str) -> None:
    """A push that died after moving the ref but before the summary: the next (no-op)
    push notices the summary does not list the ref and rewrites it."""
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    run_ostree("summary", "-u", repo=dst)
    stale = (dst / "summary").read_bytes()
    do_push(src, dst, via=via)
    (dst / "summary").write_bytes(stale)  # as if the summary step never ran
    result = do_push(src, dst, via=via)
    assert result.up_to_date == ("main",) and result.summary_updated
    assert "* main" in run_ostree("summary", "-v", repo=dst)
    again = do_push(src, dst, via=via)
    assert not again.summary_updated  # fresh now: left alone
    assert rev_parse(dst, "main") == c2


def test_partial_local_commit_is_refused(tmp_path: Path, two_commits: Tuple[Path, str, str]) -> None:
    src, _c1, c2 = two_commits
    partial = init(tmp_path / "partial", "archive")
    run_ostree("pull-local", "--commit-metadata-only", str(src), "main", repo=partial)
    assert rev_parse(partial, "main") == c2
    dst = init(tmp_path / "dst", "archive")
    with pytest.raises(PushError, match="is partial"):
        do_push(partial, dst, via="receive")
    assert _objects_of(dst) == set()


def test_auto_picks_receive_for_a_local_path(tmp_path: Path, two_commits: Tuple[Path, str, str]) -> None:
    src, _c1, c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    assert do_push(src, dst, via="auto").via == "receive"
    assert rev_parse(dst, "main") == c2


def test_corrupt_local_object_fails_fast_in_receive_mode(tmp_path: Path) -> None:
    """A local object that cannot be read ends the push with an error (no deadlock with a
    receiver waiting for data) and leaves the remote as it was."""
    src = init(tmp_path / "src", "bare-user")
    commit(src, make_tree(tmp_path / "tree"))
    victim = next(p for p in (src / "objects").rglob("*.file") if p.stat().st_size > 0)
    os.setxattr(victim, "user.ostreemeta", b"\x01garbage")
    dst = init(tmp_path / "dst", "archive")
    done = subprocess.run(
        [sys.executable, "-m", "pyostree", f"--repo={src}", "push", "--via=receive", str(dst)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert _objects_of(dst) == set()
    assert not (dst / "refs" / "heads" / "main").exists()


def test_many_have_batches_do_not_deadlock(tmp_path: Path) -> None:
    """Far more queries than fit in a pipe's worth of replies, against a real receiver."""
    from pyostree.transport import local_exec

    dst = init(tmp_path / "dst", "archive")
    client = ReceiveClient(local_exec([sys.executable, "-m", "pyostree", "receive"]), str(dst))
    try:
        names = [(f"{i:064x}", ObjectType.FILE) for i in range(25 * 4096 + 7)]
        assert client.have(names) == [False] * len(names)
    finally:
        client.abort()
        client.close()


@pytest.mark.parametrize("via", VIAS)
def test_fresh_summary_of_a_collection_repo_names_its_collection(
    tmp_path: Path, two_commits: Tuple[Path, str, str], via: str
) -> None:
    src, _c1, c2 = two_commits
    dst = tmp_path / "dst"
    run_ostree("init", "--mode=archive", "--collection-id=org.example.Push", repo=dst)
    assert do_push(src, dst, via=via, update_summary=True).summary_updated
    shown = run_ostree("summary", "-v", repo=dst)
    assert "* (org.example.Push, main)" in shown and c2 in shown
    assert "Collection ID (ostree.summary.collection-id): org.example.Push" in shown


def test_auto_does_not_route_around_a_receiver_that_refuses(
    tmp_path: Path, two_commits: Tuple[Path, str, str]
) -> None:
    """A receiver that runs and refuses (here: the repo is outside its --root) ends the
    push; only a receiver that cannot be started sends ``auto`` to sftp."""
    src, _c1, _c2 = two_commits
    dst = init(tmp_path / "dst", "archive")
    elsewhere = tmp_path / "allowed"
    elsewhere.mkdir()
    refusing = (sys.executable, "-m", "pyostree", "receive", "--root", str(elsewhere))
    with pytest.raises(PushError, match="outside the allowed root"):
        do_push(src, dst, via="auto", receive_command=refusing)
    assert _objects_of(dst) == set()
    assert not (dst / "refs" / "heads" / "main").exists()
    result = do_push(src, dst, via="auto", receive_command=("false",))
    assert result.via == "sftp"
    assert rev_parse(dst, "main") == rev_parse(src, "main")


def test_plan_asks_once_and_refuses_a_short_answer(two_commits: Tuple[Path, str, str]) -> None:
    """Every candidate goes to the publisher in one ``have`` call (it batches and
    pipelines itself); an answer of the wrong length is an error, never a silent skip."""
    from pyostree.push.plan import RefUpdate, missing_objects

    src, _c1, c2 = two_commits
    repo = Repo.open(src)
    calls: List[int] = []

    def nothing_there(names: Sequence[Tuple[str, ObjectType]]) -> List[bool]:
        calls.append(len(names))
        return [False] * len(names)

    update = RefUpdate("main", None, c2, False)
    names = missing_objects(repo, [update], [], nothing_there)
    assert calls == [len(names)] and len(names) > 30
    with pytest.raises(PushError, match="answered 3 of"):
        missing_objects(repo, [update], [], lambda names: [False] * 3)
