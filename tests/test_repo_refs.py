"""Listing and reading refs, compared with what ``ostree refs`` prints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

from ostree_tool import ALIAS_REF, COLLECTION, MAIN_REF, SLASH_REF, SampleRepo, needs_ostree, run_ostree
from pyostree.errors import NotFoundError, RefError, RepoError
from pyostree.repo import Repo

pytestmark = needs_ostree


def _lines(text: str) -> Set[str]:
    return {line for line in text.splitlines() if line}


def _ostree_collection_refs(repo: Path) -> Set[Tuple[str, str]]:
    out = set()
    for line in _lines(run_ostree("refs", "--collections", repo=repo)):
        collection, _, name = line.strip("()").partition(", ")
        out.add((collection, name))
    return out


def test_list_refs_equals_ostree_refs(sample_repo: SampleRepo) -> None:
    refs = Repo.open(sample_repo.path).list_refs()
    assert set(refs) == _lines(run_ostree("refs", repo=sample_repo.path))
    assert refs == sample_repo.refs
    for name, checksum in refs.items():
        assert checksum == run_ostree("rev-parse", name, repo=sample_repo.path).strip()


@pytest.mark.parametrize("prefix", ["os", "os/x86_64", SLASH_REF, MAIN_REF, "origin:main", "nope", "os/nope"])
def test_list_refs_prefix_equals_ostree_refs_list(sample_repo: SampleRepo, prefix: str) -> None:
    ours = Repo.open(sample_repo.path).list_refs(prefix)
    assert set(ours) == _lines(run_ostree("refs", "--list", prefix, repo=sample_repo.path))
    for name, checksum in ours.items():
        assert sample_repo.refs[name] == checksum


def test_list_refs_of_one_remote(sample_repo: SampleRepo) -> None:
    # `ostree refs --list origin:` prints "origin:./main" (a quirk); without --list it
    # prints the plain names, which is what we return.
    ours = Repo.open(sample_repo.path).list_refs("origin:")
    assert set(ours) == _lines(run_ostree("refs", "origin:", repo=sample_repo.path))
    assert ours == {"origin:main": sample_repo.refs["origin:main"]}


def test_aliases_equal_ostree_refs_alias(sample_repo: SampleRepo) -> None:
    aliases = Repo.open(sample_repo.path).list_aliases()
    printed = {
        tuple(line.split(" -> ")) for line in _lines(run_ostree("refs", "--alias", repo=sample_repo.path))
    }
    assert set(aliases.items()) == printed == {(ALIAS_REF, SLASH_REF)}


def test_collection_refs_equal_ostree_refs_collections(sample_repo: SampleRepo) -> None:
    refs = Repo.open(sample_repo.path).list_collection_refs()
    assert set(refs) == _ostree_collection_refs(sample_repo.path) == {COLLECTION}
    assert refs[COLLECTION] == sample_repo.collection_refs[COLLECTION]


def test_collection_refs_with_collection_ids_configured(archive_copy: SampleRepo) -> None:
    path = archive_copy.path
    config = (path / "config").read_text()
    config = config.replace("mode=archive-z2", "mode=archive-z2\ncollection-id=org.example.Mine")
    config = config.replace("gpg-verify=false", "gpg-verify=false\ncollection-id=org.example.Up")
    (path / "config").write_text(config)
    repo = Repo.open(path)
    refs = repo.list_collection_refs()
    assert set(refs) == _ostree_collection_refs(path)
    assert refs[("org.example.Mine", MAIN_REF)] == archive_copy.refs[MAIN_REF]
    assert refs[("org.example.Up", MAIN_REF)] == archive_copy.refs["origin:main"]
    assert repo.read_collection_ref("org.example.Mine", SLASH_REF) == archive_copy.refs[SLASH_REF]
    assert repo.read_collection_ref(*COLLECTION) == archive_copy.collection_refs[COLLECTION]
    assert repo.read_collection_ref("org.example.Other", MAIN_REF) is None


def test_read_ref_is_exact(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    assert repo.read_ref(MAIN_REF) == sample_repo.refs[MAIN_REF]
    assert repo.read_ref(ALIAS_REF) == sample_repo.refs[SLASH_REF]
    assert repo.read_ref("origin:main") == sample_repo.refs["origin:main"]
    assert repo.read_ref("os") is None          # a directory, not a ref
    assert repo.read_ref("nope") is None
    assert repo.read_ref("origin:nope") is None
    assert repo.read_ref("nope:main") is None


@pytest.mark.parametrize("name", ["", "a//b", "../config", "-x", "a b", "x:", "/abs", ".hidden"])
def test_read_ref_rejects_invalid_names(ostree_repos: Dict[str, SampleRepo], name: str) -> None:
    with pytest.raises(RefError) as info:
        Repo.open(ostree_repos["archive"].path).read_ref(name)
    assert "\n" not in str(info.value)


def test_trailing_whitespace_is_stripped(archive_copy: SampleRepo) -> None:
    checksum = archive_copy.refs[MAIN_REF]
    (archive_copy.path / "refs/heads/spacey").write_text(checksum + " \t\n\n")
    assert Repo.open(archive_copy.path).read_ref("spacey") == checksum
    assert run_ostree("rev-parse", "spacey", repo=archive_copy.path).strip() == checksum


@pytest.mark.parametrize(
    "content",
    [b"garbage\n", b"", b"  %s\n", b"%s%s\n", b"\xff\xfe\n", b"%s"[:0] + b"A" * 64 + b"\n", b"x" * 5000],
)
def test_bad_ref_file_is_a_repo_error(archive_copy: SampleRepo, content: bytes) -> None:
    checksum = archive_copy.refs[MAIN_REF].encode()
    data = content.replace(b"%s", checksum)
    (archive_copy.path / "refs/heads/bad").write_bytes(data)
    repo = Repo.open(archive_copy.path)
    with pytest.raises(RepoError) as info:
        repo.read_ref("bad")
    assert "\n" not in str(info.value)
    with pytest.raises(RepoError):
        repo.list_refs()
    with pytest.raises(RepoError):
        repo.resolve_rev("bad")


def test_alias_dangling_escaping_and_loop(archive_copy: SampleRepo) -> None:
    heads = archive_copy.path / "refs/heads"
    repo = Repo.open(archive_copy.path)
    os.symlink("nowhere", heads / "dangling")
    assert repo.read_ref("dangling") is None
    with pytest.raises(RepoError, match="dangling"):
        repo.list_refs()
    (heads / "dangling").unlink()
    os.symlink("../../config", heads / "escape")
    with pytest.raises(RepoError, match="outside refs/heads"):
        repo.read_ref("escape")
    (heads / "escape").unlink()
    os.symlink("loop2", heads / "loop1")
    os.symlink("loop1", heads / "loop2")
    with pytest.raises(RepoError, match="loop"):
        repo.read_ref("loop1")


def test_nested_alias_resolves_relative_to_its_directory(archive_copy: SampleRepo) -> None:
    run_ostree("refs", "--alias", "--create=deep/alias", SLASH_REF, repo=archive_copy.path)
    repo = Repo.open(archive_copy.path)
    assert repo.read_ref("deep/alias") == archive_copy.refs[SLASH_REF]
    assert repo.list_aliases()["deep/alias"] == SLASH_REF
    assert set(repo.list_refs()) == _lines(run_ostree("refs", repo=archive_copy.path))


def test_stray_files_with_invalid_names_are_skipped(archive_copy: SampleRepo) -> None:
    (archive_copy.path / "refs/heads/.tmp-stray").write_text("junk")
    assert set(Repo.open(archive_copy.path).list_refs()) == set(archive_copy.refs)


def test_missing_refs_dirs_list_nothing(tmp_path: Path) -> None:
    run_ostree("init", "--mode=archive", repo=tmp_path / "r")
    for sub in ("heads", "remotes", "mirrors"):
        (tmp_path / "r/refs" / sub).rmdir()
    repo = Repo.open(tmp_path / "r")
    assert repo.list_refs() == {}
    assert repo.list_collection_refs() == {}
    with pytest.raises(NotFoundError):
        repo.resolve_rev("main")


def test_ref_below_a_ref_file_is_absent(sample_repo: SampleRepo) -> None:
    repo = Repo.open(sample_repo.path)
    assert repo.read_ref("main/sub") is None
    assert repo.list_refs("main/sub") == {}
    assert repo.resolve_rev("main/sub", allow_missing=True) is None


def test_symlinked_directory_cannot_lead_outside_refs(archive_copy: SampleRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak").write_text("secret\n")
    os.symlink(outside, archive_copy.path / "refs/heads/sneaky")
    repo = Repo.open(archive_copy.path)
    with pytest.raises(RepoError, match="outside") as info:
        repo.read_ref("sneaky/leak")
    assert "secret" not in str(info.value)
