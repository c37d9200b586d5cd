"""Hostile repositories (tests/hostile.py builds each into a real ``ostree init`` repo):
every command either works or fails with one ``error:`` line and exit status 1, never a
traceback; nothing is written outside a checkout target; failed pulls and pushes leave the
destination as it was; the deflate bomb runs in a memory-capped child.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, FrozenSet, List, Sequence, Tuple

import pytest

import hostile
from hostile import CASES_BY_NAME, HOSTILE_CASES, snapshot
from ostree_tool import needs_ostree
from pyostree.cli.main import main
from pyostree.errors import TransportError
from pyostree.push.sftp import SftpPublisher
from pyostree.transport import LocalFileTransport

pytestmark = needs_ostree

ALL = frozenset(case.name for case in HOSTILE_CASES)
TREE_CASES = frozenset(case.name for case in HOSTILE_CASES if case.what == "tree")
#: Damage only a checksum re-hash can see: checkout and cat trust the local repo, like ostree.
UNVERIFIED = frozenset({"wrong-checksum-content", "wrong-checksum-dirtree", "wrong-checksum-commit",
                        "truncated-dirtree"})
#: Trees libostree also accepts on pull (only names are checked there).
ODD_BUT_SAFE = frozenset({"unsorted", "duplicate-file", "duplicate-dir", "file-and-dir", "symlink-then-dir"})
BROKEN_CONTENT = frozenset({"truncated-filez", "truncated-header", "filez-claims-less",
                            "filez-claims-more", "deflate-bomb", "missing-file"})
UNREADABLE_TREE = frozenset({"non-normal-dirtree", "non-normal-commit"})

#: command -> the cases in which it must fail (in every other case it may work or fail).
MUST_FAIL: Dict[str, FrozenSet[str]] = {
    "fsck": ALL,
    "checkout": ALL - UNVERIFIED - {"unsorted"},
    "cat": (BROKEN_CONTENT | UNREADABLE_TREE),
    "ls": UNREADABLE_TREE | {"truncated-header", "missing-file"},
    "pull-local": ALL - ODD_BUT_SAFE,
    "push-receive": ALL,
    "push-sftp": ALL - ODD_BUT_SAFE,
}

#: the path ``cat`` asks for in each tree case (hostile names as paths where they can be)
CAT_PATHS = {"name-dotdot-path": "/../escaped", "name-dotdot-dir": "/../escaped",
             "nested-dotdot-dir": "/sub/../escaped", "symlink-then-dir": "/x/planted",
             "file-and-dir": "/x", "name-slash": "/sub/evil"}


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Every case built once; tests only read them (pull/push write elsewhere)."""
    base = tmp_path_factory.mktemp("hostile-repos")
    out = {}
    for case in HOSTILE_CASES:
        path = base / case.name
        hostile.build_hostile_repo(path, case.name)
        out[case.name] = path
    return out


CLI_TIMEOUT = 60.0
"""Hang guard of one in-process command (a hang fails the test instead of stalling the run)."""


