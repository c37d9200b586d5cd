"""Transactions: locking, staging, publication order, CAS refs, crash safety, concurrency."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from ostree_tool import make_sample_tree, needs_ostree, run_ostree
from test_push_support import wait_for
from pyostree.errors import LockError, ObjectError, RefError
from pyostree.objects import DirEntry, DirMeta, DirTree, FileEntry
from pyostree.objects.checksum import sha256_hex
from pyostree.objects.content import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo
from pyostree.repo.commitwrite import CommitRequest, write_commit
from pyostree.repo.lock import RepoLock
from pyostree.repo.refwrite import RefMovedError
from pyostree.repo.staging import StagingDir, read_boot_id
from pyostree.repo import fsutil, publish, refqueue
from pyostree.repo.transaction import Transaction, TransactionError
from pyostree.repo.treebuilder import TreeBuilder

pytestmark = needs_ostree

ROOT_META = DirMeta(0, 0, 0o40755)
HEADER = FileHeader(0, 0, 0o100644)


def new_repo(path: Path, mode: str = "archive", **config: str) -> Repo:
    Repo.init(path, mode)
    if config:
        with open(path / "config", "a", encoding="utf-8") as handle:
            for key, value in config.items():
                handle.write(f"{key.replace('_', '-')}={value}\n")
    return Repo.open(path)


def simple_commit(txn: Transaction, text: bytes, branch: str = "main") -> str:
    checksum = txn.write_content(HEADER, [text])
    tree = txn.write_metadata(DirTree((FileEntry("f", checksum),), ()))
    meta = txn.write_metadata(ROOT_META)
    return write_commit(txn, tree, meta, CommitRequest(branch=branch, timestamp=0)).checksum


def verify_all_objects(repo: Repo) -> int:
    """Every loose object hashes to its name (content via its logical header + payload)."""
    count = 0
    for checksum, objtype in repo.list_objects():
        if objtype is ObjectType.FILE:
            with repo.open_content(checksum) as reader:
                digest = hashlib.sha256(reader.header.framed())
                for chunk in reader.iter_chunks():
                    digest.update(chunk)
        elif objtype in (ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT):
            digest = hashlib.sha256(repo.read_metadata_bytes(checksum, objtype))
        else:
            continue
        assert digest.hexdigest() == checksum, (checksum, objtype)
        count += 1
    return count


# ---- library API ----------------------------------------------------------------------


def test_transaction_writes_objects_and_ref(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        commit = simple_commit(txn, b"hello\n")
        assert not repo.has_object(commit, ObjectType.COMMIT)  # staged, not yet visible
        assert txn.has_object(commit, ObjectType.COMMIT)
    assert repo.read_ref("main") == commit
    assert run_ostree("cat", "main", "/f", repo=tmp_path / "r") == "hello\n"
    run_ostree("fsck", repo=tmp_path / "r")
    assert [p.name for p in (tmp_path / "r/tmp").iterdir()] == ["cache"]


def test_error_inside_transaction_publishes_nothing(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with pytest.raises(ZeroDivisionError):
        with repo.transaction() as txn:
            simple_commit(txn, b"x")
            raise ZeroDivisionError
    assert list(repo.list_objects()) == []
    assert repo.read_ref("main") is None


def test_transaction_misuse_is_rejected(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    with pytest.raises(TransactionError):
        txn.write_metadata(ROOT_META)
    with txn:
        pass
    with pytest.raises(TransactionError):
        txn.write_content(HEADER, [b"late"])
    with pytest.raises(TransactionError):
        txn.begin()


def test_content_size_mismatch_is_rejected(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        with pytest.raises(Exception, match="changed while being read"):
            txn.write_content(HEADER, [b"abc"], size=4)
    assert list(repo.list_objects()) == []


@pytest.mark.parametrize("mode", ["bare-user-only"])
def test_bare_user_only_rejects_foreign_owner(tmp_path: Path, mode: str) -> None:
    repo = new_repo(tmp_path / "r", mode)
    with repo.transaction() as txn:
        with pytest.raises(Exception, match="bare-user-only"):
            txn.write_content(FileHeader(1000, 1000, 0o100644), [b"x"])


def test_existing_object_is_never_rewritten(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r", "bare-user")
    with repo.transaction() as txn:
        checksum = txn.write_content(HEADER, [b"same"])
    path = repo.object_path(checksum, ObjectType.FILE)
    inode = path.stat().st_ino
    with repo.transaction() as txn:
        assert txn.write_content(HEADER, [b"same"]) == checksum
        simple_commit(txn, b"same")
    assert path.stat().st_ino == inode


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "link-fallback"])
def test_publication_is_children_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool) -> None:
    repo = new_repo(tmp_path / "r")
    order: List[str] = []
    real_link = os.link
    real_rename = publish.rename_noreplace

    def spy_link(src: str, dst: str, **kwargs: object) -> None:
        order.append(str(dst).rpartition(".")[2])
        real_link(src, dst, **kwargs)  # type: ignore[arg-type]

    def spy_rename(src: str, dst: str) -> Optional[bool]:
        if not noreplace:
            return None  # as where renameat2 or RENAME_NOREPLACE is missing
        order.append(dst.rpartition(".")[2])
        return real_rename(src, dst)

    monkeypatch.setattr(os, "link", spy_link)
    monkeypatch.setattr(publish, "rename_noreplace", spy_rename)
    with repo.transaction() as txn:
        builder = TreeBuilder(txn, workers=0)
        builder.add_dir("/")
        builder.add_file("a/b/c", b"deep")
        builder.add_symlink("a/l", "b/c")
        tree, meta = builder.finish()
        write_commit(txn, tree, meta, CommitRequest(branch="main", timestamp=0))
    rank = {"filez": 0, "dirmeta": 1, "dirtree": 2, "commit": 3}
    assert [rank[ext] for ext in order] == sorted(rank[ext] for ext in order)
    assert order[-1] == "commit" and len(order) == 7
    run_ostree("fsck", repo=repo.path)
    assert [p.name for p in (repo.path / "tmp").iterdir()] == ["cache"]


# ---- refs -----------------------------------------------------------------------------


def test_publish_objects_then_refs_in_a_second_step(tmp_path: Path) -> None:
    """``publish_objects`` makes objects visible under the repo lock, refs wait for commit."""
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    commit = simple_commit(txn, b"two steps\n")
    txn.publish_objects()
    assert repo.has_object(commit, ObjectType.COMMIT)  # visible now...
    assert repo.read_ref("main") is None               # ...its ref not yet
    assert not [p for p in (tmp_path / "r/tmp").iterdir() if p.name.startswith("staging-")]
    with pytest.raises(LockError):  # the shared repo lock is still held
        RepoLock(str(repo.path), timeout_secs=0).acquire(exclusive=True)
    with pytest.raises(TransactionError, match="already published"):
        txn.write_content(HEADER, [b"late"])
    txn.publish_objects()  # idempotent
    txn.commit()
    assert repo.read_ref("main") == commit
    lock = RepoLock(str(repo.path), timeout_secs=0)
    lock.acquire(exclusive=True)  # released by commit
    lock.release()
    run_ostree("fsck", repo=tmp_path / "r")


def test_abort_after_publish_objects_keeps_objects_moves_no_ref(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    commit = simple_commit(txn, b"published, never referenced\n")
    txn.publish_objects()
    txn.abort()
    assert repo.has_object(commit, ObjectType.COMMIT)
    assert repo.read_ref("main") is None
    lock = RepoLock(str(repo.path), timeout_secs=0)
    lock.acquire(exclusive=True)  # released
    lock.release()
    run_ostree("fsck", repo=tmp_path / "r")


def test_ref_cas_detects_a_moved_ref(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        first = simple_commit(txn, b"one")
    with pytest.raises(RefMovedError, match="moved"):
        with repo.transaction() as txn:
            simple_commit(txn, b"two")
            run_ostree("commit", "-b", "main", "--timestamp=@5", str(tmp_path / "r/tmp/cache"), repo=tmp_path / "r")
    assert repo.read_ref("main") != first  # the other writer's value survives


def test_ref_expected_old_none_means_must_not_exist(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        commit = simple_commit(txn, b"one")
    with pytest.raises(RefMovedError):
        with repo.transaction() as txn:
            txn.set_ref("main", commit, expected_old=None)
    with repo.transaction() as txn:
        txn.set_ref("main", None, expected_old=commit)
    assert repo.read_ref("main") is None


def test_ref_over_ref_directory_is_refused(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        commit = simple_commit(txn, b"one", branch="a/b")
    with pytest.raises(RefError):
        with repo.transaction() as txn:
            txn.set_ref("a", commit)
    with pytest.raises(RefError):
        with repo.transaction() as txn:
            txn.set_ref("a/b/c", commit)


def test_ref_updates_are_all_or_nothing(tmp_path: Path) -> None:
    """A stale expected value of the second ref leaves the first unwritten too."""
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        first = simple_commit(txn, b"one", branch="a")
        txn.set_ref("b", first)
    with repo.transaction() as txn:
        second = simple_commit(txn, b"two", branch="unused")
    with pytest.raises(RefMovedError, match="ref b moved"):
        with repo.transaction() as txn:
            txn.set_ref("a", second, expected_old=first)
            txn.set_ref("b", second, expected_old=second)  # stale: b is at first
    assert (repo.read_ref("a"), repo.read_ref("b")) == (first, first)


def test_ref_updates_refused_by_the_refs_dir_write_none(tmp_path: Path) -> None:
    """A ref the refs dir cannot take (a ref file where its directory goes, also one
    set earlier in the same transaction) is found before any ref is written."""
    repo = new_repo(tmp_path / "r")
    with repo.transaction() as txn:
        first = simple_commit(txn, b"one", branch="a")
    for blocked in ("a/c", "d/e"):
        with pytest.raises(RefError, match="is a ref, not a directory"):
            with repo.transaction() as txn:
                txn.set_ref("x", first)
                txn.set_ref("d", first)
                txn.set_ref(blocked, first)
        assert repo.read_ref("x") is None and repo.read_ref("d") is None
    with repo.transaction() as txn:  # the same ref twice: the last value wins, as before
        txn.set_ref("a", None, expected_old=first)
        txn.set_ref("a", first, expected_old=None)
    assert repo.read_ref("a") == first


# ---- locks and staging ----------------------------------------------------------------


def test_repo_lock_shared_and_exclusive(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    root = str(repo.path)
    shared_a, shared_b = RepoLock(root, timeout_secs=0), RepoLock(root, timeout_secs=0)
    shared_a.acquire(exclusive=False)
    shared_b.acquire(exclusive=False)  # shared locks coexist
    exclusive = RepoLock(root, timeout_secs=0)
    with pytest.raises(LockError, match="exclusive"):
        exclusive.acquire(exclusive=True)
    shared_a.release()
    shared_b.release()
    exclusive.acquire(exclusive=True)
    with pytest.raises(LockError, match="shared"):
        RepoLock(root, timeout_secs=0).acquire(exclusive=False)
    exclusive.release()
    with pytest.raises(LockError):
        exclusive.release()


def test_lock_timeout_and_locking_false(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r", lock_timeout_secs="0")
    holder = RepoLock(str(repo.path), timeout_secs=0)
    holder.acquire(exclusive=True)
    try:
        with pytest.raises(LockError):
            repo.transaction().begin()
        unlocked = new_repo(tmp_path / "r", locking="false")
        with unlocked.transaction() as txn:
            simple_commit(txn, b"no lock")
    finally:
        holder.release()


def test_ostree_prune_waits_for_our_shared_lock(tmp_path: Path) -> None:
    """OFD locks (not flock) so libostree sees our transaction."""
    repo = new_repo(tmp_path / "r")
    with open(repo.path / "config", "a", encoding="utf-8") as handle:
        handle.write("lock-timeout-secs=1\n")
    with repo.transaction() as txn:
        simple_commit(txn, b"x")
        done = subprocess.run(["ostree", "prune", f"--repo={repo.path}"], capture_output=True, text=True)
        assert done.returncode != 0
        assert "Locking repo exclusive failed" in done.stderr
    run_ostree("prune", repo=repo.path)


def test_aborted_staging_dir_is_resumed(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    checksum = txn.write_content(HEADER, [b"staged"])
    staged_dir = txn.staging_path
    txn.abort()
    assert os.path.isdir(staged_dir)
    with repo.transaction() as again:
        assert again.staging_path == staged_dir
        assert again.has_object(checksum, ObjectType.FILE)
        tree = again.write_metadata(DirTree((FileEntry("f", checksum),), ()))
        meta = again.write_metadata(ROOT_META)
        write_commit(again, tree, meta, CommitRequest(branch="main", timestamp=0))
    assert not os.path.exists(staged_dir)
    assert not os.path.exists(staged_dir + "-lock")
    run_ostree("fsck", repo=repo.path)


def test_an_abort_that_staged_nothing_leaves_no_staging_dir(tmp_path: Path) -> None:
    """Nothing to resume: the dir and its lock file go (helper temp dirs, even with a
    partial temp file in them, hold no object)."""
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    staged_dir = txn.staging_path
    helper = txn.helper_tmp_dir("w1-0")
    Path(helper, "0").write_bytes(b"half a file")
    os.mkdir(os.path.join(staged_dir, "ab"))  # an objects/XX dir made, nothing linked yet
    txn.abort()
    assert not os.path.exists(staged_dir)
    assert not os.path.exists(staged_dir + "-lock")
    with repo.transaction() as again:
        assert again.staging_path != staged_dir
    run_ostree("fsck", repo=repo.path)


def test_cleanup_of_other_boots_and_locked_dirs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    tmp = repo.path / "tmp"
    other_boot = tmp / "staging-00000000-0000-0000-0000-000000000000-abcdef"
    (other_boot / "aa").mkdir(parents=True)
    held = StagingDir.acquire(str(tmp))  # a live transaction of this boot (another process)
    old_junk = tmp / "old-junk"
    old_junk.write_text("x")
    os.utime(old_junk, (1, 1))
    fresh_junk = tmp / "fresh-junk"
    fresh_junk.write_text("y")
    with repo.transaction() as txn:
        assert txn.staging_path != held.path
        simple_commit(txn, b"x")
    assert not other_boot.exists()
    assert os.path.isdir(held.path)
    assert not old_junk.exists()
    assert fresh_junk.exists()
    held.remove()
    assert read_boot_id() in os.path.basename(held.path)


# ---- crash safety ---------------------------------------------------------------------

KILL_SCRIPT = r"""
import os, signal, sys
from pyostree.repo import Repo, transaction, refqueue, refwrite
from pyostree.repo.commitwrite import CommitRequest, write_commit
from pyostree.repo.treebuilder import TreeBuilder

