"""sftp mode: publish into a remote repo with file operations only (no remote code).

Objects are uploaded to ``tmp/pyostree-push-KEY/XX/NAME`` (temp name + fsync + rename, so
a staged name is always complete), KEY derived from the commits being pushed so a retry
after a crash finds and reuses what was staged (only after reading it back: see
``_staged_matches``; small ones are simply sent again). Publishing renames
children first and the commit last, never replacing an object; refs are replaced by
``posix-rename`` after re-reading their old value under a lock file; then the summary.

The dir is not named ``staging-*``: libostree deletes or reuses unlocked staging dirs,
and an OFD lock cannot be held over sftp. Only archive and bare-user-only remotes are
supported: bare-user needs the ``user.ostreemeta`` xattr and bare needs chown, neither
of which sftp offers (use receive mode for those).
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import secrets
import stat
import tempfile
from typing import IO, TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Union

from pyostree.errors import ObjectError, PushError, PyOstreeError, RepoError, TransportError
from pyostree.objects.checksum import is_checksum
from pyostree.objects.dirtree import DirTree
from pyostree.objects.content import CHUNK_SIZE
from pyostree.objects.types import ObjectType
from pyostree.push.convert import check_bare_user_only
from pyostree.push.plan import ObjectName, RefUpdate
from pyostree.push.progress import LogFn, ProgressTracker
from pyostree.push.publisher import Publisher, RemoteInfo
from pyostree.push.refslock import REFS_LOCK, refs_lock
from pyostree.push.summary import summary_is_stale, write_summary
from pyostree.push.verify import HashingChunks, corrupt, verify_metadata, write_verified_filez
from pyostree.repo.config import RepoConfig, RepoMode
from pyostree.transport import FileTransport, RemoteExistsError, RemoteNotFoundError

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["SftpPublisher", "STAGING_PREFIX", "REFS_LOCK", "staging_key"]

STAGING_PREFIX = "pyostree-push-"
MAX_CONFIG_SIZE = 1 << 20
MAX_REF_SIZE = 1024
MAX_REF_DEPTH = 32
_PART = ".part-"
_SPOOL_MEMORY = 8 << 20
BATCH_BYTES = 2 << 20
"""Objects up to this size go in the transport's pipelined stream of small files (where it
has one); bigger ones are uploaded one by one, in chunks."""
RENAME_BATCH = 512


class _Upload:
    """A small object ready for a batched upload."""

    __slots__ = ("tmp", "target", "data", "mode", "mtime")

    def __init__(self, target: str, data: bytes, mode: int = 0o644, mtime: Optional[int] = None) -> None:
        self.tmp = f"{target}{_PART}{secrets.token_hex(4)}"
        self.target, self.data, self.mode, self.mtime = target, data, mode, mtime


def staging_key(names: Sequence[ObjectName]) -> str:
    """Same pushed commits -> same staging dir, so a retry resumes instead of re-sending."""
    commits = sorted(c for c, t in names if t is ObjectType.COMMIT)
    basis = commits or sorted(c for c, _t in names)
    return hashlib.sha256("\n".join(basis).encode("ascii")).hexdigest()[:16]


def _relpath(checksum: str, objtype: ObjectType, archive: bool) -> str:
    return f"{checksum[:2]}/{checksum[2:]}.{objtype.extension(archive)}"


class SftpPublisher(Publisher):
    """A push into a remote repository through a :class:`FileTransport`."""

    def __init__(
        self, files: FileTransport, *, log: Optional[LogFn] = None, remote: Optional[str] = None
    ) -> None:
        self.files = files
        self._label = f"remote {remote}" if remote else "remote"
        self.log: LogFn = log or (lambda _m: None)
        self.mode_name, mode = self._read_mode()
        if mode not in (RepoMode.ARCHIVE, RepoMode.BARE_USER_ONLY):
            raise PushError(
                f"sftp mode cannot write a {mode.value} remote (it needs xattrs or chown); "
                "use --via=receive"
            )
        self.archive = mode is RepoMode.ARCHIVE
        # No heads listed: a stat and a read each, over sftp (see remote_refs).
        self.info = RemoteInfo(mode, {}, files.stat("summary") is not None)
        self._staging: Optional[str] = None
        self._sent: List[ObjectName] = []
        self._staging_dirs: List[str] = []
        self._staged_modes: Dict[str, int] = {}  # staged path -> lstat mode, on resume
        self._subtrees: Dict[str, List[str]] = {}  # dirtree -> its child dirtrees
        # Pipelined batches of small files, where the transport offers them (sftp).
        self._batched = callable(getattr(files, "write_files", None))

    # -- discovery ------------------------------------------------------------------

    def _read_mode(self) -> "tuple[str, RepoMode]":
        if self.files.stat("objects") is None or self.files.stat("config") is None:
            raise PushError("the destination is not an OSTree repository (no objects/ or config)")
        text = self.files.read_bytes("config", MAX_CONFIG_SIZE).decode("utf-8", "replace")
        config = RepoConfig.parse(text)
        # core.fsync=false: the remote's owner traded durability for speed, as libostree does.
        self.fsync = config.getbool("core", "fsync", True)
        self.collection_id = config.get("core", "collection-id")
        name = config.get("core", "mode") or "bare"
        return name, RepoMode.parse(name)

    @contextlib.contextmanager
    def _remote_io(self, op: str, path: str) -> Iterator[None]:
        """Name the remote side and the operation in a remote write's error: a bare
        OSError (local transport) and a plain TransportError (sftp) alike."""
        try:
            yield
        except TransportError as err:
            if type(err) is not TransportError:  # RemoteExistsError etc.: callers branch on them
                raise
            raise TransportError(f"{self._label}: {err}") from None
        except PyOstreeError:
            raise
        except OSError as err:
            raise TransportError(f"{self._label}: {op} {path}: {err.strerror or err}") from None

    def _write_file(self, tmp: str, chunks: Iterable[bytes],
                    tracker: Optional[ProgressTracker] = None) -> None:
        """Create ``tmp`` remotely and write ``chunks`` (produced locally: their own
        errors are not blamed on the remote) into it."""
        with self._remote_io("creating", tmp):
            handle = self.files.open_write(tmp, mode=0o644)
        done = False
        try:
            for chunk in chunks:
                with self._remote_io("writing", tmp):
                    handle.write(chunk)
                if tracker is not None:
                    tracker.add_bytes(len(chunk))
            done = True
        finally:
            if done:
                with self._remote_io("writing", tmp):
                    handle.close()
            else:
                try:
                    handle.close()
                except (OSError, PyOstreeError):
                    pass  # the first error is the one to report

    def _fsync(self, path: str) -> None:
        if self.fsync:
            self.files.fsync(path)

    def _list_heads(self) -> Dict[str, str]:
        refs: Dict[str, str] = {}
        pending = [("refs/heads", "", 0)]
        while pending:
            path, prefix, depth = pending.pop()
            if depth > MAX_REF_DEPTH:
                continue
            try:
                names = self.files.listdir(path)
            except RemoteNotFoundError:
                continue
            for name in names:
                info = self.files.stat(f"{path}/{name}")
                if info is None:
                    continue
                if stat.S_ISDIR(info.mode):
                    pending.append((f"{path}/{name}", f"{prefix}{name}/", depth + 1))
                elif stat.S_ISREG(info.mode):
                    value = self._read_ref_file(f"{path}/{name}")
                    if value is not None:
                        refs[prefix + name] = value
        return refs

    def remote_refs(self, names: Sequence[str]) -> Dict[str, str]:
        """One read per ref asked for, not a listing of every head."""
        from pyostree.objects.names import validate_ref_name

        found: Dict[str, str] = {}
        for name in dict.fromkeys(names):
            validate_ref_name(name, allow_checksum=False)  # it becomes a remote path
            value = self._read_ref_file(f"refs/heads/{name}")
            if value is not None:
                found[name] = value
        return found

    def _read_ref_file(self, path: str) -> Optional[str]:
        try:
            value = self.files.read_bytes(path, MAX_REF_SIZE).decode("ascii", "replace").strip()
        except RemoteNotFoundError:
            return None
        return value if is_checksum(value) else None

    def have(self, names: Sequence[ObjectName]) -> List[bool]:
        """One stat per object for small sets; for large ones list the fan-out dirs
        instead (at most 257 round trips whatever the number of objects)."""
        if len(names) <= 64:
            return [
                self.files.stat("objects/" + _relpath(c, t, self.archive)) is not None
                for c, t in names
            ]
        prefixes = set(self.files.listdir("objects"))
        listed: Dict[str, Set[str]] = {}
        present: List[bool] = []
        for checksum, objtype in names:
            prefix = checksum[:2]
            if prefix not in prefixes:
                present.append(False)
                continue
            if prefix not in listed:
                listed[prefix] = set(self.files.listdir(f"objects/{prefix}"))
            present.append(_relpath(checksum, objtype, self.archive)[3:] in listed[prefix])
        return present

    # -- staging --------------------------------------------------------------------

    def _open_staging(self, names: Sequence[ObjectName]) -> Dict[str, int]:
        """Create or resume our staging dir; returns staged object relpath -> size."""
        self.files.mkdir("tmp", exist_ok=True)
        staging = f"tmp/{STAGING_PREFIX}{staging_key(names)}"
        self._staging = staging
        staged: Dict[str, int] = {}
        if self.files.stat(staging) is None:
            self.files.mkdir(staging, exist_ok=True)
            return staged
        for prefix in self.files.listdir(staging):
            sub = f"{staging}/{prefix}"
            info = self.files.stat(sub)
            if info is None or not stat.S_ISDIR(info.mode):
                continue
            for name in self.files.listdir(sub):
                if _PART in name:
                    self.files.remove(f"{sub}/{name}")  # an upload cut short
                    continue
                entry = self.files.stat(f"{sub}/{name}")
                if entry is not None:
                    staged[f"{prefix}/{name}"] = -1 if stat.S_ISLNK(entry.mode) else entry.size
                    self._staged_modes[f"{sub}/{name}"] = entry.mode
        if staged:
            self.log(f"resuming {staging}: {len(staged)} objects already staged")
        return staged

    def send_objects(self, repo: Repo, names: Sequence[ObjectName], tracker: ProgressTracker) -> None:
        if not names:
            return  # nothing to stage: no staging dir either
        staged = self._open_staging(names)
        staging = self._staging
        assert staging is not None
        made_dirs: Set[str] = set()
        if self._batched:
            made_dirs = {c[:2] for c, _t in names}
            self._staging_dirs = [f"{staging}/{prefix}" for prefix in sorted(made_dirs)]
            self.files.make_dirs(self._staging_dirs)  # type: ignore[attr-defined]
        uploads = self._stage_all(repo, names, staged, made_dirs, tracker)
        if self._batched:
            self._send_stream(uploads)
        else:
            for _none in uploads:  # _stage_one returns uploads only to batched transports
                pass

    def _stage_all(
        self, repo: Repo, names: Sequence[ObjectName], staged: Dict[str, int],
        made_dirs: Set[str], tracker: ProgressTracker,
    ) -> Iterator[_Upload]:
        """Stage every object; the small ones are yielded for the transport's stream (so
        the next one is read while the earlier ones are on the wire)."""
        staging = self._staging
        for checksum, objtype in names:
            rel = _relpath(checksum, objtype, self.archive)
            prefix = rel[:2]
            if prefix not in made_dirs:
                self.files.mkdir(f"{staging}/{prefix}", exist_ok=True)
                made_dirs.add(prefix)
                self._staging_dirs.append(f"{staging}/{prefix}")
            done = self._stage_one(repo, checksum, objtype, f"{staging}/{rel}", staged.get(rel), tracker)
            if isinstance(done, _Upload):
                tracker.add_bytes(len(done.data))
                yield done
            elif not done:
                tracker.object_reused()
            self._sent.append((checksum, objtype))
            tracker.object_done()

    def _send_stream(self, uploads: Iterator[_Upload]) -> None:
        """Hand the small uploads to the transport's stream; errors of our own producer
        (a corrupt local object, a big upload) come out as they were raised."""
        from pyostree.transport.sftp import WriteItem

        own: List[BaseException] = []

        def items() -> Iterator[WriteItem]:
            try:
                for u in uploads:
                    yield WriteItem(u.tmp, u.target, u.data, u.mode, u.mtime)
            except BaseException as err:
                own.append(err)
                raise

        try:
            self.files.write_files(items(), fsync=self.fsync)  # type: ignore[attr-defined]
        except TransportError as err:
            if (own and own[0] is err) or type(err) is not TransportError:
                raise
            raise TransportError(f"{self._label}: {err}") from None

    def _stage_one(
        self, repo: Repo, checksum: str, objtype: ObjectType, target: str,
        staged_size: Optional[int], tracker: ProgressTracker,
    ) -> Union[bool, _Upload]:
        """Upload one object unless the same bytes are already staged; True if uploaded,
        an :class:`_Upload` if it is small and should join the current batch."""
        if objtype.is_meta:
            data = repo.read_metadata_bytes(checksum, objtype)
            verify_metadata(checksum, objtype, data)  # nothing runs remotely to check it
            if objtype is ObjectType.DIR_TREE and self._batched:
                tree = DirTree.from_bytes(data, verify=False)
                self._subtrees[checksum] = [entry.tree_checksum for entry in tree.dirs]
            if (staged_size == len(data) and objtype is not ObjectType.COMMIT_META and self._may_reuse(len(data))
                    and self._staged_matches(target, len(data), hashlib.sha256(data).digest())):
                return False
            if self._batched and len(data) <= BATCH_BYTES:
                return _Upload(target, data)
            self._upload_bytes(data, target, tracker)
            return True
        if self.archive:
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY) as spool:
                try:  # verified while spooled: a corrupt object raises before any upload
                    write_verified_filez(repo, checksum, spool.write)
                except OSError as err:  # a missing or unreadable local object, not the remote
                    raise RepoError(f"cannot read local object {checksum}: {err.strerror or err}") from None
                size = spool.tell()
                if staged_size == size and self._may_reuse(size):
                    spool.seek(0)
                    digest = hashlib.sha256()
                    for chunk in iter(lambda: spool.read(CHUNK_SIZE), b""):
                        digest.update(chunk)
                    if self._staged_matches(target, size, digest.digest()):
                        return False
                spool.seek(0)
                if self._batched and size <= BATCH_BYTES:
                    return _Upload(target, spool.read())
                self._upload_stream(spool, target, tracker)
            return True
        try:
            return self._stage_bare_user_only(repo, checksum, target, staged_size, tracker)
        except ObjectError as err:
            raise corrupt(checksum, objtype, str(err)) from None

    def _stage_bare_user_only(
        self, repo: Repo, checksum: str, target: str, staged_size: Optional[int],
        tracker: ProgressTracker,
    ) -> Union[bool, _Upload]:
        """A content object as a plain file (or symlink), hashed while it is read: a
        mismatch raises before the staged name exists (only a ``.part-`` file may stay)."""
        with repo.open_content(checksum) as reader:
            header = reader.header
            check_bare_user_only(header, checksum)
            hashing = HashingChunks(checksum, header)
            if header.is_symlink:
                if staged_size == -1 and self._staged_link_matches(target, header.symlink_target):
                    return False
                hashing.verify()
                tmp = f"{target}{_PART}{secrets.token_hex(4)}"
                self.files.symlink(header.symlink_target, tmp)
                self.files.rename(tmp, target, replace=True)
                return True
            if staged_size == reader.size and self._may_reuse(reader.size):
                digest = hashlib.sha256()
                for chunk in hashing.wrap(reader.iter_chunks()):
                    digest.update(chunk)
                hashing.verify()
                if self._staged_matches(target, reader.size, digest.digest(), header.mode & 0o7777):
                    return False
                return self._stage_bare_user_only(repo, checksum, target, None, tracker)
            if self._batched and reader.size <= BATCH_BYTES:
                data = b"".join(hashing.wrap(reader.iter_chunks()))
                hashing.verify()
                return _Upload(target, data, header.mode & 0o7777, 0)
            tmp = f"{target}{_PART}{secrets.token_hex(4)}"
            self._write_file(tmp, hashing.wrap(reader.iter_chunks()), tracker)
            hashing.verify()
            with self._remote_io("writing", tmp):
                self.files.chmod(tmp, header.mode & 0o7777)
                self.files.utime(tmp, (0, 0))
                self._fsync(tmp)
                self.files.rename(tmp, target, replace=True)
            return True

    def _may_reuse(self, size: int) -> bool:
        """A small object goes in the pipelined stream: sending it again costs less than
        reading it back file by file (see ``_staged_matches``), so it is not reused."""
        return not (self._batched and size <= BATCH_BYTES)

    def _staged_matches(self, target: str, size: int, digest: bytes, mode: Optional[int] = None) -> bool:
        """Whether a staged file of an earlier try holds exactly the bytes we would send,
        as a regular file of mode ``mode`` (bare-user-only content) or of no more than
        0644 (what we upload everything else with).

        Its name and size say only that one of our uploads once completed there: not what
        it holds after a power loss without fsync, a disk error or another writer. So it is
        read back and hashed."""
        found = self._staged_modes.get(target, 0)
        if not stat.S_ISREG(found) or (stat.S_IMODE(found) != mode if mode is not None
                                       else stat.S_IMODE(found) & ~0o644):
            self.log(f"staged {target} does not hold what was sent: sending it again")
            return False
        hasher = hashlib.sha256()
        seen = 0
        try:
            with self.files.open_read(target) as stream:
                for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
                    seen += len(chunk)
                    if seen > size:
                        break
                    hasher.update(chunk)
        except RemoteNotFoundError:
            return False
        if seen == size and hasher.digest() == digest:
            return True
        self.log(f"staged {target} does not hold what was sent: sending it again")
        return False

    def _staged_link_matches(self, target: str, link: str) -> bool:
        try:
            if self.files.readlink(target) == link:
                return True
        except RemoteNotFoundError:
            return False
        self.log(f"staged {target} does not hold what was sent: sending it again")
        return False

    def _upload_bytes(self, data: bytes, target: str, tracker: ProgressTracker) -> None:
        tmp = f"{target}{_PART}{secrets.token_hex(4)}"
        self._write_file(tmp, [data], tracker)
        with self._remote_io("writing", tmp):
            self._fsync(tmp)
            self.files.rename(tmp, target, replace=True)

    def _upload_stream(self, source: IO[bytes], target: str, tracker: ProgressTracker) -> None:
        tmp = f"{target}{_PART}{secrets.token_hex(4)}"
        self._write_file(tmp, iter(lambda: source.read(CHUNK_SIZE), b""), tracker)
        with self._remote_io("writing", tmp):
            self._fsync(tmp)
            self.files.rename(tmp, target, replace=True)

    # -- publishing -----------------------------------------------------------------

    def publish(self, updates: Sequence[RefUpdate], update_summary: Optional[bool]) -> bool:
        self._publish_objects()
        with refs_lock(self.files, self.log):
            self._check_refs(updates)
            for update in updates:
                self._write_ref(update)
            wrote = False
            if update_summary is True or (update_summary is None and self.info.has_summary):
                refs = self._list_heads()
                if updates or summary_is_stale(self.files, refs):
                    with self._remote_io("writing", "summary"):
                        write_summary(self.files, refs, self.mode_name, "tmp",
                                      collection_id=self.collection_id)
                    wrote = True
        if self._staging is not None:
            if self._batched and self._staging_dirs:
                self.files.remove_dirs(self._staging_dirs)  # type: ignore[attr-defined]
            self.files.rmtree(self._staging)
        return wrote

    def _publish_objects(self) -> None:
        """Children first (the send order), the commit last; existing objects are kept."""
        if self._batched:
            self._publish_batched()
            return
        made: Set[str] = set()
        for checksum, objtype in self._sent:
            rel = _relpath(checksum, objtype, self.archive)
            if rel[:2] not in made:
                self.files.mkdir(f"objects/{rel[:2]}", exist_ok=True)
                made.add(rel[:2])
            self._publish_any(rel, objtype)

    def _publish_any(self, rel: str, objtype: ObjectType) -> None:
        if objtype is ObjectType.COMMIT_META:
            self.files.rename(f"{self._staging}/{rel}", f"objects/{rel}", replace=True)
        else:
            self._publish_one(rel)

    def _publish_batched(self) -> None:
        """Pipelined renames in waves: every file and dirmeta (they need nothing), then the
        dirtrees by height (leaf dirs first; a wave starts once the one below is all in
        place), then commits and the rest one by one in send order."""
        self.files.make_dirs(  # type: ignore[attr-defined]
            [f"objects/{p}" for p in sorted({c[:2] for c, _t in self._sent})])
        leaves = [(c, t) for c, t in self._sent if t in (ObjectType.FILE, ObjectType.DIR_META)]
        self._publish_leaves([_relpath(c, t, self.archive) for c, t in leaves])
        for wave in self._tree_waves():
            self._publish_leaves([_relpath(c, ObjectType.DIR_TREE, self.archive) for c in wave])
        for checksum, objtype in self._sent:
            if objtype not in (ObjectType.FILE, ObjectType.DIR_META, ObjectType.DIR_TREE):
                self._publish_any(_relpath(checksum, objtype, self.archive), objtype)

    def _tree_waves(self) -> List[List[str]]:
        """The sent dirtrees grouped by height: wave 0 has no sent subtree, wave n only
        subtrees in waves below n."""
        sent = {c for c, t in self._sent if t is ObjectType.DIR_TREE}
        height: Dict[str, int] = {}
        for root in sent:
            stack = [(root, False)]
            while stack:
                tree, expanded = stack.pop()
                if tree in height:
                    continue
                below = [c for c in self._subtrees.get(tree, []) if c in sent and c != tree]
                if expanded or all(c in height for c in below):
                    height[tree] = 1 + max((height.get(c, -1) for c in below), default=-1)
                    continue
                stack.append((tree, True))
                stack.extend((c, False) for c in below if c not in height)
        waves: List[List[str]] = [[] for _ in range(1 + max(height.values(), default=-1))]
        for tree, level in height.items():
            waves[level].append(tree)
        return waves

    def _publish_one(self, rel: str) -> None:
        source, target = f"{self._staging}/{rel}", f"objects/{rel}"
        try:
            self.files.rename(source, target, replace=False)
        except RemoteExistsError:
            self.files.remove(source)
        except RemoteNotFoundError:
            if self.files.stat(target) is None:
                raise PushError(f"staged object {rel} vanished before it was published") from None

    def _publish_leaves(self, rels: List[str]) -> None:
        """Pipelined renames of objects no other object of the list depends on; the few
        that fail (already present, say) are redone one by one with the full checks."""
        for start in range(0, len(rels), RENAME_BATCH):
            part = rels[start:start + RENAME_BATCH]
            pairs = [(f"{self._staging}/{rel}", f"objects/{rel}") for rel in part]
            errors = self.files.rename_many(pairs)  # type: ignore[attr-defined]
            for rel, error in zip(part, errors):
                if error is not None:
                    self._publish_one(rel)

    def _check_refs(self, updates: Sequence[RefUpdate]) -> None:
        for update in updates:
            current = self._read_ref_file(f"refs/heads/{update.ref}")
            if current != update.old:
                raise PushError(
                    f"ref {update.ref} moved on the remote during the push "
                    f"(now {current or 'absent'}, expected {update.old or 'absent'}); not updated"
                )

    def _write_ref(self, update: RefUpdate) -> None:
        path = f"refs/heads/{update.ref}"
        parent = posixpath.dirname(path)
        parts = parent.split("/")
        for depth in range(3, len(parts) + 1):
            self.files.mkdir("/".join(parts[:depth]), exist_ok=True)
        tmp = f"tmp/{STAGING_PREFIX}ref-{secrets.token_hex(6)}"
        self._write_file(tmp, [f"{update.new}\n".encode("ascii")])
        with self._remote_io("writing", tmp):
            self._fsync(tmp)
            self.files.rename(tmp, path, replace=True)
            # The rename, and any dir made for it, durable before the push reports
            # success (a remote without a summary has no later fsync to carry it along).
            # Over sftp directories cannot be fsynced: a no-op there.
            for depth in range(len(parts), 1, -1):
                self._fsync("/".join(parts[:depth]))
        self.log(f"{update.ref} -> {update.new}")

    def abort(self) -> None:
        """Staged objects stay in our dir for the next try of the same push."""

    def close(self) -> None:
        """The transport is closed by whoever opened it."""