def run_cli(*argv: str) -> Tuple[int, str, str]:
    """``pyostree ARGV`` in this process (in a watchdog thread); an exception other than the
    CLI's own handling escapes and fails the test with its traceback."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")  # cat needs .buffer
    err = io.StringIO()
    result: List[object] = []

    def target() -> None:
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                result.append(main(list(argv)))
        except BaseException as exc:  # handed to the test thread below
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CLI_TIMEOUT)
    assert not thread.is_alive(), f"pyostree {' '.join(argv)} hangs (> {CLI_TIMEOUT:.0f} s)"
    if isinstance(result[0], BaseException):
        raise result[0]
    out.flush()
    assert isinstance(out.buffer, io.BytesIO) and isinstance(result[0], int)
    return result[0], out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


def check_outcome(command: str, case: str, status: int, stderr: str) -> None:
    assert "Traceback" not in stderr
    assert status in (0, 1), (status, stderr)
    if case in MUST_FAIL[command]:
        assert status == 1, f"{command} accepted {case}: {stderr!r}"
    if status == 1:
        lines = stderr.splitlines()
        assert lines and lines[-1].startswith("error: ") and len(lines[-1]) > len("error: "), stderr
        if command != "fsck":  # fsck lists each problem, then its verdict
            assert len(lines) == 1, stderr


def _box(tmp_path: Path) -> Tuple[Path, Path]:
    box = tmp_path / "box"
    (box / "sentinel").mkdir(parents=True)
    (box / "sentinel" / "keep").write_bytes(b"sentinel\n")
    return box, box / "co"


def _outside(box: Path, target: Path) -> Dict[str, Tuple[int, int, str]]:
    name = target.name
    return {p: v for p, v in snapshot(box).items() if p != name and not p.startswith(name + "/")}


def _init(path: Path, mode: str = "archive") -> Path:
    subprocess.run(["ostree", "init", f"--mode={mode}", f"--repo={path}"], check=True, capture_output=True)
    return path


def _state(repo: Path) -> Dict[str, Tuple[int, int, str]]:
    return {k: v for k, v in snapshot(repo).items() if k.split("/")[0] in ("objects", "refs")}


def _fresh_dest(tmp_path: Path) -> Tuple[Path, Dict[str, Tuple[int, int, str]]]:
    dest = _init(tmp_path / "dest")
    return dest, _state(dest)


def _assert_dest_untouched(dest: Path, before: Dict[str, Tuple[int, int, str]]) -> None:
    assert _state(dest) == before
    done = subprocess.run(["ostree", "fsck", f"--repo={dest}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


SMALL = [case.name for case in HOSTILE_CASES if case.name != "deflate-bomb"]


@pytest.mark.parametrize("case", SMALL)
def test_checkout_cat_ls_fsck(repos: Dict[str, Path], tmp_path: Path, case: str) -> None:
    repo = repos[case]
    box, target = _box(tmp_path)
    before = _outside(box, target)
    for user_mode in ((), ("--user-mode",)):
        status, _, err = run_cli("checkout", f"--repo={repo}", *user_mode, "hostile", str(target))
        check_outcome("checkout", case, status, err)
        assert _outside(box, target) == before, f"checkout of {case} wrote outside its target"
        shutil.rmtree(target, ignore_errors=True)
    path = CAT_PATHS.get(case) or "/" + (CASES_BY_NAME[case].cat_path or "x")
    status, _, err = run_cli("cat", f"--repo={repo}", "hostile", path)
    check_outcome("cat", case, status, err)
    status, _, err = run_cli("ls", f"--repo={repo}", "-R", "hostile")
    check_outcome("ls", case, status, err)
    copy = tmp_path / "fsck-copy"  # fsck may mark commits partial: keep the shared repo pristine
    shutil.copytree(repo, copy, symlinks=True)
    status, _, err = run_cli("fsck", f"--repo={copy}")
    check_outcome("fsck", case, status, err)
    assert _outside(box, target) == before


@pytest.mark.parametrize("case", SMALL)
def test_pull_local_leaves_destination_unchanged(repos: Dict[str, Path], tmp_path: Path, case: str) -> None:
    dest, before = _fresh_dest(tmp_path)
    status, _, err = run_cli("pull-local", f"--repo={dest}", str(repos[case]), "hostile")
    check_outcome("pull-local", case, status, err)
    if status == 1:
        _assert_dest_untouched(dest, before)


PUSHES = [(case, via) for case in SMALL for via in ("receive", "sftp")]


@pytest.mark.parametrize("case,via", PUSHES)
def test_push_to_a_local_path_leaves_it_unchanged(repos: Dict[str, Path], tmp_path: Path, case: str, via: str) -> None:
    dest, before = _fresh_dest(tmp_path)
    status, _, err = run_cli("push", f"--repo={repos[case]}", "-q", f"--via={via}", str(dest), "hostile")
    check_outcome(f"push-{via}", case, status, err)
    if status == 1:
        _assert_dest_untouched(dest, before)


# ---------------------------------------------------------------------------- deflate bomb

GUARDED_CLI = """
from pyostree.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

BOMB_MEMORY_MB = 384
"""Address-space cap of the child (Python + threads + 1 MiB chunks; the bomb is 1 GiB)."""


def _guarded(argv: Sequence[str]) -> Tuple[int, str]:
    done = hostile.run_guarded(GUARDED_CLI, memory_mb=BOMB_MEMORY_MB, timeout=120, args=list(argv))
    return done.returncode, done.stderr


BOMB_COMMANDS = ["checkout", "cat", "ls", "fsck", "pull-local", "push-receive", "push-sftp"]


