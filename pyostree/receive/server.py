"""The receiving end of a push: one session over stdin/stdout, the trust boundary.

Everything the client sends is checked before it can become visible: frame sizes are
bounded, objects are re-hashed and validated while they are staged in a write
transaction (shared repo lock, libostree-compatible staging dir), pushed commits must be
complete, refs move only by compare-and-swap, and the summary is regenerated after them.
Any error aborts the transaction: staged objects stay in the staging dir for the next
push to resume from, nothing appears in ``objects/`` or ``refs/``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING, Any, BinaryIO, Callable, Collection, Deque, Dict, Iterator, List, Mapping, Optional,
    Set, Tuple, Union,
)

from pyostree.errors import PushError, PyOstreeError, RefError
from pyostree.objects.checksum import validate_checksum
from pyostree.objects.names import validate_ref_name
from pyostree.objects.types import ObjectType
from pyostree.transport.wire import (
    BATCH_VERSION,
    MAGIC,
    MAX_CONTROL_SIZE,
    PROTOCOL_VERSIONS,
    REFS_VERSION,
    DataCodec,
    Frame,
    FrameKind,
    FrameReader,
    FrameWriter,
    IdleTimeoutReader,
    ProtocolError,
    SmallObject,
    decode_batch,
    decode_have,
    decode_json,
    decode_object_header,
    encode_have_reply,
    encode_json,
    parse_ref_request,
    zstd_available,
)

if TYPE_CHECKING:
    import mmap

    from pyostree.repo import Repo
    from concurrent.futures import Future, ThreadPoolExecutor

    from pyostree.receive.workers import WorkerPool
    from pyostree.repo.transaction import Transaction

__all__ = ["ReceiveConfig", "RefUpdateRequest", "serve", "resolve_repo_path"]

LogFn = Callable[[str], None]
DEFAULT_ALLOW_MODES: Tuple[str, ...] = ("archive", "bare-user-only")


@dataclass(frozen=True)
class ReceiveConfig:
    """Server-side policy: ``root`` confines which repos a client may open;
    ``idle_timeout`` (seconds, None = wait forever) ends a session whose client has sent
    nothing for that long, releasing the repo lock and the staging dir."""

    root: Optional[str] = None
    idle_timeout: Optional[float] = None
    workers: Optional[int] = 0
    """Staging worker processes (forks of this one) for archive repos, see
    pyostree.receive.workers; None: one per CPU (none on a single CPU). The default, 0,
    verifies and writes in this process: a library caller's process is not forked unasked."""
    allow_modes: Tuple[str, ...] = DEFAULT_ALLOW_MODES
    """Repo modes a client may open: by default the ones a publisher serves. A bare repo
    gives each object file the pushed owner, mode and xattrs."""
    allow_privileged_files: bool = False
    """Into a bare repo, accept content with setuid/setgid bits or ``security.capability``."""
    allow_commitmeta_replace: bool = False
    """Let a push replace a commit's detached metadata (its signatures) that differs."""


@dataclass(frozen=True)
class RefUpdateRequest:
    ref: str
    old: Optional[str]
    new: str


def resolve_repo_path(requested: str, root: Optional[str]) -> str:
    """The real path of the repo a client asked for, refused if it escapes ``root``."""
    if not requested or "\0" in requested:
        raise PushError("invalid repository path")
    if root is None:
        return os.path.realpath(requested)
    real_root = os.path.realpath(root)
    joined = requested if os.path.isabs(requested) else os.path.join(real_root, requested)
    real = os.path.realpath(joined)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise PushError(f"repository {requested!r} is outside the allowed root")
    return real


def _check_mode(repo: Repo, allowed: Collection[str]) -> None:
    """Refuse a repo whose mode the receiver's policy does not list."""
    from pyostree.repo.config import RepoMode

    if repo.mode not in {RepoMode.parse(name) for name in allowed}:
        name = "archive" if repo.mode is RepoMode.ARCHIVE else repo.mode.value
        raise PushError(f"this receiver does not accept {name} repos "
                        f"(allowed: {', '.join(allowed) or 'none'}; see --allow-modes)")


def _parse_updates(value: Dict[str, object]) -> Tuple[List[RefUpdateRequest], Optional[bool]]:
    raw_refs = value.get("refs")
    if not isinstance(raw_refs, list) or len(raw_refs) > 10000:
        raise ProtocolError("UPDATE needs a list of at most 10000 refs")
    updates: List[RefUpdateRequest] = []
    seen: Set[str] = set()
    for item in raw_refs:
        if not isinstance(item, dict):
            raise ProtocolError("UPDATE entries must be objects")
        ref, old, new = item.get("ref"), item.get("old"), item.get("new")
        if not isinstance(ref, str) or not isinstance(new, str):
            raise ProtocolError("UPDATE entry needs string 'ref' and 'new'")
        if old is not None and not isinstance(old, str):
            raise ProtocolError("UPDATE entry 'old' must be a string or null")
        validate_ref_name(ref, allow_checksum=False)
        validate_checksum(new)
        if old is not None:
            validate_checksum(old)
        if ref in seen:
            raise ProtocolError(f"ref {ref!r} updated twice")
        seen.add(ref)
        updates.append(RefUpdateRequest(ref, old, new))
    summary = value.get("summary")
    if summary is not None and not isinstance(summary, bool):
        raise ProtocolError("UPDATE 'summary' must be a boolean or null")
    return updates, summary


