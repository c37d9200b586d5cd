"""sftp mode verifies the local objects it publishes (nothing runs remotely to do it): an
object whose bytes do not match its name is refused with one line naming it, before
anything is visible in the remote's objects/ or refs/; the same push works once the local
repo is repaired."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest

from ostree_tool import needs_ostree
from sshd import EmbeddedSetup, embedded  # noqa: F401
from test_push_support import commit, init, make_tree, object_files, ostree_fsck, rev_parse

from pyostree.errors import PushError
from pyostree.push import PushOptions, push
from pyostree.push.sftp import BATCH_BYTES
from pyostree.repo import Repo

pytestmark = needs_ostree

BIG = BATCH_BYTES + (512 << 10)
"""Bigger than one sftp batch: the streamed (not batched) upload path."""


def _flip_payload(path: Path) -> None:
    """Same size, other bytes: only a re-hash can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _checksum_of(path: Path) -> str:
    return path.parent.name + path.name.split(".")[0]


def _content_small(src: Path) -> Path:
    return min((p for p in (src / "objects").rglob("*.file") if 20 < p.stat().st_size < 1 << 20),
               key=lambda p: p.stat().st_size)


def _content_big(src: Path) -> Path:
    return max((src / "objects").rglob("*.file"), key=lambda p: p.stat().st_size)


def _filez_swapped(src: Path) -> Path:
    victim, other = sorted((src / "objects").rglob("*.filez"), key=lambda p: p.stat().st_size)[-2:]
    shutil.copyfile(other, victim)
    return victim


def _dirtree_swapped(src: Path) -> Path:
    victim, other = sorted((src / "objects").rglob("*.dirtree"))[:2]
    shutil.copyfile(other, victim)
    return victim


#: case -> (local mode, corrupt the repo and return the damaged object's file)
CASES: Dict[str, Tuple[str, Callable[[Path], Path]]] = {
    "content-small": ("bare-user", lambda src: _flipped(_content_small(src))),
    "content-big": ("bare-user", lambda src: _flipped(_content_big(src))),
    "filez-swapped": ("archive", _filez_swapped),
    "dirtree-swapped": ("archive", _dirtree_swapped),
}


def _flipped(path: Path) -> Path:
    _flip_payload(path)
    return path


def _corrupt_source(tmp_path: Path, case: str) -> Tuple[Path, Path, Path]:
    """A committed tree, a pristine copy of the repo, and the repo with one object damaged."""
    mode, damage = CASES[case]
    src = init(tmp_path / "src", mode)
    commit(src, make_tree(tmp_path / "tree", big=BIG))
    pristine = tmp_path / "pristine"
    shutil.copytree(src, pristine, symlinks=True)
    return src, pristine, damage(src)


def _visible(repo: Path) -> Tuple[list, list]:
    refs = sorted(str(p.relative_to(repo)) for p in (repo / "refs").rglob("*") if p.is_file())
    return object_files(repo), refs


def _check_refused(err: PushError, victim: Path, dst: Path) -> None:
    message = str(err)
    assert "\n" not in message
    assert _checksum_of(victim) in message and "corrupt" in message, message
    assert _visible(dst) == ([], []), "a refused sftp push published something"


def _repair(src: Path, pristine: Path, victim: Path) -> None:
    shutil.copy2(pristine / victim.relative_to(src), victim)


@pytest.mark.parametrize("dst_mode", ["archive", "bare-user-only"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_sftp_push_refuses_a_corrupt_local_object(tmp_path: Path, case: str, dst_mode: str) -> None:
    src, pristine, victim = _corrupt_source(tmp_path, case)
    dst = init(tmp_path / "dst", dst_mode)
    with pytest.raises(PushError) as caught:
        push(Repo.open(src), str(dst), (), PushOptions(via="sftp"))
    _check_refused(caught.value, victim, dst)

    _repair(src, pristine, victim)
    push(Repo.open(src), str(dst), (), PushOptions(via="sftp"))
    assert rev_parse(dst, "main") == rev_parse(src, "main")
    assert "no errors found" in ostree_fsck(dst)


@pytest.mark.parametrize("dst_mode", ["archive", "bare-user-only"])
@pytest.mark.parametrize("case", ["content-small", "content-big", "dirtree-swapped"])
def test_sftp_push_over_ssh_refuses_a_corrupt_local_object(
    embedded: EmbeddedSetup, tmp_path: Path, case: str, dst_mode: str  # noqa: F811
) -> None:
    """The same over a real sftp session (pipelined batches for the small objects)."""
    src, pristine, victim = _corrupt_source(tmp_path, case)
    name = f"repo-{uuid.uuid4().hex[:8]}"
    dst = init(embedded.served / name, dst_mode)
    options = PushOptions(via="sftp", ssh=embedded.options())
    with pytest.raises(PushError) as caught:
        push(Repo.open(src), f"127.0.0.1:{name}", (), options)
    _check_refused(caught.value, victim, dst)

    _repair(src, pristine, victim)
    push(Repo.open(src), f"127.0.0.1:{name}", (), options)
    assert rev_parse(dst, "main") == rev_parse(src, "main")
    assert "no errors found" in ostree_fsck(dst)