@pytest.mark.parametrize("command", BOMB_COMMANDS)
def test_deflate_bomb_is_bounded(repos: Dict[str, Path], tmp_path: Path, command: str) -> None:
    """Each command meets the bomb in a child capped at BOMB_MEMORY_MB: it stops at the
    claimed size (one chunk past it at most) and says so."""
    repo = repos["deflate-bomb"]
    assert sum(f.stat().st_size for f in (repo / "objects").rglob("*.filez")) < 2 << 20
    box, target = _box(tmp_path)
    before = _outside(box, target)
    dest = _init(tmp_path / "dest")
    dest_before = _state(dest)
    argv = {
        "checkout": ["checkout", f"--repo={repo}", "hostile", str(target)],
        "cat": ["cat", f"--repo={repo}", "hostile", "/bomb"],
        "ls": ["ls", f"--repo={repo}", "-R", "hostile"],
        "fsck": ["fsck", f"--repo={repo}"],
        "pull-local": ["pull-local", f"--repo={dest}", str(repo), "hostile"],
        "push-receive": ["push", f"--repo={repo}", "--via=receive", "-q", str(dest), "hostile"],
        "push-sftp": ["push", f"--repo={repo}", "--via=sftp", "-q", str(dest), "hostile"],
    }[command]
    status, stderr = _guarded(argv)
    assert "MemoryError" not in stderr, command
    check_outcome(command, "deflate-bomb", status, stderr)
    assert _outside(box, target) == before
    if target.exists():  # a refused checkout may leave its target, never the 1 GiB file
        assert sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) <= hostile.BOMB_CLAIM
    if status == 1:
        _assert_dest_untouched(dest, dest_before)


def test_the_bomb_really_inflates_to_a_gibibyte(repos: Dict[str, Path]) -> None:
    """The corpus itself is checked: the .filez's stream holds 1 GiB (counted in chunks)."""
    import zlib

    repo = repos["deflate-bomb"]
    (path,) = [p for p in (repo / "objects").rglob("*.filez") if p.stat().st_size > 1 << 19]
    data = path.read_bytes()
    header_len = int.from_bytes(data[:4], "big")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    pending = data[8 + header_len:]
    while pending:
        total += len(inflater.decompress(pending, 64 << 20))
        pending = inflater.unconsumed_tail
    assert total == hostile.BOMB_SIZE


def test_corpus_names_reach_the_dirtree_bytes() -> None:
    """The byte-patching builder really stores the hostile names (not the stand-ins)."""
    tree = hostile.encode_dirtree([(b"a\x00b", "11" * 32), (b"\xff\xfe", "22" * 32), (b"", "33" * 32)])
    assert b"a\x00b\x00" in tree and b"\xff\xfe\x00" in tree and b"Q" not in tree


