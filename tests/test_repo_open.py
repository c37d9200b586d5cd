"""Opening repositories: every mode, and a clear one-line RepoError for everything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ostree_tool import ALL_MODES, BIG_FILE_SIZE, SORT_TRAP_NAMES, SampleRepo, is_root, needs_ostree, run_ostree, run_ostree_fail
from pyostree.errors import RepoError
from pyostree.repo import Repo, RepoMode

pytestmark = needs_ostree


@pytest.mark.parametrize("mode", ALL_MODES)
def test_open_fresh_repo_in_every_mode(tmp_path: Path, mode: str) -> None:
    run_ostree("init", f"--mode={mode}", repo=tmp_path / "r")
    repo = Repo.open(tmp_path / "r")
    assert repo.mode is RepoMode.parse(mode)
    assert repo.list_refs() == {}
    assert list(repo.list_objects()) == []


def test_open_with_collection_id(tmp_path: Path) -> None:
    run_ostree("init", "--mode=bare-user", "--collection-id=org.example.Repo", repo=tmp_path / "r")
    assert Repo.open(tmp_path / "r").collection_id == "org.example.Repo"


def _broken(tmp_path: Path, config: object) -> Path:
    root = tmp_path / "r"
    (root / "objects").mkdir(parents=True)
    if isinstance(config, bytes):
        (root / "config").write_bytes(config)
    return root


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "no config file"),
        (b"garbage\n", "not a key-value pair"),
        (b"[core]\nmode=bare\n", "repo_version"),
        (b"[core]\nrepo_version=2\nmode=bare\n", "Invalid repository version '2'"),
        (b"[core]\nrepo_version=1\nmode=weird\n", "Invalid mode 'weird'"),
        (b"[core]\nrepo_version=1\narchive=true\n", "archive-z2"),
        (b"[core]\nrepo_version=1\nmode=bare-split-xattrs\n", "Unsupported repository mode"),
        (b"[core]\nrepo_version=1\nmode=\xff\n", "UTF-8"),
        (b"[core]\nrepo_version=1\n" + b"#" * (2 << 20), "larger than"),
    ],
)
def test_bad_config_is_a_one_line_repo_error(tmp_path: Path, config: object, message: str) -> None:
    root = _broken(tmp_path, config)
    with pytest.raises(RepoError, match=message) as info:
        Repo.open(root)
    assert "\n" not in str(info.value)


def test_ostree_refuses_the_same_configs(tmp_path: Path) -> None:
    for index, text in enumerate([b"garbage\n", b"[core]\nrepo_version=2\nmode=bare\n", b"[core]\nrepo_version=1\nmode=weird\n"]):
        root = _broken(tmp_path / str(index), text)
        assert "opening repo" in run_ostree_fail("refs", repo=root)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="No such repository") as info:
        Repo.open(tmp_path / "absent")
    assert "\n" not in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RepoError):
        Repo.open(tmp_path / "file")


def test_directory_without_objects(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[core]\nrepo_version=1\nmode=bare\n")
    with pytest.raises(RepoError, match="no objects/ directory"):
        Repo.open(tmp_path)


def test_init_and_transaction_delegate_to_the_write_side(tmp_path: Path) -> None:
    pytest.importorskip("pyostree.repo.init")
    repo = Repo.init(tmp_path / "new", RepoMode.ARCHIVE, collection_id="org.example.New")
    assert repo.mode is RepoMode.ARCHIVE and repo.collection_id == "org.example.New"
    assert run_ostree("refs", repo=tmp_path / "new") == ""
    pytest.importorskip("pyostree.repo.transaction")
    assert type(repo.transaction()).__name__ == "Transaction"


def test_sample_tree_has_the_promised_corners(sample_tree: Path) -> None:
    assert (sample_tree / "empty").stat().st_size == 0
    assert (sample_tree / "big.bin").stat().st_size == BIG_FILE_SIZE
    assert sorted(os.listdir(sample_tree / "names"), key=os.fsencode) == sorted(SORT_TRAP_NAMES, key=os.fsencode)
    assert os.readlink(sample_tree / "link-dangling") == "does/not/exist"
    assert (sample_tree / "hard1").stat().st_ino == (sample_tree / "hard2").stat().st_ino
    assert (sample_tree / "setuid-bin").stat().st_mode & 0o4000
    assert os.getxattr(sample_tree / "xattrs.txt", "user.alpha") == b"A1"
    if is_root():
        assert (sample_tree / "owned.txt").stat().st_uid == 1000
    assert not any((sample_tree / "emptydir").iterdir())


def test_session_repos_exist_in_all_modes(ostree_repos: dict[str, SampleRepo]) -> None:
    assert sorted(ostree_repos) == sorted(ALL_MODES)
    for mode, sample in ostree_repos.items():
        assert f"mode={RepoMode.parse(mode).value}" in (sample.path / "config").read_text()
        assert len(sample.main_history) == 3
