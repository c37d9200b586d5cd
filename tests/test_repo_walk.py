"""Reachability from commits, compared with ``ostree ls -R -C`` and with ``pull-local``."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from ostree_tool import MAIN_REF, SLASH_REF, SampleRepo, list_object_files, needs_ostree, run_ostree
from pyostree.errors import NotFoundError
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo
from pyostree.repo.walk import walk_commits, walk_tree

pytestmark = needs_ostree

Name = Tuple[str, ObjectType]


def _ls_objects(sample: SampleRepo, rev: str) -> Set[Name]:
    """Every dirtree, dirmeta and content object ``ostree ls -R -C`` shows for REV."""
    out: Set[Name] = set()
    for line in run_ostree("ls", "-R", "-C", rev, repo=sample.path).splitlines():
        fields = line.split(None, 6)
        if fields[0][0] == "d":
            out.add((fields[4], ObjectType.DIR_TREE))
            out.add((fields[5], ObjectType.DIR_META))
        else:
            out.add((fields[4], ObjectType.FILE))
    return out


def test_walk_of_one_commit_equals_ostree_ls(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    for rev in (MAIN_REF, SLASH_REF, "main^^"):
        commit = repo.resolve_rev(rev)
        walked = list(repo.walk(commit))
        assert len(walked) == len(set(walked)), "an object was reported twice"
        assert walked[0] == (commit, ObjectType.COMMIT)
        assert set(walked) == {(commit, ObjectType.COMMIT)} | _ls_objects(sample_repo, rev)


def test_walk_with_depth(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    history = sample_repo.main_history
    for depth, expected in ((0, history[:1]), (1, history[:2]), (2, history), (-1, history), (50, history)):
        commits = [c for c, t in repo.walk(history[0], depth=depth) if t is ObjectType.COMMIT]
        assert commits == list(expected)
    union: Set[Name] = set()
    for rev in ("main", "main^", "main^^"):
        union |= set(repo.walk(repo.resolve_rev(rev)))
    assert set(repo.walk(history[0], depth=-1)) == union


def test_walk_of_all_refs_covers_every_object(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    reached: Set[Name] = set()
    for checksum in repo.list_refs().values():
        reached |= set(repo.walk(checksum, depth=-1, commitmeta=True))
    assert reached == set(repo.list_objects())


def test_walk_equals_what_pull_local_copies(tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> None:
    sample = ostree_repos["archive"]
    for depth in (0, 1):
        dst = tmp_path / f"pulled-{depth}"
        run_ostree("init", "--mode=archive", repo=dst)
        run_ostree("pull-local", f"--depth={depth}", str(sample.path), MAIN_REF, repo=dst)
        copied = {
            (checksum, ObjectType.from_extension(ext)[0]) for checksum, ext in list_object_files(dst)
        }
        walked = set(Repo.open(sample.path).walk(sample.refs[MAIN_REF], depth=depth, commitmeta=True))
        assert walked == copied


def test_missing_parent_ends_history_quietly(archive_copy: SampleRepo) -> None:
    repo = Repo.open(archive_copy.path)
    newest, middle, _ = archive_copy.main_history
    repo.object_path(middle, ObjectType.COMMIT).unlink()
    commits = [c for c, t in repo.walk(newest, depth=-1) if t is ObjectType.COMMIT]
    assert commits == [newest]


def test_missing_commit_or_tree_raises(archive_copy: SampleRepo) -> None:
    repo = Repo.open(archive_copy.path)
    with pytest.raises(NotFoundError):
        list(repo.walk("0" * 64))
    commit = archive_copy.refs[SLASH_REF]
    repo.object_path(repo.load_commit(commit).root_tree, ObjectType.DIR_TREE).unlink()
    with pytest.raises(NotFoundError) as info:
        list(repo.walk(commit))
    assert "\n" not in str(info.value)


def test_walk_tree_is_iterative_and_dedups() -> None:
    """A 50 000-level chain and a shared subtree: no recursion, each object once."""
    levels = 50_000
    trees: Dict[str, Tuple[List[str], List[Tuple[str, str]]]] = {}
    meta = "m" * 64
    for i in range(levels):
        child = [(f"t{i + 1:063d}", meta)] if i + 1 < levels else []
        trees[f"t{i:063d}"] = ([f"f{i % 7:063d}"], child)
    out = list(walk_tree(f"t{0:063d}", meta, load_dirtree=trees.__getitem__, seen=set()))
    assert len(out) == levels + 1 + 7
    assert len(set(out)) == len(out)

    shared = {"root": ([], [("sub", "m1"), ("sub", "m2")]), "sub": (["f"], [])}
    out = list(walk_tree("root", "m0", load_dirtree=shared.__getitem__, seen=set()))
    assert sorted(out) == sorted([
        ("m0", ObjectType.DIR_META), ("root", ObjectType.DIR_TREE), ("m1", ObjectType.DIR_META),
        ("m2", ObjectType.DIR_META), ("sub", ObjectType.DIR_TREE), ("f", ObjectType.FILE),
    ])


def test_walk_commits_stops_on_cycles_and_depth() -> None:
    parents = {"a": "b", "b": "c", "c": "a"}
    assert list(walk_commits("a", depth=-1, load_parent=parents.get, has_commit=lambda c: True)) == ["a", "b", "c"]
    assert list(walk_commits("a", depth=1, load_parent=parents.get, has_commit=lambda c: True)) == ["a", "b"]
    assert list(walk_commits("a", depth=-1, load_parent=parents.get, has_commit=lambda c: c != "c")) == ["a", "b"]
