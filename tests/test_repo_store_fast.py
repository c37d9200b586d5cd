"""The store's fast paths for walks (``stat_content``, ``read_dirtree_lists``) agree with the
full readers on every object, and step aside (None) for anything they do not handle."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Dict

import pytest

from ostree_tool import SampleRepo, copy_repo, needs_ostree
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo, RepoMode
from pyostree.repo.store import ContentStat, parse_archive_prefix

pytestmark = needs_ostree


def _full_stat(repo: Repo, checksum: str) -> ContentStat:
    with repo.open_content(checksum) as reader:
        header = reader.header
        assert header.xattrs == ()
        return ContentStat(header.mode, header.uid, header.gid, reader.size, header.symlink_target)


def test_stat_content_agrees_with_the_full_reader(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    cached = repo.store.stat_content_function()
    fast = 0
    for checksum, _ in repo.list_objects(ObjectType.FILE):
        quick = repo.store.stat_content(checksum)
        if cached is not None:
            assert cached(checksum) == quick
            assert cached(checksum) == quick  # from the cache this time
        if quick is None:
            continue
        fast += 1
        assert quick == _full_stat(repo, checksum)
        assert quick.is_symlink == bool(quick.symlink_target)
    if repo.mode in (RepoMode.ARCHIVE, RepoMode.BARE_USER):
        assert fast > 10
        with repo.open_content(_xattr_object(repo)) as reader:
            assert reader.header.xattrs  # ... which the fast path leaves to the full reader
        assert repo.store.stat_content(_xattr_object(repo)) is None
    else:
        assert fast == 0 and cached is None


def _xattr_object(repo: Repo) -> str:
    for checksum, _ in repo.list_objects(ObjectType.FILE):
        with repo.open_content(checksum) as reader:
            if reader.header.xattrs:
                return checksum
    raise AssertionError("the sample repo has a file with xattrs")


@pytest.mark.parametrize("bad", ["", "../" * 21 + "x", "A" * 64, "g" * 64, "0" * 63])
def test_stat_content_never_builds_a_path_from_a_bad_checksum(
        ostree_repos: Dict[str, SampleRepo], bad: str) -> None:
    for mode in ("archive", "bare-user"):
        repo = Repo.open(ostree_repos[mode].path)
        assert repo.store.stat_content(bad) is None
        function = repo.store.stat_content_function()
        assert function is not None and function(bad) is None


def test_stat_content_of_a_missing_object_raises_oserror(ostree_repos: Dict[str, SampleRepo]) -> None:
    for mode in ("archive", "bare-user"):
        repo = Repo.open(ostree_repos[mode].path)
        with pytest.raises(FileNotFoundError):
            repo.store.stat_content("0" * 64)


def test_odd_archive_headers_are_left_to_the_full_reader() -> None:
    assert parse_archive_prefix(b"") is None
    assert parse_archive_prefix(b"\0\0\0\x20\0\0\0\0" + b"\0" * 8) is None  # cut short
    assert parse_archive_prefix(b"\0\0\0\x20\0\0\0\1" + b"\0" * 40) is None  # padding not zero


def test_bare_user_symlink_without_nul_is_left_to_the_full_reader(
        tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> None:
    sample = dataclasses.replace(ostree_repos["bare-user"],
                                 path=copy_repo(ostree_repos["bare-user"].path, tmp_path / "r"))
    repo = Repo.open(sample.path)
    links = [c for c, _ in repo.list_objects(ObjectType.FILE)
             if (s := repo.store.stat_content(c)) is not None and s.is_symlink]
    assert links
    path = repo.object_path(links[0], ObjectType.FILE)
    meta = os.getxattr(path, "user.ostreemeta")
    path.write_bytes(path.read_bytes()[:-1])
    os.setxattr(path, "user.ostreemeta", meta)
    assert repo.store.stat_content(links[0]) is None


def test_read_dirtree_lists_equals_load_dirtree(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    trees = [c for c, _ in repo.list_objects(ObjectType.DIR_TREE)]
    assert len(trees) > 10
    for checksum in trees:
        lists = repo.store.read_dirtree_lists(checksum)
        assert lists is not None  # ostree writes normal form
        tree = repo.load_dirtree(checksum)
        files, dirs = lists
        assert [(name, raw.hex()) for name, raw in files] == [(f.name, f.checksum) for f in tree.files]
        assert [(name, t.hex(), m.hex()) for name, t, m in dirs] == [
            (d.name, d.tree_checksum, d.meta_checksum) for d in tree.dirs]


def test_read_dirtree_lists_steps_aside_for_non_normal_dirtrees(archive_copy: SampleRepo) -> None:
    from pyostree.gvariant import encode

    repo = Repo.open(archive_copy.path)
    checksum = next(c for c, _ in repo.list_objects(ObjectType.DIR_TREE))
    path = repo.object_path(checksum, ObjectType.DIR_TREE)
    # A digest of the wrong length: decodes, but is not a dirtree libostree accepts.
    path.write_bytes(encode("(a(say)a(sayay))", ([("a", b"\1" * 31)], [])))
    assert repo.store.read_dirtree_lists(checksum) is None
    # Not normal form (trailing garbage): the generic decoder has the last word.
    path.write_bytes(encode("(a(say)a(sayay))", ([("a", b"\1" * 32)], [])) + b"\0")
    assert repo.store.read_dirtree_lists(checksum) is None
