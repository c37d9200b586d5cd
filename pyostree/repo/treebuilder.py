"""Build a tree (directories, tar streams, in-memory entries) and write it into a transaction.

Layers are merged like ``ostree commit --tree=…``: later files replace earlier ones, later
directory metadata replaces earlier metadata, and a file can never replace a directory (or
the reverse). Regular files from disk are hashed, compressed and staged by a thread pool:
sha256, zlib and file I/O release the GIL, so two cores do roughly twice the work.

Scripting a commit::

    with repo.transaction() as txn:
        with TreeBuilder(txn, TreeOptions(canonical_permissions=True)) as builder:
            builder.add_directory("rootfs")
            builder.add_file("etc/os-release", b"ID=demo\n")
            tree, meta = builder.finish()
        write_commit(txn, tree, meta, CommitRequest(branch="demo/stable", subject="build 7"))
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from pyostree.errors import ObjectError, PyOstreeError
from pyostree.objects.content import CHUNK_SIZE, FileHeader
from pyostree.objects.dirmeta import DirMeta
from pyostree.objects.dirtree import DirEntry, DirTree, FileEntry
from pyostree.objects.modes import bare_user_only_mode
from pyostree.objects.names import validate_filename
from pyostree.objects.types import ObjectType
from pyostree.objects.xattrs import Xattrs, canonical_xattrs
from pyostree.repo.modewrite import check_header_for_mode
from pyostree.repo.transaction import Transaction

__all__ = ["TreeBuildError", "TreeBuilder", "TreeOptions"]

_MAX_IN_FLIGHT = 64  # batches queued ahead of the workers (bounds memory on huge trees)
_BATCH_FILES = 16
_DEFAULT_DIR_MODE = stat.S_IFDIR | 0o755


class TreeBuildError(PyOstreeError):
    """The source tree cannot be committed (unsupported file type, conflicting layers…)."""


@dataclass(frozen=True)
class TreeOptions:
    """The commit modifiers of ``ostree commit`` that change what a file's header says."""

    canonical_permissions: bool = False
    no_xattrs: bool = False
    owner_uid: Optional[int] = None
    owner_gid: Optional[int] = None

    def apply(self, uid: int, gid: int, mode: int, xattrs: Xattrs) -> Tuple[int, int, int, Xattrs]:
        if self.owner_uid is not None:
            uid = self.owner_uid
        if self.owner_gid is not None:
            gid = self.owner_gid
        if self.no_xattrs:
            xattrs = ()
        if self.canonical_permissions:
            return 0, 0, bare_user_only_mode(mode), ()
        return uid, gid, mode, xattrs


class _Pending:
    """One file of a batch a worker is staging: ``batch.result()[index]`` is its checksum."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: "Future[List[str]]", index: int) -> None:
        self.batch = batch
        self.index = index

    def result(self) -> str:
        return self.batch.result()[self.index]


FileRef = Union[str, _Pending]


class _Dir:
    __slots__ = ("meta", "files", "dirs")

    def __init__(self, meta: Optional[DirMeta] = None) -> None:
        self.meta = meta
        self.files: Dict[str, FileRef] = {}
        self.dirs: Dict[str, _Dir] = {}


def _split(path: str) -> List[str]:
    """Tree path to components; ``.``, empty parts and leading ``/`` are dropped like tar does."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    for part in parts:
        validate_filename(part)
    return parts


