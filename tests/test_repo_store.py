"""Object access in every mode: listing, metadata loading, content streaming and re-hashing."""

from __future__ import annotations

import os
import random
import stat
import zlib
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from ostree_tool import BIG_FILE_SIZE, MAIN_REF, SampleRepo, is_root, list_object_files, needs_ostree, run_ostree
from pyostree.errors import NotFoundError, ObjectError, PyOstreeError
from pyostree.objects.content import CHUNK_SIZE, content_checksum
from pyostree.objects.types import ObjectType
from pyostree.repo import MAX_METADATA_SIZE, Repo, RepoMode

pytestmark = needs_ostree

Entry = Tuple[str, str]  # (kind "f"/"d", checksum)


def _tree_paths(repo: Repo, commit: str) -> Dict[str, Entry]:
    """path -> (kind, checksum) for every entry under COMMIT (files: content checksum)."""
    loaded = repo.load_commit(commit)
    out: Dict[str, Entry] = {"/": ("d", loaded.root_tree)}
    stack: List[Tuple[str, str]] = [("", loaded.root_tree)]
    while stack:
        prefix, tree_checksum = stack.pop()
        tree = repo.load_dirtree(tree_checksum)
        for entry in tree.files:
            out[f"{prefix}/{entry.name}"] = ("f", entry.checksum)
        for sub in tree.dirs:
            out[f"{prefix}/{sub.name}"] = ("d", sub.tree_checksum)
            stack.append((f"{prefix}/{sub.name}", sub.tree_checksum))
    return out


def _content_of(repo: Repo, commit: str, path: str) -> str:
    kind, checksum = _tree_paths(repo, commit)[path]
    assert kind == "f"
    return checksum


