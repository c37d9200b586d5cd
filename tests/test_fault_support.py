"""Fault-injection harness shared by tests/test_fault_*.py and benchmarks/bench_faults.py
(no tests here): a source repo, remotes copied from a template, the push CLI as a process
that can be killed, receivers found in /proc, a TCP proxy that cuts a connection, and the
after-fault checks every case applies.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from pyostree.objects import content_checksum, iter_inflate, parse_archive_header
from pyostree.push.sftp import BATCH_BYTES

PY = sys.executable
ALLOW_MODES = "--allow-modes=archive,bare-user-only,bare-user"
"""The fault cases push into bare-user remotes too, which a receiver refuses by default."""
RECEIVE_ARGV = (PY, "-m", "pyostree", "receive", ALLOW_MODES)
EARLY_SYNC_TEST_BYTES = 1 << 10
"""The early-publishing threshold of the receivers in the ``early`` variants, instead of
8 MiB (never reached by these pushes). Their 3 MiB are one big object and ~150 small ones
of ~80 compressed bytes, so 64 KiB would publish early once, at the big one: 1 KiB gives
about ten early syncfs + publish rounds while the small objects arrive."""
EARLY_PUBLISH_MARK = "early-publish.test-mark"
"""A file the ``early`` receivers create in the remote's tmp/ just before early publishing
first renames an object into objects/: proof that it, and not the publish at commit,
moved what a kill finds there."""
EARLY_RECEIVE_ARGV = (
    PY, "-c",
    "import os, sys, threading\n"
    "import pyostree.repo.publish as publish\n"
    f"publish.EARLY_SYNC_BYTES = {EARLY_SYNC_TEST_BYTES}\n"
    "publish_one = publish.Publisher._publish_one\n"
    "def marked(self, source, target):\n"
    "    if threading.current_thread().name == 'early-syncfs':\n"
    f"        open(os.path.join(self._root, 'tmp', {EARLY_PUBLISH_MARK!r}), 'a').close()\n"
    "    publish_one(self, source, target)\n"
    "publish.Publisher._publish_one = marked\n"
    "import pyostree.receive.server as server; server.INLINE_BYTES = 0\n"
    "from pyostree.cli.main import main; sys.argv = ['pyostree', *sys.argv[1:]]\n"
    "raise SystemExit(main())",
    "receive", "--workers", "2", ALLOW_MODES,
)
"""``python -m pyostree receive`` with a small ``EARLY_SYNC_BYTES``, a mark of early
publishing (``EARLY_PUBLISH_MARK``) and two staging worker processes from the first
OBJECTS frame (``INLINE_BYTES`` 0: these pushes are too small to start them otherwise),
set in the receiver process, as the library reads no environment: ``main()`` sees the argv
``python -m pyostree`` would give it, so exit status and fast exit are the real command's."""
RECEIVERS = {"default": RECEIVE_ARGV, "early": EARLY_RECEIVE_ARGV}
NOSYNC_RECEIVE_ARGV = (
    PY, "-c",
    "import os, sys\n"
    "os.fsync = os.fdatasync = lambda fd: None\n"
    "os.sync = lambda: None\n"
    "import pyostree.repo.fsutil as fsutil, pyostree.repo.publish as publish\n"
    "fsutil.syncfs = publish.syncfs = lambda fd: None\n"
    "from pyostree.cli.main import main; sys.argv = ['pyostree', *sys.argv[1:]]\n"
    "raise SystemExit(main())",
    "receive", ALLOW_MODES,
)
"""A receiver that never syncs (fsync, fdatasync, syncfs and sync are no-ops in it): the
power-loss cases must catch it losing an acknowledged push, or they prove nothing."""

OBJECT_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}\.(filez|file|dirtree|dirmeta|commit|commitmeta)$")
WAIT = 60.0
"""Generous bound on one push or one receiver shutdown (a hang fails, it never stalls)."""


def ostree(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C.UTF-8")
    done = subprocess.run(["ostree", *args], capture_output=True, text=True, env=env, timeout=WAIT)
    if check and done.returncode != 0:
        raise AssertionError(f"ostree {' '.join(args)}: {done.stderr.strip()}")
    return done


# ---------------------------------------------------------------------------- repos


@dataclass(frozen=True)
class Source:
    """A local repo: ``main`` moved from c1 to c2; the remote template holds c1."""

    path: Path
    c1: str
    c2: str
    template: Path


def _write_tree(root: Path, rng: random.Random, files: int, big: int) -> None:
    for index in range(files):
        sub = root / f"d{index % 7}" / f"e{index % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{index}.txt").write_bytes(f"{index}:{rng.random()}\n".encode() * rng.randint(1, 200))
    if big:
        (root / "big.bin").write_bytes(rng.randbytes(big))
    os.symlink("d0/e0/f0.txt", root / "link")