def _disk_xattrs(target: Union[int, str]) -> Xattrs:
    """xattrs of an open fd or, without following a final symlink, of a path; OSError is left
    to the walk, which names the file."""
    nofollow: Dict[str, bool] = {} if isinstance(target, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(target, **nofollow)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    if not names:
        return ()
    pairs = []
    for name in names:
        try:
            pairs.append((name, os.getxattr(target, name, **nofollow)))
        except OSError as err:
            if err.errno != errno.ENODATA:
                raise
    return canonical_xattrs(pairs)


def _read_fd_chunks(fd: int, size: int) -> Iterator[bytes]:
    """Chunks of an open file; a small file takes one ``read`` (a short read means EOF).

    Large files reuse one buffer: the transaction consumes each chunk before the next.
    """
    if size < CHUNK_SIZE:
        data = os.read(fd, size + 1)
        if data:
            yield data
        if len(data) == size:
            return
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        count = os.readv(fd, [buffer])
        if count == 0:
            return
        yield view[:count]  # type: ignore[misc]


class TreeBuilder:
    """A mutable tree bound to one transaction; call :meth:`finish` to get the root checksums.

    ``workers`` threads stage files from disk; ``0`` stages them in the calling thread.
    """

    def __init__(
        self,
        txn: Transaction,
        options: TreeOptions = TreeOptions(),
        *,
        workers: Optional[int] = None,
        on_file: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.txn = txn
        bare_user_only = txn.settings.mode_name == "bare-user-only"
        self.options = TreeOptions(
            canonical_permissions=options.canonical_permissions or bare_user_only,
            no_xattrs=options.no_xattrs,
            owner_uid=options.owner_uid,
            owner_gid=options.owner_gid,
        )
        self.root = _Dir()
        # one worker per core: a third thread on two cores only added GIL hand-offs (measured)
        count = min(4, os.cpu_count() or 1) if workers is None else workers
        self._pool: Optional[ThreadPoolExecutor] = ThreadPoolExecutor(count) if count > 0 else None
        self._slots = threading.BoundedSemaphore(_MAX_IN_FLIGHT)
        self._on_file = on_file
        settings = txn.settings
        self._mode_name = settings.mode_name
        self._zlib_level: Optional[int] = settings.zlib_level if settings.archive else None
        self._skip_xattrs = self.options.no_xattrs or self.options.canonical_permissions
        # (uid, gid, mode, xattrs) from disk -> validated header and its checksum prefix
        self._headers: Dict[Tuple[int, int, int, Xattrs], Tuple[FileHeader, bytes]] = {}
        self._skip_dir: Optional[Tuple[int, int]] = None  # (dev, ino) of the repo, not committed

    # ---- the mutable tree ------------------------------------------------------------

    def _lookup_dir(self, parts: List[str], *, create: bool, shown: str) -> _Dir:
        node = self.root
        for part in parts:
            child = node.dirs.get(part)
            if child is None:
                if part in node.files:
                    raise TreeBuildError(f"can't replace a file with a directory: {shown}")
                if not create:
                    raise TreeBuildError(f"no such file or directory: {part}")
                child = _Dir(self._meta(0, 0, _DEFAULT_DIR_MODE, ()))
                node.dirs[part] = child
            node = child
        return node

    def _meta(self, uid: int, gid: int, mode: int, xattrs: Xattrs) -> DirMeta:
        uid, gid, mode, xattrs = self.options.apply(uid, gid, mode, xattrs)
        return DirMeta(uid, gid, mode, xattrs)

    def _ensure_dir(self, parent: _Dir, name: str, shown: str) -> _Dir:
        if name in parent.files:
            raise TreeBuildError(f"can't replace a file with a directory: {shown}")
        child = parent.dirs.get(name)
        if child is None:
            child = _Dir()
            parent.dirs[name] = child
        return child

    def _put_file(self, parent: _Dir, name: str, ref: FileRef, shown: str) -> None:
        if name in parent.dirs:
            raise TreeBuildError(f"can't replace a directory with a file: {shown}")
        parent.files[name] = ref

    def _header(self, uid: int, gid: int, mode: int, xattrs: Xattrs, target: str = "") -> FileHeader:
        uid, gid, mode, xattrs = self.options.apply(uid, gid, mode, xattrs)
        header = FileHeader(uid, gid, mode, 0, target, xattrs)
        header.validate()
        return header

    # ---- in-memory entries -----------------------------------------------------------

    def add_dir(self, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0, xattrs: Xattrs = ()) -> None:
        """Create (or re-describe) a directory; missing parents get root 0755."""
        parts = _split(path)
        meta = self._meta(uid, gid, stat.S_IFDIR | stat.S_IMODE(mode), xattrs)
        meta.validate()
        if not parts:
            self.root.meta = meta
            return
        parent = self._lookup_dir(parts[:-1], create=True, shown=path)
        self._ensure_dir(parent, parts[-1], path).meta = meta

    def add_file(
        self,
        path: str,
        data: Union[bytes, Iterable[bytes]] = b"",
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        xattrs: Xattrs = (),
    ) -> str:
        """Write a regular file from bytes or an iterable of chunks; returns its checksum."""
        parts = self._file_parts(path)
        header = self._header(uid, gid, stat.S_IFREG | stat.S_IMODE(mode), xattrs)
        chunks: Iterable[bytes] = (bytes(data),) if isinstance(data, (bytes, bytearray, memoryview)) else data
        checksum = self.txn.write_content(header, chunks)
        self._put_file(self._lookup_dir(parts[:-1], create=True, shown=path), parts[-1], checksum, path)
        return checksum

    def add_symlink(self, path: str, target: str, *, uid: int = 0, gid: int = 0, xattrs: Xattrs = ()) -> str:
        """Write a symlink; returns its checksum."""
        parts = self._file_parts(path)
        header = self._header(uid, gid, stat.S_IFLNK | 0o777, xattrs, target)
        checksum = self.txn.write_content(header)
        self._put_file(self._lookup_dir(parts[:-1], create=True, shown=path), parts[-1], checksum, path)
        return checksum

    def add_checksum(self, path: str, checksum: str) -> None:
        """Reference a content object already in the repo (no data is read)."""
        parts = self._file_parts(path)
        self._put_file(self._lookup_dir(parts[:-1], create=True, shown=path), parts[-1], checksum, path)

    def _file_parts(self, path: str) -> List[str]:
        parts = _split(path)
        if not parts:
            raise TreeBuildError(f"invalid file path {path!r}")
        return parts

    # ---- directories on disk ---------------------------------------------------------

    def add_directory(self, source: Union[str, "os.PathLike[str]"]) -> None:
        """Merge a directory tree from disk into the root (``--tree=dir=PATH``)."""
        top = os.fspath(source)
        try:
            st = os.stat(top)
        except OSError as err:
            raise TreeBuildError(f"cannot read {top}: {err.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise TreeBuildError(f"not a directory: {top}")
        self.root.meta = self._disk_dir_meta(top, st)
        try:  # the repo itself, when it lies inside the tree, changes under the walk: skipped
            repo_st = os.stat(self.txn.root)
            self._skip_dir = (repo_st.st_dev, repo_st.st_ino)
        except (AttributeError, OSError):
            self._skip_dir = None
        try:
            self._walk(top, self.root)
        except OSError as err:
            raise TreeBuildError(f"cannot read {err.filename or top}: {err.strerror}") from None

    def _disk_dir_meta(self, path: str, st: os.stat_result) -> DirMeta:
        xattrs = () if self.options.no_xattrs or self.options.canonical_permissions else _disk_xattrs(path)
        return self._meta(st.st_uid, st.st_gid, st.st_mode, xattrs)

    def _walk(self, path: str, node: _Dir) -> None:
        with os.scandir(path) as entries:
            listing = list(entries)
        batch: List[Tuple[str, str, bool]] = []  # (name, path, is_link)
        for entry in listing:
            name = entry.name
            validate_filename(name)
            if entry.is_dir(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) == self._skip_dir:
                    continue
                child = self._ensure_dir(node, name, entry.path)
                child.meta = self._disk_dir_meta(entry.path, st)
                self._walk(entry.path, child)
                continue
            is_link = entry.is_symlink()
            if not (is_link or entry.is_file(follow_symlinks=False)):
                raise TreeBuildError(f"not a regular file or symlink: {entry.path}")
            if name in node.dirs:
                raise TreeBuildError(f"can't replace a directory with a file: {entry.path}")
            batch.append((name, entry.path, is_link))
            if len(batch) >= _BATCH_FILES:
                self._schedule(node, batch)
                batch = []
        if batch:
            self._schedule(node, batch)

    def _schedule(self, node: _Dir, batch: List[Tuple[str, str, bool]]) -> None:
        """Stage a few files of one directory per worker task (less per-task overhead)."""
        jobs = [(path, is_link) for _name, path, is_link in batch]
        if self._pool is None:
            for (name, path, _is_link), checksum in zip(batch, self._stage_batch(jobs)):
                self._put_file(node, name, checksum, path)
            return
        self._slots.acquire()
        try:
            future = self._pool.submit(self._stage_batch, jobs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        for index, (name, path, _is_link) in enumerate(batch):
            self._put_file(node, name, _Pending(future, index), path)

    def _stage_batch(self, jobs: List[Tuple[str, bool]]) -> List[str]:
        return [self._stage_disk_file(path, is_link) for path, is_link in jobs]

    def _stage_disk_file(self, path: str, is_link: bool) -> str:
        skip_xattrs = self._skip_xattrs
        if is_link:
            st = os.lstat(path)
            target = os.readlink(path)
            xattrs = () if skip_xattrs else _disk_xattrs(path)
            header = self._header(st.st_uid, st.st_gid, st.st_mode, xattrs, target)
            checksum = self.txn.write_content(header)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise TreeBuildError(f"not a regular file or symlink: {path}")
                xattrs = () if skip_xattrs else _disk_xattrs(fd)
                key = (st.st_uid, st.st_gid, st.st_mode, xattrs)
                known = self._headers.get(key)
                if known is None:
                    header = self._header(*key)
                    check_header_for_mode(header, self._mode_name)
                    known = self._headers[key] = (header, header.framed())
                header = known[0]
                size = st.st_size
                if size < CHUNK_SIZE:
                    data = os.read(fd, size + 1)
                else:
                    data = None
                    checksum = self.txn.write_content(header, _read_fd_chunks(fd, size), size=size)
            finally:
                os.close(fd)
            if data is not None:
                checksum = self._stage_small(header, known[1], data, size)
        if self._on_file is not None:
            self._on_file(path)
        return checksum

    def _stage_small(self, header: FileHeader, framed: bytes, data: bytes, size: int) -> str:
        """A file read whole (its header already checked for the mode): hash first (a duplicate costs no temp file and no deflate),
        then one ``write`` of the complete object, as ``Transaction.write_content`` would
        store it (one-shot raw deflate gives the same bytes as the streaming compressor)."""
        if len(data) != size:
            raise ObjectError(f"file changed while being read: {len(data)} bytes, expected {size}")
        txn = self.txn
        hasher = hashlib.sha256(framed)
        hasher.update(data)
        checksum = hasher.hexdigest()
        if txn.has_object(checksum, ObjectType.FILE):
            return checksum
        level = self._zlib_level
        if level is not None:
            data = header.to_archive_bytes(size) + zlib.compress(data, level, -15)
        txn.stage_content_bytes(checksum, data, header)
        return checksum

    # ---- trees already in the repo ----------------------------------------------------

    def add_repo_tree(self, tree_checksum: str, meta_checksum: str) -> None:
        """Merge a committed tree of this repo (``--tree=ref=REF``); no file is re-read."""
        repo = self.txn.repo
        self.root.meta = repo.load_dirmeta(meta_checksum)
        stack = [(self.root, tree_checksum, "/")]
        while stack:
            node, checksum, shown = stack.pop()
            dirtree = repo.load_dirtree(checksum)
            for entry in dirtree.files:
                self._put_file(node, entry.name, entry.checksum, shown + entry.name)
            for sub in dirtree.dirs:
                child = self._ensure_dir(node, sub.name, shown + sub.name)
                child.meta = repo.load_dirmeta(sub.meta_checksum)
                stack.append((child, sub.tree_checksum, f"{shown}{sub.name}/"))

    # ---- tar streams -----------------------------------------------------------------

    def add_tar(self, source: Union[str, "os.PathLike[str]", IO[bytes]]) -> None:
        """Merge a tar archive (any compression ``tarfile`` knows) read as a stream."""
        try:
            if isinstance(source, (str, os.PathLike)):
                with tarfile.open(os.fspath(source), mode="r|*") as archive:
                    self._import_tar(archive)
            else:
                with tarfile.open(fileobj=source, mode="r|*") as archive:
                    self._import_tar(archive)
        except (tarfile.TarError, EOFError) as err:
            raise TreeBuildError(f"invalid tar archive: {err}") from None
        except OSError as err:
            raise TreeBuildError(f"cannot read tar archive: {err.strerror or err}") from None

    def _import_tar(self, archive: tarfile.TarFile) -> None:
        for member in archive:
            parts = _split(member.name)
            xattrs = () if self.options.no_xattrs else _tar_xattrs(member)
            perms = stat.S_IMODE(member.mode)
            if member.isdir():
                meta = self._meta(member.uid, member.gid, stat.S_IFDIR | perms, xattrs)
                if not parts:
                    self.root.meta = meta
                    continue
                parent = self._lookup_dir(parts[:-1], create=False, shown=member.name)
                self._ensure_dir(parent, parts[-1], member.name).meta = meta
                continue
            if not parts:
                raise TreeBuildError(f"invalid tar member name {member.name!r}")
            parent = self._lookup_dir(parts[:-1], create=False, shown=member.name)
            if member.islnk():
                checksum = self._hardlink_target(member.linkname)
            elif member.issym():
                header = self._header(member.uid, member.gid, stat.S_IFLNK | 0o777, xattrs, member.linkname)
                checksum = self.txn.write_content(header)
            elif member.isreg():
                header = self._header(member.uid, member.gid, stat.S_IFREG | perms, xattrs)
                handle = archive.extractfile(member)
                if handle is None:
                    raise TreeBuildError(f"cannot read tar member {member.name}")
                checksum = self.txn.write_content(header, iter(lambda: handle.read(CHUNK_SIZE), b""), size=member.size)
            else:
                raise TreeBuildError(f"not a regular file or symlink: {member.name}")
            self._put_file(parent, parts[-1], checksum, member.name)

    def _hardlink_target(self, linkname: str) -> str:
        parts = _split(linkname)
        if not parts:
            raise TreeBuildError(f"invalid hardlink target {linkname!r}")
        parent = self._lookup_dir(parts[:-1], create=False, shown=linkname)
        ref = parent.files.get(parts[-1])
        if ref is None:
            raise TreeBuildError(f"hardlink target not found: {linkname}")
        return ref if isinstance(ref, str) else _result(ref)

    # ---- writing the directories -----------------------------------------------------

    def finish(self) -> Tuple[str, str]:
        """Wait for staged files, write dirmeta/dirtree bottom-up; returns (tree, meta)."""
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self.root.meta is None:
                raise TreeBuildError("can't commit an empty tree")
            return self._write_dir(self.root, "/")
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers (waiting for running ones) without writing the tree."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _write_dir(self, node: _Dir, shown: str) -> Tuple[str, str]:
        files = []
        for name in sorted(node.files, key=lambda text: text.encode("utf-8")):
            ref = node.files[name]
            checksum = ref if isinstance(ref, str) else _result(ref)
            files.append(FileEntry(name, checksum))
        dirs = []
        for name in sorted(node.dirs, key=lambda text: text.encode("utf-8")):
            tree, meta = self._write_dir(node.dirs[name], f"{shown}{name}/")
            dirs.append(DirEntry(name, tree, meta))
        dir_meta = node.meta if node.meta is not None else self._meta(0, 0, _DEFAULT_DIR_MODE, ())
        meta_checksum = self.txn.write_metadata(dir_meta)
        tree_checksum = self.txn.write_metadata(DirTree(tuple(files), tuple(dirs)))
        return tree_checksum, meta_checksum

    def __enter__(self) -> TreeBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _result(pending: _Pending) -> str:
    try:
        return pending.result()
    except PyOstreeError:
        raise
    except OSError as err:
        raise TreeBuildError(f"cannot read {err.filename}: {err.strerror}") from None


def _tar_xattrs(member: tarfile.TarInfo) -> Xattrs:
    """pax ``SCHILY.xattr.NAME`` records, as GNU tar and libarchive write them."""
    pairs = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            raw = value.encode("utf-8", "surrogateescape")
            pairs.append((key[len("SCHILY.xattr."):], raw))
    if not pairs:
        return ()
    try:
        return canonical_xattrs(pairs)
    except ObjectError as err:
        raise TreeBuildError(f"tar member {member.name}: {err}") from None
