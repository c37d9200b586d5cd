"""``summary --view`` and ``--raw`` print what ``ostree summary`` prints for the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


def _repo(tmp_path: Path, collection: bool) -> Path:
    repo = tmp_path / "repo"
    init = ["init", f"--repo={repo}", "--mode=archive"]
    if collection:
        init.append("--collection-id=org.example.Coll")
    assert ostree(*init).status == 0
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    for ref, stamp in (("a", "2020-01-01"), ("b/c", "2021-06-01 12:00:00")):
        assert ostree("commit", f"--repo={repo}", "-b", ref, f"--timestamp={stamp}",
                      "--add-metadata-string=version=1.2", str(tree)).status == 0
    (tree / "b").write_text("b\n")
    assert ostree("commit", f"--repo={repo}", "-b", "a", str(tree)).status == 0
    assert ostree("static-delta", "generate", f"--repo={repo}", "a").status == 0
    return repo


@pytest.mark.parametrize("collection", [False, True])
@pytest.mark.parametrize("flag", ["--view", "--raw"])
@pytest.mark.parametrize("writer", ["ostree", "pyostree"])
def test_view_matches_ostree(tmp_path: Path, collection: bool, flag: str, writer: str) -> None:
    repo = _repo(tmp_path, collection)
    tool = ostree if writer == "ostree" else pyostree
    assert tool("summary", f"--repo={repo}", "-u", "--add-metadata=k=@t 5",
                "--add-metadata=s='x'").status == 0
    want = ostree("summary", f"--repo={repo}", flag)
    assert want.status == 0 and "Latest Commit" in ostree("summary", f"--repo={repo}", "-v").out
    assert pyostree("summary", f"--repo={repo}", flag) == want


def test_view_without_summary_fails_as_ostree(tmp_path: Path) -> None:
    repo = _repo(tmp_path, False)
    want = ostree("summary", f"--repo={repo}", "--view")
    assert want.status == 1
    assert pyostree("summary", f"--repo={repo}", "--view") == want
