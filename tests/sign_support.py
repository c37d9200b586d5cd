"""What the signing tests share: the CLI run in this process, and a repo ostree made."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pytest

from ostree_tool import run_ostree
from pyostree.cli.main import main


def ours(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    """``pyostree ARGV`` in this process: exit status, stdout, stderr."""
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def repo(tmp_path: Path) -> Tuple[Path, str]:
    """An archive repo with one commit on ``main``, both made by the real ``ostree``."""
    path = tmp_path / "repo"
    run_ostree("init", "--mode=archive", repo=path)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_text("content\n")
    checksum = run_ostree("commit", "-b", "main", f"--tree=dir={tree}", "-s", "x", repo=path).strip()
    return path, checksum
