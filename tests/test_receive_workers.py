"""Staging worker processes (``pyostree receive --workers N``): archive objects verified
and staged by forked workers make the same repository, and draw the same refusals, as the
receiver's own path; a worker's death or the receiver's fails cleanly."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from ostree_tool import needs_ostree
from test_push_support import (
    commit, do_push, init, make_tree, object_files, ostree_fsck, rev_parse, wait_for)
from test_receive_hostile import HOSTILE_FILEZ, _filez, _snapshot, _staged_names, hostile_filez
from test_receive_v2 import MALFORMED_BATCHES, V2Client, _content, _repo_entries

from pyostree.objects import FileHeader
from pyostree.objects.types import ObjectType
from pyostree.transport.wire import Encoding, FrameKind, encode_batch_entry, encode_have
from pyostree.receive.server import INLINE_BYTES, INLINE_OBJECTS

pytestmark = needs_ostree

BATCH = 25  # entries per OBJECTS frame: several frames, so every worker gets some


PADDING_SIZE = 700_000  # one incompressible .filez per OBJECTS frame (at most 1 MiB)
PADDING_NAMES: Dict[str, bytes] = {}  # checksum -> .filez bytes, made once


def _padding() -> List[bytes]:
    """Valid content objects, more than INLINE_BYTES of them: a session that begins with
    them stages the rest with its workers (the first INLINE_BYTES are staged inline)."""
    if not PADDING_NAMES:
        header = FileHeader(uid=0, gid=0, mode=0o100644)
        for _ in range(INLINE_BYTES // PADDING_SIZE + 1):
            payload = os.urandom(PADDING_SIZE)
            checksum = hashlib.sha256(header.framed() + payload).hexdigest()
            PADDING_NAMES[checksum] = _filez(header, payload)
    return [encode_batch_entry(ObjectType.FILE, checksum, Encoding.FILEZ, data)
            for checksum, data in PADDING_NAMES.items()]


def _client(workers: str, *extra: str) -> V2Client:
    return V2Client("-v", "--workers", workers, "--idle-timeout", "60", *extra)


def _pad(client: V2Client) -> None:
    for entry in _padding():
        client.send_batch([entry])


def _unpadded(names: Set[str]) -> Set[str]:
    return {name for name in names if not any(name.startswith(c[2:]) for c in PADDING_NAMES)}


def _stderr(client: V2Client) -> str:
    assert client.proc.stdin is not None and client.proc.stderr is not None
    client.proc.stdin.close()
    client.proc.wait(timeout=30)
    return client.proc.stderr.read().decode()


def _children(pid: int) -> List[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
        return [int(word) for word in handle.read().split()]


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited; its parent has not reaped it yet
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("workers", ["0", "2"])
def test_workers_or_not_the_same_objects_land(tmp_path: Path, workers: str) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=150))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    client = _client(workers)
    client.hello_v2(dst)
    _pad(client)
    for start in range(0, len(entries), BATCH):
        client.send_batch(entries[start:start + BATCH])
    done = client.finish([{"ref": "main", "old": None, "new": head}])
    log = _stderr(client)
    assert done["objects"] == len(entries) + len(PADDING_NAMES)
    assert ("staging with 2 worker processes" in log) == (workers == "2"), log
    assert rev_parse(dst, "main") == head
    assert "no errors found" in ostree_fsck(dst)
    padding = {f"objects/{c[:2]}/{c[2:]}.filez" for c in PADDING_NAMES}
    assert set(object_files(dst)) == set(object_files(src)) | padding
    for name in object_files(src):  # archive to archive: the sender's bytes, kept
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
        assert (dst / name).stat().st_mode & 0o777 == 0o644, name
    assert not list((dst / "tmp").glob("staging-*")), "the staging dir outlived the commit"


def _refused_both_ways(tmp_path: Path, body: bytes) -> List[Tuple[str, Path]]:
    """(ERROR, remote) of a receiver without and with workers, each sent the padding and
    then one OBJECTS frame with ``body``: the same words both ways, remotes unchanged."""
    results = []
    for workers in ("0", "2"):
        dst = init(tmp_path / f"dst{workers}", "archive")
        before = _snapshot(dst)
        client = _client(workers)
        client.hello_v2(dst)
        _pad(client)
        client.send(FrameKind.OBJECTS, b"\x00" + body)
        results.append((client.error(), dst))
        assert _snapshot(dst) == before
    assert results[0][0] == results[1][0]
    return results


@pytest.mark.parametrize(("case", "message"), HOSTILE_FILEZ)
def test_a_worker_refuses_what_the_receiver_refuses_in_the_same_words(
        tmp_path: Path, case: str, message: str) -> None:
    name, data = hostile_filez(case)
    good_name, good = _content(1)
    body = (encode_batch_entry(ObjectType.FILE, good_name, Encoding.CONTENT, good)
            + encode_batch_entry(ObjectType.FILE, name, Encoding.FILEZ, data))
    results = _refused_both_ways(tmp_path, body)
    assert message in results[0][0]
    for _error, dst in results:
        assert name[2:] not in {n.split(".")[0] for n in _staged_names(dst)}


@pytest.mark.parametrize(("body", "message"), MALFORMED_BATCHES)
def test_a_malformed_batch_is_refused_in_the_same_words(
        tmp_path: Path, body: bytes, message: str) -> None:
    results = _refused_both_ways(tmp_path, body)
    assert message in results[0][0]
    for _error, dst in results:
        assert not _unpadded(_staged_names(dst))


@dataclass
class _Midway:
    """A session with two workers that has staged the first ``sent`` entries of a push."""

    src: Path
    dst: Path
    head: str
    entries: List[bytes]
    client: V2Client
    workers: List[int]


def _midway(tmp_path: Path, sent: int) -> _Midway:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=150))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    client = _client("2")
    client.hello_v2(dst)
    _pad(client)
    for start in range(0, sent, BATCH):
        client.send_batch(entries[start:min(start + BATCH, sent)])
    client.send(FrameKind.HAVE, encode_have([(head, ObjectType.COMMIT)]))
    assert client.reader.expect(FrameKind.HAVE_REPLY)  # what was sent is staged
    workers = _children(client.proc.pid)
    assert len(workers) == 2
    return _Midway(src, dst, head, entries, client, workers)


def test_a_killed_worker_fails_the_push_cleanly(tmp_path: Path) -> None:
    m = _midway(tmp_path, BATCH)
    before = _snapshot(m.dst)
    os.kill(m.workers[0], signal.SIGKILL)
    for start in range(BATCH, len(m.entries), BATCH):
        m.client.send_batch(m.entries[start:start + BATCH])
    error = m.client.error()
    assert f"staging worker {m.workers[0]} exited unexpectedly" in error
    assert _gone(m.workers[1]), "the other worker outlived its receiver"
    assert _snapshot(m.dst) == before
    assert "no errors found" in ostree_fsck(m.dst)
    # The next push resumes the staging dir and completes.
    do_push(m.src, m.dst, "main")
    assert rev_parse(m.dst, "main") == m.head
    assert "no errors found" in ostree_fsck(m.dst)


def test_workers_end_with_a_killed_receiver_and_free_the_repo(tmp_path: Path) -> None:
    m = _midway(tmp_path, BATCH * 3)
    m.client.proc.kill()
    m.client.proc.wait(timeout=30)
    for pid in m.workers:
        assert _gone(pid), f"worker {pid} outlived its killed receiver"
    assert "no errors found" in ostree_fsck(m.dst)
    do_push(m.src, m.dst, "main")  # the repo and staging locks died with the receiver
    assert rev_parse(m.dst, "main") == m.head
    assert "no errors found" in ostree_fsck(m.dst)


def test_a_small_push_starts_no_worker_and_no_thread(tmp_path: Path) -> None:
    """Below INLINE_BYTES everything is staged on the reading thread: no fork, no thread
    (into a repo that is not empty: see the next test)."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=40))
    dst = init(tmp_path / "dst", "archive")
    commit(dst, make_tree(tmp_path / "other", files=3), "other")
    head, entries = _repo_entries(src)
    assert sum(map(len, entries)) < INLINE_BYTES
    client = _client("2")
    assert client.hello_v2(dst)["empty"] is False
    client.send_batch(entries)
    client.send(FrameKind.HAVE, encode_have([(head, ObjectType.COMMIT)]))
    assert client.reader.expect(FrameKind.HAVE_REPLY).payload == b"\x01"  # staged
    pid = client.proc.pid
    assert _children(pid) == []
    assert os.listdir(f"/proc/{pid}/task") == [str(pid)]
    client.finish([{"ref": "main", "old": None, "new": head}])
    assert "worker processes" not in _stderr(client)
    assert rev_parse(dst, "main") == head


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_an_empty_repo_gets_workers_before_the_first_object(tmp_path: Path) -> None:
    """Into an empty archive repo a push sends everything: the workers and the writer
    thread start while the client reads REPO, and no object is staged inline."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=40))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    client = _client("2")
    assert client.hello_v2(dst)["empty"] is True
    pid = client.proc.pid
    assert wait_for(lambda: len(_children(pid)) == 2 and _threads(pid) == 2, timeout=10)
    workers = _children(pid)
    assert [p.name for p in (dst / "tmp").glob("staging-*") if p.is_dir()]
    client.send_batch(entries)
    done = client.finish([{"ref": "main", "old": None, "new": head}])
    assert done["objects"] == len(entries)
    assert "staging with 2 worker processes" in _stderr(client)
    assert all(_gone(worker) for worker in workers)
    assert rev_parse(dst, "main") == head
    assert "no errors found" in ostree_fsck(dst)
    assert not list((dst / "tmp").glob("staging-*"))


@pytest.mark.parametrize("ending", ["no-op", "abort"])
def test_a_session_that_sends_nothing_leaves_an_empty_repo_as_it_was(
        tmp_path: Path, ending: str) -> None:
    """The transaction begun for an empty repo is dropped with its staging dir and lock,
    and the workers end, when no object comes."""
    dst = init(tmp_path / "dst", "archive")
    client = _client("2")
    assert client.hello_v2(dst)["empty"] is True
    pid = client.proc.pid
    assert wait_for(lambda: len(_children(pid)) == 2, timeout=10)
    workers = _children(pid)
    if ending == "no-op":
        assert client.finish([])["objects"] == 0
    else:
        client.send(FrameKind.ABORT)
    _stderr(client)
    assert client.proc.returncode == 0
    assert all(_gone(worker) for worker in workers)
    assert not list((dst / "tmp").glob("staging-*"))  # neither the dir nor its lock file
    assert not any((dst / "objects").iterdir())
    assert not any(p.is_file() for p in (dst / "refs").rglob("*"))
    assert "no errors found" in ostree_fsck(dst)


def test_many_small_objects_end_inline_staging(tmp_path: Path) -> None:
    """Past INLINE_OBJECTS objects the reading thread stops staging them itself, however
    few their bytes: the rest go to the writer thread and the workers."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=INLINE_OBJECTS + 60))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    assert sum(map(len, entries)) < INLINE_BYTES and len(entries) > INLINE_OBJECTS + 64
    client = _client("2")
    client.hello_v2(dst)
    for start in range(0, len(entries), 64):
        client.send_batch(entries[start:start + 64])
    done = client.finish([{"ref": "main", "old": None, "new": head}])
    assert done["objects"] == len(entries)
    assert "staging with 2 worker processes" in _stderr(client)
    assert rev_parse(dst, "main") == head
    assert "no errors found" in ostree_fsck(dst)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_object_another_pusher_publishes_into_an_empty_repo_is_kept_once(
        tmp_path: Path, workers: str) -> None:
    """The repo was empty at REPO, so nothing is looked up before staging; an object that
    another pusher put into objects/ meanwhile is staged again, and publishing keeps the
    copy already there (a hardlinked checkout of it stays intact)."""
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=30))
    dst = init(tmp_path / "dst", "archive")
    head, entries = _repo_entries(src)
    client = _client(workers)
    assert client.hello_v2(dst)["empty"] is True
    theirs = sorted(name for name in object_files(src) if name.endswith(".filez"))[0]
    (dst / theirs).parent.mkdir(parents=True, exist_ok=True)
    (dst / theirs).write_bytes((src / theirs).read_bytes())
    inode = (dst / theirs).stat().st_ino
    _pad(client)
    for start in range(0, len(entries), BATCH):
        client.send_batch(entries[start:start + BATCH])
    client.finish([{"ref": "main", "old": None, "new": head}])
    _stderr(client)
    assert rev_parse(dst, "main") == head
    assert (dst / theirs).stat().st_ino == inode
    assert "no errors found" in ostree_fsck(dst)
    assert not list((dst / "tmp").glob("staging-*"))


