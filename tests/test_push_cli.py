"""The ``pyostree push`` command line: output, quiet/verbose, dry run, errors as exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import commit, init, make_tree, rev_parse

pytestmark = needs_ostree


def cli(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "pyostree", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def repos(tmp_path: Path) -> Tuple[Path, Path, str]:
    src = init(tmp_path / "src", "archive")
    checksum = commit(src, make_tree(tmp_path / "tree"))
    return src, init(tmp_path / "dst", "archive"), checksum


def test_dry_run_then_push_then_up_to_date(repos: Tuple[Path, Path, str]) -> None:
    src, dst, checksum = repos
    done = cli(f"--repo={src}", "push", "-n", str(dst))
    assert done.returncode == 0, done.stderr
    assert f"would update main: (new) -> {checksum}" in done.stdout
    assert not (dst / "refs" / "heads" / "main").exists()

    done = cli(f"--repo={src}", "push", "--via=sftp", f"file://{dst}", "main")
    assert done.returncode == 0, done.stderr
    assert f"updated main: (new) -> {checksum}" in done.stdout and "via sftp" in done.stdout
    assert rev_parse(dst, "main") == checksum

    done = cli(f"--repo={src}", "push", str(dst))
    assert done.returncode == 0 and "main: up to date" in done.stdout


def test_quiet_and_verbose(repos: Tuple[Path, Path, str]) -> None:
    src, dst, _checksum = repos
    done = cli(f"--repo={src}", "push", "-q", "-v", str(dst))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "push: main: new ref" in done.stderr and "objects to send" in done.stderr


def test_non_fast_forward_is_an_error(repos: Tuple[Path, Path, str], tmp_path: Path) -> None:
    src, dst, _checksum = repos
    other = init(tmp_path / "other", "archive")
    tree = make_tree(tmp_path / "tree2", seed=9)
    diverged = commit(other, tree)
    assert cli(f"--repo={other}", "push", str(dst)).returncode == 0
    done = cli(f"--repo={src}", "push", str(dst))
    assert done.returncode == 1
    assert done.stderr.startswith("error: non-fast-forward update of main refused")
    assert "Traceback" not in done.stderr
    assert rev_parse(dst, "main") == diverged
    forced = cli(f"--repo={src}", "push", "--force", str(dst))
    assert forced.returncode == 0 and "(forced)" in forced.stdout


def test_bad_destination_and_options(repos: Tuple[Path, Path, str], tmp_path: Path) -> None:
    src, _dst, _checksum = repos
    done = cli(f"--repo={src}", "push", str(tmp_path / "nowhere"), "--via=sftp")
    assert done.returncode == 1 and done.stderr.startswith("error: ")
    done = cli(f"--repo={src}", "push", "--via=carrier-pigeon", str(tmp_path))
    assert done.returncode == 1 and "error" in done.stderr
    done = cli(f"--repo={src}", "push", "--update-summary", "--no-update-summary", str(tmp_path))
    assert done.returncode == 1


def test_update_summary_flags(repos: Tuple[Path, Path, str]) -> None:
    src, dst, _checksum = repos
    run_ostree("summary", "-u", repo=dst)
    done = cli(f"--repo={src}", "push", "--no-update-summary", str(dst))
    assert done.returncode == 0 and "summary updated" not in done.stdout
    assert "main" not in run_ostree("summary", "-v", repo=dst)


def test_receive_help_and_bad_input() -> None:
    done = cli("receive", "--help")
    assert done.returncode == 0 and "--root" in done.stdout
    done = subprocess.run([sys.executable, "-m", "pyostree", "receive"], input=b"garbage!",
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and b"error:" in done.stderr


def test_progress_is_drawn_on_a_tty_only(tmp_path: Path) -> None:
    import os
    import pty

    src = init(tmp_path / "src", "archive")
    commit(src, make_tree(tmp_path / "tree", big=4 << 20))
    dst = init(tmp_path / "dst", "archive")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pyostree", f"--repo={src}", "push", str(dst)],
                                stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        stdout, _ = proc.communicate(timeout=120)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    assert proc.returncode == 0
    drawn = b"".join(chunks).decode("utf-8", "replace")
    assert "objects" in drawn and "/s" in drawn  # objects, bytes, rate (ETA when known)
    assert "\r" in drawn
    assert "objects" not in cli(f"--repo={src}", "push", str(dst)).stderr  # not a TTY: quiet
