"""``refs --create/--delete``: ostree sees what we wrote, and refuses what ostree refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import pytest

from ostree_tool import ALIAS_REF, MAIN_REF, SLASH_REF, SampleRepo, copy_repo, needs_ostree, run_ostree
from pyostree.cli.main import main

pytestmark = needs_ostree


def ours(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> Tuple[int, str, str]:
    status = main(["refs", f"--repo={repo}", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def repo(ostree_repos: Dict[str, SampleRepo], tmp_path: Path) -> Path:
    return copy_repo(ostree_repos["bare"].path, tmp_path / "repo")


def test_create_then_ostree_resolves_it(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert ours(capsys, repo, "--create=new/branch", MAIN_REF + "^") == (0, "", "")
    want = run_ostree("rev-parse", MAIN_REF + "^", repo=repo)
    assert run_ostree("rev-parse", "new/branch", repo=repo) == want
    status, _, err = ours(capsys, repo, "--create=new/branch", MAIN_REF)
    assert status == 1 and err == "error: --create specified but ref new/branch already exists\n"
    assert ours(capsys, repo, "--force", "--create=new/branch", MAIN_REF)[0] == 0
    assert run_ostree("rev-parse", "new/branch", repo=repo) == run_ostree("rev-parse", MAIN_REF, repo=repo)


def test_create_needs_exactly_one_revision(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert ours(capsys, repo, "--create=x")[0] == 1
    status, _, err = ours(capsys, repo, "--create=x", MAIN_REF, SLASH_REF)
    assert status == 1 and err.count("\n") == 1
    status, _, err = ours(capsys, repo, "--create=bad..//name", MAIN_REF)
    assert status == 1 and err.startswith("error: ")


def test_delete_by_prefix(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert ours(capsys, repo, "--create=tmp/a", MAIN_REF)[0] == 0
    assert ours(capsys, repo, "--create=tmp/b", MAIN_REF)[0] == 0
    assert ours(capsys, repo, "--delete", "tmp") == (0, "", "")
    listed = set(run_ostree("refs", repo=repo).split())
    assert not {"tmp/a", "tmp/b"} & listed and MAIN_REF in listed


def test_delete_refuses_aliased_ref_and_missing_prefix(capsys: pytest.CaptureFixture[str],
                                                        repo: Path) -> None:
    status, _, err = ours(capsys, repo, "--delete", SLASH_REF)
    assert status == 1 and err == f"error: Ref '{SLASH_REF}' has an active alias: '{ALIAS_REF}'\n"
    assert SLASH_REF in run_ostree("refs", repo=repo).split()
    status, _, err = ours(capsys, repo, "--delete")
    assert status == 1 and err == "error: At least one PREFIX is required when deleting refs\n"
