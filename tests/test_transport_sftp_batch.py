"""Pipelined sftp batches (sftp-mode push): many small files, renames and dirs per round
trip, with the same results and errors as the one-by-one operations."""

from __future__ import annotations

import os
import stat
from typing import Iterator

import pytest

from sshd import embedded, real_sshd  # noqa: F401
from test_transport_contract import KINDS, Remote, remote  # noqa: F401

from pyostree.errors import TransportError
from pyostree.transport.sftp import WriteItem


#: The transports with pipelined batches (every one but ``local``): the contract's
#: ``remote`` fixture is parametrised over these only, so nothing here is skipped.
SFTP_KINDS = [kind for kind in KINDS if kind != "local"]
pytestmark = pytest.mark.parametrize("remote", SFTP_KINDS, indirect=True)


@pytest.fixture
def sftp(remote: Remote) -> Remote:  # noqa: F811
    assert hasattr(remote.files, "write_files"), "not an sftp transport"
    return remote


def test_write_files_creates_renames_and_sets_modes(sftp: Remote) -> None:
    files = sftp.files
    files.mkdir("d")
    items = [
        WriteItem(f"d/t{i}", f"d/f{i}", bytes([i]) * (i * 10_000), 0o644 if i % 2 else 0o755,
                  0 if i % 3 == 0 else None)
        for i in range(20)
    ]
    files.write_files(items, fsync=True)  # type: ignore[attr-defined]
    for i in range(20):
        path = sftp.disk / "d" / f"f{i}"
        assert path.read_bytes() == bytes([i]) * (i * 10_000)
        info = os.lstat(path)
        assert stat.S_IMODE(info.st_mode) == (0o644 if i % 2 else 0o755)
        if i % 3 == 0:
            assert info.st_mtime == 0
        assert not (sftp.disk / "d" / f"t{i}").exists()


def test_write_files_replaces_the_target_and_refuses_an_existing_temp(sftp: Remote) -> None:
    files = sftp.files
    (sftp.disk / "target").write_bytes(b"old")
    files.write_files([WriteItem("tmp1", "target", b"new")], fsync=False)  # type: ignore[attr-defined]
    assert (sftp.disk / "target").read_bytes() == b"new"
    (sftp.disk / "tmp2").write_bytes(b"someone else's")
    with pytest.raises(TransportError, match="cannot create tmp2"):
        files.write_files([WriteItem("tmpa", "a", b"1"), WriteItem("tmp2", "b", b"2")],  # type: ignore[attr-defined]
                          fsync=False)
    assert (sftp.disk / "tmp2").read_bytes() == b"someone else's"
    assert not (sftp.disk / "b").exists()


def test_write_files_into_a_missing_dir_fails(sftp: Remote) -> None:
    with pytest.raises(TransportError):
        sftp.files.write_files([WriteItem("nodir/t", "nodir/f", b"x")], fsync=False)  # type: ignore[attr-defined]


def test_rename_many_never_replaces(sftp: Remote) -> None:
    for name in ("a", "b", "c", "taken"):
        (sftp.disk / name).write_bytes(name.encode())
    errors = sftp.files.rename_many([("a", "a2"), ("b", "taken"), ("missing", "m2"), ("c", "c2")])  # type: ignore[attr-defined]
    assert errors[0] is None and errors[3] is None
    assert errors[1] is not None and errors[2] is not None
    assert (sftp.disk / "taken").read_bytes() == b"taken"
    assert (sftp.disk / "b").exists()
    assert (sftp.disk / "a2").read_bytes() == b"a" and (sftp.disk / "c2").read_bytes() == b"c"


def test_make_and_remove_dirs(sftp: Remote) -> None:
    (sftp.disk / "exists").mkdir()
    sftp.files.make_dirs(["exists", "x", "y", "x/z"])  # type: ignore[attr-defined]
    assert all((sftp.disk / p).is_dir() for p in ("exists", "x", "y", "x/z"))
    (sftp.disk / "y" / "file").write_bytes(b"")
    sftp.files.remove_dirs(["x/z", "x", "y"])  # type: ignore[attr-defined]
    assert not (sftp.disk / "x").exists()
    assert (sftp.disk / "y").is_dir()  # not empty: left alone, no error


