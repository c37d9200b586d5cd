"""Staging worker processes: archive ``.filez`` objects verified and staged in parallel.

Inflating and hashing (zlib, OpenSSL) and file system calls release the GIL, but the
Python between them holds it: one receiver process verifying and writing thousands of
small objects keeps one core busy, and a second thread only trades the GIL back and forth
(measured slower). A worker is a fork of the receiver, made before any thread starts. It
takes whole uncompressed OBJECTS bodies over a pipe and decodes them; each archive
``.filez`` the repo does not have yet it checks with the same ``verify_filez_bytes`` as the
receiver's own path and writes into the transaction's staging dir (a temp file of its
own, then the staged name). It answers one code per entry, and the names and sizes of
what it staged. The receiver records those; a worker never touches the transaction's
books, the repo lock or the protocol stream.

A worker that finds a bad object stops that batch and answers with the error; the
receiver raises it as its own path would have. Closing the request pipe ends a worker;
so does its receiver's death (end of file, or a broken reply pipe).
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import stat
import struct
import threading
from dataclasses import dataclass
from typing import AbstractSet, Callable, Dict, List, Optional, Set, Tuple, Union

from pyostree.errors import ChecksumMismatchError, ObjectError, PushError, PyOstreeError
from pyostree.repo.fsutil import write_all

__all__ = ["LEFT", "PRESENT", "STAGED", "RepoPaths", "WorkerPool", "default_worker_count"]

STAGED = ord("s")
"""Reply code: the entry is verified and at its staged name."""
PRESENT = ord("p")
"""Reply code: the repo has the object (in ``objects/``, or staged in a resumed staging
dir); nothing was written."""
LEFT = ord("-")
"""Reply code: the worker did not stage the entry (not an archive file object, or too
large to check whole): the reply carries it back, and the receiver handles it as it would
without workers."""

MAX_WORKERS = 4
_REQUEST = struct.Struct(">I")  # body size, then the body
_REPLY = struct.Struct(">IIII")  # sizes of the codes, staged records, left entries, error
_STAGED = struct.Struct(">64sI")  # per STAGED code, in order: hex checksum, size
_PIPE_SIZE = 1 << 20  # a whole OBJECTS body (CHUNK_SIZE) fits in the request pipe
_PUBLIC = 0o644
_ERROR_TYPES = {"checksum": ChecksumMismatchError, "object": ObjectError, "error": PushError}


def default_worker_count() -> int:
    """One worker per usable CPU (at most MAX_WORKERS); none on a single CPU, where they
    would only add copies through pipes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_WORKERS) if cpus > 1 else 0


@dataclass(frozen=True)
class RepoPaths:
    """Where a worker looks for objects the repo has, and where it stages."""

    objects: str
    staging: str
    staging_resumed: bool  # a resumed staging dir may hold objects already
    empty: bool = False  # the repo had no object when the session began: no lookups
    absent: AbstractSet[str] = frozenset()  # checksums HAVE answered absent: no lookup


@dataclass(frozen=True)
class _Worker:
    pid: int
    requests: int  # write end of its request pipe
    replies: int  # read end of its reply pipe