def build_source(base: Path, *, files: int = 150, big: int = 3 << 20, mode: str = "archive",
                 seed: int = 1, remote_mode: str = "archive") -> Source:
    """c1 is a small tree; c2 adds FILES small files and BIG random bytes (a push of c2 onto
    a remote at c1 takes long enough that random kill points land in every phase). The
    remote template is a REMOTE_MODE repo at c1 (``fresh_remote`` copies it with xattrs,
    which bare-user's ``user.ostreemeta`` needs)."""
    rng = random.Random(seed)
    tree = base / "tree"
    tree.mkdir(parents=True)
    (tree / "base.txt").write_bytes(b"base\n")
    src = base / "src"
    ostree("init", f"--mode={mode}", f"--repo={src}")
    commit = ["commit", f"--repo={src}", "--branch=main", f"--tree=dir={tree}", "--owner-uid=0", "--owner-gid=0"]
    c1 = ostree(*commit, "--subject=one").stdout.strip()
    _write_tree(tree, rng, files, big)
    c2 = ostree(*commit, "--subject=two").stdout.strip()
    template = base / "template"
    ostree("init", f"--mode={remote_mode}", f"--repo={template}")
    ostree("pull-local", f"--repo={template}", str(src), c1)
    ostree("refs", f"--repo={template}", "--create=main", c1)
    ostree("summary", "-u", f"--repo={template}")
    return Source(src, c1, c2, template)


