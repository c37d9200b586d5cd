"""Every object of repositories written by the real ``ostree`` parses, re-serialises
byte-identically and hashes to its file name."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from ostree_tool import is_root, needs_ostree, run_ostree
from pyostree.objects import (
    CHUNK_SIZE,
    Commit,
    CommitMeta,
    ContentHasher,
    DirEntry,
    DirMeta,
    DirTree,
    FileEntry,
    FileHeader,
    ObjectType,
    Tombstone,
    content_checksum,
    iter_archive,
    iter_inflate,
    parse_archive_header,
    parse_ostreemeta,
    sha256_hex,
)
from pyostree.objects.modes import bare_user_storage_mode
from pyostree.objects.xattrs import read_xattrs

pytestmark = needs_ostree

STAMP = "2020-01-01T00:00:00Z"


def _set_xattr(path: Path, name: str, value: bytes) -> None:
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError:
        pytest.skip("filesystem without user xattrs")


def _make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "emptydir").mkdir()
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "empty").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(300_000) + bytes(2_000_000))
    (root / "sub" / "abc").write_bytes(b"abc")
    os.symlink("hello.txt", root / "link")
    os.symlink("../hello.txt", root / "sub" / "uplink")
    for name in ("b", "B", "a", "_x", "10", "9", "é", "a b", "a-b", "a.b"):
        (root / "sub" / "deeper" / name).write_bytes(name.encode())
    _set_xattr(root / "sub" / "abc", "user.zeta", b"Z")
    _set_xattr(root / "sub" / "abc", "user.alpha", b"A1")
    _set_xattr(root / "sub" / "abc", "user.empty", b"")
    _set_xattr(root / "sub", "user.dirattr", b"dv")
    os.chmod(root / "sub" / "abc", 0o640)
    setuid = root / "setuid"
    setuid.write_bytes(b"#!/bin/sh\n")
    os.chmod(setuid, 0o4755)
    os.chmod(root / "emptydir", 0o1777)
    if is_root():
        os.chown(root / "sub" / "abc", 1000, 1000)
        os.chown(root / "emptydir", 1000, 1001)


def _objects(repo: Path) -> Iterator[Tuple[str, str, Path]]:
    for sub in sorted((repo / "objects").iterdir()):
        for path in sorted(sub.iterdir()):
            stem, _, ext = path.name.partition(".")
            yield sub.name + stem, ext, path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("objtree") / "tree"
    root.mkdir()
    _make_tree(root)
    return root


def _build(base: Path, mode: str, tree: Path) -> Path:
    repo = base / mode
    run_ostree("init", f"--mode={mode}", repo=repo)
    first = run_ostree("commit", "-b", "main", f"--tree=dir={tree}", f"--timestamp={STAMP}",
                       "--subject=first", "--body=Body", "--add-metadata-string=version=1.0",
                       "--add-detached-metadata-string=test.key=detached", repo=repo).strip()
    (tree / "second.txt").write_bytes(b"second\n")
    try:
        run_ostree("commit", "-b", "main", f"--tree=dir={tree}", "--subject=second",
                   "--generate-sizes", repo=repo)
    finally:
        (tree / "second.txt").unlink()
    doomed = run_ostree("commit", "-b", "doomed", f"--tree=dir={tree}", "--parent", first,
                        repo=repo).strip()
    run_ostree("config", "set", "core.tombstone-commits", "true", repo=repo)
    run_ostree("refs", "--delete", "doomed", repo=repo)
    run_ostree("prune", f"--delete-commit={doomed}", repo=repo)
    return repo


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Dict[str, Path]:
    base = tmp_path_factory.mktemp("objrepos")
    modes = ("archive", "bare", "bare-user", "bare-user-only")
    return {mode: _build(base, mode, tree) for mode in modes}


def _check_metadata(checksum: str, ext: str, path: Path) -> None:
    data = path.read_bytes()
    objtype, _ = ObjectType.from_extension(ext)
    if objtype is ObjectType.COMMIT:
        obj: object = Commit.from_bytes(data)
    elif objtype is ObjectType.DIR_TREE:
        obj = DirTree.from_bytes(data)
    elif objtype is ObjectType.DIR_META:
        obj = DirMeta.from_bytes(data)
    elif objtype is ObjectType.COMMIT_META:
        meta = CommitMeta.from_bytes(data)
        assert meta.to_bytes() == data
        assert meta.metadata["test.key"] == ("s", "detached")
        return
    else:
        assert objtype is ObjectType.TOMBSTONE_COMMIT
        assert Tombstone.from_bytes(data) == Tombstone(checksum)
        assert Tombstone(checksum).to_bytes() == data
        return
    assert obj.to_bytes() == data  # type: ignore[attr-defined]
    assert obj.checksum() == checksum == sha256_hex(data)  # type: ignore[attr-defined]


def test_archive_repo_objects(repos: Dict[str, Path]) -> None:
    seen: Dict[str, int] = {}
    for checksum, ext, path in _objects(repos["archive"]):
        seen[ext] = seen.get(ext, 0) + 1
        if ext != "filez":
            _check_metadata(checksum, ext, path)
            continue
        with open(path, "rb") as handle:
            header, size = parse_archive_header(handle.read)
            hasher = ContentHasher(header)
            chunks: List[bytes] = []
            for chunk in iter_inflate(handle.read, size) if header.is_regular else ():
                assert len(chunk) <= CHUNK_SIZE
                hasher.update(chunk)
                chunks.append(chunk)
        assert hasher.hexdigest() == checksum
        assert b"".join(iter_archive(header, size, chunks)) == path.read_bytes()
    assert {"commit", "dirtree", "dirmeta", "filez", "commitmeta", "tombstone-commit"} <= set(seen)
    assert seen["commit"] == 2 and seen["filez"] >= 15


def test_commit_fields_from_archive_repo(repos: Dict[str, Path]) -> None:
    repo = repos["archive"]
    head = run_ostree("rev-parse", "main", repo=repo).strip()
    parent = run_ostree("rev-parse", "main^", repo=repo).strip()
    path = repo / "objects" / head[:2] / f"{head[2:]}.commit"
    commit = Commit.from_bytes(path.read_bytes())
    assert commit.parent == parent and commit.subject == "second"
    assert commit.ref_bindings == ["main"]
    assert "ostree.sizes" in commit.metadata
    first = Commit.from_bytes((repo / "objects" / parent[:2] / f"{parent[2:]}.commit").read_bytes())
    assert first.parent is None and first.body == "Body" and first.version == "1.0"
    assert first.timestamp == 1577836800
    log = run_ostree("log", "main", repo=repo)
    assert f"ContentChecksum:  {first.content_checksum}" in log


def test_bare_user_repo_ostreemeta(repos: Dict[str, Path], tree: Path) -> None:
    repo = repos["bare-user"]
    symlinks = 0
    for checksum, ext, path in _objects(repo):
        if ext != "file":
            _check_metadata(checksum, ext, path)
            continue
        raw = os.getxattr(path, "user.ostreemeta")
        meta = parse_ostreemeta(raw)
        assert meta.to_bytes() == raw
        info = os.lstat(path)
        assert info.st_mode == bare_user_storage_mode(meta.mode)
        content = path.read_bytes()
        if stat.S_ISLNK(meta.mode):
            symlinks += 1
            assert content.endswith(b"\0")
            header = meta.to_header(content[:-1].decode())
            assert content_checksum(header) == checksum
        else:
            assert content_checksum(meta.to_header(), [content]) == checksum
    assert symlinks == 2


def test_bare_repo_objects_hash_from_their_inodes(repos: Dict[str, Path]) -> None:
    """bare objects keep owner, mode and xattrs on the inode itself."""
    count = 0
    for checksum, ext, path in _objects(repos["bare"]):
        if ext != "file":
            _check_metadata(checksum, ext, path)
            continue
        info = os.lstat(path)
        is_link = stat.S_ISLNK(info.st_mode)
        header = FileHeader(info.st_uid, info.st_gid, info.st_mode, 0,
                            os.readlink(path) if is_link else "", read_xattrs(path))
        header.validate()
        assert header.checksum([] if is_link else [path.read_bytes()]) == checksum
        count += 1
    assert count >= 15


def _source_headers(tree: Path) -> Iterator[Tuple[Path, FileHeader]]:
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(dirpath) / name
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            yield path, FileHeader(info.st_uid, info.st_gid, info.st_mode, 0, target,
                                   read_xattrs(path))


def _payload(path: Path, header: FileHeader) -> List[bytes]:
    return [] if header.is_symlink else [path.read_bytes()]


def test_source_files_hash_to_ostree_names(repos: Dict[str, Path], tree: Path) -> None:
    """Headers built from lstat + read_xattrs give libostree's checksums, and the bare-user-only
    canonicalisation gives that mode's."""
    archive = {c for c, ext, _ in _objects(repos["archive"]) if ext == "filez"}
    bare_user_only = {c for c, ext, _ in _objects(repos["bare-user-only"]) if ext == "file"}
    changed = 0
    for path, header in _source_headers(tree):
        header.validate()
        payload = _payload(path, header)
        assert header.checksum(payload) in archive, path
        canonical = header.canonical_bare_user_only()
        assert canonical.checksum(payload) in bare_user_only, path
        changed += canonical != header
    assert changed >= 2  # setuid and the 0640/xattr file


