"""Write a commit's tree onto the filesystem exactly as ``ostree checkout`` does, but safely.

Everything below the destination is created relative to directory file descriptors with
``O_NOFOLLOW``/``O_EXCL``, so a hostile tree (names with ``/`` or ``..``, duplicates, a
symlink planted before a directory of the same name) can never make us write outside the
destination. Semantics follow libostree 2022.7 (``ostree-repo-checkout.c``):

* directories are made 0700, filled, then chmod'ed (bare-user-only: ``& 0775``), chown'ed
  (not in user mode) and given mtime 0;
* files are hardlinked to the object when the repo stores them in checkout form (bare +
  normal mode, bare-user/bare-user-only + user mode), except zero-length files and
  bare-user symlinks; otherwise copied, then chown'ed/xattr'ed (not in user mode) and
  chmod'ed (user mode clears setuid/setgid; unreadable files gain ``u+r``);
* a bare-user-only repo always checks out in user mode.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Set, Tuple

from pyostree.checkout.fastpath import stat_function
from pyostree.checkout.tree import TreeEntry, commit_root, resolve_path
from pyostree.errors import CheckoutError

if TYPE_CHECKING:
    from pyostree.objects import DirMeta, DirTree
    from pyostree.repo import Repo

__all__ = [
    "CheckoutOptions",
    "CheckoutProgress",
    "CheckoutStats",
    "ProgressCallback",
    "checkout",
    "checkout_tree",
    "check_entry_name",
]

_DIR_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_HARDLINK_FALLBACK_ERRNOS = frozenset({errno.EMLINK, errno.EXDEV, errno.EPERM})
_TMP_PREFIX = ".pyostree-checkout-"


@dataclass(frozen=True)
class CheckoutOptions:
    """What ``ostree checkout`` flags we honour."""

    user_mode: bool = False   # -U: no chown, no xattrs, setuid/setgid cleared
    union: bool = False       # --union: keep existing dirs, replace existing files
    subpath: str = "/"        # --subpath: check out only this directory
    force_copy: bool = False  # -C: never hardlink (also keeps directory mtimes)
    fsync: bool = False       # fsync files and directories as they are written
    require_hardlinks: bool = False  # -H: fail where a file would be copied, as ostree


@dataclass(frozen=True)
class CheckoutProgress:
    """Counts so far; reported after each directory is complete."""

    files: int
    directories: int
    hardlinks: int
    bytes_copied: int
    path: str


CheckoutStats = CheckoutProgress
ProgressCallback = Callable[[CheckoutProgress], None]


def check_entry_name(name: str) -> None:
    """Refuse any name that could escape or alias inside the destination directory."""
    if name == "":
        raise CheckoutError("refusing to check out an entry with an empty or non-UTF-8 name")
    if name in (".", ".."):
        raise CheckoutError(f"refusing to check out an entry named {name!r}")
    if "/" in name or "\0" in name:
        raise CheckoutError(f"refusing to check out an entry named {name!r}: contains '/' or NUL")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckoutError(f"refusing to check out an entry named {name!r}: not valid UTF-8") from None


def _check_tree_names(tree: DirTree, path: str) -> None:
    _check_names([entry.name for entry in tree.files] + [entry.name for entry in tree.dirs], path)


def _check_names(names: List[str], path: str) -> None:
    """Every name of one directory is safe and appears once (files and dirs together)."""
    unique = set(names)
    if len(unique) != len(names):
        seen: Set[str] = set()
        for name in names:
            if name in seen:
                raise CheckoutError(f"refusing to check out {path}: name {name!r} appears twice")
            seen.add(name)
    # The whole directory at once; check_entry_name then finds and words any problem.
    joined = "".join(names)
    try:
        joined.encode("utf-8")
        suspect = "/" in joined or "\0" in joined or bool(unique & _BAD_NAMES)
    except UnicodeEncodeError:
        suspect = True
    if suspect:
        for name in names:
            check_entry_name(name)


_BAD_NAMES = frozenset({"", ".", ".."})


class _Counts:
    """Per-directory-task counters, summed by the coordinating thread.

    (Plain classes, not dataclasses, for these two: each dataclass costs start-up time.)"""

    __slots__ = ("files", "hardlinks", "bytes_copied")

    def __init__(self) -> None:
        self.files = 0
        self.hardlinks = 0
        self.bytes_copied = 0


class _DirResult:
    __slots__ = ("components", "meta", "subdirs", "counts", "path")

    def __init__(self, components: Tuple[str, ...], meta: Optional[DirMeta],
                 subdirs: Tuple[Tuple[Tuple[str, ...], TreeEntry], ...], counts: _Counts,
                 path: str) -> None:
        self.components = components  # directory names from the destination's parent down
        self.meta = meta              # None when --union reused an existing directory
        self.subdirs = subdirs
        self.counts = counts
        self.path = path


class _Writer:
    """One checkout run: options, repo capabilities and running counts.

    Directories are filled by a small thread pool (zlib, hashing-free copies and the
    create/link syscalls release the GIL); each task re-opens its directory from the
    destination's parent one ``O_NOFOLLOW`` component at a time. Modes, owners and
    mtimes are applied at the end, children before parents, as libostree does per
    directory, so a read-only directory never blocks its own filling.
    """

    def __init__(self, repo: Repo, options: CheckoutOptions, progress: Optional[ProgressCallback],
                 workers: int):
        from pyostree.repo import RepoMode

        self.repo = repo
        self.objects_dir = os.path.join(os.fspath(repo.path), "objects")
        self.bare_user_only = repo.mode == RepoMode.BARE_USER_ONLY
        # libostree: "Force USER mode for BARE_USER_ONLY always - nothing else makes sense".
        self.user_mode = options.user_mode or self.bare_user_only
        self.usermode_repo = repo.mode in (RepoMode.BARE_USER, RepoMode.BARE_USER_ONLY)
        self.hardlinkable = not options.force_copy and (
            (repo.mode == RepoMode.BARE and not self.user_mode)
            or (self.usermode_repo and self.user_mode)
        )
        self.options = options
        self.progress = progress
        self.workers = max(1, workers)
        # Cached per object by link_sources below, not by the stat function.
        self.fast_stat = stat_function(repo, cache=False) if self.hardlinkable else None
        self.link_sources: Dict[bytes, str] = {}  # raw digest -> object path, "" if not linkable
        self.files = 0
        self.directories = 0
        self.hardlinks = 0
        self.bytes_copied = 0
        self.parent_fd = -1
        self.dirmetas: Dict[str, DirMeta] = {}  # shared by threads: same value either way

    def stats(self, path: str) -> CheckoutProgress:
        return CheckoutProgress(self.files, self.directories, self.hardlinks, self.bytes_copied, path)

    # -- directories -------------------------------------------------------------------

    def run(self, parent_fd: int, name: str, entry: TreeEntry) -> None:
        """Create directory NAME under PARENT_FD from ENTRY, then everything below it."""
        self.parent_fd = parent_fd
        if self.workers == 1:
            self._walk(parent_fd, (name,), entry)
            return
        made: List[_DirResult] = []
        self._run_pool(name, entry, made)
        # Children were created after their parents: finish in reverse creation order.
        for result in reversed(made):
            if result.meta is not None or self.options.fsync:
                fd = self._open_components(result.components)
                try:
                    self._finish(fd, result.meta)
                finally:
                    os.close(fd)

    def _walk(self, parent_fd: int, components: Tuple[str, ...], entry: TreeEntry) -> None:
        """Sequential depth-first fill holding one fd per level, finishing on the way up."""
        fd, result = self._make_and_fill(parent_fd, components, entry)
        try:
            self._account(result)
            for sub_components, sub in result.subdirs:
                self._walk(fd, sub_components, sub)
            self._finish(fd, result.meta)
        finally:
            os.close(fd)

    def _finish(self, fd: int, meta: Optional[DirMeta]) -> None:
        if meta is not None:
            self._finish_directory(fd, meta)
        if self.options.fsync:
            os.fsync(fd)

    def _run_pool(self, name: str, entry: TreeEntry, made: List[_DirResult]) -> None:
        """Fill directories in worker threads; results come back through one queue."""
        import queue
        from concurrent.futures import Future, ThreadPoolExecutor

        finished: queue.SimpleQueue[Future[_DirResult]] = queue.SimpleQueue()
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            pool.submit(self._populate, (name,), entry).add_done_callback(finished.put)
            outstanding = 1
            while outstanding:
                result = finished.get().result()
                outstanding -= 1
                made.append(result)
                self._account(result)
                for components, sub in result.subdirs:
                    pool.submit(self._populate, components, sub).add_done_callback(finished.put)
                    outstanding += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _account(self, result: _DirResult) -> None:
        self.files += result.counts.files
        self.hardlinks += result.counts.hardlinks
        self.bytes_copied += result.counts.bytes_copied
        self.directories += 1
        if self.progress is not None:
            self.progress(self.stats(result.path))

    def _open_components(self, components: Tuple[str, ...]) -> int:
        """Walk down from the destination's parent without following any symlink."""
        fd = os.dup(self.parent_fd)
        try:
            for component in components:
                child = os.open(component, _DIR_OPEN_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _populate(self, components: Tuple[str, ...], entry: TreeEntry) -> _DirResult:
        """Worker task: reach the parent from the destination, make and fill one directory."""
        parent_fd = self._open_components(components[:-1])
        try:
            fd, result = self._make_and_fill(parent_fd, components, entry)
        finally:
            os.close(parent_fd)
        os.close(fd)
        return result

    def _load_dirmeta(self, checksum: str, path: str) -> DirMeta:
        meta = self.dirmetas.get(checksum)
        if meta is None:
            meta = self.repo.load_dirmeta(checksum)
            if not stat.S_ISDIR(meta.mode):
                raise CheckoutError(f"dirmeta {checksum} of {path} is not a directory")
            self.dirmetas[checksum] = meta
        return meta

    def _entries(self, entry: TreeEntry) -> Tuple[List[Tuple[str, bytes]], List[Tuple[str, str, str]]]:
        """(name, raw digest) of the files and (name, tree, meta) of the subdirectories,
        names checked: nothing that could escape or alias inside the directory."""
        lists = self.repo.store.read_dirtree_lists(entry.checksum)
        if lists is None:
            tree = self.repo.load_dirtree(entry.checksum)
            _check_tree_names(tree, entry.path)
            return ([(f.name, bytes.fromhex(f.checksum)) for f in tree.files],
                    [(d.name, d.tree_checksum, d.meta_checksum) for d in tree.dirs])
        raw_files, raw_dirs = lists
        _check_names([name for name, _ in raw_files] + [name for name, _, _ in raw_dirs], entry.path)
        return raw_files, [(name, tree.hex(), meta.hex()) for name, tree, meta in raw_dirs]

    def _make_and_fill(self, parent_fd: int, components: Tuple[str, ...],
                       entry: TreeEntry) -> Tuple[int, _DirResult]:
        """Create (or, with --union, reuse) one directory and write its files; its fd stays open."""
        files, dirs = self._entries(entry)
        meta = self._load_dirmeta(entry.meta_checksum, entry.path)
        name = components[-1]
        created = True
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            if not self.options.union:
                raise CheckoutError(f"{entry.path}: destination already exists") from None
            created = False
        try:
            fd = os.open(name, _DIR_OPEN_FLAGS, dir_fd=parent_fd)
        except OSError as err:
            raise CheckoutError(f"{entry.path}: cannot open directory: {err.strerror}") from None
        counts = _Counts()
        prefix = "/" if entry.path == "/" else entry.path + "/"
        try:
            if created and not self.user_mode:
                _set_xattrs(fd, meta.xattrs)
            if self.fast_stat is not None and not self.options.union:
                self._link_files(fd, files, prefix, counts)
            else:
                for file_name, raw in files:
                    self.file(fd, file_name, raw.hex(), prefix + file_name, counts)
        except BaseException:
            os.close(fd)
            raise
        subdirs = tuple(
            (components + (dir_name,), TreeEntry(prefix + dir_name, True, tree, dir_meta))
            for dir_name, tree, dir_meta in dirs)
        return fd, _DirResult(components, meta if created else None, subdirs, counts, entry.path)

    def _link_files(self, dir_fd: int, files: List[Tuple[str, bytes]], prefix: str,
                    counts: _Counts) -> None:
        """Hardlink a directory's files: one ``linkat`` per file in the common case.

        Whether an object can be linked (a readable, non-empty regular file) is decided
        once per object from ``stat_content``; the link shares the object's inode, so
        mode and owner need no setting. Anything else takes the general path.
        """
        sources = self.link_sources
        link = os.link
        linked = 0
        for file_name, raw in files:
            source = sources.get(raw)
            if source is None:
                source = sources[raw] = self._link_source(raw.hex())
            if source:
                try:
                    link(source, file_name, dst_dir_fd=dir_fd, follow_symlinks=False)
                    linked += 1
                    continue
                except OSError:
                    pass  # the general path below retries, falls back or words the error
            self.file(dir_fd, file_name, raw.hex(), prefix + file_name, counts)
        counts.files += linked
        counts.hardlinks += linked

    def _link_source(self, checksum: str) -> str:
        """The object's path if ``_link_files`` may hardlink it straight away, else ""."""
        assert self.fast_stat is not None
        try:
            quick = self.fast_stat(checksum)
        except OSError:
            return ""
        if quick is None or quick.is_symlink or quick.size == 0:
            return ""
        if self.user_mode and not quick.mode & stat.S_IRUSR:
            return ""
        return f"{self.objects_dir}/{checksum[:2]}/{checksum[2:]}.file"

    def _finish_directory(self, fd: int, meta: DirMeta) -> None:
        mode = meta.mode & 0o7777
        if self.bare_user_only:
            mode &= 0o775
        os.fchmod(fd, mode)
        if not self.user_mode:
            os.fchown(fd, meta.uid, meta.gid)
        if not self.options.force_copy:
            atime_ns = os.fstat(fd).st_atime_ns
            os.utime(fd, ns=(atime_ns, 0))

    # -- files -------------------------------------------------------------------------

    def file(self, dir_fd: int, name: str, checksum: str, path: str, counts: _Counts) -> None:
        """Check out one content object as NAME in DIR_FD: hardlink if ostree would, else copy.

        NAME was vetted with the rest of its directory by ``_check_tree_names``.
        """
        if self.fast_stat is not None and self._try_fast_hardlink(dir_fd, name, checksum, path):
            counts.files += 1
            counts.hardlinks += 1
            return
        if self.options.require_hardlinks and not self.hardlinkable:
            raise CheckoutError(self._no_hardlink_reason())
        with self.repo.open_content(checksum) as reader:
            header = reader.header
            if not (header.is_regular or header.is_symlink):
                raise CheckoutError(f"{path}: content object {checksum} is neither a file nor a symlink")
            mode = header.mode
            unreadable = header.is_regular and not mode & stat.S_IRUSR
            zero_sized = header.is_regular and reader.size == 0
            bare_user_symlink = self.usermode_repo and header.is_symlink
            if (self.hardlinkable and not zero_sized and not bare_user_symlink
                    and not (self.user_mode and unreadable)):
                if self._hardlink(dir_fd, name, checksum, path):
                    counts.files += 1
                    counts.hardlinks += 1
                    return
            if header.is_symlink:
                self._symlink(dir_fd, name, header.symlink_target, header.uid, header.gid,
                              header.xattrs, path)
            else:
                if self.user_mode:
                    mode &= ~(stat.S_ISUID | stat.S_ISGID)
                    if unreadable:
                        mode |= stat.S_IRUSR
                counts.bytes_copied += self._copy(dir_fd, name, reader.iter_chunks(), mode,
                                                  header.uid, header.gid, header.xattrs, path)
        counts.files += 1

    def _no_hardlink_reason(self) -> str:
        """libostree's words when --require-hardlinks meets a mode that copies."""
        from pyostree.repo import RepoMode

        if self.repo.mode == RepoMode.BARE_USER and not self.user_mode:
            return "User repository mode requires user checkout mode to hardlink"
        return "Bare repository mode cannot hardlink in user checkout mode"

    def _try_fast_hardlink(self, dir_fd: int, name: str, checksum: str, path: str) -> bool:
        """The common case without opening a reader: a plain, readable, non-empty file."""
        raw = bytes.fromhex(checksum)
        source = self.link_sources.get(raw)
        if source is None:
            source = self.link_sources[raw] = self._link_source(checksum)
        return bool(source) and self._hardlink(dir_fd, name, checksum, path)

    def _hardlink(self, dir_fd: int, name: str, checksum: str, path: str) -> bool:
        source = f"{self.objects_dir}/{checksum[:2]}/{checksum[2:]}.file"
        target = name
        if self.options.union:
            target = _temp_name(dir_fd)
        try:
            os.link(source, target, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise CheckoutError(f"{path}: destination already exists") from None
        except OSError as err:
            if err.errno in _HARDLINK_FALLBACK_ERRNOS and not self.options.require_hardlinks:
                return False
            raise CheckoutError(f"{path}: hardlinking {checksum}: {err.strerror}") from None
        if target != name:
            self._replace(dir_fd, target, name, path)
        return True

    def _symlink(self, dir_fd: int, name: str, target: str, uid: int, gid: int,
                 xattrs: Iterable[tuple[bytes, bytes]], path: str) -> None:
        link_name = _temp_name(dir_fd) if self.options.union else name
        try:
            os.symlink(target, link_name, dir_fd=dir_fd)
        except FileExistsError:
            raise CheckoutError(f"{path}: destination already exists") from None
        try:
            if not self.user_mode:
                os.chown(link_name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
                for xattr_name, value in xattrs:
                    os.setxattr(f"/proc/self/fd/{dir_fd}/{link_name}", _xattr_name(xattr_name),
                                value, follow_symlinks=False)
        except BaseException:
            if link_name != name:
                _unlink_quietly(dir_fd, link_name)
            raise
        if link_name != name:
            self._replace(dir_fd, link_name, name, path)

    def _copy(self, dir_fd: int, name: str, chunks: Iterable[bytes], mode: int, uid: int, gid: int,
              xattrs: Iterable[tuple[bytes, bytes]], path: str) -> int:
        copied = 0
        file_name = _temp_name(dir_fd) if self.options.union else name
        try:
            fd = os.open(file_name, _FILE_CREATE_FLAGS, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            raise CheckoutError(f"{path}: destination already exists") from None
        try:
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                        copied += written
                if not self.user_mode:
                    os.fchown(fd, uid, gid)
                    _set_xattrs(fd, xattrs)
                os.fchmod(fd, mode & 0o7777)
                if self.options.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            if file_name != name:
                _unlink_quietly(dir_fd, file_name)
            raise
        if file_name != name:
            self._replace(dir_fd, file_name, name, path)
        return copied

    def _replace(self, dir_fd: int, temp: str, name: str, path: str) -> None:
        """--union: atomically put TEMP over NAME; never over a directory (like ostree)."""
        try:
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as err:
            _unlink_quietly(dir_fd, temp)
            raise CheckoutError(f"{path}: cannot replace existing entry: {err.strerror}") from None


def _xattr_name(raw: bytes) -> bytes:
    """Stored names carry their trailing NUL; the syscall wants it without."""
    return raw[:-1] if raw.endswith(b"\0") else raw


def _set_xattrs(fd: int, xattrs: Iterable[tuple[bytes, bytes]]) -> None:
    for name, value in xattrs:
        os.setxattr(fd, _xattr_name(name), value)


def _temp_name(dir_fd: int) -> str:
    """A fresh name in DIR_FD for write-then-rename; O_EXCL/link/symlink fail if taken."""
    return _TMP_PREFIX + os.urandom(8).hex()


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _open_destination_parent(destination: str) -> tuple[int, str]:
    """A dir fd for DEST's parent and DEST's last component (DEST itself is never followed)."""
    path = os.path.normpath(destination)
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise CheckoutError(f"invalid checkout destination {destination!r}")
    try:
        fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise CheckoutError(f"cannot open parent of {destination}: {err.strerror}") from None
    return fd, name


def checkout_tree(repo: Repo, entry: TreeEntry, destination: str | os.PathLike[str],
                  options: CheckoutOptions = CheckoutOptions(),
                  progress: Optional[ProgressCallback] = None,
                  workers: Optional[int] = None) -> CheckoutStats:
    """Materialise the directory ENTRY at DESTINATION (created; must not exist unless union).

    PROGRESS is called from the calling thread once per directory filled.
    """
    if not entry.is_dir:
        raise CheckoutError(f"{entry.path} is not a directory")
    writer = _Writer(repo, options, progress, workers or 0)
    if not workers:
        # Copies (inflate, write) overlap well in threads; hardlinking does not.
        writer.workers = 1 if writer.hardlinkable else min(4, os.cpu_count() or 1)
    parent_fd, name = _open_destination_parent(os.fspath(destination))
    try:
        writer.run(parent_fd, name, entry)
        if options.fsync:
            os.fsync(parent_fd)
    except OSError as err:
        raise CheckoutError(_describe(err)) from None
    except RecursionError:
        raise CheckoutError(f"{entry.path}: directory tree too deep to check out") from None
    finally:
        os.close(parent_fd)
    return writer.stats(entry.path)


def checkout(repo: Repo, commit: str, destination: str | os.PathLike[str],
             options: CheckoutOptions = CheckoutOptions(),
             progress: Optional[ProgressCallback] = None,
             workers: Optional[int] = None) -> CheckoutStats:
    """Check out COMMIT (a checksum) or its ``options.subpath`` directory at DESTINATION."""
    root = commit_root(repo, commit)
    entry = resolve_path(repo, root, options.subpath) if options.subpath != "/" else root
    return checkout_tree(repo, entry, destination, options, progress, workers)


def _describe(err: OSError) -> str:
    message = err.strerror or str(err)
    if err.filename is not None:
        return f"{message}: {os.fsdecode(err.filename)}"
    return message
