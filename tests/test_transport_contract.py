"""One contract every FileTransport and ExecChannel passes: local, paramiko and OpenSSH."""

from __future__ import annotations

import os
import stat
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple

import pytest

from pyostree.errors import TransportError
from pyostree.transport import (
    Destination,
    ExecChannel,
    FileTransport,
    RemoteExistsError,
    RemoteNotFoundError,
    open_transport,
)
from sshd import embedded, real_sshd, sshd_options  # noqa: F401

KINDS = ["local", "paramiko-embedded", "paramiko-sshd", "openssh-sshd"]


class Remote(NamedTuple):
    files: FileTransport
    run: Callable[[List[str]], ExecChannel]
    disk: Path  # where the transport root is on this machine, to check effects directly


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    kind: str = request.param
    if kind == "local":
        disk = tmp_path / "repo"
        disk.mkdir()
        files, run, close = open_transport(Destination("local", str(disk)))
    elif kind == "paramiko-embedded":
        setup = request.getfixturevalue("embedded")
        name = f"repo-{uuid.uuid4().hex}"
        disk = setup.served / name
        disk.mkdir()
        dest = Destination("ssh", name, host="127.0.0.1")
        files, run, close = open_transport(dest, setup.options())
    else:
        server = request.getfixturevalue("real_sshd")
        disk = tmp_path / "repo"
        disk.mkdir()
        vendor = kind.split("-")[0]
        dest = Destination("ssh", str(disk), host=server.host)
        files, run, close = open_transport(dest, sshd_options(server, vendor, tmp_path / "home"))
    try:
        yield Remote(files, run, disk)
    finally:
        close()


def write(files: FileTransport, path: str, data: bytes, mode: int = 0o644) -> None:
    with files.open_write(path, mode) as stream:
        stream.write(data)


def test_write_then_read_round_trip(remote: Remote) -> None:
    write(remote.files, "a.txt", b"hello")
    assert remote.files.read_bytes("a.txt", 100) == b"hello"
    with remote.files.open_read("a.txt") as stream:
        assert stream.read() == b"hello"
    assert (remote.disk / "a.txt").read_bytes() == b"hello"


def test_open_write_applies_mode(remote: Remote) -> None:
    write(remote.files, "x", b"", mode=0o600)
    assert stat.S_IMODE((remote.disk / "x").stat().st_mode) == 0o600


def test_read_bytes_refuses_oversized(remote: Remote) -> None:
    write(remote.files, "big", b"x" * 101)
    assert remote.files.read_bytes("big", 101) == b"x" * 101
    with pytest.raises(TransportError, match="larger than"):
        remote.files.read_bytes("big", 100)


def test_exclusive_create_refused_when_exists(remote: Remote) -> None:
    write(remote.files, "f", b"first")
    with pytest.raises(RemoteExistsError):
        remote.files.open_write("f")
    assert (remote.disk / "f").read_bytes() == b"first"


def test_read_missing_is_not_found(remote: Remote) -> None:
    with pytest.raises(RemoteNotFoundError):
        remote.files.read_bytes("nope", 10)
    with pytest.raises(RemoteNotFoundError):
        remote.files.open_read("nope")


def test_write_into_missing_directory_fails(remote: Remote) -> None:
    with pytest.raises(TransportError):
        remote.files.open_write("no/such/dir/f")


def test_stat(remote: Remote) -> None:
    assert remote.files.stat("missing") is None
    assert remote.files.stat("missing/deeper") is None
    write(remote.files, "f", b"12345")
    st = remote.files.stat("f")
    assert st is not None and st.size == 5 and stat.S_ISREG(st.mode)
    root = remote.files.stat("")
    assert root is not None and stat.S_ISDIR(root.mode)


def test_rename_replace(remote: Remote) -> None:
    write(remote.files, "src", b"new")
    write(remote.files, "dst", b"old")
    remote.files.rename("src", "dst", replace=True)
    assert (remote.disk / "dst").read_bytes() == b"new"
    assert not (remote.disk / "src").exists()


def test_rename_no_replace(remote: Remote) -> None:
    write(remote.files, "src", b"new")
    write(remote.files, "dst", b"old")
    with pytest.raises(RemoteExistsError):
        remote.files.rename("src", "dst", replace=False)
    assert (remote.disk / "dst").read_bytes() == b"old"
    assert (remote.disk / "src").read_bytes() == b"new"
    remote.files.rename("src", "other", replace=False)
    assert (remote.disk / "other").read_bytes() == b"new"
    assert not (remote.disk / "src").exists()


def test_rename_directory(remote: Remote) -> None:
    remote.files.mkdir("d1")
    write(remote.files, "d1/f", b"x")
    remote.files.rename("d1", "d2", replace=False)
    assert (remote.disk / "d2" / "f").read_bytes() == b"x"
    remote.files.mkdir("d3")
    with pytest.raises(RemoteExistsError):
        remote.files.rename("d2", "d3", replace=False)


def test_rename_missing_source(remote: Remote) -> None:
    with pytest.raises(TransportError):
        remote.files.rename("nope", "x", replace=True)
    with pytest.raises(TransportError):
        remote.files.rename("nope", "x", replace=False)


def test_mkdir_listdir(remote: Remote) -> None:
    remote.files.mkdir("objects", 0o755)
    remote.files.mkdir("objects", 0o755)  # exist_ok by default
    with pytest.raises(RemoteExistsError):
        remote.files.mkdir("objects", exist_ok=False)
    write(remote.files, "objects/f", b"")
    with pytest.raises(RemoteExistsError):
        remote.files.mkdir("objects/f")  # a file is not an existing directory
    remote.files.mkdir("objects/ab")
    assert sorted(remote.files.listdir("objects")) == ["ab", "f"]
    assert sorted(remote.files.listdir("")) == ["objects"]
    with pytest.raises(RemoteNotFoundError):
        remote.files.listdir("nope")
    with pytest.raises(TransportError):
        remote.files.mkdir("no/parent")