def test_dirmeta_canonical_bare_user_only(repos: Dict[str, Path], tree: Path) -> None:
    dirmetas = {c for c, ext, _ in _objects(repos["bare-user-only"]) if ext == "dirmeta"}
    info = os.lstat(tree / "emptydir")
    meta = DirMeta(info.st_uid, info.st_gid, info.st_mode, read_xattrs(tree / "emptydir"))
    assert meta.canonical_bare_user_only().checksum() in dirmetas
    sub_info = os.lstat(tree / "sub")
    sub = DirMeta(sub_info.st_uid, sub_info.st_gid, sub_info.st_mode, read_xattrs(tree / "sub"))
    assert sub.xattrs == ((b"user.dirattr\0", b"dv"),)
    archive_metas = {c for c, ext, _ in _objects(repos["archive"]) if ext == "dirmeta"}
    assert sub.checksum() in archive_metas


def _store(repo: Path, checksum: str, ext: str, chunks: List[bytes]) -> None:
    path = repo / "objects" / checksum[:2] / f"{checksum[2:]}.{ext}"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"".join(chunks))


def test_objects_we_write_pass_ostree_fsck_and_checkout(tmp_path: Path) -> None:
    """An archive repo filled by pyostree alone: ``ostree fsck`` re-hashes and validates every
    object, ``ostree checkout`` reproduces the files."""
    repo = tmp_path / "repo"
    run_ostree("init", "--mode=archive", repo=repo)
    uid, gid = os.getuid(), os.getgid()
    contents = {"10": b"ten", "9": b"nine", "B": b"", "a": b"a" * 100_000, "é": b"accent"}
    files = []
    for name in sorted(contents, key=lambda n: n.encode()):
        header = FileHeader(uid, gid, stat.S_IFREG | 0o644, 0, "",
                            ((b"user.a\0", b"1"), (b"user.b\0", b"2")))
        checksum = header.checksum([contents[name]])
        _store(repo, checksum, "filez",
               list(iter_archive(header, len(contents[name]), [contents[name]])))
        files.append(FileEntry(name, checksum))
    link = FileHeader(uid, gid, stat.S_IFLNK | 0o777, 0, "a")
    _store(repo, link.checksum(), "filez", list(iter_archive(link, 0)))
    files.append(FileEntry("z-link", link.checksum()))
    files.sort(key=lambda entry: entry.name.encode())
    meta = DirMeta(uid, gid, stat.S_IFDIR | 0o755)
    empty = DirTree()
    root = DirTree(tuple(files), (DirEntry("sub", empty.checksum(), meta.checksum()),))
    root.validate()
    for obj, ext in ((meta, "dirmeta"), (empty, "dirtree"), (root, "dirtree")):
        _store(repo, obj.checksum(), ext, [obj.to_bytes()])
    commit = Commit.create(root.checksum(), meta.checksum(), timestamp=1577836800,
                           subject="written by pyostree", metadata={"version": ("s", "9")})
    _store(repo, commit.checksum(), "commit", [commit.to_bytes()])
    (repo / "refs" / "heads" / "main").write_text(commit.checksum() + "\n")

    assert "no errors found" in run_ostree("fsck", repo=repo)
    assert run_ostree("rev-parse", "main", repo=repo).strip() == commit.checksum()
    listing = run_ostree("ls", "main", "/", repo=repo)
    assert [line.split()[4] for line in listing.splitlines()[1:]] == [
        "/10", "/9", "/B", "/a", "/z-link", "/é", "/sub"]
    assert "-> a" in run_ostree("ls", "main", "/z-link", repo=repo)
    out = tmp_path / "out"
    run_ostree("checkout", "-U", "main", str(out), repo=repo)
    for name, data in contents.items():
        assert (out / name).read_bytes() == data
    assert os.readlink(out / "z-link") == "a"