def fresh_remote(source: Source, path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(source.template, path, symlinks=True)
    return path


# ---------------------------------------------------------------------------- processes


def push_argv(source: Source, dest: str, via: str, *extra: str,
              receive_argv: Sequence[str] = RECEIVE_ARGV) -> List[str]:
    return [PY, "-m", "pyostree", "push", f"--repo={source.path}", f"--via={via}", "-v",
            "--receive-command", shlex.join(receive_argv), *extra, dest, "main"]


def start(argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def finish(proc: subprocess.Popen[bytes], timeout: float = WAIT) -> Tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _proc_info(pid: int) -> Optional[Tuple[int, str, str]]:
    """(ppid, state, NUL-separated cmdline) of PID, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("utf-8", "replace")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], cmdline


def receivers(parent: int, receive_argv: Sequence[str] = RECEIVE_ARGV, *, ancestor: bool = False) -> List[int]:
    """PIDs of live receivers (processes running RECEIVE_ARGV, whatever its argv[0])
    whose parent is PARENT (with ANCESTOR: PARENT anywhere above them, as for OpenSSH's
    sshd, whose session processes and the user's shell come in between)."""
    found = []
    want = list(receive_argv[1:])
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _proc_info(int(name))
            if info and info[1] != "Z" and info[2].split("\0")[1:1 + len(want)] == want:
                if info[0] == parent or (ancestor and _descends(info[0], parent)):
                    found.append(int(name))
    return found


def _descends(pid: int, ancestor: int) -> bool:
    for _ in range(32):
        if pid == ancestor:
            return True
        info = _proc_info(pid)
        if info is None or pid <= 1:
            return False
        pid = info[0]
    return False


def wait_gone(pid: int, timeout: float = WAIT) -> None:
    """Wait until PID has exited (a zombie counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _proc_info(pid)
        if info is None or info[1] == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still running after {timeout:.0f} s")


def kill9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- cutting proxy


class CuttingProxy:
    """127.0.0.1 TCP proxy to ``upstream`` that aborts each connection (RST) after
    ``budget`` bytes in either direction; ``budget=None`` forwards everything."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.budget: Optional[int] = None
        self.forwarded = 0  # bytes forwarded, both ways, all connections (to size budgets)
        self.cut = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"left": self.budget}
            lock = threading.Lock()
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, state, lock, (client, upstream)), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, state: Dict[str, Optional[int]],
              lock: threading.Lock, pair: Tuple[socket.socket, socket.socket]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with lock:
                    left = state["left"]
                    if left is not None:
                        if len(data) >= left:
                            data = data[:left]
                            state["left"] = 0
                        else:
                            state["left"] = left - len(data)
                if data:
                    dst.sendall(data)
                    self.forwarded += len(data)
                if state["left"] == 0:
                    self.cut.set()
                    break
        except OSError:
            pass
        for sock in pair:  # cut both ways at once, like a dropped link
            with contextlib.suppress(OSError):
                # shutdown first: close() alone would not wake the other pump's blocked
                # recv(), and the far side would never notice (a half-open connection)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


# ---------------------------------------------------------------------------- checks


@dataclass
class RemoteState:
    ref: str
    staged: Set[str] = field(default_factory=set)
    published: Set[str] = field(default_factory=set)  # checksums of the objects in objects/


def object_checksums(repo: Path) -> Set[str]:
    """Checksums of the objects (commitmeta aside) under REPO's objects/."""
    found: Set[str] = set()
    for path in (repo / "objects").glob("??/*"):
        stem, _dot, ext = path.name.partition(".")
        if ext in ("filez", "file", "dirtree", "dirmeta", "commit") and len(stem) == 62:
            found.add(path.parent.name + stem)
    return found


_NEW_OBJECTS: Dict[Path, Set[str]] = {}


def _source_size(source: Source, checksum: str) -> int:
    """Bytes of an object in the source repo (its .filez, or a metadata object)."""
    for path in (source.path / "objects" / checksum[:2]).glob(f"{checksum[2:]}.*"):
        return path.stat().st_size
    return 0


def new_objects(source: Source) -> Set[str]:
    """The objects a push of c2 onto the template (at c1) has to send."""
    if source.path not in _NEW_OBJECTS:
        _NEW_OBJECTS[source.path] = object_checksums(source.path) - object_checksums(source.template)
    return _NEW_OBJECTS[source.path]


def staged_objects(remote: Path) -> Set[str]:
    """Checksums of complete, verified objects waiting in the remote's tmp/ (receive staging
    dirs and sftp push dirs); anything unverifiable there fails the check."""
    found: Set[str] = set()
    tmp = remote / "tmp"
    for path in sorted(tmp.rglob("*")):
        if not path.is_file() or len(path.parent.name) != 2:
            continue
        top = path.parent.parent.name
        if not (top.startswith("staging-") or top.startswith("pyostree-push-")):
            continue
        stem, _dot, ext = path.name.partition(".")
        if len(stem) != 62 or ext not in ("filez", "file", "dirtree", "dirmeta", "commit"):
            continue  # a temporary upload name (or commitmeta, named after its commit): not staged yet
        name = path.parent.name + stem
        data = path.read_bytes()
        if ext == "filez":
            stream = _Reader(data)
            header, size = parse_archive_header(stream.read)
            payload = [] if header.is_symlink else list(iter_inflate(stream.read, size))
            actual = content_checksum(header, payload)
        elif ext == "file":
            actual = _bare_checksum(remote, path.parent.parent, name)
        else:
            import hashlib

            actual = hashlib.sha256(data).hexdigest()
        assert actual == name, f"staged object {path} does not match its name"
        found.add(name)
    return found


def _bare_checksum(remote: Path, staging: Path, name: str) -> str:
    """The content checksum of a staged bare or bare-user object, read as the repo reads
    its objects/ (a view whose objects/ is the staging dir)."""
    from pyostree.repo import Repo
    from pyostree.repo.store import ObjectStore

    import tempfile

    view = Path(tempfile.mkdtemp(prefix="staged-view-"))
    try:
        os.symlink(staging, view / "objects")
        store = ObjectStore(view, Repo.open(remote).mode)
        with store.open_content(name) as reader:
            return content_checksum(reader.header, iter(lambda: reader.read(1 << 20), b""))
    finally:
        shutil.rmtree(view, ignore_errors=True)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def read(self, n: int) -> bytes:
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += len(out)
        return out


def check_remote(remote: Path, source: Source, *, fsck: bool = True, ours: bool = False,
                 staged: bool = True) -> RemoteState:
    """After any fault: ``ostree fsck`` is clean (with OURS, ``pyostree fsck`` too),
    ``main`` is c1 or c2, nothing but complete object files under objects/, and the staged
    leftovers are verified objects (not with STAGED false: after a power loss, a staging
    dir of the dead boot may hold anything its writer had not synced, and no writer of
    the next boot resumes it)."""
    if fsck:
        done = ostree("fsck", f"--repo={remote}", check=False)
        assert done.returncode == 0, f"ostree fsck after fault: {done.stderr.strip()[-500:]}"
    if ours:
        mine = subprocess.run([PY, "-m", "pyostree", "fsck", "-q", f"--repo={remote}"], capture_output=True,
                              text=True, timeout=WAIT)
        assert mine.returncode == 0, f"pyostree fsck after fault: {(mine.stderr or mine.stdout).strip()[-500:]}"
    ref = (remote / "refs" / "heads" / "main").read_text().strip()
    assert ref in (source.c1, source.c2), f"main is {ref}, neither old nor new"
    for path in (remote / "objects").rglob("*"):
        rel = str(path.relative_to(remote / "objects"))
        if path.is_file():
            assert OBJECT_NAME.match(rel), f"partial or stray file visible in objects/: {rel}"
    return RemoteState(ref, staged_objects(remote) if staged and (remote / "tmp").exists() else set(),
                       object_checksums(remote))


def error_line(stderr: str) -> str:
    """The one ``error:`` line of a failed command (its -v log lines come before it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), stderr[-800:]
    assert "Traceback" not in stderr, stderr[-2000:]
    return lines[-1]


@contextlib.contextmanager
def watchdog(seconds: float = WAIT) -> Iterator[None]:
    """Fail (SIGALRM in the main thread) instead of hanging inside the block."""
    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"fault case did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def result_json(result: object) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(result))  # type: ignore[call-overload]


# ---------------------------------------------------------------------------- case runners


@dataclass
class Target:
    """Where a push goes: a local path, or the embedded ssh server (maybe through a proxy)."""

    remote: Path                     # the repo on disk
    dest: str                        # DEST for the push command line
    cli_extra: Tuple[str, ...] = ()  # ssh flags for the CLI
    env: Optional[Dict[str, str]] = None
    ssh: object = None               # SshOptions for an in-process re-push
    receiver_parent: Optional[int] = None  # who spawns receivers (None: the push client)
    receive_argv: Tuple[str, ...] = RECEIVE_ARGV  # the receiver, for the push and the re-push
    receiver_ancestor: bool = False  # receiver_parent is further up (OpenSSH sshd)
    our_fsck: bool = False           # check_remote also runs ``pyostree fsck``

    def receivers(self, client: int) -> List[int]:
        return receivers(self.receiver_parent or client, self.receive_argv, ancestor=self.receiver_ancestor)


def local_target(remote: Path, receive_argv: Sequence[str] = RECEIVE_ARGV, *, our_fsck: bool = False) -> Target:
    return Target(remote, str(remote), receive_argv=tuple(receive_argv), our_fsck=our_fsck)


def ssh_target(setup: object, remote_name: str, port: Optional[int] = None,
               receive_argv: Sequence[str] = RECEIVE_ARGV) -> Target:
    """Push to ``served/remote_name`` of an EmbeddedSetup (tests/sshd.py), maybe via PORT."""
    server = setup.server  # type: ignore[attr-defined]
    port = port or server.port
    options = setup.options()  # type: ignore[attr-defined]  # (re)writes known_hosts
    known = Path(setup.known_hosts)  # type: ignore[attr-defined]
    lines = {server.known_hosts_line(), server.known_hosts_line().replace(f"]:{server.port} ", f"]:{port} ")}
    known.write_text("\n".join(sorted(lines)) + "\n")
    from dataclasses import replace

    options = replace(options, port=port)
    extra = ("-p", str(port), "-i", setup.key_path, "-o", f"UserKnownHostsFile={known}",  # type: ignore[attr-defined]
             "-o", "IdentitiesOnly=yes")
    env = dict(os.environ, HOME=str(setup.home))  # type: ignore[attr-defined]
    return Target(setup.served / remote_name, f"127.0.0.1:{remote_name}", extra, env, options,  # type: ignore[attr-defined]
                  receiver_parent=os.getpid(), receive_argv=tuple(receive_argv))


def openssh_target(server: object, remote: Path, home: Path, *, vendor: str = "openssh",
                   port: Optional[int] = None, receive_argv: Sequence[str] = RECEIVE_ARGV) -> Target:
    """Push to REMOTE (an absolute path) through a real OpenSSH sshd (tests/sshd.py
    ``running_sshd``), maybe via PORT (a CuttingProxy), with the VENDOR ssh client."""
    from sshd import sshd_options

    sshd_port = server.port  # type: ignore[attr-defined]
    port = port or sshd_port
    key_line = server.host_key_line  # type: ignore[attr-defined]
    home.mkdir(parents=True, exist_ok=True)
    known = home / "known_hosts"
    known.write_text("".join(f"[127.0.0.1]:{p} {key_line}\n" for p in sorted({sshd_port, port})))
    from dataclasses import replace

    options = sshd_options(server, vendor, home)  # type: ignore[arg-type]
    options = replace(options, port=port, options=(("UserKnownHostsFile", str(known)), ("IdentitiesOnly", "yes")))
    extra = ("--ssh", vendor, "-p", str(port), "-i", server.client_key,  # type: ignore[attr-defined]
             "-o", f"UserKnownHostsFile={known}", "-o", "IdentitiesOnly=yes")
    env = dict(os.environ, HOME=str(home))
    return Target(remote, f"{server.user}@127.0.0.1:{remote}", extra, env, options,  # type: ignore[attr-defined]
                  receiver_parent=server.pid, receive_argv=tuple(receive_argv),  # type: ignore[attr-defined]
                  receiver_ancestor=True, our_fsck=True)


@dataclass
class Outcome:
    """One fault iteration, as the benchmark reports it."""

    case: str
    fault_hit: bool          # the fault struck before the push finished
    push_status: Optional[int]  # None: the client itself was killed
    message: str
    ref_after_fault: str
    staged: int
    resent_staged: int       # staged objects the re-push sent again (must be 0; sftp: big ones)
    reused: int
    data_lost: bool          # a ref pointing at a commit the remote cannot serve whole
    seconds: float
    published_new: int = 0   # objects of the push already in objects/ at the fault
    missing_new: int = 0     # objects of the push neither in objects/ nor staged at the fault
    resent_published: int = 0  # objects in objects/ at the fault that the re-push sent (must be 0)
    note: str = ""           # something the case saw that is not a failure (the bench counts it)

    @property
    def published_early(self) -> bool:
        """Objects of the push were in objects/ while others had not even arrived: only
        early publishing moves objects before the receiver has them all."""
        return self.published_new > 0 and self.missing_new > 0


def repush(source: Source, target: Target, via: str) -> object:
    """The re-push, in this process (its counters are the point)."""
    from pyostree.push import PushOptions, push
    from pyostree.repo import Repo

    options = PushOptions(via=via, ssh=target.ssh, receive_command=target.receive_argv)  # type: ignore[arg-type]
    with watchdog():
        return push(Repo.open(source.path), target.dest, ["main"], options)


def after_fault(case: str, source: Source, target: Target, via: str, started: float, *,
                fault_hit: bool, status: Optional[int], message: str) -> Outcome:
    """The common tail of every case: check the remote, re-push, check again."""
    state = check_remote(target.remote, source, ours=target.our_fsck)
    result = repush(source, target, via)
    sent = {checksum for checksum, _t in result.objects}  # type: ignore[attr-defined]
    if via == "receive":
        resent = len(sent & state.staged)
    else:
        # sftp lists every missing object; the reused ones are not uploaded again. A
        # small one is sent again on purpose (cheaper than reading it back to check it),
        # so only the big ones it would read back and reuse count.
        big = {checksum for checksum in state.staged & sent if _source_size(source, checksum) > BATCH_BYTES}
        resent = len(big) - result.objects_reused  # type: ignore[attr-defined]
    final = check_remote(target.remote, source)
    lost = final.ref != source.c2
    new = new_objects(source)
    return Outcome(case, fault_hit, status, message, state.ref, len(state.staged), max(resent, 0),
                   result.objects_reused, lost, round(time.monotonic() - started, 3),  # type: ignore[attr-defined]
                   published_new=len(state.published & new),
                   missing_new=len(new - state.published - state.staged),
                   resent_published=len(sent & state.published))


def early_published(source: Source, remote: Path) -> Callable[[], bool]:
    """A kill trigger: true once an object of the push is in REMOTE's objects/."""
    new = new_objects(source)
    return lambda: bool(object_checksums(remote) & new)


def kill_case(case: str, source: Source, target: Target, via: str, delay: float,
              victim: str, trigger: Optional[Callable[[], bool]] = None) -> Outcome:
    """Start the push CLI, SIGKILL the client DELAY seconds after its start, or the
    receiver DELAY seconds after the receiver appeared; with TRIGGER, as soon as it
    returns true instead (DELAY then bounds the wait)."""
    started = time.monotonic()
    proc = start(push_argv(source, target.dest, via, *target.cli_extra, receive_argv=target.receive_argv),
                 env=target.env)
    seen: Set[int] = set()
    if victim == "receiver":
        limit = time.monotonic() + WAIT
        while not seen and proc.poll() is None and time.monotonic() < limit:
            seen.update(target.receivers(proc.pid))
            time.sleep(0.002)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        seen.update(target.receivers(proc.pid))
        if trigger is not None and trigger():
            break
        time.sleep(0.001 if trigger is not None else 0.002)
    fault_hit = proc.poll() is None
    status: Optional[int]
    message = ""
    if victim == "client":
        seen.update(target.receivers(proc.pid))
        kill9(proc.pid)
        proc.communicate(timeout=WAIT)
        status = None if fault_hit else proc.returncode
    else:
        live = target.receivers(proc.pid)
        seen.update(live)
        for pid in live:
            kill9(pid)
        fault_hit = fault_hit and bool(live)
        status, _out, err = finish(proc)
        if status != 0:
            message = error_line(err)
    for pid in seen:
        wait_gone(pid)
    return after_fault(case, source, target, via, started, fault_hit=fault_hit, status=status, message=message)


def calibrate(source: Source, target: Target, via: str = "receive") -> Tuple[float, float]:
    """(seconds of an undisturbed push to TARGET, seconds its receiver lived, first seen to
    the client's exit): kill points are drawn from them. TARGET's remote is pushed to."""
    started = time.monotonic()
    proc = start(push_argv(source, target.dest, via, *target.cli_extra, receive_argv=target.receive_argv),
                 env=target.env)
    seen: Optional[float] = None
    while proc.poll() is None:
        if seen is None and target.receivers(proc.pid):
            seen = time.monotonic()
        time.sleep(0.002)
    ended = time.monotonic()
    status, _out, err = finish(proc)
    assert status == 0, err
    return ended - started, ended - (seen or started)


def cut_case(case: str, source: Source, target: Target, proxy: CuttingProxy, via: str,
             budget: int) -> Outcome:
    """Push through PROXY, which drops the connection after BUDGET bytes."""
    started = time.monotonic()
    proxy.budget = budget
    proxy.cut.clear()
    proc = start(push_argv(source, target.dest, via, *target.cli_extra, receive_argv=target.receive_argv),
                 env=target.env)
    status, _out, err = finish(proc)
    message = error_line(err) if status != 0 else ""
    fault_hit = proxy.cut.is_set() and status != 0
    proxy.budget = None
    deadline = time.monotonic() + WAIT  # the server side notices the cut on its own
    while target.receivers(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not target.receivers(proc.pid), "receiver still running after the connection was cut"
    return after_fault(case, source, target, via, started, fault_hit=fault_hit, status=status, message=message)


# ---------------------------------------------------------------------------- disk full, permissions

DISK_FULL_SCRIPT = r"""
import json, subprocess, sys, time
from dataclasses import asdict
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_fault_support as F
src = F.Source(Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
mnt, via, size = Path(sys.argv[6]), sys.argv[7], sys.argv[8]
receive_argv = tuple(json.loads(sys.argv[9]))
mnt.mkdir(parents=True, exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
remote = F.fresh_remote(src, mnt / "remote")
started = time.monotonic()
status, _out, err = F.finish(F.start(F.push_argv(src, str(remote), via, receive_argv=receive_argv)))
message = F.error_line(err) if status else ""
subprocess.run(["mount", "-o", "remount,size=512m", str(mnt)], check=True)  # space freed
outcome = F.after_fault("disk-full", src, F.local_target(remote, receive_argv), via, started,
                        fault_hit=status != 0, status=status, message=message)
print(json.dumps(asdict(outcome)))
"""


def unshare_available() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "--", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", "/mnt"],
                           capture_output=True)
    return probe.returncode == 0


def disk_full_case(source: Source, mountpoint: Path, via: str, size: str = "4m",
                   receive_argv: Sequence[str] = RECEIVE_ARGV) -> Outcome:
    """Push onto a remote on a SIZE tmpfs in a private mount namespace (``unshare -m``),
    then grow the tmpfs (space freed) and re-push; everything runs inside the namespace."""
    tests = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        ["unshare", "-m", "--", PY, "-c", DISK_FULL_SCRIPT, tests, str(source.path), source.c1, source.c2,
         str(source.template), str(mountpoint), via, size, json.dumps(list(receive_argv))],
        capture_output=True, text=True, timeout=WAIT * 3,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Outcome(**json.loads(done.stdout.strip().splitlines()[-1]))


NO_DAC = "-dac_override,-dac_read_search,-fowner"
"""Capabilities dropped so that root obeys permission bits (setpriv)."""

READ_ONLY_SPOTS = {
    "objects": ("objects",),         # staging works, publishing cannot
    "tmp": ("tmp",),                 # nothing can even be staged
    "refs": ("refs/heads",),         # objects land, the ref cannot move
}


def _chmod_tree(root: Path, mode: int) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, mode)


