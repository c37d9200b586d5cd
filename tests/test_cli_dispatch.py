"""Unknown commands run ``ostree-COMMAND`` from $PATH as ostree does; ``--repo`` given twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_diff import ostree, pyostree
from ostree_tool import needs_ostree

pytestmark = needs_ostree


_MAIN = "import sys; from pyostree.cli.main import main; sys.exit(main())"


def _program(*args: str, path: str) -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ, PATH=path, LC_ALL="C.UTF-8")
    return subprocess.run([sys.executable, "-c", _MAIN, *args], capture_output=True,
                          text=True, env=env, check=False)


def _program_or_main(*args: str, path: str) -> "subprocess.CompletedProcess[str]":
    done = _program(*args, path=path)
    assert "No module named" not in done.stderr, done.stderr
    return done


def test_unknown_command_runs_the_extension_like_ostree(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "ostree-hello"
    script.write_text('#!/bin/sh\necho "args=$*"\necho to-stderr >&2\nexit 3\n')
    script.chmod(0o755)
    path = f"{bindir}{os.pathsep}{os.environ['PATH']}"
    args = ("--repo=somewhere", "hello", "-x", "--y", "z")
    env = dict(os.environ, PATH=path, LC_ALL="C.UTF-8")
    want = subprocess.run(["ostree", *args], capture_output=True, text=True, env=env, check=False)
    got = _program_or_main(*args, path=path)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert want.returncode == 3


def test_unknown_command_without_extension_fails(tmp_path: Path) -> None:
    got = _program_or_main("no-such-command", path=os.environ["PATH"])
    assert got.returncode == 1 and got.stderr.endswith("error: Unknown command 'no-such-command'\n")


def test_repo_given_twice_the_last_wins(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert ostree("init", f"--repo={repo}", "--mode=archive").status == 0
    (tmp_path / "tree").mkdir()
    assert ostree("commit", f"--repo={repo}", "-b", "only", str(tmp_path / "tree")).status == 0
    for args in ([f"--repo={tmp_path}/missing", f"--repo={repo}", "refs"],
                 [f"--repo={tmp_path}/missing", "refs", f"--repo={repo}"]):
        assert pyostree(*args) == ostree(*args)
        assert pyostree(*args).out == "only\n"