repo_path, tree, phase, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = [0]
def tick(*_a):
    calls[0] += 1
    if calls[0] >= count:
        os.kill(os.getpid(), signal.SIGKILL)
if phase == "link":
    real = os.link
    def link(*a, **k):
        tick(); return real(*a, **k)
    os.link = link
if phase == "ref":
    real_ref = refwrite.write_ref
    def write_ref(*a, **k):
        tick(); return real_ref(*a, **k)
    refqueue.write_ref = write_ref
repo = Repo.open(repo_path)
with transaction.Transaction(repo, on_object=tick if phase == "stage" else None) as txn:
    with TreeBuilder(txn) as builder:
        builder.add_directory(tree)
        root = builder.finish()
    write_commit(txn, *root, CommitRequest(branch="main", timestamp=0))
"""


@pytest.mark.parametrize("mode", ["archive", "bare-user"])
def test_kill_9_leaves_repo_consistent(tmp_path: Path, mode: str) -> None:
    tree = tmp_path / "tree"
    make_sample_tree(tree)
    repo = new_repo(tmp_path / "r", mode)
    rng = random.Random(7 if mode == "archive" else 11)
    points = [("stage", rng.randint(1, 40)), ("link", rng.randint(1, 40)), ("ref", 1), ("time", 0)]
    for phase, count in points:
        cmd = [sys.executable, "-c", KILL_SCRIPT, str(repo.path), str(tree), phase, str(count)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if phase == "time":
            time.sleep(rng.uniform(0.2, 0.6))
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL)
        ref = repo.read_ref("main")
        if ref is not None:  # a ref only ever points at a complete commit
            assert repo.has_object(ref, ObjectType.COMMIT)
        verify_all_objects(repo)
        run_ostree("fsck", repo=repo.path)
    with repo.transaction() as txn:  # the leftover staging dir is resumed and finished
        with TreeBuilder(txn) as builder:
            builder.add_directory(tree)
            root = builder.finish()
        write_commit(txn, *root, CommitRequest(branch="main", timestamp=0))
    expected = run_ostree("commit", "--orphan", "--timestamp=@0", "--no-bindings", str(tree), repo=repo.path).strip()
    assert run_ostree("rev-parse", "main", repo=repo.path).strip() != ""
    assert repo.load_commit(repo.read_ref("main") or "").root_tree == repo.load_commit(expected).root_tree
    assert [p.name for p in (repo.path / "tmp").iterdir()] == ["cache"]
    run_ostree("fsck", repo=repo.path)


def test_pyostree_and_ostree_commit_concurrently(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_sample_tree(tree)
    for index in range(30):
        (tree / f"extra{index}").write_bytes(os.urandom(20000))
    repo = new_repo(tmp_path / "r", "archive")
    results: List[str] = []

    def ours() -> None:
        for round_ in range(3):
            with repo.transaction() as txn:
                with TreeBuilder(txn) as builder:
                    builder.add_directory(tree)
                    root = builder.finish()
                results.append(write_commit(txn, *root, CommitRequest(branch=f"py{round_}", timestamp=round_)).checksum)

    thread = threading.Thread(target=ours)
    thread.start()
    for round_ in range(3):
        run_ostree("commit", "-b", f"os{round_}", f"--timestamp=@{round_}", str(tree), repo=repo.path)
    thread.join()
    assert len(results) == 3
    refs = run_ostree("refs", repo=repo.path).split()
    assert sorted(refs) == ["os0", "os1", "os2", "py0", "py1", "py2"]
    assert verify_all_objects(repo) > 30
    run_ostree("fsck", repo=repo.path)
    assert [p.name for p in (repo.path / "tmp").iterdir()] == ["cache"]


@pytest.mark.parametrize("dest_mode", ["bare-user", "archive"])
def test_write_raw_imports_archive_objects_verified(tmp_path: Path, dest_mode: str) -> None:
    src = new_repo(tmp_path / "src", zlib_level="1")
    with src.transaction() as txn:
        commit = simple_commit(txn, b"raw content\n" * 1000)
        link = txn.write_content(FileHeader(0, 0, 0o120777, 0, "target"))
    dest = new_repo(tmp_path / "dest", dest_mode)
    loaded = src.load_commit(commit)
    file_checksum = src.load_dirtree(loaded.root_tree).files[0].checksum
    with dest.transaction() as txn:
        for checksum in (file_checksum, link):
            with open(src.object_path(checksum, ObjectType.FILE), "rb") as handle:
                assert txn.write_raw(checksum, ObjectType.FILE, handle.read) == checksum
        for checksum, objtype in ((loaded.root_tree, ObjectType.DIR_TREE), (loaded.root_meta, ObjectType.DIR_META),
                                  (commit, ObjectType.COMMIT)):
            txn.write_raw(checksum, objtype, src.read_metadata_bytes(checksum, objtype))
        txn.set_ref("main", commit)
        with pytest.raises(Exception, match="corrupted"):
            txn.write_raw(commit, ObjectType.DIR_META, src.read_metadata_bytes(loaded.root_meta, ObjectType.DIR_META))
        with pytest.raises(Exception, match="checksum"):
            txn.write_raw("f" * 64, ObjectType.FILE, src.object_path(file_checksum, ObjectType.FILE).read_bytes())
    run_ostree("fsck", repo=dest.path)
    assert run_ostree("cat", "main", "/f", repo=dest.path) == "raw content\n" * 1000
    if dest_mode == "archive":  # stored verbatim: the source's level-1 stream, not recompressed
        ours = dest.object_path(file_checksum, ObjectType.FILE).read_bytes()
        assert ours == src.object_path(file_checksum, ObjectType.FILE).read_bytes()


@pytest.mark.parametrize("dest_mode", ["bare-user", "bare-user-only", "archive"])
def test_write_raw_refuses_data_after_an_archive_symlink_header(tmp_path: Path, dest_mode: str) -> None:
    """A symlink's ``.filez`` is its header alone: trailing bytes are refused in every mode."""
    src = new_repo(tmp_path / "src")
    with src.transaction() as txn:
        link = txn.write_content(FileHeader(0, 0, 0o120777, 0, "target"))
    good = src.object_path(link, ObjectType.FILE).read_bytes()
    dest = new_repo(tmp_path / "dest", dest_mode)
    with dest.transaction() as txn:
        for junk in (b"\0", b"junk after the header"):
            with pytest.raises(ObjectError, match="data after its header"):
                txn.write_raw(link, ObjectType.FILE, good + junk, known_absent=True)
        assert txn.write_raw(link, ObjectType.FILE, good) == link
    run_ostree("fsck", repo=dest.path)


