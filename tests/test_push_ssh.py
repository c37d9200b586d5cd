"""Push over real ssh on 127.0.0.1: the embedded paramiko server and OpenSSH's sshd, with
both client vendors and both push modes."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Tuple

import pytest

pytest.importorskip("paramiko")

from ostree_tool import needs_ostree  # noqa: E402
from sshd import EmbeddedSetup, Sshd, embedded, real_sshd, sshd_options  # noqa: E402,F401
from test_push_support import commit, init, make_tree, ostree_fsck, pull_over_http, rev_parse  # noqa: E402

from pyostree.errors import PushError  # noqa: E402
from pyostree.push import PushOptions, push  # noqa: E402
from pyostree.repo import Repo  # noqa: E402

pytestmark = needs_ostree
RECEIVE = (sys.executable, "-m", "pyostree", "receive")


@pytest.fixture
def source(tmp_path: Path) -> Tuple[Path, Path]:
    tree = make_tree(tmp_path / "tree", big=1500 * 1024)
    src = init(tmp_path / "src", "bare-user")
    commit(src, tree, subject="one")
    return src, tree


def _served_repo(setup: EmbeddedSetup, mode: str = "archive") -> Tuple[str, Path]:
    name = f"repo-{uuid.uuid4().hex[:8]}"
    return name, init(setup.served / name, mode)


@pytest.mark.parametrize("via", ["sftp", "receive"])
def test_push_over_embedded_ssh(embedded: EmbeddedSetup, source: Tuple[Path, Path], tmp_path: Path, via: str) -> None:
    src, tree = source
    name, disk = _served_repo(embedded)
    options = PushOptions(via=via, ssh=embedded.options(), receive_command=RECEIVE)
    result = push(Repo.open(src), f"127.0.0.1:{name}", (), options)
    assert result.via == via
    assert rev_parse(disk, "main") == rev_parse(src, "main")
    assert "no errors found" in ostree_fsck(disk)

    (tree / "added.txt").write_bytes(b"added over ssh\n")
    second = commit(src, tree, subject="two")
    again = push(Repo.open(src), f"127.0.0.1:{name}", (), options)
    assert {t for _c, t in again.objects} == {"FILE", "DIR_TREE", "COMMIT"}
    assert rev_parse(disk, "main") == second
    assert pull_over_http(disk, "main", tmp_path / "client") == second


def test_auto_falls_back_to_sftp_without_receiver(embedded: EmbeddedSetup, source: Tuple[Path, Path]) -> None:
    src, _tree = source
    name, disk = _served_repo(embedded)
    logs: list[str] = []
    options = PushOptions(via="auto", ssh=embedded.options(), receive_command=("false",))
    result = push(Repo.open(src), f"127.0.0.1:{name}", (), options, on_log=logs.append)
    assert result.via == "sftp"
    assert any("falling back to sftp" in line for line in logs)
    assert rev_parse(disk, "main") == rev_parse(src, "main")


def test_receive_mode_fails_clearly_without_receiver(embedded: EmbeddedSetup, source: Tuple[Path, Path]) -> None:
    src, _tree = source
    name, disk = _served_repo(embedded)
    options = PushOptions(via="receive", ssh=embedded.options(), receive_command=("false",))
    with pytest.raises(PushError, match="receive connection failed"):
        push(Repo.open(src), f"127.0.0.1:{name}", (), options)
    assert not (disk / "refs" / "heads" / "main").exists()


def test_receive_root_confinement_over_ssh(embedded: EmbeddedSetup, source: Tuple[Path, Path]) -> None:
    src, _tree = source
    name, disk = _served_repo(embedded)
    jail = embedded.served / f"jail-{uuid.uuid4().hex[:8]}"
    jail.mkdir()
    options = PushOptions(via="receive", ssh=embedded.options(),
                          receive_command=RECEIVE + ("--root", str(jail)))
    with pytest.raises(PushError, match="outside the allowed root"):
        push(Repo.open(src), f"127.0.0.1:../{name}", (), options)
    assert not (disk / "refs" / "heads" / "main").exists()


@pytest.mark.parametrize("vendor", ["paramiko", "openssh"])
@pytest.mark.parametrize("via", ["sftp", "receive"])
def test_push_over_openssh_sshd(
    real_sshd: Sshd, source: Tuple[Path, Path], tmp_path: Path, vendor: str, via: str
) -> None:
    src, _tree = source
    disk = init(tmp_path / "remote", "archive")
    options = PushOptions(via=via, ssh=sshd_options(real_sshd, vendor, tmp_path / "home"),
                          receive_command=RECEIVE)
    result = push(Repo.open(src), f"{real_sshd.user}@127.0.0.1:{disk}", (), options)
    assert result.via == via
    assert rev_parse(disk, "main") == rev_parse(src, "main")
    assert "no errors found" in ostree_fsck(disk)