def test_a_bare_repo_is_staged_without_workers(tmp_path: Path) -> None:
    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", files=40))
    dst = init(tmp_path / "dst", "bare-user")
    head, entries = _repo_entries(src)
    client = _client("2", "--allow-modes=bare-user")
    client.hello_v2(dst)
    _pad(client)
    client.send_batch(entries)
    client.finish([{"ref": "main", "old": None, "new": head}])
    assert "worker processes" not in _stderr(client)
    assert "no errors found" in ostree_fsck(dst)


def test_negative_worker_count_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pyostree", "receive", "--workers", "-1"],
                          input=b"", capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == "error: --workers must be 0 or more"


@pytest.mark.parametrize(("cpus", "expected"), [({0}, 0), (None, None)])
def test_default_worker_count_follows_the_usable_cpus(cpus: object, expected: object) -> None:
    """One CPU: none. More: one per CPU, at most MAX_WORKERS."""
    script = (
        "import os\n"
        f"cpus = {cpus!r}\n"
        "if cpus: os.sched_setaffinity(0, cpus)\n"
        "from pyostree.receive.workers import MAX_WORKERS, default_worker_count\n"
        "print(default_worker_count(), len(os.sched_getaffinity(0)), MAX_WORKERS)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    count, usable, most = (int(word) for word in done.stdout.split())
    if expected is None:
        expected = min(usable, most) if usable > 1 else 0
    assert count == expected