def test_ostree_resumes_our_aborted_staging_dir(tmp_path: Path) -> None:
    """An unlocked staging dir we leave behind is in a state libostree can reuse."""
    tree = tmp_path / "tree"
    make_sample_tree(tree)
    repo = new_repo(tmp_path / "r", "bare-user")
    txn = repo.transaction()
    txn.begin()
    with TreeBuilder(txn) as builder:
        builder.add_directory(tree)
        builder.finish()
    staged = txn.staging_path
    txn.abort()
    commit = run_ostree("commit", "-b", "main", "--timestamp=@0", str(tree), repo=repo.path).strip()
    assert not os.path.exists(staged)  # ostree resumed (and then removed) our dir
    run_ostree("fsck", repo=repo.path)
    assert repo.read_ref("main") == commit
    verify_all_objects(repo)


@pytest.mark.parametrize("dest_mode", ["bare-user", "archive"])
def test_write_raw_known_absent_never_replaces_an_existing_object(tmp_path: Path, dest_mode: str) -> None:
    """A wrong ``known_absent`` only stages a redundant file; the existing object stays."""
    src = new_repo(tmp_path / "src")
    with src.transaction() as txn:
        commit = simple_commit(txn, b"present already\n")
    loaded = src.load_commit(commit)
    file_checksum = src.load_dirtree(loaded.root_tree).files[0].checksum
    dest = new_repo(tmp_path / "dest", dest_mode)
    with dest.transaction() as txn:
        simple_commit(txn, b"present already\n")
    raw = [(file_checksum, ObjectType.FILE, src.object_path(file_checksum, ObjectType.FILE).read_bytes())]
    raw += [(c, t, src.read_metadata_bytes(c, t)) for c, t in
            ((loaded.root_tree, ObjectType.DIR_TREE), (loaded.root_meta, ObjectType.DIR_META))]
    inodes = {c: dest.object_path(c, t).stat().st_ino for c, t, _ in raw}
    with dest.transaction() as txn:
        for checksum, objtype, data in raw * 2:  # twice: a duplicate within the transaction too
            assert txn.write_raw(checksum, objtype, data, known_absent=True) == checksum
            staged = Path(txn.staging_path) / checksum[:2]
            if objtype is ObjectType.DIR_TREE:  # staged apart until published (issue 13)
                staged = Path(txn.staged_metadata_path(checksum, objtype)).parent
            assert any(p.name.startswith(checksum[2:]) for p in staged.iterdir())  # no existence check
        with pytest.raises(Exception, match="checksum"):
            txn.write_raw("f" * 64, ObjectType.FILE, raw[0][2], known_absent=True)
    assert {c: dest.object_path(c, t).stat().st_ino for c, t, _ in raw} == inodes
    run_ostree("fsck", repo=dest.path)
    assert [p.name for p in (dest.path / "tmp").iterdir()] == ["cache"]