def test_write_files_streams_from_a_generator_that_uses_the_transport(sftp: Remote) -> None:
    files = sftp.files
    files.mkdir("d")

    def produce() -> Iterator[WriteItem]:
        for i in range(300):
            yield WriteItem(f"d/t{i}", f"d/f{i}", str(i).encode() * 100)
            if i % 50 == 0:  # a plain call waits for the stream: f{i} is complete by now
                info = files.stat(f"d/f{i}")
                assert info is not None and info.size == len(str(i)) * 100
    files.write_files(produce(), fsync=True)  # type: ignore[attr-defined]
    assert sorted(os.listdir(sftp.disk / "d")) == sorted(f"f{i}" for i in range(300))
    assert (sftp.disk / "d" / "f299").read_bytes() == b"299" * 100


def test_write_files_lets_the_producers_error_through_and_stays_usable(sftp: Remote) -> None:
    files = sftp.files

    class Broken(Exception):
        pass

    def produce() -> Iterator[WriteItem]:
        yield WriteItem("t0", "f0", b"zero")
        raise Broken("local object unreadable")
    with pytest.raises(Broken, match="local object unreadable"):
        files.write_files(produce(), fsync=False)  # type: ignore[attr-defined]
    files.write_files([WriteItem("t1", "f1", b"one")], fsync=False)  # type: ignore[attr-defined]
    assert (sftp.disk / "f1").read_bytes() == b"one"
    assert files.stat("f0") is not None or files.stat("t0") is not None


def test_write_files_never_renames_a_file_whose_steps_failed(sftp: Remote) -> None:
    files = sftp.files
    with pytest.raises(TransportError, match="cannot rename t1 to nodir/f1"):
        files.write_files([WriteItem("t0", "f0", b"0"), WriteItem("t1", "nodir/f1", b"1")],  # type: ignore[attr-defined]
                          fsync=True)
    assert (sftp.disk / "t1").read_bytes() == b"1"  # complete, but left under its temp name
    (sftp.disk / "t3").write_bytes(b"someone else's")
    items = [WriteItem(f"t{i}", f"f{i}", bytes([i]) * 70_000) for i in range(2, 6)]
    with pytest.raises(TransportError, match="cannot create t3"):
        files.write_files(items, fsync=True)  # type: ignore[attr-defined]
    assert not (sftp.disk / "f3").exists() and (sftp.disk / "t3").read_bytes() == b"someone else's"
    assert files.listdir("") is not None  # every reply was read: the session still works


def test_write_files_after_close_fails(sftp: Remote) -> None:
    sftp.files.close()
    with pytest.raises(TransportError, match="closed"):
        sftp.files.write_files([WriteItem("t", "f", b"x")], fsync=False)  # type: ignore[attr-defined]


def test_rename_many_over_the_write_sessions_keeps_each_answer_in_its_place(sftp: Remote) -> None:
    files = sftp.files
    files.mkdir("s")
    files.mkdir("d")
    files.write_files([WriteItem(f"s/t{i}", f"s/f{i}", b"%d" % i) for i in range(40)],  # type: ignore[attr-defined]
                      fsync=False)
    (sftp.disk / "d" / "f7").write_bytes(b"taken")
    pairs = [(f"s/f{i}", f"d/f{i}") for i in range(40)] + [("s/missing", "d/missing")]
    errors = files.rename_many(pairs)  # type: ignore[attr-defined]
    assert [i for i, error in enumerate(errors) if error is not None] == [7, 40]
    assert (sftp.disk / "d" / "f7").read_bytes() == b"taken" and (sftp.disk / "s" / "f7").exists()
    assert all((sftp.disk / "d" / f"f{i}").read_bytes() == b"%d" % i for i in range(40) if i != 7)
