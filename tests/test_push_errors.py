"""sftp-mode write errors name the remote side, the operation and the path
("remote REPO: writing tmp/...: No space left on device"), not a bare strerror."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO, Tuple

import pytest

from ostree_tool import needs_ostree, run_ostree
from test_push_support import commit, init, make_tree, rev_parse

from pyostree.errors import TransportError
from pyostree.push import _remote_name, push_with
from pyostree.push.sftp import SftpPublisher
from pyostree.repo import Repo
from pyostree.transport import LocalFileTransport, parse_destination

pytestmark = needs_ostree


class _FullFile:
    """A remote file on a full disk: the first write fails."""

    def __init__(self, real: BinaryIO) -> None:
        self._real = real

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self) -> None:
        self._real.close()

    def __enter__(self) -> "_FullFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FullDisk(LocalFileTransport):
    def __init__(self, root: Path, fail_under: str) -> None:
        super().__init__(root)
        self.fail_under = fail_under

    def open_write(self, path: str, mode: int = 0o644) -> BinaryIO:
        handle = super().open_write(path, mode)
        if path.startswith(self.fail_under):
            return _FullFile(handle)  # type: ignore[return-value]
        return handle


class _SftpLike(LocalFileTransport):
    """Fails like the sftp transport does: a plain TransportError naming op and path."""

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        if dst.startswith("refs/"):
            raise TransportError(f"cannot rename {src} to {dst}: Failure")
        super().rename(src, dst, replace=replace)


@pytest.fixture
def source(tmp_path: Path) -> Tuple[Path, str]:
    src = init(tmp_path / "src", "archive")
    return src, commit(src, make_tree(tmp_path / "tree", files=8))


@pytest.mark.parametrize("where", ["tmp/pyostree-push-", "tmp/pyostree-push-ref-"])
def test_disk_full_names_remote_operation_and_path(
    tmp_path: Path, source: Tuple[Path, str], where: str
) -> None:
    src, c1 = source
    dst = init(tmp_path / "dst", "archive")
    files = _FullDisk(dst, where)
    publisher = SftpPublisher(files, remote="host:repo")
    with pytest.raises(TransportError) as info:
        push_with(publisher, Repo.open(src), {"main": c1})
    files.close()
    message = str(info.value)
    assert message.startswith(f"remote host:repo: writing {where}"), message
    assert message.endswith(": No space left on device"), message
    assert "\n" not in message
    run_ostree("fsck", repo=dst)
    assert not (dst / "refs" / "heads" / "main").exists()


def test_transport_errors_are_prefixed_with_the_remote(
    tmp_path: Path, source: Tuple[Path, str]
) -> None:
    src, c1 = source
    dst = init(tmp_path / "dst", "archive")
    files = _SftpLike(dst)
    with pytest.raises(TransportError, match=r"^remote host:repo: cannot rename tmp/\S+ to "
                       r"refs/heads/main: Failure$"):
        push_with(SftpPublisher(files, remote="host:repo"), Repo.open(src), {"main": c1})
    files.close()
    files = LocalFileTransport(dst)  # the retry publishes
    push_with(SftpPublisher(files, remote="host:repo"), Repo.open(src), {"main": c1})
    files.close()
    assert rev_parse(dst, "main") == c1


def test_remote_names() -> None:
    assert _remote_name(parse_destination("some/repo")) == "some/repo"
    assert _remote_name(parse_destination("alice@example.org:srv/repo")) == "alice@example.org:srv/repo"
    assert _remote_name(parse_destination("ssh://example.org:2222/srv/repo")) == "example.org:/srv/repo"