def _tree_family() -> List[Tuple[str, bytes, List[str]]]:
    """(checksum, bytes, child dirtree checksums) of a branching tree 6 levels deep, root last."""
    meta = sha256_hex(ROOT_META.to_bytes())
    family: List[Tuple[str, bytes, List[str]]] = []
    level: List[str] = []
    for depth in range(6):
        made = []
        for width in range(2):
            dirs = tuple(DirEntry(f"d{i}", child, meta) for i, child in enumerate(level))
            data = DirTree((FileEntry(f"n{depth}-{width}", "a" * 64),), dirs).to_bytes()
            checksum = sha256_hex(data)
            family.append((checksum, data, list(level)))
            made.append(checksum)
        level = made
    return family


def _record_publish_order(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Names moved into objects/, in order, whichever publish primitive the system has."""
    order: List[str] = []
    real_rename, real_link = publish.rename_noreplace, publish._link_or_skip

    def rename(source: str, target: str) -> Optional[bool]:
        order.append(os.path.basename(target))
        return real_rename(source, target)

    def link(source: str, target: str) -> None:
        order.append(os.path.basename(target))
        real_link(source, target)

    monkeypatch.setattr(publish, "rename_noreplace", rename)
    monkeypatch.setattr(publish, "_link_or_skip", link)
    return order


def _assert_children_first(order: List[str], family: List[Tuple[str, bytes, List[str]]]) -> None:
    position = {name.split(".")[0]: index for index, name in enumerate(order) if name.endswith(".dirtree")}
    assert len(position) == len({c for c, _d, _k in family})
    for checksum, _data, children in family:
        for child in children:
            assert position[child[2:]] < position[checksum[2:]], "a dirtree was published before its child"


@pytest.mark.parametrize("resumed", [False, True])
def test_dirtrees_are_published_children_first_whatever_the_staging_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resumed: bool
) -> None:
    """Parallel stagers (or a resumed dir) stage parents before children; a crash
    mid-publish must still never leave a dirtree in objects/ without its subtree."""
    family = _tree_family()
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    for checksum, data, _children in reversed(family):  # root first: the worst order
        if resumed:  # left in XX/ by a libostree writer (ours stage them apart)
            staged = Path(txn.staging_path) / checksum[:2]
            staged.mkdir(exist_ok=True)
            (staged / f"{checksum[2:]}.dirtree").write_bytes(data)
        else:
            txn.write_metadata_bytes(ObjectType.DIR_TREE, data, expected_checksum=checksum)
    if resumed:
        txn.abort()
        txn = repo.transaction()
        txn.begin()
    order = _record_publish_order(monkeypatch)
    txn.commit()
    _assert_children_first(order, family)
    for checksum, _data, _children in family:
        assert repo.has_object(checksum, ObjectType.DIR_TREE)


def _staged_file(txn: Transaction, payload: bytes) -> str:
    header = FileHeader(uid=0, gid=0, mode=0o100644)
    return txn.write_content(header, [payload])


def _gated_syncfs(monkeypatch: pytest.MonkeyPatch, *, only_first: bool) -> Tuple[List[str], threading.Event]:
    """syncfs replaced by one that records its callers' thread names; early rounds (only
    the first, with ``only_first``) wait for the event. EARLY_SYNC_BYTES is 1000."""
    calls: List[str] = []
    release = threading.Event()

    def fake_syncfs(fd: int) -> None:
        name = threading.current_thread().name
        calls.append(name)
        if name == "early-syncfs" and (not only_first or calls.count(name) == 1):
            release.wait(5)

    monkeypatch.setattr(publish, "syncfs", fake_syncfs)
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 1000)
    return calls, release


def test_large_staging_syncs_early_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every EARLY_SYNC_BYTES staged, a background syncfs starts (one at a time), and
    publishing still does its own syncfs before any rename."""
    calls, release = _gated_syncfs(monkeypatch, only_first=False)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    _staged_file(txn, os.urandom(600))
    assert calls == []  # below the threshold
    _staged_file(txn, os.urandom(600))
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == ["early-syncfs"]
    for _ in range(3):  # one early sync at a time: these wait for the running one
        _staged_file(txn, os.urandom(1200))
    assert calls == ["early-syncfs"]
    release.set()
    txn.commit()
    assert calls[-1] == "syncfs"  # publishing's own, waited for before any rename
    assert verify_all_objects(repo) == 5