def permission_case(source: Source, remote: Path, via: str, spot: str) -> Outcome:
    """Push as root *without* CAP_DAC_OVERRIDE into a remote whose SPOT is read-only, then
    make it writable again and re-push."""
    started = time.monotonic()
    for rel in READ_ONLY_SPOTS[spot]:
        _chmod_tree(remote / rel, 0o555)
    try:
        argv = ["setpriv", "--bounding-set", NO_DAC, "--inh-caps", NO_DAC, *push_argv(source, str(remote), via)]
        status, _out, err = finish(start(argv))
        message = error_line(err) if status else ""
    finally:
        for rel in READ_ONLY_SPOTS[spot]:
            _chmod_tree(remote / rel, 0o755)
    return after_fault(f"permission-{spot}", source, local_target(remote), via, started,
                       fault_hit=status != 0, status=status, message=message)


# ---------------------------------------------------------------------------- concurrency


def sync_and_commit(repo: Path, remote: Path, tree: Path, marker: str) -> str:
    """REPO takes the remote's ``main`` and commits a tree unique to MARKER on top of it."""
    ostree("pull-local", f"--repo={repo}", str(remote), "main")
    (tree / "marker.txt").write_text(marker + "\n")
    # unique bulk: sending it keeps both pushers between planning and publishing together
    (tree / "bulk.bin").write_bytes(random.Random(marker).randbytes(2 << 20))
    return ostree("commit", f"--repo={repo}", "--branch=main", f"--tree=dir={tree}",
                  "--owner-uid=0", "--owner-gid=0", f"--subject={marker}").stdout.strip()