def test_cli_in_a_real_process_prints_one_line(repos: Dict[str, Path], tmp_path: Path) -> None:
    """The same contract through ``python -m pyostree`` (exit status and stderr as a user sees)."""
    import sys

    for case, argv in (("name-dotdot-dir", ["checkout", "hostile", str(tmp_path / "co")]),
                       ("truncated-header", ["cat", "hostile", "/hello.txt"]),
                       ("non-normal-commit", ["ls", "hostile"])):
        done = subprocess.run([sys.executable, "-m", "pyostree", *argv, f"--repo={repos[case]}"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr


# -- a remote whose staging dir was damaged between two sftp pushes -------------------

from sshd import EmbeddedSetup, embedded  # noqa: E402,F401  (the fixture)


class _CutBeforePublish(SftpPublisher):
    """Everything is staged, then the connection "drops" before anything is published."""

    def publish(self, updates, update_summary):  # type: ignore[no-untyped-def]
        raise TransportError("connection lost")


def _damage(staging: Path, how: str) -> Tuple[int, int]:
    """Damage every staged object in place (same name, same size where it has one); how
    many there are, and how many were damaged (an empty file has no byte to flip)."""
    count = total = 0
    for path in sorted(staging.rglob("*")):
        total += path.is_symlink() or path.is_file()
        if path.is_symlink():
            path.unlink()
            path.symlink_to("planted")
        elif path.is_file():
            if how == "mode":
                path.chmod(0o4755)
            else:
                data = path.read_bytes()
                if not data:
                    continue
                if how == "flipped":
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                else:  # truncated, then padded back to its size (with zeros, unless they were zeros)
                    padded = data[: len(data) // 2].ljust(len(data), b"\0")
                    data = padded if padded != data else data[: len(data) // 2].ljust(len(data), b"\xff")
                path.write_bytes(data)
        else:
            continue
        count += 1
    return total, count


@pytest.mark.parametrize("via", ["local", "sftp"])
@pytest.mark.parametrize("mode,how", [("archive", "flipped"), ("archive", "zero-padded"),
                                      ("bare-user-only", "flipped"), ("bare-user-only", "mode"),
                                      ("archive", "intact"), ("bare-user-only", "intact")])
def test_sftp_resume_never_publishes_a_damaged_staged_object(
    tmp_path: Path, request: pytest.FixtureRequest, via: str, mode: str, how: str
) -> None:
    """An interrupted sftp push leaves its objects staged under tmp/; before the retry each
    is damaged (a flipped byte, a truncated file padded back to its size, a wrong mode, a
    retargeted symlink). The retry must send them again, never publish them: it used to
    trust a staged object by its size. Intact ones, when big, are read back and reused."""
    from test_push_support import commit, init, make_tree, rev_parse

    from ostree_tool import run_ostree
    from pyostree.push import push_with
    from pyostree.repo import Repo
    from pyostree.transport import Destination, open_transport

    src = init(tmp_path / "src", "archive")
    checksum = commit(src, make_tree(tmp_path / "tree", files=10, big=3 << 20))
    if via == "local":
        dst = init(tmp_path / "dst", mode)
        connect = lambda: (LocalFileTransport(dst), lambda: None)  # noqa: E731
    else:
        setup: EmbeddedSetup = request.getfixturevalue("embedded")
        name = tmp_path.name
        dst = init(setup.served / name, mode)

        def connect():  # type: ignore[no-untyped-def]
            files, _run, close = open_transport(Destination("ssh", name, host="127.0.0.1"), setup.options())
            return files, close

    files, close = connect()
    try:
        with pytest.raises(TransportError, match="connection lost"):
            push_with(_CutBeforePublish(files), Repo.open(src), {"main": checksum})
    finally:
        close()
    (staging,) = [p for p in (dst / "tmp").iterdir() if p.name.startswith("pyostree-push-") and p.is_dir()]
    staged, damaged = _damage(staging, how) if how != "intact" else (0, 0)
    assert how == "intact" or damaged > 0
    files, close = connect()
    try:
        result = push_with(SftpPublisher(files), Repo.open(src), {"main": checksum})
    finally:
        close()
    if how == "intact":
        assert result.objects_reused >= 1  # at least the big file: read back, found good
    else:
        assert result.objects_reused <= staged - damaged, (staged, damaged)
    assert rev_parse(dst, "main") == checksum
    run_ostree("fsck", repo=dst)
    done = subprocess.run([sys.executable, "-m", "pyostree", "fsck", f"--repo={dst}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not staging.exists()
def _non_normal_source(path: Path, which: str) -> None:
    """A source repo whose ``hostile`` commit has a root dirmeta (or a commitmeta) that
    hashes to its name but is not in normal form (an xattr array of one stray byte, which
    GLib reads as no xattrs; trailing bytes): libostree refuses both on pull."""
    from pyostree.objects import Commit, CommitMeta, DirMeta, DirTree
    from pyostree.objects.types import ObjectType
    from pyostree.repo import Repo

    _init(path)
    repo = Repo.open(path)
    meta_bytes = DirMeta(0, 0, 0o40755, ()).to_bytes()
    if which == "dirmeta":
        meta_bytes += b"\x01"
    detached = CommitMeta({"k": ("s", "v")}).to_bytes()
    if which == "commitmeta":
        detached += b"\x00\x00\x00"
    with repo.transaction() as txn:
        meta = txn.write_metadata_bytes(ObjectType.DIR_META, meta_bytes)
        root = txn.write_metadata(DirTree((), ()))
        checksum = txn.write_metadata(Commit.create(root, meta, timestamp=1577836800, subject="x"))
        txn.write_commitmeta(checksum, detached)
        txn.set_ref("hostile", checksum)


@pytest.mark.parametrize("which", ["dirmeta", "commitmeta"])
def test_pull_local_refuses_metadata_not_in_normal_form(tmp_path: Path, which: str) -> None:
    from pyostree.gvariant import is_normal

    source = tmp_path / "source"
    _non_normal_source(source, which)
    bad = next((source / "objects").rglob(f"*.{which}"))
    assert not is_normal("(uuua(ayay))" if which == "dirmeta" else "a{sv}", bad.read_bytes())
    dest, before = _fresh_dest(tmp_path)
    status, _, err = run_cli("pull-local", f"--repo={dest}", str(source), "hostile")
    assert status == 1 and "normal" in err, err
    _assert_dest_untouched(dest, before)