def test_what_was_staged_during_an_early_round_goes_in_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects staged while a round waits on syncfs are published by a next round of the
    same thread, without waiting for another object to be staged."""
    calls, release = _gated_syncfs(monkeypatch, only_first=True)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    first = _staged_file(txn, os.urandom(1200))
    assert wait_for(lambda: calls == ["early-syncfs"])
    later = [_staged_file(txn, os.urandom(600)) for _ in range(2)]  # during the first round
    release.set()
    assert wait_for(lambda: all(repo.has_object(c, ObjectType.FILE) for c in [first, *later]))
    assert calls == ["early-syncfs", "early-syncfs"]
    txn.abort()
    assert verify_all_objects(repo) == 3


@pytest.mark.parametrize("staged_after", [0, 1])
def test_sync_ahead_is_the_publish_sync_unless_more_was_staged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staged_after: int) -> None:
    """sync_ahead() begins publishing's syncfs early, then renames what it made durable;
    the publish waits for it, and syncs again, before renaming them, only for objects
    staged after it began."""
    events: List[str] = []
    repo = new_repo(tmp_path / "r")
    objects_dir = tmp_path / "r" / "objects"

    def fake_syncfs(fd: int) -> None:
        published = [p for p in objects_dir.rglob("*") if p.is_file()]
        events.append(f"syncfs with {len(published)} published")

    monkeypatch.setattr(publish, "syncfs", fake_syncfs)
    txn = repo.transaction()
    txn.begin()
    _staged_file(txn, b"before")
    txn.sync_ahead()
    for index in range(staged_after):
        _staged_file(txn, b"after %d" % index)
    txn.commit()
    assert events == ["syncfs with 0 published"] + ["syncfs with 1 published"] * staged_after
    assert verify_all_objects(repo) == 1 + staged_after


def test_sync_ahead_does_not_wait_for_a_running_early_round(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sync_ahead() returns at once while an early round waits on the disk (the caller's
    checks overlap it); no round begins after that one, which finishes its renames, and
    sync_ahead's own syncfs follows it."""
    events: List[str] = []
    release = threading.Event()

    def gated_syncfs(fd: int) -> None:
        name = threading.current_thread().name
        events.append(f"{name} enters")
        if name == "early-syncfs":
            release.wait(5)
        events.append(f"{name} returns")

    monkeypatch.setattr(publish, "syncfs", gated_syncfs)
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 1000)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    first = _staged_file(txn, os.urandom(1200))
    assert wait_for(lambda: events == ["early-syncfs enters"])
    later = _staged_file(txn, os.urandom(1200))  # over the threshold again, during the round
    txn.sync_ahead()
    assert events == ["early-syncfs enters"]  # returned while the round still waits
    release.set()
    assert wait_for(lambda: all(repo.has_object(c, ObjectType.FILE) for c in [first, later]))
    txn.commit()
    assert events == ["early-syncfs enters", "early-syncfs returns",
                      "syncfs enters", "syncfs returns"]  # and nothing new to sync at commit
    assert verify_all_objects(repo) == 2


