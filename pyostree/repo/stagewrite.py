"""Staging: how a transaction writes each object, complete and verified, into its staging
dir (spec §1.7 steps 1–3), before publishing moves it into ``objects/``.

The rules in one place: every object is written to a temp file in a per-thread dir of
the staging dir and renamed to ``XX/NAME`` there once complete; what vouches for other
objects (dirtree, commit, commitmeta) goes under ``UNCHECKED_DIR`` instead, so that no
other writer publishes it unchecked; objects that end up 0644 are created so where the
umask allows; metadata is bounded by ``MAX_METADATA_SIZE``; a bare repo may refuse
setuid/setgid and capability files. Thread-safe: a tree builder stages from a pool.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import stat
import threading
import time
import zlib
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from pyostree.errors import ChecksumMismatchError, ObjectError, RepoError
from pyostree.objects.checksum import validate_checksum
from pyostree.objects.types import ObjectType
from pyostree.repo.fsutil import BytesReader, TmpFile, page_dropper, write_all
from pyostree.repo.modewrite import apply_file_metadata, check_header_for_mode, ostreemeta
from pyostree.repo.staging import UNCHECKED_DIR, StagingDir

if TYPE_CHECKING:
    import mmap

    from pyostree.objects import Commit, DirMeta, DirTree, FileHeader
    from pyostree.objects.content import FilezHeaderCache
    from pyostree.repo.writesettings import WriteSettings

__all__ = ["MAX_METADATA_SIZE", "PUBLIC_MODE", "Stager", "TransactionError"]

MAX_METADATA_SIZE = 128 * 1024 * 1024
_COPY_CHUNK = 1 << 20
_TMP_PREFIX = "tmpobj-"
PUBLIC_MODE = 0o644  # final mode of archive objects and of metadata in every mode
_PUBLIC = PUBLIC_MODE
# Staged under UNCHECKED_DIR: what vouches for other objects (a dirtree in objects/ is
# trusted complete, a commit is walked by fsck, a commitmeta carries its signatures).
_UNCHECKED_TYPES = frozenset((ObjectType.DIR_TREE, ObjectType.COMMIT, ObjectType.COMMIT_META))
_PRIVILEGED_XATTR = b"security.capability\0"
_KEPT_TREE_BYTES = 16 << 20
_KEPT_TREE_MAX = 1 << 20
"""A bigger dirtree is not kept: parsing it for early publishing (an object per entry)
took ~10 bytes of memory per byte of it."""


class TransactionError(RepoError):
    """A transaction was used wrongly (outside ``with``, after commit/abort)."""


def _created_public(tmp: TmpFile) -> bool:
    """Whether a file created 0644 really is: a default ACL or an odd file system may
    ignore the umask (checked once per temp dir)."""
    try:
        return stat.S_IMODE(os.fstat(tmp.fd).st_mode) == _PUBLIC
    except BaseException:
        tmp.discard()
        raise


def _refuse_privileged(header: FileHeader) -> None:
    """What a bare repo would make a real setuid/setgid or capability file."""
    if header.mode & (stat.S_ISUID | stat.S_ISGID) and not header.is_symlink:
        raise ObjectError(f"refusing a setuid/setgid file (mode 0o{header.mode:o})")
    if any(name == _PRIVILEGED_XATTR for name, _value in header.xattrs):
        raise ObjectError("refusing a file with a security.capability xattr")


def _metadata_type(obj: object) -> ObjectType:
    from pyostree.objects import Commit, DirMeta, DirTree

    if isinstance(obj, DirMeta):
        return ObjectType.DIR_META
    if isinstance(obj, DirTree):
        return ObjectType.DIR_TREE
    if isinstance(obj, Commit):
        return ObjectType.COMMIT
    raise TransactionError(f"cannot write {type(obj).__name__} as a metadata object")


class Stager:
    """Writes one transaction's objects into its staging dir, and keeps the record that
    publishing reads: ``sequence`` (staged relpath -> write order), ``unchecked`` (the
    relpaths staged under UNCHECKED_DIR) and ``kept_trees`` (staged dirtree relpath ->
    bytes), all guarded by ``guard``.

    ``require_open``/``require_staging``: the transaction's lifecycle checks (they raise
    TransactionError), giving its staging dir. ``on_record(rel, objtype)``: called under
    ``guard`` as each object gets its staged name; ``on_bytes(size)``: after, with its
    size (early publishing counts them)."""

    def __init__(self, root: str, settings: WriteSettings, *,
                 require_open: Callable[[], StagingDir], require_staging: Callable[[], StagingDir],
                 on_record: Callable[[str, ObjectType], None], on_bytes: Callable[[int], None],
                 on_object: Optional[Callable[[str, ObjectType], None]] = None,
                 privileged_files: bool = True) -> None:
        self._root = root
        self._settings = settings
        self._require_open = require_open
        self._require_staging = require_staging
        self._on_record = on_record
        self._on_bytes = on_bytes
        self._on_object = on_object
        self._privileged_files = privileged_files
        self._dir: Optional[StagingDir] = None  # set by open()
        self.guard = threading.Lock()
        self.sequence: Dict[str, int] = {}
        self.unchecked: Set[str] = set()
        self.kept_trees: Dict[str, bytes] = {}
        self._kept_tree_bytes = 0
        self._present: Set[str] = set()  # relpaths known to exist in objects/ or staging
        self._thread_tmp = threading.local()
        self._tmp_counter = itertools.count()
        self._public_tmp_mode = 0o600  # 0644 once open() has seen a umask that keeps it
        self._filez_headers: Optional[FilezHeaderCache] = None  # made on first use
        self.objects_written = 0

    def open(self, staging: StagingDir, umask: Optional[int]) -> None:
        """The transaction has begun with ``staging``; ``umask``: the process's, if known."""
        self._dir = staging
        if umask is not None and umask & _PUBLIC == 0:
            self._public_tmp_mode = _PUBLIC

    def relpath(self, checksum: str, objtype: ObjectType) -> str:
        return f"{checksum[:2]}/{checksum[2:]}.{objtype.extension(self._settings.archive)}"

    def staged_path(self, rel: str) -> str:
        """Where a staged object is: under UNCHECKED_DIR if this transaction put it there."""
        staging = self._dir
        if staging is None:
            raise TransactionError("transaction is not open")
        if rel in self.unchecked:
            return os.path.join(staging.path, UNCHECKED_DIR, rel)
        return os.path.join(staging.path, rel)

    def staged_metadata_path(self, checksum: str, objtype: ObjectType) -> str:
        """The staged file of a metadata object (it may not exist)."""
        return self.staged_path(self.relpath(checksum, objtype))

    def has_object(self, checksum: str, objtype: ObjectType) -> bool:
        """Present in ``objects/`` or already staged in this transaction's dir.

        Objects cannot vanish while we hold the shared lock (deletion needs it exclusive),
        so a positive answer is cached.
        """
        rel = self.relpath(checksum, objtype)
        if rel in self._present:
            return True
        staging = self._require_open()
        if os.path.lexists(os.path.join(self._root, "objects", rel)) or (
            staging.resumed and os.path.lexists(os.path.join(staging.path, rel))
        ):
            self._present.add(rel)
            return True
        return False

    def _new_tmp(self, public: bool = False) -> TmpFile:
        """A named temp file in a per-thread dir of the staging dir, so parallel writers do
        not serialise on one directory's lock (libostree uses ``O_TMPFILE``, which measured
        no faster here; leftovers die with the staging dir).

        ``public``: the object ends up 0644; create it so when the umask allows, so that
        :meth:`_make_public` has nothing left to do. The dir is 0700: only its owner can
        reach the incomplete file either way."""
        staging = self._require_staging()
        local = self._thread_tmp
        directory = getattr(local, "path", None)
        if directory is None or not directory.startswith(staging.path):
            directory = os.path.join(staging.path, f"{_TMP_PREFIX}{threading.get_ident():x}")
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                pass
            local.path = directory
            local.mode_ok = None  # unknown until a file made there has been checked
        mode = self._public_tmp_mode if public else 0o600
        for _ in range(100):
            path = os.path.join(directory, f"{next(self._tmp_counter):x}")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except FileExistsError:
                continue
            tmp = TmpFile(fd, path)
            if mode == _PUBLIC:
                if local.mode_ok is None:
                    local.mode_ok = _created_public(tmp)
                tmp.public = local.mode_ok
            return tmp
        raise RepoError("cannot create a temporary file in the staging dir")

    @staticmethod
    def _make_public(tmp: TmpFile) -> None:
        """Mode 0644 before the object gets its name; already so when created that way."""
        if not tmp.public:
            os.fchmod(tmp.fd, _PUBLIC)

    def _finish_file(self, tmp: TmpFile, header: FileHeader) -> None:
        """The mode's owner/mode/xattrs/mtime; in archive mode that is only the mode 0644."""
        if self._settings.archive:
            self._make_public(tmp)
        else:
            apply_file_metadata(tmp.fd, header, self._settings.mode_name)

    def _install(self, tmp: TmpFile, checksum: str, objtype: ObjectType) -> None:
        """Give a complete temp object its final name inside the staging dir (closes it)."""
        staging = self._require_staging()
        rel = self.relpath(checksum, objtype)
        if objtype in _UNCHECKED_TYPES:
            target = os.path.join(staging.unchecked_dir(checksum[:2]), rel[3:])
            with self.guard:
                self.unchecked.add(rel)
        else:
            staging.object_dir(checksum[:2])
            target = os.path.join(staging.path, rel)
        tmp.close()
        os.rename(tmp.path, target)
        self._record(rel, checksum, objtype)

    def _install_path(self, path: str, checksum: str, objtype: ObjectType) -> None:
        staging = self._require_staging()
        rel = self.relpath(checksum, objtype)
        staging.object_dir(checksum[:2])
        os.rename(path, os.path.join(staging.path, rel))
        self._record(rel, checksum, objtype)

    def _record(self, rel: str, checksum: str, objtype: ObjectType) -> None:
        with self.guard:
            self.sequence[rel] = len(self.sequence)
            self.objects_written += 1
            self._on_record(rel, objtype)
        if objtype is not ObjectType.COMMIT_META:
            self._present.add(rel)
        if self._on_object is not None:
            self._on_object(checksum, objtype)

    def write_metadata(self, obj: Union[DirMeta, DirTree, Commit]) -> str:
        """Serialise and stage a dirmeta, dirtree or commit; returns its checksum."""
        return self.write_metadata_bytes(_metadata_type(obj), obj.to_bytes())

    def write_metadata_bytes(self, objtype: ObjectType, data: Union[bytes, bytearray],
                             expected_checksum: Optional[str] = None) -> str:
        """Stage already-serialised metadata; a given ``expected_checksum`` is verified first."""
        return self._write_metadata_bytes(objtype, data, expected_checksum, True)

    def _write_metadata_bytes(
        self, objtype: ObjectType, data: Union[bytes, bytearray], expected_checksum: Optional[str],
        check: bool
    ) -> str:
        if objtype not in (ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT):
            raise TransactionError(f"{objtype.name} objects are not content-addressed metadata")
        if len(data) > MAX_METADATA_SIZE:
            raise ObjectError(f"metadata object of {len(data)} bytes exceeds {MAX_METADATA_SIZE}")
        checksum = hashlib.sha256(data).hexdigest()  # a bytearray is not copied
        if expected_checksum is not None and checksum != validate_checksum(expected_checksum):
            raise ChecksumMismatchError(
                f"corrupted {objtype.extension()} object: expected {expected_checksum}, actual {checksum}"
            )
        if check and self.has_object(checksum, objtype):
            return checksum
        self._stage_public_bytes(data, checksum, objtype)
        if objtype is ObjectType.DIR_TREE:
            self._keep_tree(checksum, data)
        return checksum

    def _keep_tree(self, checksum: str, data: Union[bytes, bytearray]) -> None:
        """Remember a staged dirtree's bytes (up to _KEPT_TREE_BYTES in all, each up to
        _KEPT_TREE_MAX) so that publishing orders the dirtrees children-first without
        reading them back. Past the bounds nothing is copied: a big dirtree is read back
        once, by the completeness check, which reads each dirtree once per session."""
        if len(data) > _KEPT_TREE_MAX:
            return  # early publishing would build an entry per file: it waits for commit
        with self.guard:
            if self._kept_tree_bytes + len(data) <= _KEPT_TREE_BYTES:
                self._kept_tree_bytes += len(data)
                self.kept_trees[self.relpath(checksum, ObjectType.DIR_TREE)] = bytes(data)

    def write_metadata_stream(self, objtype: ObjectType, chunks: Iterable[bytes], size: int,
                              expected_checksum: str,
                              check: Callable[["mmap.mmap", Callable[[int, int], None]], None]
                              ) -> str:
        """Stage a big metadata object as it arrives, never whole in memory: ``chunks``
        (``size`` bytes in all) go to a temp file of the staging dir while hashed, then
        ``check(mapped, release)`` validates the file mapped read-only, calling
        ``release(start, end)`` for what it has read (those pages are dropped)."""
        import mmap

        validate_checksum(expected_checksum)
        if objtype not in (ObjectType.DIR_TREE, ObjectType.DIR_META, ObjectType.COMMIT):
            raise TransactionError(f"{objtype.name} objects are not content-addressed metadata")
        if size > MAX_METADATA_SIZE:
            raise ObjectError(f"metadata object of {size} bytes exceeds {MAX_METADATA_SIZE}")
        tmp = self._new_tmp(public=True)
        try:
            hasher = hashlib.sha256()
            written = 0
            for chunk in chunks:
                hasher.update(chunk)
                write_all(tmp.fd, chunk)
                written += len(chunk)
            if written != size:
                raise ObjectError(f"metadata object of {written} bytes, announced {size}")
            checksum = hasher.hexdigest()
            if checksum != expected_checksum:
                raise ChecksumMismatchError(
                    f"corrupted {objtype.extension()} object: expected {expected_checksum}, "
                    f"actual {checksum}")
            if size:
                mapped = mmap.mmap(tmp.fd, size, prot=mmap.PROT_READ)
                try:
                    check(mapped, page_dropper(mapped))
                finally:
                    try:
                        mapped.close()
                    except BufferError:
                        pass  # a view still held by a traceback: it goes with it
            if self.has_object(checksum, objtype):
                tmp.discard()
                return checksum
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, objtype)
        self._on_bytes(size)
        return checksum

    def write_commitmeta(self, commit_checksum: str, data: bytes) -> None:
        """Detached metadata is named after its commit and is replaced, not deduplicated."""
        validate_checksum(commit_checksum)
        if len(data) > MAX_METADATA_SIZE:
            raise ObjectError(f"commitmeta of {len(data)} bytes exceeds {MAX_METADATA_SIZE}")
        self._stage_public_bytes(data, commit_checksum, ObjectType.COMMIT_META)

    def _stage_public_bytes(self, data: Union[bytes, bytearray], checksum: str, objtype: ObjectType) -> None:
        """Stage bytes stored as they are, mode 0644 (metadata in every mode)."""
        tmp = self._new_tmp(public=True)
        try:
            write_all(tmp.fd, data)
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, objtype)
        self._on_bytes(len(data))

    def write_content(
        self,
        header: FileHeader,
        chunks: Iterable[bytes] = (),
        *,
        size: Optional[int] = None,
        expected_checksum: Optional[str] = None,
    ) -> str:
        """Stream one file or symlink into the repo in this mode; returns its content checksum.

        ``size``, when given, must match the bytes in ``chunks`` (it is the stat size a tree
        builder saw; a file that changed while read is an error rather than a bad object).
        """
        return self._write_content(header, chunks, size, expected_checksum, True)

    def _write_content(
        self,
        header: FileHeader,
        chunks: Iterable[bytes],
        size: Optional[int],
        expected_checksum: Optional[str],
        check: bool,
    ) -> str:
        check_header_for_mode(header, self._settings.mode_name)
        if not self._privileged_files and self._settings.mode_name == "bare":
            _refuse_privileged(header)
        hasher = hashlib.sha256(header.framed())
        if header.is_symlink:
            checksum = hasher.hexdigest()
            self._verify(checksum, expected_checksum)
            if not (check and self.has_object(checksum, ObjectType.FILE)):
                self._stage_symlink(header, checksum)
            return checksum
        tmp = self._new_tmp(public=self._settings.archive)
        try:
            total = self._write_payload(tmp.fd, header, chunks, size, hasher)
            if size is not None and total != size:
                raise ObjectError(f"file changed while being read: {total} bytes, expected {size}")
            checksum = hasher.hexdigest()
            self._verify(checksum, expected_checksum)
            if check and self.has_object(checksum, ObjectType.FILE):
                tmp.discard()
                return checksum
            self._finish_file(tmp, header)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._on_bytes(total)
        return checksum

    def stage_content_bytes(self, checksum: str, stored: bytes, header: FileHeader) -> None:
        """Stage a regular file whose checksum the caller computed from the logical stream and
        whose ``stored`` bytes are already in this repo's form (``.filez`` bytes in archive
        mode, the payload otherwise): one write, then the mode's owner/mode/xattrs. For a
        builder that read a small file whole; :meth:`write_content` is the streaming path."""
        tmp = self._new_tmp(public=self._settings.archive)
        try:
            write_all(tmp.fd, stored)
            self._finish_file(tmp, header)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._on_bytes(len(stored))

    def write_raw(
        self,
        checksum: str,
        objtype: ObjectType,
        source: Union[bytes, Callable[[int], bytes]],
        *,
        known_absent: bool = False,
    ) -> str:
        """Import an object in its archive (wire) form, verified before it becomes visible:
        metadata bytes (``.commitmeta`` is stored as given), or a ``.filez`` read through
        ``source(n)`` and inflated in chunks.

        ``known_absent``: the caller has just learnt the object is missing (a push's HAVE
        answer), so skip the existence check. Should it be there after all, the cost is a
        redundant staged file: publishing never replaces an existing object."""
        validate_checksum(checksum)
        check = not known_absent
        if objtype is ObjectType.FILE:
            from pyostree.objects.content import iter_inflate, parse_archive_header

            read = source if callable(source) else BytesReader(source).read
            if self._settings.archive:
                return self._store_filez_verbatim(checksum, read, check)
            header, size = parse_archive_header(read)
            if header.is_regular:
                chunks: Iterable[bytes] = iter_inflate(read, size)
            elif read(1):
                raise ObjectError("archive symlink object has data after its header")
            else:
                chunks = ()
            return self._write_content(header, chunks, size, checksum, check)
        if callable(source):
            raise TransactionError("metadata objects are passed as bytes")
        if objtype is ObjectType.COMMIT_META:
            self.write_commitmeta(checksum, source)
            return checksum
        return self._write_metadata_bytes(objtype, source, checksum, check)

    def write_filez_bytes(self, checksum: str, data: bytes, *, known_absent: bool = False) -> None:
        """Archive mode: stage a whole ``.filez`` held in memory, as :meth:`write_raw`
        would, on the short path: header checks cached per owner/mode, one inflate call,
        one write. A payload too large to inflate whole goes :meth:`write_raw`'s way."""
        if not known_absent and self.has_object(checksum, ObjectType.FILE):
            return
        if self.check_filez_bytes(checksum, data):
            self.stage_checked_filez(checksum, data)
        else:
            self.write_raw(checksum, ObjectType.FILE, data, known_absent=True)

    def check_filez_bytes(self, checksum: str, data: bytes) -> bool:
        """The verification half of :meth:`write_filez_bytes` (thread-safe, no file
        touched), so a caller can verify on one thread and write on another. Raises for
        bad bytes; False when the payload is too large to check whole."""
        if not self._settings.archive:
            raise TransactionError("a .filez is stored as it is only in archive repos")
        from pyostree.objects.content import FilezHeaderCache, verify_filez_bytes

        validate_checksum(checksum)
        cache = self._filez_headers
        if cache is None:  # two threads may both make one: one is dropped, no harm
            cache = self._filez_headers = FilezHeaderCache()
        return verify_filez_bytes(data, checksum, cache) is not None

    def stage_checked_filez(self, checksum: str, data: bytes) -> None:
        """The writing half: ``data`` must be bytes :meth:`check_filez_bytes` passed
        under this ``checksum``."""
        self._stage_public_bytes(data, checksum, ObjectType.FILE)

    def helper_tmp_dir(self, tag: str) -> str:
        """A temp dir in the staging dir for a helper process that stages objects for this
        transaction (pyostree.receive.workers); like ours, it dies with the staging dir."""
        staging = self._require_staging()
        path = os.path.join(staging.path, f"{_TMP_PREFIX}{tag}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # a resumed dir: the helper skips names taken
            pass
        return path

    def adopt_staged_files(self, staged: Sequence[Tuple[str, int]]) -> None:
        """Count content objects a helper process put at their staged names (verified,
        complete: temp files renamed there) as staged by this transaction: (checksum,
        size in bytes) of each."""
        self._require_staging()
        for checksum, size in staged:
            self._record(self.relpath(checksum, ObjectType.FILE), checksum, ObjectType.FILE)
        self._on_bytes(sum(size for _checksum, size in staged))

    def _store_filez_verbatim(self, checksum: str, read: Callable[[int], bytes], check: bool) -> str:
        """Archive into archive: keep the sender's compressed bytes (no recompression), but
        only after inflating them and checking the content checksum."""
        from pyostree.objects.content import iter_inflate, parse_archive_header

        if check and self.has_object(checksum, ObjectType.FILE):
            return checksum
        tmp = self._new_tmp(public=True)
        pending: List[bytes] = []
        pending_len = 0
        copied = 0

        def tee(size: int) -> bytes:  # batched: a small object is one write
            nonlocal pending_len, copied
            data = read(size)
            pending.append(data)
            pending_len += len(data)
            copied += len(data)
            if pending_len >= _COPY_CHUNK:
                write_all(tmp.fd, b"".join(pending))
                pending.clear()
                pending_len = 0
            return data

        try:
            header, size = parse_archive_header(tee)
            check_header_for_mode(header, self._settings.mode_name)
            hasher = hashlib.sha256(header.framed())
            if header.is_regular:
                for chunk in iter_inflate(tee, size):
                    hasher.update(chunk)
            elif tee(1):
                raise ObjectError("archive symlink object has data after its header")
            self._verify(hasher.hexdigest(), checksum)
            write_all(tmp.fd, b"".join(pending))
            self._make_public(tmp)
        except BaseException:
            tmp.discard()
            raise
        self._install(tmp, checksum, ObjectType.FILE)
        self._on_bytes(copied)
        return checksum

    def _verify(self, checksum: str, expected: Optional[str]) -> None:
        if expected is not None and checksum != expected:
            raise ChecksumMismatchError(f"corrupted file object: checksum expected={expected} actual={checksum}")

    def _write_payload(
        self, fd: int, header: FileHeader, chunks: Iterable[bytes], size: Optional[int], hasher: "hashlib._Hash"
    ) -> int:
        total = 0
        if not self._settings.archive:
            for chunk in chunks:
                hasher.update(chunk)
                total += len(chunk)
                write_all(fd, chunk)
            return total
        placeholder = header.to_archive_bytes(size or 0)
        compressor = zlib.compressobj(self._settings.zlib_level, zlib.DEFLATED, -15)
        pending = [placeholder]
        pending_len = len(placeholder)
        for chunk in chunks:
            hasher.update(chunk)
            total += len(chunk)
            out = compressor.compress(chunk)
            if out:
                pending.append(out)
                pending_len += len(out)
                if pending_len >= _COPY_CHUNK:
                    write_all(fd, b"".join(pending))
                    pending = []
                    pending_len = 0
        pending.append(compressor.flush())
        write_all(fd, b"".join(pending))
        if size is None or total != size:
            os.pwrite(fd, header.to_archive_bytes(total), 0)  # header length does not depend on size
        return total

    def _stage_symlink(self, header: FileHeader, checksum: str) -> None:
        mode_name = self._settings.mode_name
        if self._settings.archive or mode_name == "bare-user":
            tmp = self._new_tmp(public=True)
            try:
                if self._settings.archive:
                    write_all(tmp.fd, header.to_archive_bytes(0))
                    self._make_public(tmp)
                else:
                    write_all(tmp.fd, header.symlink_target.encode("utf-8") + b"\0")
                    self._make_public(tmp)
                    os.setxattr(tmp.fd, "user.ostreemeta", ostreemeta(header))
                    os.utime(tmp.fd, ns=(time.time_ns(), 0))
            except BaseException:
                tmp.discard()
                raise
            self._install(tmp, checksum, ObjectType.FILE)
            return
        staging = self._require_staging()
        tmp_path = os.path.join(staging.path, "tmplink." + secrets.token_hex(8))
        os.symlink(header.symlink_target, tmp_path)
        try:  # ostree 2022.7 leaves a symlink object's mtime alone (unlike regular files)
            if mode_name == "bare":
                os.chown(tmp_path, header.uid, header.gid, follow_symlinks=False)
                for name, value in header.xattrs:
                    os.setxattr(tmp_path, name[:-1], value, follow_symlinks=False)
        except BaseException:
            os.unlink(tmp_path)
            raise
        self._install_path(tmp_path, checksum, ObjectType.FILE)
