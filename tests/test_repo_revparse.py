"""``resolve_rev`` against ``ostree rev-parse``: refs, remotes, checksums, prefixes, ``^``."""

from __future__ import annotations

import shutil
import subprocess
from typing import Dict, List

import pytest

from ostree_tool import MAIN_REF, SampleRepo, needs_ostree, run_ostree, run_ostree_fail
from pyostree.errors import NotFoundError, PyOstreeError, RefError
from pyostree.objects.types import ObjectType
from pyostree.repo import Repo
from pyostree.repo.revparse import resolve

pytestmark = needs_ostree


def _ostree_rev_parse(repo: SampleRepo, rev: str) -> str:
    return run_ostree("rev-parse", rev, repo=repo.path).strip()


def _ostree_error(repo: SampleRepo, rev: str) -> str:
    text = run_ostree_fail("rev-parse", rev, repo=repo.path).strip()
    assert text.startswith("error: ")
    return text[len("error: "):]


def _shortest_unique_prefixes(commits: List[str]) -> Dict[str, str]:
    out = {}
    for commit in commits:
        for length in range(1, 65):
            prefix = commit[:length]
            if sum(other.startswith(prefix) for other in commits) == 1:
                out[commit] = prefix
                break
    return out


def test_every_ref_matches_ostree(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    revs = [*sample_repo.refs, "main^", "main^^", "stable-alias", "origin/main"]
    for rev in revs:
        assert repo.resolve_rev(rev) == _ostree_rev_parse(sample_repo, rev), rev


def test_bare_ref_falls_back_to_remotes(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    # "origin/main" is refs/remotes/origin/main; a bare name also searches every remote.
    assert repo.resolve_rev("origin/main") == sample_repo.refs["origin:main"]
    assert repo.resolve_rev("main") == sample_repo.refs[MAIN_REF]  # heads win


def test_remote_search_when_no_head(archive_copy: SampleRepo) -> None:
    (archive_copy.path / "refs/heads/main").unlink()
    repo = Repo.open(archive_copy.path)
    expected = _ostree_rev_parse(archive_copy, "main")
    assert expected == archive_copy.refs["origin:main"]
    assert repo.resolve_rev("main") == expected


def test_history_with_carets(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    history = sample_repo.main_history
    for steps, commit in enumerate(history):
        assert repo.resolve_rev("main" + "^" * steps) == commit
        assert repo.resolve_rev(history[0] + "^" * steps) == commit


def test_no_parent_error_matches_ostree(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    for rev in ("main^^^", "main^^^^"):
        with pytest.raises(NotFoundError) as info:
            repo.resolve_rev(rev)
        assert str(info.value) == _ostree_error(sample_repo, rev)


def test_unique_prefixes_match_ostree(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    commits = sorted(c for c, _ in repo.list_objects(ObjectType.COMMIT))
    assert commits == list(sample_repo.commits)
    for commit, prefix in _shortest_unique_prefixes(commits).items():
        for candidate in (prefix, commit[:12], commit[:63]):
            if len(candidate) < len(prefix):
                continue
            assert repo.resolve_rev(candidate) == commit == _ostree_rev_parse(sample_repo, candidate)


def test_full_checksum_is_returned_even_if_absent(sample_repo: SampleRepo) -> None:
    absent = "0" * 64
    assert Repo.open(sample_repo.path).resolve_rev(absent) == absent == _ostree_rev_parse(sample_repo, absent)


def test_ambiguous_prefix(archive_copy: SampleRepo) -> None:
    # Plant a second commit object whose name shares 10 hex digits with main's.
    real = archive_copy.refs[MAIN_REF]
    twin = real[:10] + ("0" if real[10] != "0" else "1") + real[11:]
    src = archive_copy.path / "objects" / real[:2] / f"{real[2:]}.commit"
    shutil.copy(src, archive_copy.path / "objects" / twin[:2] / f"{twin[2:]}.commit")
    repo = Repo.open(archive_copy.path)
    with pytest.raises(RefError) as info:
        repo.resolve_rev(real[:10])
    assert str(info.value) == _ostree_error(archive_copy, real[:10])
    assert repo.resolve_rev(real[:11]) == real == _ostree_rev_parse(archive_copy, real[:11])


def test_lone_caret_is_an_ambiguous_empty_prefix(sample_repo: SampleRepo) -> None:
    with pytest.raises(RefError) as info:
        Repo.open(sample_repo.path).resolve_rev("^")
    assert str(info.value) == _ostree_error(sample_repo, "^")


@pytest.mark.parametrize("rev", ["nope", "origin:nope", "nope:main", "MAIN", "a..b", "org.example.Coll:main"])
def test_unknown_refs_raise_not_found_like_ostree(ostree_repos: Dict[str, SampleRepo], rev: str) -> None:
    sample = ostree_repos["bare"]
    repo = Repo.open(sample.path)
    with pytest.raises(NotFoundError) as info:
        repo.resolve_rev(rev)
    assert str(info.value) == _ostree_error(sample, rev)
    assert repo.resolve_rev(rev, allow_missing=True) is None


@pytest.mark.parametrize("rev", ["bad name", "x:", ":x", "main^x", "x/-main", "a//b", "a/"])
def test_invalid_refspecs_raise_ref_error_like_ostree(ostree_repos: Dict[str, SampleRepo], rev: str) -> None:
    sample = ostree_repos["bare"]
    with pytest.raises(RefError) as info:
        Repo.open(sample.path).resolve_rev(rev)
    assert str(info.value) == _ostree_error(sample, rev)


def test_hex_named_ref_loses_to_a_commit_prefix(archive_copy: SampleRepo) -> None:
    commit = archive_copy.refs[MAIN_REF]
    other = archive_copy.refs["os/x86_64/stable"]
    prefix = commit[:6]
    # `ostree refs --create` refuses this name ("already exists": it resolves as a prefix).
    (archive_copy.path / "refs/heads" / prefix).write_text(other + "\n")
    unused = next(p for p in ("beef", "cafe", "dead", "f00d") if not any(c.startswith(p) for c in archive_copy.commits))
    run_ostree("refs", f"--create={unused}", other, repo=archive_copy.path)
    repo = Repo.open(archive_copy.path)
    assert repo.resolve_rev(prefix) == commit == _ostree_rev_parse(archive_copy, prefix)
    assert repo.resolve_rev(unused) == other == _ostree_rev_parse(archive_copy, unused)


def test_caret_on_missing_ref_with_allow_missing(ostree_repos: Dict[str, SampleRepo]) -> None:
    repo = Repo.open(ostree_repos["bare"].path)
    assert repo.resolve_rev("nope^^", allow_missing=True) is None
    with pytest.raises(NotFoundError, match="Refspec 'nope' not found"):
        repo.resolve_rev("nope^")


def test_caret_on_missing_commit_object_is_not_found(archive_copy: SampleRepo) -> None:
    absent = "0" * 64
    with pytest.raises(NotFoundError) as info:
        Repo.open(archive_copy.path).resolve_rev(absent + "^")
    assert "\n" not in str(info.value)


def test_resolve_many_carets_is_iterative() -> None:
    chain = {f"{i:064x}": f"{i - 1:064x}" if i else None for i in range(5000)}
    found = resolve(
        f"{4999:064x}" + "^" * 4999,
        commits_with_prefix=lambda prefix: [],
        read_refspec=lambda remote, ref: None,
        parent_of=lambda checksum: chain[checksum],
    )
    assert found == f"{0:064x}"


def test_messages_are_one_line(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    for rev in ("nope", "main^^^^^", "bad name", "^"):
        with pytest.raises(PyOstreeError) as info:
            repo.resolve_rev(rev)
        assert "\n" not in str(info.value)