def test_a_failing_sync_ahead_fails_the_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_syncfs(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(publish, "syncfs", failing_syncfs)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    _staged_file(txn, b"content")
    txn.sync_ahead()
    with pytest.raises(OSError, match="Input/output error"):
        txn.commit()
    assert verify_all_objects(repo) == 0


def test_a_failing_early_sync_is_left_to_the_final_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_syncfs(fd: int) -> None:
        if threading.current_thread().name == "early-syncfs":
            raise OSError(5, "Input/output error")
        raise OSError(5, "Input/output error (final)")

    monkeypatch.setattr(publish, "syncfs", failing_syncfs)
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 100)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    checksum = _staged_file(txn, os.urandom(500))
    with pytest.raises(OSError, match="final"):
        txn.commit()
    assert not repo.has_object(checksum, ObjectType.FILE)


def test_no_early_sync_without_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[int] = []
    monkeypatch.setattr(publish, "syncfs", lambda fd: calls.append(fd))
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 100)
    repo = new_repo(tmp_path / "r", fsync="false")
    with repo.transaction() as txn:
        _staged_file(txn, os.urandom(5000))
    assert calls == []


def test_leaves_staged_before_an_early_sync_are_published_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content and dirmeta are renamed into objects/ once a background syncfs made them
    durable; dirtrees and commits wait for the publish at commit."""
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 2000)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    meta = txn.write_metadata(DirMeta(0, 0, 0o40755))
    files = [_staged_file(txn, os.urandom(700)) for _ in range(3)]  # the third crosses 2000
    tree = txn.write_metadata(DirTree(files=tuple(FileEntry(f"f{i}", c) for i, c in enumerate(files)), dirs=()))
    assert wait_for(lambda: all(repo.has_object(c, ObjectType.FILE) for c in files))
    assert repo.has_object(meta, ObjectType.DIR_META)
    assert not repo.has_object(tree, ObjectType.DIR_TREE)
    txn.abort()  # published leaves stay (valid, unreferenced); no ref moved
    assert repo.list_refs() == {}
    assert verify_all_objects(repo) == 4
    with repo.transaction() as again:  # a later transaction finds them present
        for checksum in files:
            assert again.has_object(checksum, ObjectType.FILE)
        again.write_metadata(DirTree(files=tuple(FileEntry(f"f{i}", c) for i, c in enumerate(files)), dirs=()))
    assert repo.has_object(tree, ObjectType.DIR_TREE)
    run_ostree("fsck", f"--repo={repo.path}")


def test_early_publishing_moves_a_dirtree_only_when_its_subtree_is_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an early sync after every object, a commit's leaves go early, and so does a
    dirtree once every file, subdirectory dirtree and dirmeta it names is in objects/
    (a dirtree there is trusted complete); the commit only at commit time. ostree
    accepts the result."""
    early: List[str] = []
    incomplete: List[str] = []
    real = publish.Publisher._publish_one
    objects_dir = tmp_path / "r" / "objects"

    def publish_one(self: publish.Publisher, source: str, target: str) -> None:
        if threading.current_thread().name == "early-syncfs":
            kind = target.rpartition(".")[2]
            early.append(kind)
            if kind == "dirtree":
                tree = DirTree.from_bytes(Path(source).read_bytes())
                relpath = self._stager.relpath
                names = [relpath(f.checksum, ObjectType.FILE) for f in tree.files]
                for sub in tree.dirs:
                    names += [relpath(sub.tree_checksum, ObjectType.DIR_TREE),
                              relpath(sub.meta_checksum, ObjectType.DIR_META)]
                incomplete.extend(name for name in names if not (objects_dir / name).exists())
        real(self, source, target)

    monkeypatch.setattr(publish.Publisher, "_publish_one", publish_one)
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 1)
    repo = new_repo(tmp_path / "r")
    make_sample_tree(tmp_path / "tree")
    with repo.transaction() as txn:
        with TreeBuilder(txn, workers=0) as builder:
            builder.add_directory(tmp_path / "tree")
            root = builder.finish()
        # the last round after the last object staged publishes the whole tree
        assert wait_for(lambda: repo.has_object(root[0], ObjectType.DIR_TREE))
        write_commit(txn, *root, CommitRequest(branch="main", timestamp=0))
    assert {"filez", "dirmeta", "dirtree"} <= set(early) and "commit" not in early
    assert incomplete == []
    run_ostree("fsck", repo=repo.path)