class WorkerPool:
    """Forked staging workers, given batches round-robin; replies are read in the order
    batches were given to each worker."""

    def __init__(self, workers: List[_Worker]) -> None:
        self._workers = workers
        self._next = 0

    @classmethod
    def start(cls, count: int, repo: RepoPaths,
              make_tmp_dir: Callable[[int], str]) -> Optional[WorkerPool]:
        """``count`` workers staging into ``repo``, worker ``i`` with its temp files in
        ``make_tmp_dir(i)``; None when there should be none: fewer than one asked for, no
        ``fork``, or another thread running (a fork copies its locks, held or not)."""
        if count < 1 or not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        workers: List[_Worker] = []
        try:
            for index in range(count):
                workers.append(_fork_worker(repo, make_tmp_dir(index)))
        except OSError:
            WorkerPool(workers).close()
            return None
        return cls(workers) if workers else None

    def __len__(self) -> int:
        return len(self._workers)

    def submit(self, body: Union[bytes, memoryview]) -> int:
        """Give one OBJECTS body to the next worker. Returns the worker's index for
        :meth:`collect`. Blocks while that worker's request pipe is full."""
        return self.submit_from(len(body), lambda fd, _size: write_all(fd, body))

    def submit_from(self, size: int, move: Callable[[int, int], None]) -> int:
        """Like :meth:`submit` for a body of ``size`` bytes that ``move(fd, size)`` puts
        into the worker's request pipe itself (spliced from the receiver's stdin, so it
        never passes through the receiver's memory)."""
        index = self._next
        self._next = (index + 1) % len(self._workers)
        worker = self._workers[index]
        try:
            write_all(worker.requests, _REQUEST.pack(size))
            move(worker.requests, size)
        except BrokenPipeError as err:
            raise _died(worker, err) from None
        return index

    def collect(self, index: int) -> Tuple[bytes, List[Tuple[str, int]], bytes]:
        """The oldest batch given to worker ``index`` not yet collected: one code per
        entry (STAGED, PRESENT or LEFT); (checksum, size) of each STAGED entry in order;
        the LEFT entries, as an OBJECTS body (empty if none). Raises the error that
        stopped the batch."""
        worker = self._workers[index]
        try:
            head = _read_exact(worker.replies, _REPLY.size)
            if head is None:
                raise _died(worker, None)
            codes_size, staged_size, left_size, error_size = _REPLY.unpack(head)
            reply = _read_exact(worker.replies, codes_size + staged_size + left_size + error_size)
        except OSError as err:
            raise _died(worker, err) from None
        if reply is None:
            raise _died(worker, None)
        left_at = codes_size + staged_size
        if error_size:
            raise _decode_error(reply[left_at + left_size:])
        codes = reply[:codes_size]
        staged = [(checksum.decode("ascii"), size) for checksum, size
                  in _STAGED.iter_unpack(memoryview(reply)[codes_size:left_at])]
        if len(staged) != codes.count(STAGED) or (left_size > 0) != (LEFT in codes):
            raise PushError(f"receiver staging worker {worker.pid} sent a malformed reply")
        return codes, staged, reply[left_at:left_at + left_size]

    def close(self) -> None:
        """End every worker and reap it. Replies not collected are dropped first, so a
        worker blocked writing one ends too; one in the middle of a batch finishes the
        object it is writing (a complete, verified staged object) and stops."""
        workers, self._workers = self._workers, []
        for worker in workers:
            for fd in (worker.replies, worker.requests):
                try:
                    os.close(fd)
                except OSError:
                    pass
        for worker in workers:
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass


def _died(worker: _Worker, err: Optional[OSError]) -> PushError:
    why = f": {err.strerror}" if err is not None and err.strerror else ""
    return PushError(f"receiver staging worker {worker.pid} exited unexpectedly{why}")


def _decode_error(raw: bytes) -> Exception:
    """The exception a worker reported, of the type and with the message the receiver's
    own path raises for the same object."""
    try:
        fields = json.loads(raw.decode("utf-8"))
        kind, message = fields["type"], str(fields["message"])
    except (ValueError, KeyError, TypeError):
        return PushError("receiver staging worker sent an unreadable error")
    if kind == "os":
        return OSError(int(fields.get("errno") or errno.EIO), message, fields.get("filename"))
    return _ERROR_TYPES.get(kind, PushError)(message)


def _encode_error(err: BaseException) -> bytes:
    fields: Dict[str, object]
    if isinstance(err, OSError):
        fields = {"type": "os", "errno": err.errno, "message": err.strerror or str(err),
                  "filename": os.fsdecode(err.filename) if err.filename is not None else None}
    elif isinstance(err, ChecksumMismatchError):
        fields = {"type": "checksum", "message": str(err)}
    elif isinstance(err, ObjectError):
        fields = {"type": "object", "message": str(err)}
    elif isinstance(err, PyOstreeError):
        fields = {"type": "error", "message": str(err)}
    else:
        fields = {"type": "error",
                  "message": f"receiver internal error: {type(err).__name__}: {err}"}
    return json.dumps(fields).encode("utf-8")


def _fork_worker(repo: RepoPaths, tmp_dir: str) -> _Worker:
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    _widen(request_write)
    try:
        pid = os.fork()
    except OSError:
        for fd in (request_read, request_write, reply_read, reply_write):
            os.close(fd)
        raise
    if pid == 0:  # the worker: never returns into the receiver's code
        status = 1
        try:
            _detach({request_read, reply_write})
            _serve(request_read, reply_write, repo, tmp_dir)
            status = 0
        finally:
            os._exit(status)
    os.close(request_read)
    os.close(reply_write)
    return _Worker(pid, request_write, reply_read)


def _widen(fd: int) -> None:
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (OSError, AttributeError):
        pass


