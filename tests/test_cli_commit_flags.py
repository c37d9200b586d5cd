"""``commit`` flags of issue 18, against the real ``ostree commit`` on the same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


def _repo(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name
    assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
    return repo


@pytest.mark.parametrize("stamp", ["INVALID", "2020-13-45", "x\"y'z", "2020-01-01 25:00"])
def test_invalid_timestamp_refused_as_ostree(tmp_path: Path, stamp: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    theirs, ours = _repo(tmp_path, "theirs"), _repo(tmp_path, "ours")
    args = ("commit", "-b", "x", f"--timestamp={stamp}", str(tree))
    want = ostree(args[0], f"--repo={theirs}", *args[1:])
    got = pyostree(args[0], f"--repo={ours}", *args[1:])
    assert want.status == 1
    assert got == want
    assert not list((ours / "refs" / "heads").iterdir())