def test_list_objects_equals_find_objects(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    file_ext = "filez" if sample_repo.mode == "archive" else "file"
    ours = {(c, t.extension(archive=repo.mode.is_archive)) for c, t in repo.list_objects()}
    assert ours == list_object_files(sample_repo.path)
    assert any(ext == file_ext for _, ext in ours)
    commits = {c for c, _ in repo.list_objects(ObjectType.COMMIT)}
    assert commits == set(sample_repo.commits)
    assert {c for c, _ in repo.list_objects(ObjectType.COMMIT_META)} == {sample_repo.commit_with_detached_meta}


def test_every_metadata_object_loads(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    counts = {t: 0 for t in ObjectType}
    for checksum, objtype in repo.list_objects():
        counts[objtype] += 1
        if objtype is ObjectType.COMMIT:
            repo.load_commit(checksum)
        elif objtype is ObjectType.DIR_TREE:
            repo.load_dirtree(checksum)
        elif objtype is ObjectType.DIR_META:
            assert stat.S_ISDIR(repo.load_dirmeta(checksum).mode)
        elif objtype is ObjectType.COMMIT_META:
            assert repo.load_commitmeta(checksum) == {"test.key": ("s", "detached")}
    assert counts[ObjectType.DIR_TREE] > 10 and counts[ObjectType.DIR_META] >= 2


def test_commit_fields(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    newest, middle, oldest = sample_repo.main_history
    third = repo.load_commit(newest)
    assert third.parent == middle
    assert repo.load_commit(middle).parent == oldest
    assert repo.load_commit(oldest).parent is None
    assert third.subject == "third"
    assert repo.load_commit(middle).body == "Body text"
    assert third.timestamp == 1578009600  # 2020-01-03T00:00:00Z
    assert third.metadata["version"] == ("s", "3.0")
    log = run_ostree("log", MAIN_REF, repo=sample_repo.path)
    assert f"ContentChecksum:  {third.content_checksum}" in log
    assert repo.load_commitmeta(newest) is None


def test_every_content_object_rehashes_to_its_name(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    count = 0
    for checksum, _ in repo.list_objects(ObjectType.FILE):
        with repo.open_content(checksum) as reader:
            assert content_checksum(reader.header, reader.iter_chunks()) == checksum
        count += 1
    assert count > 20


def _ls_entries(sample: SampleRepo, rev: str) -> Iterator[Tuple[str, int, int, int, int, str, str]]:
    """(path, mode, uid, gid, size, checksum, symlink target) from ``ostree ls -R -C``."""
    for line in run_ostree("ls", "-R", "-C", rev, repo=sample.path).splitlines():
        typemode, uid, gid, size, checksum, rest = line.split(None, 5)
        if typemode[0] == "d":
            continue
        target = ""
        if typemode[0] == "l":
            rest, _, target = rest.partition(" -> ")
        kind = stat.S_IFLNK if typemode[0] == "l" else stat.S_IFREG
        yield rest, kind | int(typemode[1:], 8), int(uid), int(gid), int(size), checksum, target


def test_headers_match_ostree_ls(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    paths = _tree_paths(repo, sample_repo.refs[MAIN_REF])
    seen = 0
    for path, mode, uid, gid, size, checksum, target in _ls_entries(sample_repo, MAIN_REF):
        assert paths[path] == ("f", checksum)
        with repo.open_content(checksum) as reader:
            header = reader.header
            assert (header.mode, header.uid, header.gid) == (mode, uid, gid), path
            assert header.symlink_target == target
            if not header.is_symlink:
                assert reader.size == size
            else:
                assert reader.size == 0 and reader.read() == b""
        seen += 1
    assert seen > 20


def test_logical_owner_mode_and_xattrs(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    commit = sample_repo.refs[MAIN_REF]
    with repo.open_content(_content_of(repo, commit, "/xattrs.txt")) as reader:
        xattrs = reader.header.xattrs
    with repo.open_content(_content_of(repo, commit, "/owned.txt")) as reader:
        owned = reader.header
    with repo.open_content(_content_of(repo, commit, "/setuid-bin")) as reader:
        setuid = reader.header
    with repo.open_content(_content_of(repo, commit, "/link-abs")) as reader:
        link = reader.header
    assert link.is_symlink and link.symlink_target == "/etc/hostname"
    if sample_repo.mode == "bare-user-only":
        assert xattrs == ()
        assert (owned.uid, owned.gid) == (0, 0)
        assert setuid.mode == stat.S_IFREG | 0o755
        return
    expected = [(b"user.alpha\0", b"A1"), (b"user.zeta\0", b"Z")]
    if is_root():
        expected.insert(0, (b"trusted.mid\0", b"T"))
        assert (owned.uid, owned.gid) == (1000, 1000)
    assert list(xattrs) == expected
    assert setuid.mode == stat.S_IFREG | 0o4755


@pytest.mark.parametrize("path", ["/hello.txt", "/big.bin", "/empty", "/xattrs.txt", "/names/é", "/deep/d0/d1/d2/d3/d4/d5/d6/d7/d8/leaf.txt"])
def test_payload_equals_ostree_cat(sample_repo: SampleRepo, path: str) -> None:
    repo = Repo.open(sample_repo.path)
    expected = _ostree_cat(sample_repo, path)
    with repo.open_content(_content_of(repo, sample_repo.refs[MAIN_REF], path)) as reader:
        assert reader.size == len(expected)
        assert b"".join(reader.iter_chunks()) == expected


def _ostree_cat(sample: SampleRepo, path: str) -> bytes:
    import subprocess

    from ostree_tool import require_ostree

    return subprocess.run(
        [require_ostree(), "cat", f"--repo={sample.path}", MAIN_REF, path],
        capture_output=True, check=True,
    ).stdout


def test_big_file_streams_in_bounded_chunks(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    checksum = _content_of(repo, sample_repo.refs[MAIN_REF], "/big.bin")
    with repo.open_content(checksum) as reader:
        assert reader.size == BIG_FILE_SIZE
        head = reader.read(10)
        more = reader.read(CHUNK_SIZE + 5)
        chunks = list(reader.iter_chunks())
    assert len(head) == 10 and len(more) == CHUNK_SIZE + 5
    assert len(chunks) >= 2
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks[1:])
    assert len(head) + len(more) + sum(map(len, chunks)) == BIG_FILE_SIZE
    with repo.open_content(checksum) as reader:
        assert content_checksum(reader.header, [reader.read(3), reader.read(), reader.read(7)]) == checksum


def test_has_object_and_object_path(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    commit = sample_repo.refs[MAIN_REF]
    assert repo.has_object(commit, ObjectType.COMMIT)
    assert not repo.has_object(commit, ObjectType.DIR_TREE)
    assert not repo.has_object("0" * 64, ObjectType.COMMIT)
    assert repo.object_path(commit, ObjectType.COMMIT) == sample_repo.path / "objects" / commit[:2] / f"{commit[2:]}.commit"
    link = _content_of(repo, commit, "/link-dangling")
    assert repo.has_object(link, ObjectType.FILE)  # bare modes: a dangling real symlink
    ext = "filez" if sample_repo.mode == "archive" else "file"
    assert repo.object_path(link, ObjectType.FILE).name.endswith("." + ext)


@pytest.mark.parametrize("bad", ["", "abc", "G" * 64, "A" * 64, "0" * 63, "../" + "0" * 61])
def test_object_path_rejects_bad_checksums(ostree_repos: Dict[str, SampleRepo], bad: str) -> None:
    with pytest.raises(ObjectError):
        Repo.open(ostree_repos["archive"].path).object_path(bad, ObjectType.COMMIT)


def test_commitpartial(archive_copy: SampleRepo) -> None:
    repo = Repo.open(archive_copy.path)
    commit = archive_copy.refs[MAIN_REF]
    assert not repo.is_commit_partial(commit)
    (archive_copy.path / "state" / f"{commit}.commitpartial").write_bytes(b"")
    assert repo.is_commit_partial(commit)


# ---------------------------------------------------------------------------- bad objects


def _one_line(err: pytest.ExceptionInfo[PyOstreeError]) -> None:
    assert "\n" not in str(err.value) and str(err.value)


def test_missing_objects_are_not_found(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    absent = "0" * 64
    for load in (repo.load_commit, repo.load_dirtree, repo.load_dirmeta):
        with pytest.raises(NotFoundError) as info:
            load(absent)
        _one_line(info)
    with pytest.raises(NotFoundError) as info:
        repo.open_content(absent)
    _one_line(info)
    assert repo.load_commitmeta(absent) is None


def test_content_type_is_not_metadata(ostree_repos: Dict[str, SampleRepo]) -> None:
    repo = Repo.open(ostree_repos["archive"].path)
    with pytest.raises(ObjectError):
        repo.read_metadata_bytes(ostree_repos["archive"].refs[MAIN_REF], ObjectType.FILE)


def test_oversized_metadata_is_refused(archive_copy: SampleRepo) -> None:
    repo = Repo.open(archive_copy.path)
    commit = archive_copy.refs[MAIN_REF]
    with open(repo.object_path(commit, ObjectType.COMMIT), "r+b") as handle:
        handle.truncate(MAX_METADATA_SIZE + 1)  # sparse: costs no disk
    with pytest.raises(ObjectError, match="limit") as info:
        repo.load_commit(commit)
    _one_line(info)


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\xff" * 7, b"\x01" * 3000])
def test_garbage_commit_and_dirmeta_are_object_errors(archive_copy: SampleRepo, garbage: bytes) -> None:
    repo = Repo.open(archive_copy.path)
    commit = archive_copy.refs[MAIN_REF]
    root_meta = repo.load_commit(commit).root_meta
    repo.object_path(commit, ObjectType.COMMIT).write_bytes(garbage)
    repo.object_path(root_meta, ObjectType.DIR_META).write_bytes(garbage)
    with pytest.raises(ObjectError) as info:
        repo.load_commit(commit)
    _one_line(info)
    with pytest.raises(ObjectError) as info:
        repo.load_dirmeta(root_meta)
    _one_line(info)


def test_random_metadata_never_escapes_as_another_error(archive_copy: SampleRepo) -> None:
    """Trusted loads may decode garbage into some value, but only ever fail with ObjectError."""
    repo = Repo.open(archive_copy.path)
    commit = archive_copy.refs[MAIN_REF]
    loaded = repo.load_commit(commit)
    targets = (
        (commit, ObjectType.COMMIT, repo.load_commit),
        (loaded.root_tree, ObjectType.DIR_TREE, repo.load_dirtree),
        (loaded.root_meta, ObjectType.DIR_META, repo.load_dirmeta),
        (commit, ObjectType.COMMIT_META, repo.load_commitmeta),
    )
    rng = random.Random(7)
    for _ in range(150):
        garbage = rng.randbytes(rng.choice([1, 3, 12, 40, 100, 300]))
        for checksum, objtype, load in targets:
            repo.object_path(checksum, objtype).write_bytes(garbage)
            try:
                load(checksum)
            except ObjectError as err:
                assert "\n" not in str(err)


def _filez_path(sample: SampleRepo, repo: Repo, path: str) -> Tuple[str, Path]:
    checksum = _content_of(repo, sample.refs[MAIN_REF], path)
    return checksum, repo.object_path(checksum, ObjectType.FILE)


@pytest.mark.parametrize("cut", [0, 5, 12, 40, -100, -1])
def test_truncated_filez_is_an_object_error(archive_copy: SampleRepo, cut: int) -> None:
    repo = Repo.open(archive_copy.path)
    checksum, path = _filez_path(archive_copy, repo, "/big.bin")
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(ObjectError) as info:
        with repo.open_content(checksum) as reader:
            for _ in reader.iter_chunks():
                pass
    _one_line(info)


def test_filez_with_trailing_bytes_or_wrong_size(archive_copy: SampleRepo) -> None:
    repo = Repo.open(archive_copy.path)
    checksum, path = _filez_path(archive_copy, repo, "/hello.txt")
    good = path.read_bytes()
    for bad in (good + b"junk", good[:-8] + zlib.compress(b"hello, third!\n")[2:-4]):
        path.write_bytes(bad)
        with pytest.raises(ObjectError):
            with repo.open_content(checksum) as reader:
                reader.read()
    link, link_path = _filez_path(archive_copy, repo, "/link-rel")
    link_path.write_bytes(link_path.read_bytes() + b"\x03\x00")
    with pytest.raises(ObjectError, match="symlink"):
        with repo.open_content(link) as reader:
            reader.read()


@pytest.fixture
def bare_user_copy(tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> SampleRepo:
    from ostree_tool import copy_repo
    import dataclasses

    dst = copy_repo(ostree_repos["bare-user"].path, tmp_path / "bare-user")
    return dataclasses.replace(ostree_repos["bare-user"], path=dst)


def test_bare_user_without_ostreemeta(bare_user_copy: SampleRepo) -> None:
    repo = Repo.open(bare_user_copy.path)
    assert repo.mode is RepoMode.BARE_USER
    checksum, path = _filez_path(bare_user_copy, repo, "/hello.txt")
    os.removexattr(path, "user.ostreemeta")
    with pytest.raises(ObjectError, match="user.ostreemeta") as info:
        repo.open_content(checksum)
    _one_line(info)


def test_bare_user_symlink_object_must_end_in_nul(bare_user_copy: SampleRepo) -> None:
    repo = Repo.open(bare_user_copy.path)
    checksum, path = _filez_path(bare_user_copy, repo, "/link-rel")
    meta = os.getxattr(path, "user.ostreemeta")
    assert path.read_bytes() == b"hello.txt\0"
    path.write_bytes(b"hello.txt")
    os.setxattr(path, "user.ostreemeta", meta)
    with pytest.raises(ObjectError, match="NUL"):
        repo.open_content(checksum)


def test_bare_disable_xattrs_reads_no_xattrs_like_ostree(tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> None:
    from ostree_tool import copy_repo

    path = copy_repo(ostree_repos["bare"].path, tmp_path / "bare")
    config = path / "config"
    config.write_text(config.read_text().replace("mode=bare\n", "mode=bare\ndisable-xattrs=true\n"))
    repo = Repo.open(path)
    checksum = _content_of(repo, ostree_repos["bare"].refs[MAIN_REF], "/xattrs.txt")
    with repo.open_content(checksum) as reader:
        assert reader.header.xattrs == ()
    shown = run_ostree("ls", "-X", MAIN_REF, "/xattrs.txt", repo=path)
    assert "user.alpha" not in shown


def test_random_content_headers_only_raise_object_errors(archive_copy: SampleRepo, bare_user_copy: SampleRepo) -> None:
    """Garbage .filez headers and user.ostreemeta values fail cleanly, never otherwise."""
    rng = random.Random(11)
    archive = Repo.open(archive_copy.path)
    checksum, path = _filez_path(archive_copy, archive, "/hello.txt")
    good = path.read_bytes()
    user = Repo.open(bare_user_copy.path)
    user_checksum, user_path = _filez_path(bare_user_copy, user, "/hello.txt")
    for _ in range(200):
        size = rng.choice([1, 8, 12, 30, 64])
        if rng.random() < 0.5:
            garbage = good[:8] + rng.randbytes(size) + good[8 + size:]
        else:
            garbage = (size).to_bytes(4, "big") + bytes(4) + rng.randbytes(size)
        path.write_bytes(garbage)
        os.setxattr(user_path, "user.ostreemeta", rng.randbytes(size))
        for repo, name in ((archive, checksum), (user, user_checksum)):
            try:
                with repo.open_content(name) as reader:
                    content_checksum(reader.header, reader.iter_chunks())
            except ObjectError as err:
                assert "\n" not in str(err)


def test_bare_symlink_with_non_utf8_target(tmp_path: Path) -> None:
    run_ostree("init", "--mode=bare", repo=tmp_path / "r")
    repo = Repo.open(tmp_path / "r")
    fake = "ab" * 32
    path = repo.object_path(fake, ObjectType.FILE)
    path.parent.mkdir()
    os.symlink(b"\xff\xfe", os.fsencode(path))
    with pytest.raises(ObjectError, match="UTF-8"):
        repo.open_content(fake)