def _detach(keep: Set[int]) -> None:
    """Keep only our pipes and stderr: not the protocol's stdin/stdout (pointed at
    /dev/null), not the repo and staging locks (so the receiver's death releases them at
    once), not the other workers' pipes (so each sees its own end of file)."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(3, 1024))
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _serve(requests: int, replies: int, repo: RepoPaths, tmp_dir: str) -> None:
    from pyostree.objects.content import FilezHeaderCache, verify_filez_bytes
    from pyostree.objects.types import ObjectType
    from pyostree.transport.wire import CHUNK_SIZE, Encoding, encode_batch_entry, iter_batch

    headers = FilezHeaderCache()
    writer = _StagedWriter(repo.staging, tmp_dir)
    lexists = os.path.lexists
    empty, absent = repo.empty, repo.absent  # a stale answer only stages a duplicate
    buffer = bytearray(CHUNK_SIZE)  # reused: a fresh megabyte a batch is page faults
    while True:
        head = _read_exact(requests, _REQUEST.size)
        if head is None:
            return  # the receiver is done with us
        (body_size,) = _REQUEST.unpack(head)
        if body_size > len(buffer):
            buffer = bytearray(body_size)
        body = memoryview(buffer)[:body_size]
        if not _read_into(requests, body):
            return
        codes = bytearray()
        staged = bytearray()
        left = bytearray()
        error = b""
        try:
            for header, start in iter_batch(body):
                checksum = header.checksum
                data = body[start:start + header.size]
                rel = f"{checksum[:2]}/{checksum[2:]}.filez"
                if header.objtype is not ObjectType.FILE or header.encoding is not Encoding.FILEZ:
                    code = LEFT
                elif not (empty or checksum in absent) and (
                        lexists(f"{repo.objects}/{rel}")
                        or (repo.staging_resumed and lexists(f"{repo.staging}/{rel}"))):
                    code = PRESENT
                elif verify_filez_bytes(data, checksum, headers) is None:
                    code = LEFT
                else:
                    writer.stage(rel, data)
                    code = STAGED
                    staged += _STAGED.pack(checksum.encode("ascii"), header.size)
                codes.append(code)
                if code == LEFT:
                    left += encode_batch_entry(header.objtype, checksum, header.encoding, data)
        except Exception as err:  # reported; the receiver decides
            error = _encode_error(err)
        write_all(replies, _REPLY.pack(len(codes), len(staged), len(left), len(error))
                   + bytes(codes) + bytes(staged) + bytes(left) + error)


class _StagedWriter:
    """Writes verified ``.filez`` bytes as the transaction does: a temp file of mode 0644
    in our own temp dir, renamed to ``XX/NAME.filez`` in the staging dir."""

    def __init__(self, staging_path: str, tmp_dir: str) -> None:
        self.staging_path = staging_path
        self.tmp_dir = tmp_dir
        self.counter = itertools.count()
        self.made: Set[str] = set()
        self.mode_ok: Optional[bool] = None  # created 0644 really is (no default ACL)

    def stage(self, rel: str, data: Union[bytes, memoryview]) -> None:
        """``rel``: ``XX/NAME.filez``."""
        path, fd = self._create()
        try:
            if self.mode_ok is None:
                self.mode_ok = stat.S_IMODE(os.fstat(fd).st_mode) == _PUBLIC
            write_all(fd, data)
            if not self.mode_ok:
                os.fchmod(fd, _PUBLIC)
        except BaseException:
            os.close(fd)
            _unlink_quietly(path)
            raise
        os.close(fd)
        prefix = rel[:2]
        if prefix not in self.made:
            try:
                os.mkdir(f"{self.staging_path}/{prefix}", 0o777)
            except FileExistsError:
                pass
            self.made.add(prefix)
        os.rename(path, f"{self.staging_path}/{rel}")

    def _create(self) -> Tuple[str, int]:
        for _ in range(100):  # a resumed staging dir may hold an older worker's leftovers
            path = f"{self.tmp_dir}/{next(self.counter):x}"
            try:
                return path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PUBLIC)
            except FileExistsError:
                continue
        raise OSError(errno.EEXIST, "cannot create a temporary file in the staging dir", self.tmp_dir)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_exact(fd: int, size: int) -> Optional[bytes]:
    """``size`` bytes, or None at end of file before the first; a short read after that
    is the writer's death too (None)."""
    if size == 0:
        return b""
    parts: List[bytes] = []
    left = size
    while left:
        chunk = os.read(fd, min(left, _PIPE_SIZE))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_into(fd: int, view: memoryview) -> bool:
    """Fill ``view``; False at end of file before it is full (the writer died)."""
    while view:
        got = os.readv(fd, [view])
        if not got:
            return False
        view = view[got:]
    return True