RECEIVED_META_BYTES = 16 << 20
"""Commit bytes kept in memory for the completeness check at COMMIT."""
ABSENT_LIMIT = 200_000
"""Content names remembered from HAVE replies (~100 bytes each)."""
REFS_ASKED_LIMIT = 200_000
"""Ref names one session may ask for in OPEN and REFS frames (a file lookup each)."""
SMALL_OBJECT = 4 << 20
"""Content objects up to this size are read whole and staged by a worker thread."""
STAGER_THREADS = 1
"""One writer: the reading thread verifies ``.filez`` ahead of it, and a second writer
measured slower (GIL hand-offs on every syscall, and ext4 serialises much of it)."""
STAGER_MAX_BYTES = 32 << 20
"""Bytes of read-ahead objects waiting for a worker: the receiver's memory bound."""
INLINE_BYTES = 2 << 20
"""Objects staged on the reading thread before the writer thread (and the staging worker
processes, which must be forked before it) start: a small push pays for neither, ~15 ms
measured for an incremental push of 41 files."""
INLINE_OBJECTS = 256
"""At most this many objects are staged inline (each is a file written): a client that
sends its many small dirtrees first gets them staged by the writer thread while the
reading thread goes on to the content behind them."""


class _Stager:
    """Stages objects in worker threads while the main thread keeps reading the socket:
    creating, writing and renaming files waits on the disk, inflating and hashing release
    the GIL. A task is a whole OBJECTS frame (or one v1 small object), so the threads
    hand-shake once per batch, not per object. The first failure is raised by the next
    ``submit``/``wait``, and reported to the client at once by ``on_error``."""

    def __init__(self, on_error: Callable[[BaseException], None], inline_bytes: int = 0,
                 inline_objects: int = 0) -> None:
        self._on_error = on_error
        self._inline_left = inline_bytes
        self._inline_objects_left = inline_objects
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Deque[Tuple[Future[None], int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.failure: Optional[BaseException] = None

    def _run(self, task: Callable[[], None]) -> None:
        try:
            task()
        except BaseException as err:
            with self._lock:
                first = self.failure is None
                if first:
                    self.failure = err
            if first:
                # The main thread may be blocked reading a client that waits for this
                # answer (nothing more to send): report it from here, at once.
                self._on_error(err)
            raise

    @property
    def inline(self) -> bool:
        """Tasks still run on the caller's thread: no thread has been started."""
        return self._pool is None and self._inline_left > 0 and self._inline_objects_left > 0

    def submit(self, task: Callable[[], None], size: int, objects: int = 1) -> None:
        """Run ``task`` (holding ``size`` bytes of ``objects`` objects) in a worker, after
        waiting for older tasks while more than STAGER_MAX_BYTES would be held; the first
        ``inline_bytes`` or ``inline_objects``, whichever runs out first, run here and now
        (their errors raised as they happen)."""
        if self.failure is not None:
            raise self.failure
        if self.inline:
            self._inline_left -= size
            self._inline_objects_left -= objects
            task()
            return
        if self._pool is None:
            self.start()
        assert self._pool is not None
        while self._pending and (
            self._bytes + size > STAGER_MAX_BYTES or self._pending[0][0].done()
        ):
            self._pop()
        future = self._pool.submit(self._run, task)
        self._pending.append((future, size))
        self._bytes += size

    def start(self) -> None:
        """Start the writer thread (the first non-inline ``submit`` does, if not yet)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(STAGER_THREADS, thread_name_prefix="stage")
            self._pool.submit(int)  # the pool starts its thread on the first task

    def _pop(self) -> None:
        future, size = self._pending.popleft()
        self._bytes -= size
        future.result()

    def wait(self) -> None:
        """Every submitted object is staged (or its error raised)."""
        while self._pending:
            self._pop()

    def close(self) -> None:
        """Stop the workers, waiting for those still running (they use the transaction)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            for future, _size in self._pending:
                future.cancel()
            pool.shutdown(wait=True)
        self._pending.clear()


class _Session:
    def __init__(
        self, reader: FrameReader, writer: FrameWriter, config: ReceiveConfig, log: LogFn
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.config = config
        self.log = log
        self.codec = DataCodec(False)
        self.repo: Optional[Repo] = None
        self.txn: Optional[Transaction] = None
        self.received = 0  # objects counted on the reading thread
        self.received_by_workers = 0  # counted by writer thread tasks from workers' answers
        self.stager: Optional[_Stager] = None
        self.workers: Optional[WorkerPool] = None
        self._workers_tried = False
        self.version = 1
        self.absent: Set[str] = set()  # content objects HAVE answered "absent" for
        self.empty = False  # the repo had no ref, no object and no staging dir at REPO
        self.refs_asked = 0  # v3: ref names asked for so far (OPEN, REFS)
        self.received_meta: Dict[Tuple[str, ObjectType], bytes] = {}
        self._received_meta_bytes = 0
        self._received_meta_lock = threading.Lock()

    # -- handshake ------------------------------------------------------------------

    def handshake(self) -> None:
        hello = decode_json(self.reader.expect(FrameKind.HELLO))
        if hello.get("magic") != MAGIC:
            raise ProtocolError("not a pyostree push client")
        versions = hello.get("versions")
        if not isinstance(versions, list):
            raise ProtocolError("HELLO needs a list of versions")
        common = [v for v in PROTOCOL_VERSIONS if v in versions]
        if not common:
            raise ProtocolError(
                f"no common protocol version (client {versions}, server {list(PROTOCOL_VERSIONS)})"
            )
        wanted = hello.get("compression")
        zstd = isinstance(wanted, list) and "zstd" in wanted and zstd_available()
        self.codec = DataCodec(zstd)
        self.version = max(common)
        self.writer.write_json(
            FrameKind.WELCOME, {"version": self.version, "compression": "zstd" if zstd else None}
        )
        self.writer.flush()

    def open_repo(self) -> None:
        from pyostree.repo import Repo

        request = decode_json(self.reader.expect(FrameKind.OPEN))
        path = request.get("repo")
        if not isinstance(path, str) or len(path) > 4096:
            raise ProtocolError("OPEN needs a repository path")
        real = resolve_repo_path(path, self.config.root)
        repo = Repo.open(real)
        _check_mode(repo, self.config.allow_modes)
        self.repo = repo
        self.log(f"opened {real} ({repo.mode.value})")
        if self.version >= REFS_VERSION:
            # Only the heads asked for: listing every one costs a file read each, and a
            # REPO frame cannot hold more than ~12k of them.
            refs = self._read_heads(parse_ref_request(request.get("refs", []), "OPEN"))
            self.empty = _holds_no_objects(str(repo.path)) and not _has_heads(str(repo.path))
        else:
            refs = {name: csum for name, csum in repo.list_refs().items() if ":" not in name}
            self.empty = not refs and _holds_no_objects(str(repo.path))
        answer = encode_json({
            "mode": repo.mode.value,
            "refs": refs,
            "summary": (repo.path / "summary").exists(),
            "empty": self.empty,
        })
        if len(answer) > MAX_CONTROL_SIZE:
            raise PushError(
                f"the repository has {len(refs)} refs, too many to list in protocol "
                f"version {self.version}: push with a pyostree that speaks version {REFS_VERSION}"
            )
        self.writer.write(FrameKind.REPO, answer)
        self.writer.flush()

    def answer_refs(self, frame: Frame) -> None:
        """REFS (v3): the values of the heads asked for, the absent ones left out."""
        names = parse_ref_request(decode_json(frame).get("refs"), "REFS")
        self.writer.write_json(FrameKind.REFS_REPLY, {"refs": self._read_heads(names)})
        self.writer.flush()

    def _read_heads(self, names: List[str]) -> Dict[str, str]:
        """``refs/heads`` values of ``names`` (valid ref names) that exist."""
        self.refs_asked += len(names)
        if self.refs_asked > REFS_ASKED_LIMIT:
            raise ProtocolError(f"a session may ask for at most {REFS_ASKED_LIMIT} refs")
        repo = self._repo()
        found: Dict[str, str] = {}
        for name in names:
            value = repo.refs.read_head(name)
            if value is not None:
                found[name] = value
        return found

    # -- main loop ------------------------------------------------------------------

    def prepare(self) -> None:
        """Into an empty archive repo, a push that sends anything sends everything: begin
        the transaction and start the staging workers and the writer thread now, while
        the client reads REPO and its first objects are on the way, instead of staging
        the first ones inline and forking after them (~20 ms of a full push)."""
        from pyostree.repo.config import RepoMode

        repo = self._repo()
        if not self.empty or self.version < BATCH_VERSION or repo.mode is not RepoMode.ARCHIVE:
            return
        if self._workers(self._txn()) is not None:
            self.stager = _Stager(self._report, 0, 0)
            self.stager.start()

    def _report(self, err: BaseException) -> None:
        _send_error(self.writer, _message(err))

    def loop(self) -> None:
        """The write transaction (repo lock, staging dir) and the verifying code load on
        the first frame that needs them (or in :meth:`prepare`): a no-op push gets its
        answer without either."""
        if self.stager is None:
            self.stager = _Stager(self._report, INLINE_BYTES, INLINE_OBJECTS)
        stager = self.stager
        kinds: Tuple[FrameKind, ...] = (
            FrameKind.HAVE, FrameKind.OBJECT, FrameKind.UPDATE, FrameKind.ABORT)
        if self.version >= BATCH_VERSION:
            kinds += (FrameKind.OBJECTS,)
        if self.version >= REFS_VERSION:
            kinds += (FrameKind.REFS,)
        while True:
            kind, length = self.reader.expect_head(*kinds, exact=self.workers is not None)
            if kind is FrameKind.OBJECTS:
                payload = self._objects_payload(length, stager)
                if payload is not None:
                    self.receive_batch(payload, self._txn(), stager)
                continue
            frame = Frame(kind, self.reader.read_payload(length))
            if frame.kind is FrameKind.HAVE:
                stager.wait()  # answers include every object received so far
                self.answer_have(frame.payload, self._txn())
            elif frame.kind is FrameKind.OBJECT:
                self.receive_one(frame.payload, self._txn(), stager)
            elif frame.kind is FrameKind.REFS:
                self.answer_refs(frame)
            elif frame.kind is FrameKind.ABORT:
                self.log("client aborted")
                stager.close()
                self._close_workers()
                if self.txn is not None:
                    self.txn.abort()
                return
            else:
                updates, summary = _parse_updates(decode_json(frame))
                self.reader.expect(FrameKind.COMMIT)
                stager.wait()
                stager.close()
                self._close_workers()
                self.commit(updates, summary)
                return

    def answer_have(self, payload: bytes, txn: Transaction) -> None:
        """One HAVE_REPLY; absent content names are remembered (up to ABSENT_LIMIT) so
        their objects are staged without asking the file system again."""
        names = decode_have(payload)
        present = [txn.has_object(csum, objtype) for csum, objtype in names]
        room = ABSENT_LIMIT - len(self.absent)
        if room > 0:
            absent = [csum for (csum, objtype), flag in zip(names, present)
                      if not flag and objtype is ObjectType.FILE]
            self.absent.update(absent[:room])
        self.writer.write(FrameKind.HAVE_REPLY, encode_have_reply(present))
        self.writer.flush()

    def receive_batch(self, payload: bytes, txn: Transaction, stager: _Stager) -> None:
        """One OBJECTS frame. An uncompressed one (``.filez``, in practice) goes whole to a
        staging worker process when there are some. Otherwise it is decoded here
        (framing errors are the main thread's), its archive ``.filez`` are verified here
        (inflating and hashing overlap the writer thread's file writes), and the rest is
        written or staged by one writer thread task."""
        from pyostree.receive.incoming import Ahead, check_ahead

        workers = None if stager.inline else self._workers(txn)
        if workers is not None:
            raw = self.codec.raw_view(payload)
            if raw is not None:
                self._collect_from_worker(workers, workers.submit(raw), len(raw), txn, stager)
                return
        body = self.codec.decode(payload)
        objects = decode_batch(body)
        known_absent = self.known_absent
        ahead = [check_ahead(obj, txn, known_absent=known_absent(obj.header.checksum))
                 for obj in objects]

        def task() -> None:
            for obj, left in zip(objects, ahead):
                if left is Ahead.WRITE:
                    txn.stage_checked_filez(obj.header.checksum, obj.data)
                elif left is Ahead.STAGE:
                    self._stage_small(obj, txn)

        stager.submit(task, len(body), len(objects))
        self.received += len(objects)

    def _objects_payload(self, length: int, stager: _Stager) -> Optional[bytes]:
        """The payload of an OBJECTS frame whose head was read; None if it went from
        stdin straight into a staging worker's request pipe (``splice``: the receiver
        neither copies nor allocates the megabyte; the worker reads it once)."""
        workers = None
        if length > 1 and self.reader.can_splice and not stager.inline:
            workers = self._workers(self._txn())
        if workers is None:
            return self.reader.read_payload(length)
        flag = self.reader.read_payload(1, exact=True)
        size = self.codec.raw_size(flag[0], length)
        if size is None:
            return flag + self.reader.read_payload(length - 1)
        index = workers.submit_from(size, self.reader.splice_payload)
        self._collect_from_worker(workers, index, size, self._txn(), stager)
        return None

    def _collect_from_worker(self, workers: WorkerPool, index: int, size: int,
                             txn: Transaction, stager: _Stager) -> None:
        """The worker decodes the batch and stages its archive files the repo does not
        have; a writer thread task counts them into the transaction, and stages what the
        worker left and sent back (anything but a ``.filez``)."""

        def task() -> None:
            codes, staged, left = workers.collect(index)
            txn.adopt_staged_files(staged)
            if left:
                for obj in decode_batch(left):
                    self._stage_small(obj, txn)
            self.received_by_workers += len(codes)

        stager.submit(task, size)

    def _stage_small(self, obj: SmallObject, txn: Transaction) -> None:
        from pyostree.receive.incoming import stage_small

        stage_small(obj, txn, known_absent=self.known_absent(obj.header.checksum))
        if obj.header.objtype is ObjectType.COMMIT:
            self.keep_metadata(obj)

    def known_absent(self, checksum: str) -> bool:
        """No need to look for the object: HAVE answered absent, or the repo was empty.

        Either can go stale (another pusher may add it meanwhile): the object is staged
        again, and publishing keeps the copy already in ``objects/``."""
        return self.empty or checksum in self.absent

    def _workers(self, txn: Transaction) -> Optional[WorkerPool]:
        """The staging workers, started on the first OBJECTS frame into an archive repo
        past the inline ones, before any thread of ours (the writer thread starts on the
        task that follows)."""
        if self._workers_tried:
            return self.workers
        self._workers_tried = True
        if not txn.settings.archive:
            return None
        from pyostree.receive.workers import RepoPaths, WorkerPool, default_worker_count

        count = self.config.workers
        if count is None:
            count = default_worker_count()
        if count < 1:
            return None
        pid = os.getpid()
        paths = RepoPaths(os.path.join(txn.root, "objects"), txn.staging_path, txn.staging_resumed,
                          self.empty, self.absent)
        self.workers = WorkerPool.start(
            count, paths, lambda i: txn.helper_tmp_dir(f"w{pid:x}-{i}"))
        if self.workers is not None:
            self.log(f"staging with {len(self.workers)} worker processes")
        return self.workers

    def _close_workers(self) -> None:
        workers, self.workers = self.workers, None
        if workers is not None:
            workers.close()

    def receive_one(self, payload: bytes, txn: Transaction, stager: _Stager) -> None:
        """One OBJECT and its DATA frames (v1, or an object too large for OBJECTS): a small
        content object is read whole and staged by the worker, the rest streamed here."""
        from pyostree.receive.incoming import read_whole_object, receive_object, stage_content

        header = decode_object_header(payload)
        if header.objtype is ObjectType.FILE and header.size <= SMALL_OBJECT:
            source = read_whole_object(self.reader, self.codec, header)
            stager.submit(functools.partial(stage_content, source, header, txn), header.size)
        else:
            receive_object(self.reader, self.codec, header, txn)
        self.received += 1

    def keep_metadata(self, obj: SmallObject) -> None:
        """Remember a staged (so verified) commit for the check at COMMIT, up to
        RECEIVED_META_BYTES in all (the transaction keeps staged dirtrees itself)."""
        with self._received_meta_lock:
            if self._received_meta_bytes + len(obj.data) > RECEIVED_META_BYTES:
                return
            self._received_meta_bytes += len(obj.data)
            self.received_meta[(obj.header.checksum, obj.header.objtype)] = obj.data

    def _txn(self) -> Transaction:
        """The session's write transaction, begun on first use."""
        if self.txn is None:
            from pyostree.repo.transaction import Transaction

            self.txn = Transaction(self._repo(),
                                   replace_commitmeta=self.config.allow_commitmeta_replace,
                                   privileged_files=self.config.allow_privileged_files)
            self.txn.begin()
        return self.txn

    def _repo(self) -> Repo:
        if self.repo is None:
            raise ProtocolError("no repository open")
        return self.repo

    def commit(self, updates: List[RefUpdateRequest], summary: Optional[bool]) -> None:
        repo = self._repo()
        self.received += self.received_by_workers  # the writer thread is done
        self.received_by_workers = 0
        if self.txn is not None and self.received:
            self.txn.sync_ahead()  # the disk catches up while the commits are checked
        check: Optional[CompletenessCheck] = None
        for update in updates:
            txn = self._txn()
            if check is None:
                check = CompletenessCheck(repo, txn, self.received_meta, self.log)
            # The ref's commit now (under the repo lock, so nothing of it can be pruned)
            # is complete: subtrees the new commit shares with it need no lookups.
            check.check(update.new, baseline=repo.read_ref(update.ref))
            txn.set_ref(update.ref, update.new, expected_old=update.old)
        if check is not None:
            check.confirm()
        trees = check.order if check is not None else []
        had_summary = (repo.path / "summary").exists()
        want_summary = summary is True or (summary is None and had_summary)
        if updates:
            self._publish_objects(self._txn(), trees, {u.new for u in updates})
            wrote_summary = self._commit_refs(want_summary)
        else:
            if self.received:
                self._publish_objects(self._txn(), [], ())  # nothing checked: leaves only
                self._commit_txn()
            elif self.txn is not None:
                # Nothing to publish: abort, which keeps the staging dir (empty, or what
                # an interrupted push staged) for the next push to resume. Publishing
                # would syncfs the whole file system: a wait for everyone else's dirty
                # data (~15 ms measured on a busy disk). A no-op push never began one.
                self.txn.abort()
            # No refs lock (nor its imports) unless the summary needs a look: that
            # repairs one an interrupted push left stale.
            wrote_summary = want_summary and regenerate_summary(repo, self.log, only_if_stale=True)
        self._done(updates, wrote_summary)

    def _done(self, updates: List[RefUpdateRequest], wrote_summary: bool) -> None:
        self.log(f"received {self.received} objects, updated {len(updates)} refs")
        self.writer.write_json(FrameKind.DONE, {
            "refs": {u.ref: u.new for u in updates},
            "objects": self.received,
            "summary": wrote_summary,
        })
        self.writer.flush()

    def _commit_refs(self, want_summary: bool) -> bool:
        """Move the refs, and write the summary if wanted, under the refs lock.

        The repo lock is shared between pushers: without this lock two receivers can both
        pass the compare-and-swap and one update is lost (sftp pushers take it too). Each
        ref is re-read and compared with its expected value under it."""
        from pyostree.push.refslock import refs_lock
        from pyostree.transport import LocalFileTransport

        repo = self._repo()
        files = LocalFileTransport(repo.path)
        try:
            with refs_lock(files, self.log):
                self._commit_txn()
                return want_summary and regenerate_summary(repo, self.log, locked=True)
        finally:
            files.close()

    @staticmethod
    def _publish_objects(txn: Transaction, dirtrees: List[str], commits: Collection[str]) -> None:
        """Objects first, under the shared repo lock only: a big publish must not keep
        other pushers waiting for the refs lock (they give up after LOCK_WAIT_SECS).
        Objects visible before their refs is what every reader expects anyway. Of the
        staged dirtrees and commits, only those checked complete go: ``dirtrees`` (children
        first) and ``commits``."""
        try:
            txn.publish_objects(dirtrees, commits)
        except PyOstreeError as err:
            raise PushError(f"refs not updated: {err}") from None

    def _commit_txn(self) -> None:
        try:
            self._txn().commit()
        except PyOstreeError as err:
            raise PushError(f"refs not updated: {err}") from None

    def abort(self) -> None:
        if self.stager is not None:
            self.stager.close()
        self._close_workers()
        if self.txn is not None:
            self.txn.abort()


ReceivedMetadata = Mapping[Tuple[str, ObjectType], bytes]
"""Verified commits this session staged, by (checksum, type)."""


def _staged_meta(txn: Transaction, checksum: str, objtype: ObjectType) -> bytes:
    """Metadata staged in this transaction's dir; a missing one was never sent."""
    from pyostree.receive.incoming import MAX_METADATA_SIZE

    path = txn.staged_metadata_path(checksum, objtype)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_METADATA_SIZE + 1)
    except FileNotFoundError:
        raise PushError(
            f"commit is incomplete: {objtype.extension()} {checksum} was never sent"
        ) from None
    if len(data) > MAX_METADATA_SIZE:
        raise PushError(f"{objtype.extension()} {checksum} is too large")
    return data


class CompletenessCheck:
    """The completeness check of one session's commits, each commit and each dirtree
    looked at once however many refs reach it: the cost is bounded by the distinct
    metadata the commits reach (and the staged dirtrees, which the client sent), not by
    the number of refs, and a dirtree's bytes are held only while it is read.

    A dirtree already in ``objects/`` is trusted to be complete below it (publishing is
    children-first, and only of dirtrees checked here), so an incremental push only
    walks what changed, unless the repo may hold partial commits (see
    :func:`may_hold_partial_commits`): then libostree may have left a dirtree there
    whose subtrees are missing, and present dirtrees are walked like staged ones. So
    is the tree of ``baseline``, a commit in ``objects/`` that a ref of the repo points
    to (and not marked partial): at each path where the new tree has the baseline's
    dirtree, dirmeta or file, nothing is looked up. Commits in ``received`` and
    dirtrees the transaction keeps (staged by this session, in memory) are not read
    back from disk."""

    def __init__(self, repo: Repo, txn: Transaction, received: Optional[ReceivedMetadata] = None,
                 log: Optional[LogFn] = None) -> None:
        self.repo = repo
        self.txn = txn
        self.received = received or {}
        self.log = log or (lambda _msg: None)
        self.trust_present = not may_hold_partial_commits(os.fspath(repo.path))
        self.order: List[str] = []  # staged dirtrees reached, children first
        self.dirtrees_read = 0
        self._commits: Dict[str, Optional[str]] = {}  # checked commit -> its baseline
        self._trees: Set[str] = set()  # dirtrees looked at: complete below once checked

    def check(self, commit: str, baseline: Optional[str] = None) -> None:
        """Raise PushError unless ``commit`` is complete; a commit checked before is not
        looked at again."""
        if commit in self._commits:
            return
        self._commits[commit] = baseline
        read_before = self.dirtrees_read
        self._check(commit, baseline)
        self.log(f"commit {commit} is complete "
                 f"({self.dirtrees_read - read_before} dirtrees read)")

    def confirm(self) -> None:
        """After the last :meth:`check`: a partial commit that appeared meanwhile (a
        libostree pull marks it before any of its objects reach ``objects/``) may have
        put a dirtree there the checks trusted; then they run again, walking."""
        if self.trust_present and may_hold_partial_commits(os.fspath(self.repo.path)):
            self.log("a partial commit appeared: checking again")
            commits = list(self._commits.items())
            self.trust_present = False
            self._commits.clear()
            self._trees.clear()
            self.order = []
            for commit, baseline in commits:
                self.check(commit, baseline)

    def _check(self, commit: str, baseline: Optional[str]) -> None:
        from pyostree.objects import Commit

        repo, txn = self.repo, self.txn
        commit_bytes = self.received.get((commit, ObjectType.COMMIT))
        if commit_bytes is None:
            if repo.has_object(commit, ObjectType.COMMIT):
                commit_bytes = repo.read_metadata_bytes(commit, ObjectType.COMMIT)
            else:
                commit_bytes = _staged_meta(txn, commit, ObjectType.COMMIT)
        commit_obj = Commit.from_bytes(commit_bytes, verify=False)
        del commit_bytes
        # (dirtree, dirmeta, the baseline's (dirtree, dirmeta) here, children done): a
        # staged dirtree goes back on the stack under its children and joins ``order``
        # after them
        pending: List[Tuple[str, str, Optional[Tuple[str, str]], bool]] = [
            (commit_obj.root_tree, commit_obj.root_meta, _baseline_root(repo, baseline, commit), False)]
        seen = self._trees
        while pending:
            tree, meta, old, children_done = pending.pop()
            if children_done:
                self.order.append(tree)
                continue
            if (old is None or old[1] != meta) and not txn.has_object(meta, ObjectType.DIR_META):
                raise PushError(f"commit {commit} is incomplete: dirmeta {meta} was never sent")
            if (old is not None and old[0] == tree) or tree in seen:
                continue
            seen.add(tree)
            data: Optional[_DirtreeBytes] = txn.staged_dirtree_bytes(tree)
            staged = True
            release: Optional[Callable[[int, int], None]] = None
            if data is None:
                if repo.has_object(tree, ObjectType.DIR_TREE):
                    if self.trust_present:
                        continue
                    staged = False
                    path = repo.store.object_str(tree, ObjectType.DIR_TREE)
                else:
                    path = txn.staged_metadata_path(tree, ObjectType.DIR_TREE)
                data, release = _read_dirtree(path, commit, tree)
            self.dirtrees_read += 1
            if staged:
                pending.append((tree, meta, old, True))
            files, dirs = _dirtree_entries(data, tree, release)
            old_files, old_dirs = _baseline_entries(repo, old[0] if old is not None else None)
            for name, raw in _unmatched(files, old_files):
                checksum = raw.hex()
                if not txn.has_object(checksum, ObjectType.FILE):
                    raise PushError(
                        f"commit {commit} is incomplete: file {checksum} was never sent"
                    )
            old_dir = _matcher(old_dirs)
            for name, tree_raw, meta_raw in dirs:
                pending.append((tree_raw.hex(), meta_raw.hex(), old_dir(name), False))
            del data, files, dirs


def may_hold_partial_commits(repo_path: str) -> bool:
    """Whether a dirtree in ``objects/`` may lack subtrees. libostree 2022.7 marks a
    commit ``state/CHECKSUM.commitpartial`` before it fetches any of its tree, and
    clears the mark only once a pull of the whole tree is done: a pull with
    ``--subpath`` or ``--commit-metadata-only`` keeps it (its root dirtree stays in
    ``objects/`` without the subtrees left out), as does an interrupted pull or
    ``fsck --delete``. Older libostree kept a ``transaction`` link for the whole repo
    instead. One look at ``state/`` (its first marker ends it)."""
    if os.path.lexists(os.path.join(repo_path, "transaction")):
        return True
    try:
        with os.scandir(os.path.join(repo_path, "state")) as entries:
            return any(entry.name.endswith(".commitpartial") for entry in entries)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: walk


_FileRow = Tuple[bytes, bytes]
_DirRow = Tuple[bytes, bytes, bytes]


_DirtreeBytes = Union[bytes, "mmap.mmap"]
MAPPED_DIRTREE = 16 << 20
"""A bigger dirtree is read through a read-only mapping whose pages are dropped as the
check moves on, never whole into memory."""


def _read_dirtree(path: str, commit: str, tree: str
                  ) -> Tuple[_DirtreeBytes, Optional[Callable[[int, int], None]]]:
    """The bytes of a dirtree file, or for a big one its mapping and a ``release``."""
    import mmap

    from pyostree.receive.incoming import MAX_METADATA_SIZE
    from pyostree.repo.fsutil import page_dropper

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PushError(f"commit {commit} is incomplete: dirtree {tree} was never sent") from None
    try:
        size = os.fstat(fd).st_size
        if size > MAX_METADATA_SIZE:
            raise PushError(f"dirtree {tree} is too large")
        if size <= MAPPED_DIRTREE:
            with os.fdopen(os.dup(fd), "rb") as handle:
                return handle.read(MAX_METADATA_SIZE + 1), None
        mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return mapped, page_dropper(mapped)


def _dirtree_entries(data: _DirtreeBytes, checksum: str,
                     release: Optional[Callable[[int, int], None]] = None
                     ) -> Tuple[Iterator[_FileRow], Iterator[_DirRow]]:
    """(name, checksum) of a dirtree's files and (name, dirtree, dirmeta) of its
    subdirs, raw, read one at a time from its framing offsets: a dirtree of a million
    entries is never turned into a million objects. The bytes were verified when
    staged (or are in ``objects/``); a layout that does not add up is an error."""
    from pyostree.gvariant._framing import offset_width

    view = memoryview(data)
    size = len(view)

    def broken() -> PushError:
        return PushError(f"dirtree {checksum} cannot be read")

    width = offset_width(size)
    if size == 0 or width > size:
        raise broken()
    files_end = _offset(data, size - width, width)
    if files_end > size - width:
        raise broken()

    def elements(start: int, end: int, offsets: int) -> Iterator[Tuple[memoryview, List[int]]]:
        if start == end:
            return
        table_width = offset_width(end - start)
        table = start + _offset(data, end - table_width, table_width)
        if not start <= table <= end - table_width or (end - table) % table_width:
            raise broken()
        element_start = start
        for pos in range(table, end, table_width):
            if release is not None and (pos - table) % (table_width << 15) == 0:
                release(start, element_start)
                release(table, pos)
            element_end = start + _offset(data, pos, table_width)
            inner = offset_width(element_end - element_start)
            if not element_start + offsets * inner <= element_end <= table:
                raise broken()
            ends = [_offset(data, element_end - (k + 1) * inner, inner) for k in range(offsets)]
            element = view[element_start:element_end - offsets * inner]
            bounds = [0, *ends, len(element)]
            if any(b > c for b, c in zip(bounds, bounds[1:])) or ends[0] < 1:
                raise broken()
            yield element, bounds
            element_start = element_end

    def files() -> Iterator[_FileRow]:
        for element, (_zero, name_end, end) in elements(0, files_end, 1):
            yield bytes(element[:name_end - 1]), _digest(element[name_end:end])

    def dirs() -> Iterator[_DirRow]:
        for element, (_zero, name_end, tree_end, end) in elements(files_end, size - width, 2):
            yield (bytes(element[:name_end - 1]), _digest(element[name_end:tree_end]),
                   _digest(element[tree_end:end]))

    def _digest(raw: memoryview) -> bytes:
        if len(raw) != 32:
            raise broken()
        return bytes(raw)

    return files(), dirs()


def _offset(data: _DirtreeBytes, pos: int, width: int) -> int:
    return int.from_bytes(data[pos:pos + width], "little")


def _unmatched(files: Iterator[_FileRow], old: Iterator[_FileRow]) -> Iterator[_FileRow]:
    """The files not in the baseline under the same name and checksum. Both lists are
    sorted by name (a baseline that is not is only matched less)."""
    current = next(old, None)
    for name, raw in files:
        while current is not None and current[0] < name:
            current = next(old, None)
        if current is None or current[0] != name or current[1] != raw:
            yield name, raw


def _matcher(old: Iterator[_DirRow]) -> Callable[[bytes], Optional[Tuple[str, str]]]:
    """Look-ups, in increasing name order, of a baseline's subdirs: (dirtree, dirmeta)."""
    state: List[Optional[_DirRow]] = [next(old, None)]

    def lookup(name: bytes) -> Optional[Tuple[str, str]]:
        current = state[0]
        while current is not None and current[0] < name:
            current = state[0] = next(old, None)
        if current is None or current[0] != name:
            return None
        return current[1].hex(), current[2].hex()

    return lookup


def _baseline_root(repo: Repo, baseline: Optional[str], commit: str) -> Optional[Tuple[str, str]]:
    """(root dirtree, root dirmeta) of a baseline fit to trust, else None."""
    from pyostree.objects import Commit

    if baseline is None or baseline == commit or repo.is_commit_partial(baseline):
        return None
    try:
        old = Commit.from_bytes(repo.read_metadata_bytes(baseline, ObjectType.COMMIT), verify=False)
    except (PyOstreeError, OSError):
        return None
    return old.root_tree, old.root_meta


def _baseline_entries(repo: Repo, tree: Optional[str]) -> Tuple[Iterator[_FileRow], Iterator[_DirRow]]:
    """Files and subdirs of a baseline dirtree, as :func:`_dirtree_entries` gives them;
    none if there is no baseline here, or it cannot be read (then the new tree is
    checked in full)."""
    if tree is None:
        return iter(()), iter(())
    try:
        files, dirs = _dirtree_entries(repo.read_metadata_bytes(tree, ObjectType.DIR_TREE), tree)
    except (PyOstreeError, OSError):
        return iter(()), iter(())
    return _quiet(files), _quiet(dirs)


def _quiet(rows: Iterator[Any]) -> Iterator[Any]:
    """A baseline's rows, ending where they cannot be read."""
    try:
        yield from rows
    except PyOstreeError:
        return


def regenerate_summary(repo: Repo, log: LogFn, *, only_if_stale: bool = False,
                       locked: bool = False) -> bool:
    """Rewrite ``summary`` after the refs moved (a stale one hides new refs), under the
    same refs lock sftp-mode pushers use, reading refs only once it is held. With
    ``only_if_stale`` (nothing moved) it repairs a summary an interrupted push left behind."""
    from pyostree.push.refslock import refs_lock
    from pyostree.push.summary import summary_is_stale, write_summary
    from pyostree.transport import LocalFileTransport

    files = LocalFileTransport(repo.path)
    try:
        with contextlib.nullcontext() if locked else refs_lock(files, log):
            heads = {name: csum for name, csum in repo.list_refs().items() if ":" not in name}
            if only_if_stale and not summary_is_stale(files, heads):
                return False
            write_summary(files, heads, repo.config.get("core", "mode") or repo.mode.value, "tmp",
                          collection_id=repo.collection_id)
            return True
    finally:
        files.close()


def _has_heads(repo_path: str) -> bool:
    """Anything but directories under ``refs/heads`` (stops at the first)."""
    pending = [os.path.join(repo_path, "refs", "heads")]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        return True
        except OSError:
            continue
    return False


def _holds_no_objects(repo_path: str) -> bool:
    """Nothing in ``objects/`` and no staging dir in ``tmp/`` (whose objects a push would
    resume from): a client's HAVE questions could only be answered "absent"."""
    from pyostree.repo.staging import STAGING_PREFIX

    try:
        with os.scandir(os.path.join(repo_path, "objects")) as entries:
            if next(entries, None) is not None:
                return False
        with os.scandir(os.path.join(repo_path, "tmp")) as entries:
            return not any(entry.name.startswith(STAGING_PREFIX) for entry in entries)
    except OSError:
        return False


def serve(
    stdin: BinaryIO,
    stdout: BinaryIO,
    config: ReceiveConfig = ReceiveConfig(),
    *,
    log: Optional[LogFn] = None,
) -> None:
    """Run one receive session; raises the error that ended it (already sent as ERROR).

    With ``config.idle_timeout``, ``stdin`` is read through its file descriptor (it must
    not have been read before); a stream without one is read without a timeout."""
    writer = FrameWriter(stdout)
    source: Union[BinaryIO, IdleTimeoutReader] = stdin
    fd = _fileno(stdin)
    if fd is not None:
        _widen_pipe(fd)
    if config.idle_timeout and fd is not None:
        source = IdleTimeoutReader(fd, config.idle_timeout, buffer_size=PIPE_SIZE)
    session = _Session(FrameReader(source), writer, config, log or (lambda _msg: None))
    try:
        try:
            session.handshake()
            session.open_repo()
            session.prepare()
            session.loop()
        except BaseException:
            failure = session.stager.failure if session.stager is not None else None
            if failure is None:
                raise
            # A worker failed first and already sent its ERROR: that is the real cause
            # (the main thread then saw the client go away, or the failure itself).
            session.abort()
            if isinstance(failure, (PyOstreeError, RefError)):
                raise failure from None
            raise PushError(_message(failure)) from None
    except (PyOstreeError, RefError) as err:
        if session.stager is not None and session.stager.failure is not None:
            raise
        session.abort()
        _send_error(writer, str(err))
        raise
    except OSError as err:
        session.abort()
        _send_error(writer, f"receiver I/O error: {err}")
        raise PushError(f"receiver I/O error: {err}") from None
    except BaseException:
        session.abort()
        raise


PIPE_SIZE = 1 << 20
"""Bytes the receiver asks its stdin pipe to hold (Linux default 64 KiB): fewer wake-ups
per frame on both ends while objects stream in."""


def _widen_pipe(fd: int) -> None:
    """Best effort: only a pipe can be resized, and the system may cap the size."""
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass


def _fileno(stream: BinaryIO) -> Optional[int]:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def _message(err: BaseException) -> str:
    """The one-line ERROR text for a failure, as ``serve`` words it."""
    if isinstance(err, (PyOstreeError, RefError)):
        return str(err)
    if isinstance(err, OSError):
        return f"receiver I/O error: {err}"
    return f"receiver internal error: {type(err).__name__}: {err}"


def _send_error(writer: FrameWriter, message: str) -> None:
    try:
        writer.write_json(FrameKind.ERROR, {"message": message[:4096]})
        writer.flush()
    except (OSError, ValueError):
        pass  # the client is gone; the error is still raised to our caller