@dataclass
class RaceRound:
    winners: int
    remote_ref: str
    commits: Tuple[str, str]
    statuses: Tuple[int, int]
    messages: Tuple[str, str]


def race_round(sides: Sequence[Tuple[Path, Path, str]], remote: Path, index: int,
               receive_argv: Sequence[str] = RECEIVE_ARGV) -> RaceRound:
    """Two pushers (repo, tree, via) move ``main`` of REMOTE at the same time."""
    commits = [sync_and_commit(repo, remote, tree, f"round {index} side {k}")
               for k, (repo, tree, _via) in enumerate(sides)]
    procs = [start([PY, "-m", "pyostree", "push", f"--repo={repo}", f"--via={via}", "-q",
                    "--receive-command", shlex.join(receive_argv), str(remote), "main"])
             for repo, _tree, via in sides]
    results = [finish(proc) for proc in procs]
    statuses = tuple(status for status, _o, _e in results)
    messages = tuple(error_line(err) if status else "" for status, _o, err in results)
    ref = (remote / "refs" / "heads" / "main").read_text().strip()
    return RaceRound(sum(1 for s in statuses if s == 0), ref, (commits[0], commits[1]),
                     (statuses[0], statuses[1]), (messages[0], messages[1]))  # type: ignore[arg-type]


