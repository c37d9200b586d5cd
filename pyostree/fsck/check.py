"""The fsck walk: refs, then commit trees (metadata inline), then content in a thread pool.

Content re-hashing runs in threads because hashlib and zlib release the GIL on large
buffers; metadata is small and is checked while walking, since the walk needs it parsed.
Every problem remembers which commits reach the object, for ostree-like messages.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from pyostree.errors import PyOstreeError

if TYPE_CHECKING:
    from pyostree.objects import ObjectType
    from pyostree.repo import Repo

__all__ = ["FsckProblem", "FsckProgress", "FsckResult", "ProblemKind", "ProgressCallback", "fsck"]

ObjectKey = Tuple[str, "ObjectType"]
_CONTENT_BATCH = 32
_READ_CHUNK = 1 << 20
_TYPE_NAMES = {1: "file", 2: "dirtree", 3: "dirmeta", 4: "commit", 5: "tombstone-commit",
               6: "commitmeta", 7: "payload-link"}


class ProblemKind(enum.Enum):
    MISSING = "missing"    # referenced but not in the repository
    CORRUPT = "corrupt"    # bytes do not hash to the object's name
    INVALID = "invalid"    # hashes fine (or cannot be read) but breaks a format rule
    REF = "ref"            # a ref that does not lead to a commit


@dataclass(frozen=True)
class FsckProblem:
    """One bad object or ref; ``str()`` is the one-line report."""

    kind: ProblemKind
    checksum: str
    objtype_name: str              # "file", "dirtree", ... ("" for a ref problem)
    detail: str
    commits: Tuple[str, ...] = ()  # commits whose tree reaches the object
    ref: str = ""

    def __str__(self) -> str:
        within = ", ".join(self.commits)
        if self.kind is ProblemKind.REF:
            return f"Ref {self.ref}: {self.detail}" if self.ref else f"Listing refs: {self.detail}"
        if self.kind is ProblemKind.MISSING:
            where = f" in commits {within}" if within else ""
            return f"Object missing{where}: {self.checksum}.{self.objtype_name}"
        prefix = f"In commits {within}: " if within else ""
        if self.objtype_name == "file":
            return f"{prefix}fsck content object {self.checksum}: {self.detail}"
        return f"{prefix}fsck {self.checksum}.{self.objtype_name}: {self.detail}"


@dataclass(frozen=True)
class FsckProgress:
    """Objects verified so far out of all reachable ones (of ``commits`` commit trees)."""

    done: int
    total: int
    commits: int


ProgressCallback = Callable[[FsckProgress], None]


@dataclass(frozen=True)
class FsckResult:
    problems: Tuple[FsckProblem, ...]
    refs_checked: int
    commits_checked: int       # non-partial commit objects whose trees were verified
    partial_commits: int       # skipped because of state/*.commitpartial
    fsck_partial_commits: int  # of those, marked by a previous fsck --delete ("f")
    objects_checked: int

    @property
    def ok(self) -> bool:
        return not self.problems and self.fsck_partial_commits == 0


@dataclass
class _Finding:
    kind: ProblemKind
    detail: str


class _Checker:
    def __init__(self, repo: Repo) -> None:
        from pyostree.checkout.fastpath import stat_function
        from pyostree.objects import ObjectType
        from pyostree.repo import RepoMode

        self.repo = repo
        self.types = ObjectType
        self.findings: Dict[ObjectKey, _Finding] = {}
        self.children: Dict[ObjectKey, List[ObjectKey]] = {}
        self.reached_by: Dict[ObjectKey, Set[str]] = defaultdict(set)
        self.ref_problems: List[FsckProblem] = []
        self.objects_dir = os.path.join(os.fspath(repo.path), "objects")
        self.fast_path = None
        self.fast_hash: Optional[Callable[[str], Optional[str]]] = None
        if repo.mode == RepoMode.BARE_USER:
            self.fast_path = stat_function(repo, cache=False)
            self.fast_hash = self._hash_bare_user
        elif repo.mode == RepoMode.ARCHIVE:
            self.fast_hash = self._hash_archive

    def content_path(self, checksum: str, suffix: str = ".file") -> str:
        return f"{self.objects_dir}/{checksum[:2]}/{checksum[2:]}{suffix}"

    # -- refs ----------------------------------------------------------------------

    def check_refs(self) -> int:
        try:
            refs = dict(self.repo.list_refs())
            collection_refs = {f"({cid}, {name})": csum
                               for (cid, name), csum in self.repo.list_collection_refs().items()}
        except (PyOstreeError, OSError) as err:
            self.ref_problems.append(FsckProblem(ProblemKind.REF, "", "", _message(err)))
            return 0
        refs.update(collection_refs)
        for name, checksum in sorted(refs.items()):
            if not self.repo.has_object(checksum, self.types.COMMIT):
                self.ref_problems.append(FsckProblem(
                    ProblemKind.REF, checksum, "commit",
                    f"points to missing commit {checksum}", ref=name))
        return len(refs)

    # -- metadata walk -------------------------------------------------------------

    def walk_commit(self, commit: str) -> None:
        """Every object of COMMIT's tree, each metadata object checked once for all commits."""
        stack: List[ObjectKey] = [(commit, self.types.COMMIT)]
        seen: Set[ObjectKey] = set()
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            self.reached_by[key].add(commit)
            if key[1] == self.types.FILE:
                continue
            if key not in self.children:
                self.children[key] = self._check_metadata(key)
            stack.extend(self.children[key])

    def _check_metadata(self, key: ObjectKey) -> List[ObjectKey]:
        checksum, objtype = key
        try:
            if not self.repo.has_object(checksum, objtype):
                self.findings[key] = _Finding(ProblemKind.MISSING, "")
                return []
            data = self.repo.read_metadata_bytes(checksum, objtype)
        except (PyOstreeError, OSError) as err:
            self.findings[key] = _Finding(ProblemKind.INVALID, _message(err))
            return []
        actual = hashlib.sha256(data).hexdigest()
        if actual != checksum:
            self.findings[key] = _Finding(
                ProblemKind.CORRUPT,
                f"Corrupted {_TYPE_NAMES[int(objtype)]} object; checksum "
                f"expected='{checksum}' actual='{actual}'")
        try:
            return self._parse_children(objtype, data, key)
        except (PyOstreeError, ValueError) as err:
            self.findings.setdefault(key, _Finding(ProblemKind.INVALID, _message(err)))
            return []

    def _parse_children(self, objtype: ObjectType, data: bytes, key: ObjectKey) -> List[ObjectKey]:
        """Children to walk; structural problems are recorded but the walk goes on."""
        from pyostree.objects import Commit, DirMeta, DirTree

        types = self.types
        if objtype == types.COMMIT:
            commit = Commit.from_bytes(data, verify=False)
            self._validate(key, commit.validate)
            roots = [(commit.root_tree, types.DIR_TREE), (commit.root_meta, types.DIR_META)]
            return [root for root in roots if _is_hex_checksum(root[0])]
        if objtype == types.DIR_TREE:
            tree = DirTree.from_bytes(data, verify=False)
            self._validate(key, tree.validate)
            children: List[ObjectKey] = [(f.checksum, types.FILE) for f in tree.files]
            for d in tree.dirs:
                children.append((d.tree_checksum, types.DIR_TREE))
                children.append((d.meta_checksum, types.DIR_META))
            return [child for child in children if _is_hex_checksum(child[0])]
        if objtype == types.DIR_META:
            meta = DirMeta.from_bytes(data, verify=False)
            self._validate(key, meta.validate)
            return []
        return []

    def _validate(self, key: ObjectKey, validate: Callable[[], None]) -> None:
        try:
            validate()
        except PyOstreeError as err:
            self.findings.setdefault(key, _Finding(ProblemKind.INVALID, _message(err)))

    # -- content -------------------------------------------------------------------

    def check_content_batch(self, keys: Sequence[ObjectKey]) -> List[Tuple[ObjectKey, _Finding]]:
        found = []
        for key in keys:
            finding = self._check_content(key[0])
            if finding is not None:
                found.append((key, finding))
        return found

    def _check_content(self, checksum: str) -> Optional[_Finding]:
        from pyostree.objects import ContentHasher

        if self.fast_hash is not None and self.fast_hash(checksum) == checksum:
            return None  # anything else is judged (and worded) by the full reader below
        try:
            if not self.repo.has_object(checksum, self.types.FILE):
                return _Finding(ProblemKind.MISSING, "")
            with self.repo.open_content(checksum) as reader:
                header = reader.header
                mode_problem = _file_mode_problem(header.mode)
                if mode_problem:
                    return _Finding(ProblemKind.INVALID, mode_problem)
                header.validate()
                hasher = ContentHasher(header)
                for chunk in reader.iter_chunks():
                    hasher.update(chunk)
                actual = hasher.hexdigest()
        except (PyOstreeError, OSError, ValueError) as err:
            return _Finding(ProblemKind.INVALID, _message(err))
        return _compare(checksum, actual)

    def _hash_bare_user(self, checksum: str) -> Optional[str]:
        """Hash a plain bare-user object straight from its file; None: use the full reader.

        Same logical header as the repository's reader (uid, gid, mode from
        ``user.ostreemeta``, no xattrs, target + NUL for symlinks), minus its per-object
        Python layers; anything unusual or unreadable goes the slow, reporting way.
        """
        from pyostree.objects import ContentHasher, FileHeader

        assert self.fast_path is not None
        try:
            quick = self.fast_path(checksum)
            if quick is None:
                return None
            hasher = ContentHasher(FileHeader(quick.uid, quick.gid, quick.mode, 0,
                                              quick.symlink_target, ()))
            if not quick.is_symlink:
                fd = os.open(self.content_path(checksum), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    while True:
                        chunk = os.read(fd, _READ_CHUNK)
                        if not chunk:
                            break
                        hasher.update(chunk)
                finally:
                    os.close(fd)
            return hasher.hexdigest()
        except (PyOstreeError, OSError, ValueError):
            return None

    def _hash_archive(self, checksum: str) -> Optional[str]:
        """Hash a plain ``.filez`` (no xattrs) with one zlib stream; None: use the full reader.

        Inflation is bounded by the header's size, so a bomb costs no memory.
        """
        import zlib

        from pyostree.checkout.fastpath import ARCHIVE_PREFIX, parse_archive_prefix
        from pyostree.objects import ContentHasher, FileHeader

        try:
            fd = os.open(self.content_path(checksum, ".filez"),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            data = os.read(fd, ARCHIVE_PREFIX)
            parsed = parse_archive_prefix(data)
            if parsed is None:
                return None
            quick, offset = parsed
            hasher = ContentHasher(FileHeader(quick.uid, quick.gid, quick.mode, 0,
                                              quick.symlink_target, ()))
            if quick.is_symlink:
                return hasher.hexdigest() if len(data) == offset else None
            inflater = zlib.decompressobj(-15)
            left = quick.size
            pending = data[offset:]
            while True:
                while pending:
                    out = inflater.decompress(pending, min(left + 1, _READ_CHUNK))
                    left -= len(out)
                    if left < 0:
                        return None
                    hasher.update(out)
                    pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
                pending = os.read(fd, _READ_CHUNK)
                if not pending:
                    return None
            if left != 0 or inflater.unused_data or os.read(fd, 1):
                return None
            return hasher.hexdigest()
        except (PyOstreeError, OSError, ValueError, zlib.error):
            return None
        finally:
            os.close(fd)

    def problem(self, key: ObjectKey, finding: _Finding) -> FsckProblem:
        return FsckProblem(finding.kind, key[0], _TYPE_NAMES.get(int(key[1]), str(key[1])),
                           finding.detail, tuple(sorted(self.reached_by.get(key, ()))))


def _compare(checksum: str, actual: str) -> Optional[_Finding]:
    if actual == checksum:
        return None
    return _Finding(ProblemKind.CORRUPT,
                    f"Corrupted file object; checksum expected='{checksum}' actual='{actual}'")


def _file_mode_problem(mode: int) -> str:
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return f"Corrupted file object; invalid mode 0o{mode:o}: not a regular file or symlink"
    if mode & ~(stat.S_IFMT(mode) | 0o7777):
        return f"Corrupted file object; invalid mode 0o{mode:o}: bits outside 07777"
    return ""


def _is_hex_checksum(text: str) -> bool:
    from pyostree.objects.checksum import is_checksum

    return is_checksum(text)


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        name = f": {os.fsdecode(err.filename)}" if err.filename is not None else ""
        return f"{err.strerror}{name}"
    return " ".join(str(err).splitlines()) or type(err).__name__


def _batches(items: Sequence[ObjectKey], size: int) -> Iterator[Sequence[ObjectKey]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _partial_state(repo: Repo, commit: str) -> Optional[bytes]:
    """Contents of ``state/COMMIT.commitpartial`` or None; ``b"f"`` means fsck-detected."""
    if not repo.is_commit_partial(commit):
        return None
    try:
        with open(os.path.join(os.fspath(repo.path), "state", f"{commit}.commitpartial"), "rb") as f:
            return f.read(16)
    except OSError:
        return b""


def fsck(repo: Repo, *, progress: Optional[ProgressCallback] = None,
         workers: Optional[int] = None) -> FsckResult:
    """Check REPO and list every problem found; never raises for a damaged repository."""
    checker = _Checker(repo)
    refs_checked = checker.check_refs()
    commits: List[str] = []
    partial = fsck_partial = 0
    for checksum, _ in repo.list_objects(checker.types.COMMIT):
        state = _partial_state(repo, checksum)
        if state is None:
            commits.append(checksum)
        else:
            partial += 1
            fsck_partial += state.startswith(b"f")
    for commit in sorted(commits):
        checker.walk_commit(commit)

    content = sorted(key for key in checker.reached_by if key[1] == checker.types.FILE)
    total = len(checker.reached_by)
    done = total - len(content)
    if progress is not None:
        progress(FsckProgress(done, total, len(commits)))
    content_findings: List[Tuple[ObjectKey, _Finding]] = []
    n_workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        for batch, found in zip(_batches(content, _CONTENT_BATCH),
                                pool.map(checker.check_content_batch,
                                         _batches(content, _CONTENT_BATCH))):
            content_findings.extend(found)
            done += len(batch)
            if progress is not None:
                progress(FsckProgress(done, total, len(commits)))

    problems = list(checker.ref_problems)
    problems.extend(checker.problem(key, finding) for key, finding in sorted(checker.findings.items()))
    problems.extend(checker.problem(key, finding) for key, finding in content_findings)
    return FsckResult(tuple(problems), refs_checked, len(commits), partial, fsck_partial, total)