def test_remove(remote: Remote) -> None:
    write(remote.files, "f", b"")
    remote.files.remove("f")
    assert remote.files.stat("f") is None
    with pytest.raises(RemoteNotFoundError):
        remote.files.remove("f")


def test_symlink_readlink(remote: Remote) -> None:
    remote.files.symlink("../target/file", "link")
    assert remote.files.readlink("link") == "../target/file"
    assert os.readlink(remote.disk / "link") == "../target/file"
    st = remote.files.stat("link")
    assert st is not None and stat.S_ISLNK(st.mode)
    with pytest.raises(RemoteExistsError):
        remote.files.symlink("elsewhere", "link")
    write(remote.files, "plain", b"")
    with pytest.raises(TransportError):
        remote.files.readlink("plain")


def test_reads_follow_symlinks(remote: Remote) -> None:
    write(remote.files, "target", b"through the link")
    remote.files.symlink("target", "alias")
    assert remote.files.read_bytes("alias", 100) == b"through the link"
    with remote.files.open_read("alias") as stream:
        assert stream.read() == b"through the link"


def test_unusual_names_round_trip(remote: Remote) -> None:
    names = ["a b", "caf\u00e9", "x%y", "-dash", "'quote\"", "*"]
    remote.files.mkdir("n")
    for name in names:
        write(remote.files, f"n/{name}", name.encode())
    assert sorted(remote.files.listdir("n")) == sorted(names)
    for name in names:
        assert remote.files.read_bytes(f"n/{name}", 100) == name.encode()


def test_rmtree(remote: Remote) -> None:
    remote.files.mkdir("t")
    remote.files.mkdir("t/sub")
    write(remote.files, "t/sub/f", b"data")
    write(remote.files, "keep", b"kept")
    remote.files.symlink("../keep", "t/link")  # must be removed, not followed
    remote.files.rmtree("t")
    assert not (remote.disk / "t").exists()
    assert (remote.disk / "keep").read_bytes() == b"kept"
    remote.files.rmtree("t")  # missing is fine
    with pytest.raises(TransportError):
        remote.files.rmtree("")


def test_chmod_utime_fsync(remote: Remote) -> None:
    write(remote.files, "f", b"x")
    remote.files.chmod("f", 0o640)
    assert stat.S_IMODE((remote.disk / "f").stat().st_mode) == 0o640
    remote.files.utime("f", (1_000_000, 2_000_000))
    assert int((remote.disk / "f").stat().st_mtime) == 2_000_000
    remote.files.fsync("f")
    remote.files.mkdir("d")
    remote.files.fsync("d")
    with pytest.raises(RemoteNotFoundError):
        remote.files.chmod("missing", 0o644)


def test_large_file_round_trip(remote: Remote) -> None:
    data = os.urandom(256 * 1024) * 12 + os.urandom(12345)  # ~3 MiB, not request-aligned
    with remote.files.open_write("big") as stream:
        for offset in range(0, len(data), 100_000):
            stream.write(data[offset : offset + 100_000])
    assert (remote.disk / "big").read_bytes() == data
    st = remote.files.stat("big")
    assert st is not None and st.size == len(data)
    chunks = []
    with remote.files.open_read("big") as stream:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    assert b"".join(chunks) == data


@pytest.mark.parametrize(
    "bad", ["/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "nul\0"]
)
def test_bad_paths_rejected(remote: Remote, bad: str) -> None:
    with pytest.raises(TransportError):
        remote.files.stat(bad)
    with pytest.raises(TransportError):
        remote.files.open_write(bad)


def test_closed_transport_refuses(remote: Remote) -> None:
    remote.files.close()
    with pytest.raises(TransportError):
        remote.files.stat("x")


def _drain(stream: "object", sink: List[bytes]) -> threading.Thread:
    def run() -> None:
        sink.append(stream.read())  # type: ignore[attr-defined]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_exec_echo_exit_code_stderr(remote: Remote) -> None:
    with remote.run(["sh", "-c", "echo out; echo err >&2; exit 3"]) as channel:
        channel.stdin.close()
        err: List[bytes] = []
        reader = _drain(channel.stderr, err)
        out = channel.stdout.read()
        reader.join()
        assert channel.wait() == 3
    assert out == b"out\n"
    assert err == [b"err\n"]


def test_exec_quotes_arguments(remote: Remote) -> None:
    with remote.run(["printf", "%s|", "a b", "c'd", "$HOME", "*"]) as channel:
        channel.stdin.close()
        out = channel.stdout.read()
        assert channel.wait() == 0
    assert out == b"a b|c'd|$HOME|*|"


def test_exec_stdin_round_trip(remote: Remote) -> None:
    payload = os.urandom(300_000)
    with remote.run(["cat"]) as channel:

        def feed() -> None:
            channel.stdin.write(payload)
            channel.stdin.close()

        writer = threading.Thread(target=feed)
        writer.start()
        out = channel.stdout.read()
        writer.join()
        assert channel.wait() == 0
    assert out == payload


def test_exec_empty_argv_rejected(remote: Remote) -> None:
    with pytest.raises(TransportError, match="empty command"):
        remote.run([])


def test_exec_missing_program_fails(remote: Remote) -> None:
    try:
        channel = remote.run(["pyostree-no-such-program-xyz"])
    except TransportError:
        return  # local exec reports it at once
    with channel:
        channel.stdin.close()
        channel.stdout.read()
        channel.stderr.read()
        assert channel.wait() == 127