def check_race(round_: RaceRound) -> None:
    """Exactly one pusher wins, the remote holds its commit, the loser says why."""
    assert round_.winners == 1, f"{round_.winners} winners: {round_}"
    winner = round_.statuses.index(0)
    assert round_.remote_ref == round_.commits[winner], round_
    loser_message = round_.messages[1 - winner]
    assert "main" in loser_message and any(w in loser_message for w in ("moved", "fast-forward", "lock")), loser_message


@contextlib.contextmanager
def logged_http_server(directory: Path, log: Path) -> Iterator[str]:
    """``python -m http.server`` on 127.0.0.1 serving DIRECTORY, its access log in LOG (to
    tell a 404 on an object from a 404 on a ref that does not exist yet)."""
    from test_push_support import http_server

    with http_server(directory, log) as url:
        yield url


MISSING_OBJECT = re.compile(r'"GET /objects/[0-9a-f]{2}/[0-9a-f]{62}\.(commit|dirtree|dirmeta|filez) HTTP/1\.[01]" 404')


def missing_objects_served(log: Path) -> List[str]:
    """404s on objects a pull needed (detached .commitmeta, deltas, summary.sig are optional)."""
    return [line for line in log.read_text(errors="replace").splitlines() if MISSING_OBJECT.search(line)]