def test_a_dirtree_staged_before_its_files_goes_early_once_the_last_is_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push sends dirtrees first: each round looks again only at a dirtree whose awaited
    object came. One that another writer put into objects/ after a round found it absent
    is not looked up again: that dirtree waits for the commit, which publishes it."""
    monkeypatch.setattr(publish, "EARLY_SYNC_BYTES", 1)  # a round per object
    with new_repo(tmp_path / "names").transaction() as elsewhere:  # only to learn the names
        names = [elsewhere.write_content(HEADER, [b"file %d" % i]) for i in range(4)]
    repo = new_repo(tmp_path / "r")
    entries = tuple(FileEntry(f"f{i}", c) for i, c in enumerate(names))
    txn = repo.transaction()
    txn.begin()
    meta = txn.write_metadata(ROOT_META)
    sub = txn.write_metadata(DirTree(files=entries[:2], dirs=()))
    top = txn.write_metadata(DirTree(files=entries[2:], dirs=(DirEntry("sub", sub, meta),)))
    assert txn.write_content(HEADER, [b"file 0"]) == names[0]
    assert wait_for(lambda: repo.has_object(names[0], ObjectType.FILE))
    assert not repo.has_object(sub, ObjectType.DIR_TREE)  # waits for file 1
    txn.write_content(HEADER, [b"file 1"])
    assert wait_for(lambda: repo.has_object(sub, ObjectType.DIR_TREE))  # its last file came
    txn.write_content(HEADER, [b"file 2"])
    assert wait_for(lambda: repo.has_object(names[2], ObjectType.FILE))
    assert not repo.has_object(top, ObjectType.DIR_TREE)  # file 3: neither staged nor there
    with repo.transaction() as other:  # another writer adds file 3
        other.write_content(HEADER, [b"file 3"])
    other_file = txn.write_content(HEADER, [b"something else"])  # another round
    assert wait_for(lambda: repo.has_object(other_file, ObjectType.FILE))
    assert wait_for(lambda: txn._publisher._early_thread is None)  # that round is over, no other
    assert not repo.has_object(top, ObjectType.DIR_TREE)  # file 3 was not looked up again
    write_commit(txn, top, meta, CommitRequest(branch="main", timestamp=0))
    txn.commit()
    assert repo.has_object(top, ObjectType.DIR_TREE)
    run_ostree("fsck", repo=repo.path)


def test_parallel_io_visits_every_path_once_and_raises_a_failure() -> None:
    paths = [str(index) for index in range(50)]
    seen: List[str] = []
    fsutil.parallel_io(seen.append, paths)
    assert sorted(seen, key=int) == paths

    def fail_on_seven(path: str) -> None:
        if path == "7":
            raise OSError(5, "Input/output error", path)

    with pytest.raises(OSError, match="Input/output error"):
        fsutil.parallel_io(fail_on_seven, paths)


def test_publish_objects_takes_the_given_dirtrees_in_their_order_and_drops_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    meta = txn.write_metadata(DirMeta(0, 0, 0o40755))
    leaf = txn.write_metadata(DirTree(files=(FileEntry("f", _staged_file(txn, b"x")),), dirs=()))
    top = txn.write_metadata(DirTree(files=(), dirs=(DirEntry("sub", leaf, meta),)))
    stray = txn.write_metadata(DirTree(files=(FileEntry("g", "ab" * 32),), dirs=()))
    renamed: List[str] = []
    publish_one = publish.Publisher._publish_one

    def recording(self: publish.Publisher, source: str, target: str) -> None:
        renamed.append(os.path.basename(os.path.dirname(target)) + os.path.basename(target))
        publish_one(self, source, target)

    monkeypatch.setattr(publish.Publisher, "_publish_one", recording)
    txn.publish_objects([leaf, top])
    txn.commit()
    trees = [name for name in renamed if name.endswith(".dirtree")]
    assert trees == [f"{leaf}.dirtree", f"{top}.dirtree"]
    assert repo.has_object(top, ObjectType.DIR_TREE) and repo.has_object(leaf, ObjectType.DIR_TREE)
    assert not repo.has_object(stray, ObjectType.DIR_TREE)
    assert repo.has_object(meta, ObjectType.DIR_META)


def test_an_abort_stops_and_waits_for_what_sync_ahead_began(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """abort() stops sync_ahead's renames and waits for its thread: a later transaction
    resumes a staging dir nobody is moving files out of any more."""
    entered = threading.Event()
    release = threading.Event()

    def blocked_syncfs(fd: int) -> None:
        if threading.current_thread().name == "syncfs":
            entered.set()
            release.wait(5)

    monkeypatch.setattr(publish, "syncfs", blocked_syncfs)
    repo = new_repo(tmp_path / "r")
    txn = repo.transaction()
    txn.begin()
    files = [_staged_file(txn, b"staged %d" % index) for index in range(20)]
    txn.sync_ahead()
    assert entered.wait(5)
    aborting = threading.Thread(target=txn.abort)
    aborting.start()
    time.sleep(0.1)
    assert aborting.is_alive()  # waiting for the thread sync_ahead started
    release.set()
    aborting.join(5)
    assert not aborting.is_alive()
    assert not any(t.name == "syncfs" for t in threading.enumerate())
    assert not any(repo.has_object(c, ObjectType.FILE) for c in files)  # stopped before renaming
    with repo.transaction() as again:
        assert all(again.has_object(c, ObjectType.FILE) for c in files)  # resumed, staged
    assert all(repo.has_object(c, ObjectType.FILE) for c in files)
    assert verify_all_objects(repo) == 20


def test_syncfs_is_on_the_file_system_of_the_staged_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tmp/`` and ``objects/`` may be symlinks (or mounts) away from the repo root: the
    syncfs before publishing must reach the file system the objects are staged on. (With
    only ``tmp/`` elsewhere, publishing fails with EXDEV, in libostree too.)"""
    repo = new_repo(tmp_path / "r")
    away = tmp_path / "away"
    away.mkdir()
    for name in ("tmp", "objects"):
        shutil.move(str(repo.path / name), str(away / name))
        (repo.path / name).symlink_to(away / name)
    synced: List[str] = []

    def recording_syncfs(fd: int) -> None:
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(publish, "syncfs", recording_syncfs)
    repo = Repo.open(repo.path)
    with repo.transaction() as txn:
        commit = simple_commit(txn, b"synced where it is\n")
    assert repo.read_ref("main") == commit
    assert synced and all(path.startswith(str(away) + os.sep) for path in synced), synced
    run_ostree("fsck", repo=repo.path)


def test_ref_dirs_are_fsynced_before_commit_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver answers DONE once commit returns: the ref's rename, and the dirs made
    for it, must be durable by then (the ref file's own fdatasync does not cover them)."""
    repo = new_repo(tmp_path / "r")
    synced: List[Tuple[str, bool]] = []
    real = refqueue.fsync_dir

    def recording(path: str) -> None:
        ref = repo.path / "refs" / "heads" / "team" / "os" / "stable"
        synced.append((os.path.relpath(path, repo.path), ref.exists()))
        real(path)

    monkeypatch.setattr(refqueue, "fsync_dir", recording)
    with repo.transaction() as txn:
        txn.set_ref("team/os/stable", simple_commit(txn, b"durable ref\n", branch="other"))
    after_ref = {path for path, ref_there in synced if ref_there}
    assert {"refs", "refs/heads", "refs/heads/team", "refs/heads/team/os"} <= after_ref, synced