def test_generated_sizes_match_the_objects(repos: Dict[str, Path]) -> None:
    """``ostree commit --generate-sizes`` entries: archived = stored file size, unpacked =
    payload (or symlink target) length, type byte present, sorted by checksum."""
    from pyostree.objects import parse_sizes

    repo = repos["archive"]
    head = run_ostree("rev-parse", "main", repo=repo).strip()
    commit = Commit.from_bytes((repo / "objects" / head[:2] / f"{head[2:]}.commit").read_bytes())
    type_string, value = commit.metadata["ostree.sizes"]
    assert type_string == "aay"
    entries = parse_sizes(value)  # type: ignore[arg-type]
    assert [e.checksum for e in entries] == sorted(e.checksum for e in entries)
    kinds = {e.objtype for e in entries}
    assert kinds == {ObjectType.FILE, ObjectType.DIR_TREE, ObjectType.DIR_META}
    for entry in entries:
        path = repo / "objects" / entry.checksum[:2] / (
            f"{entry.checksum[2:]}.{entry.objtype.extension(archive=True)}")
        assert entry.archived == path.stat().st_size
        if entry.objtype is ObjectType.FILE:
            with open(path, "rb") as handle:
                header, size = parse_archive_header(handle.read)
            expected = len(header.symlink_target.encode()) if header.is_symlink else size
            assert entry.unpacked == expected