# ---------------------------------------------------------------------------- power loss

EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2
"""Shut the file system down at once: the running journal transaction is aborted, not
committed, and dirty pages are never written (xfstests' ``godown``): what is on the disk
image afterwards is what the kernel had written to it, i.e. all that was synced and
whatever write-back happened to send earlier."""
POWER_MOUNT_OPTIONS = "loop,commit=600,noauto_da_alloc"
"""No periodic journal commit during a push (only fsync, fdatasync and syncfs commit), and
no implicit data flush when a file replaces another by rename (ext4's ``auto_da_alloc``
would hide a missing fsync before a rename)."""

POWER_LOSS_SCRIPT = r"""
import json, os, signal, subprocess, sys, time, uuid
from dataclasses import asdict
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_fault_support as F
src = F.Source(Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
image, work, via, delay = Path(sys.argv[6]), Path(sys.argv[7]), sys.argv[8], float(sys.argv[9])
receive_argv = tuple(json.loads(sys.argv[10]))
mnt, disk = work / "mnt", work / "disk.img"
mnt.mkdir(parents=True, exist_ok=True)
subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
subprocess.run(["mount", "-o", F.POWER_MOUNT_OPTIONS, str(disk), str(mnt)], check=True)
remote = mnt / "remote"
started = time.monotonic()
proc = subprocess.Popen(F.push_argv(src, str(remote), via, receive_argv=receive_argv), stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
if delay < 0:  # calibration: no cut, just the length of a push onto this file system
    status, _out, err = F.finish(proc)
    assert status == 0, err
    seconds = time.monotonic() - started
    subprocess.run(["umount", str(mnt)], check=True)
    print(json.dumps({"calibrated_seconds": seconds}))
    raise SystemExit(0)
deadline = started + delay
while time.monotonic() < deadline and proc.poll() is None:
    time.sleep(0.001)
acked = proc.poll() == 0          # the push said it was done before the power went
fault_hit = proc.poll() is None
# the power goes: every process of the push stops, then the disk keeps what it had
with __import__("contextlib").suppress(ProcessLookupError):
    os.killpg(proc.pid, signal.SIGSTOP)
fd = os.open(str(mnt), os.O_RDONLY)
import fcntl
fcntl.ioctl(fd, F.EXT4_IOC_SHUTDOWN, F.EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
os.close(fd)
with __import__("contextlib").suppress(ProcessLookupError):
    os.killpg(proc.pid, signal.SIGKILL)
proc.communicate(timeout=F.WAIT)
if not fault_hit and not acked:
    raise SystemExit(f"the push failed before the cut: status {proc.returncode}")
deadline = time.monotonic() + F.WAIT
while subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:  # workers may still be dying
    assert time.monotonic() < deadline, "cannot unmount after the cut"
    time.sleep(0.05)
# the next boot: a new boot id (staging dirs of the dead one are not resumed), the journal replayed
(work / "boot_id").write_text(str(uuid.uuid4()) + "\n")
subprocess.run(["mount", "--bind", str(work / "boot_id"), "/proc/sys/kernel/random/boot_id"], check=True)
subprocess.run(["mount", "-o", F.POWER_MOUNT_OPTIONS, str(disk), str(mnt)], check=True)
try:
    state = F.check_remote(remote, src, ours=True, staged=False)
    lost_ack = acked and state.ref != src.c2
    lock = remote / "tmp" / "pyostree-push-refs.lock"
    note = (f"refs lock left behind ({lock.stat().st_size} bytes)" if lock.exists() else "")
    result = F.repush(src, F.local_target(remote, receive_argv), via)
    final = F.check_remote(remote, src, staged=False)
    new = F.new_objects(src)
    outcome = F.Outcome("power-loss", fault_hit, 0 if acked else None, "", state.ref, 0, 0,
                        result.objects_reused, lost_ack or final.ref != src.c2, round(time.monotonic() - started, 3),
                        published_new=len(state.published & new), missing_new=len(new - state.published),
                        note=note)
finally:
    subprocess.run(["umount", str(mnt)], check=True)
print(json.dumps(asdict(outcome)))
"""


def power_loss_available() -> bool:
    """Root, ``unshare -m``, a loop device and ext4 (``mkfs.ext4``)."""
    return unshare_available() and bool(shutil.which("mkfs.ext4")) and os.path.exists("/dev/loop-control")


def power_loss_image(source: Source, path: Path, size: str = "48M") -> Path:
    """An ext4 image holding a copy of SOURCE's remote template at ``/remote``, written and
    unmounted (so all of it is on the image), for ``power_loss_case`` to copy."""
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(path)], check=True, capture_output=True)
    script = ("import shutil, subprocess, sys\n"
              "subprocess.run(['mount', '-o', 'loop', sys.argv[1], sys.argv[2]], check=True)\n"
              "try:\n"
              "    shutil.copytree(sys.argv[3], sys.argv[2] + '/remote', symlinks=True)\n"
              "finally:\n"
              "    subprocess.run(['umount', sys.argv[2]], check=True)\n")
    mnt = path.with_suffix(".mnt")
    mnt.mkdir(exist_ok=True)
    subprocess.run(["unshare", "-m", "--", PY, "-c", script, str(path), str(mnt), str(source.template)],
                   check=True, capture_output=True, timeout=WAIT)
    return path


def power_loss_case(source: Source, image: Path, work: Path, via: str, delay: float,
                    receive_argv: Sequence[str] = RECEIVE_ARGV) -> Outcome:
    """Push onto a copy of IMAGE (ext4 on a loop device, in a private mount namespace);
    DELAY seconds after the push started, stop its processes and shut the file system down
    without flushing (the power goes), kill them, unmount; then mount again (the journal
    replays) under a new boot id, check the remote (``ostree fsck``, ``pyostree fsck``,
    ``main`` old or new; new if the push had reported success) and re-push."""
    tests = str(Path(__file__).resolve().parent)
    work.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["unshare", "-m", "--", PY, "-c", POWER_LOSS_SCRIPT, tests, str(source.path), source.c1, source.c2,
             str(source.template), str(image), str(work), via, str(delay), json.dumps(list(receive_argv))],
            capture_output=True, text=True, timeout=WAIT * 3,
        )
    finally:
        with contextlib.suppress(OSError):
            (work / "disk.img").unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "calibrated_seconds" in result:
        return result["calibrated_seconds"]  # type: ignore[no-any-return]
    return Outcome(**result)


def power_loss_push_seconds(source: Source, image: Path, work: Path,
                            receive_argv: Sequence[str] = RECEIVE_ARGV, via: str = "receive") -> float:
    """How long an undisturbed push onto the loop-mounted ext4 takes (cut points are drawn
    from it)."""
    return power_loss_case(source, image, work, via, -1.0, receive_argv)  # type: ignore[return-value]
