"""The OpenSSH vendor: the system ``ssh`` binary carries sftp and exec over its stdio.

ssh does its own config, known_hosts, agent and key handling; we only pass -p/-l/-i/-o/-F
through and always add BatchMode=yes (unless given) because nobody can answer a prompt.
paramiko (its SFTP client) is imported only when an sftp session is opened: an exec
(receive mode) never pays for it. ``write_files`` may ask for more sftp sessions: each is
another ssh process with the same options, started together so their handshakes overlap.
They are opened only when the user's own ControlMaster carries them (``ssh -O check``):
then one costs ~20 ms; a handshake of its own costs ~0.25 s that a small push never wins
back (sftp.py asks for them at the start of every stream, whatever its size). We never turn
multiplexing on ourselves.
"""

from __future__ import annotations

import collections
import os
import select
import shlex
import subprocess
import threading
from typing import IO, TYPE_CHECKING, BinaryIO, Deque, List, Optional, cast

from ..errors import TransportError
from .base import ExecChannel, FileTransport
from .destination import Destination
from .local import SubprocessExecChannel
from .connection import SshConnection
from .ssh_options import SshOptions, parse_ssh_option

if TYPE_CHECKING:
    from .sftp import ExtensionAwareSFTPClient

__all__ = ["OpenSshConnection", "ssh_base_argv", "connect_openssh", "master_running"]

#: How long close() waits for ssh to exit after EOF before killing it.
_EXIT_GRACE_SECONDS = 10.0
_STDERR_KEEP = 64 * 1024
#: An extra sftp session whose ssh has not answered by then is given up (the stream goes on
#: with the sessions it has); one normally takes 0.2 s (0.01 s through a ControlMaster).
_EXTRA_HANDSHAKE_SECONDS = 15.0
#: ``ssh -O check`` only talks to a local socket; anything slower is treated as "no master".
_CHECK_SECONDS = 5.0


def ssh_base_argv(dest: Destination, opts: SshOptions, ssh_binary: str = "ssh") -> List[str]:
    """``ssh`` and its options, up to (not including) ``--``, host and command."""
    if dest.host is None:
        raise TransportError("ssh destination has no host")
    argv = [ssh_binary, "-T", "-x"]
    if opts.config_file is not None:
        argv += ["-F", opts.config_file]
    keys = set()
    for key, value in opts.options:
        canonical, value = parse_ssh_option(f"{key}={value}", vendor="openssh")
        keys.add(canonical.lower())
        argv.append(f"-o{canonical}={value}")
    if "batchmode" not in keys:
        argv.append("-oBatchMode=yes")
    if opts.agent_socket is not None and "identityagent" not in keys:
        argv.append(f"-oIdentityAgent={opts.agent_socket}")
    port = dest.port if dest.port is not None else opts.port
    if port is not None:
        argv += ["-p", str(port)]
    user = dest.user or opts.user
    if user is not None:
        argv += ["-l", user]
    for path in opts.identity_files:
        argv += ["-i", path]
    return argv


class _StderrCollector(threading.Thread):
    """Drains ssh's stderr so it never blocks, keeping the tail for error messages."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True, name="ssh-stderr")
        self._stream = stream
        self._tail: Deque[bytes] = collections.deque()
        self._size = 0

    def run(self) -> None:
        while True:
            chunk = self._stream.read1(4096) if hasattr(self._stream, "read1") else self._stream.read(4096)
            if not chunk:
                return
            self._tail.append(chunk)
            self._size += len(chunk)
            while self._size > _STDERR_KEEP and len(self._tail) > 1:
                self._size -= len(self._tail.popleft())

    def last_line(self) -> str:
        text = b"".join(self._tail).decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else "no message from ssh"


class _PipeSocket:
    """The send/recv face paramiko's SFTPClient needs, over an ssh subprocess's pipes."""

    def __init__(self, proc: "subprocess.Popen[bytes]", stderr: _StderrCollector) -> None:
        self._proc = proc
        self._stderr = stderr
        self._in = cast(IO[bytes], proc.stdin)
        self._out = cast(IO[bytes], proc.stdout)
        self._timeout: Optional[float] = None

    def send(self, data: bytes) -> int:
        try:
            return os.write(self._in.fileno(), data)
        except (BrokenPipeError, ValueError):
            raise EOFError("ssh exited") from None

    def recv(self, n: int) -> bytes:
        if self._timeout is not None:
            ready, _, _ = select.select([self._out], [], [], self._timeout)
            if not ready:
                raise TimeoutError(f"no answer from ssh within {self._timeout:g} s")
        return os.read(self._out.fileno(), n)

    def recv_ready(self) -> bool:
        ready, _, _ = select.select([self._out], [], [], 0)
        return bool(ready)

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def get_name(self) -> str:
        return "openssh"

    def close(self) -> None:
        for stream in (self._in, self._out):
            try:
                stream.close()
            except OSError:
                pass
        _finish(self._proc)
        # ssh is gone, so its stderr is at EOF (unless a child it left, a ControlPersist
        # master say, still holds it: then the thread stays and the process exits normally).
        self._stderr.join(timeout=0.5)

    def kill(self) -> None:
        """End ssh at once: it failed, or was started for a session nobody wants now."""
        if self._proc.poll() is None:
            self._proc.kill()
        self.close()

    def failure(self) -> str:
        """Why ssh went away, for error messages."""
        if self._proc.poll() is None:
            try:
                self._proc.wait(timeout=_EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self._stderr.join(timeout=1.0)
        return self._stderr.last_line()


def _finish(proc: "subprocess.Popen[bytes]") -> None:
    try:
        proc.wait(timeout=_EXIT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_pipe(argv: List[str]) -> _PipeSocket:
    """ssh running ``argv`` (an sftp subsystem), its stderr drained by a thread."""
    proc = _spawn(argv)
    stderr = _StderrCollector(cast(IO[bytes], proc.stderr))
    stderr.start()
    return _PipeSocket(proc, stderr)


def _sftp_client(pipe: _PipeSocket, host: str, timeout: Optional[float]) -> "ExtensionAwareSFTPClient":
    """The sftp handshake over ``pipe``; on any failure (or interrupt) ssh is ended."""
    from . import _paramiko  # noqa: F401,I001  # lazy (exec never needs it), without invoke
    import paramiko  # type: ignore[import-untyped]

    from .sftp import ExtensionAwareSFTPClient

    pipe.settimeout(timeout)
    try:
        client = ExtensionAwareSFTPClient(pipe)
    except TimeoutError as err:
        pipe.kill()
        raise TransportError(f"ssh to {host} failed: {err}") from err
    except (paramiko.SSHException, OSError, EOFError) as err:
        pipe.close()  # ssh has gone, or goes at EOF, leaving its last words on stderr
        raise TransportError(f"ssh to {host} failed: {pipe.failure()}") from err
    except BaseException:
        pipe.kill()
        raise
    pipe.settimeout(None)
    return client


class _ExtraSessions:
    """More sftp sessions for ``write_files``: ssh processes started all at the first request
    (their handshakes overlap), handed out one per request. They never prompt (BatchMode=yes
    first, whatever the user's options: several prompts at once would be a mess, and the
    first session already answered any); a failure ends those not handed out yet."""

    def __init__(self, argv: List[str], host: str, count: int,
                 timeout: float = _EXTRA_HANDSHAKE_SECONDS,
                 check_argv: Optional[List[str]] = None) -> None:
        self._argv = argv[:1] + ["-oBatchMode=yes"] + argv[1:]
        self._host = host
        self._count = count
        self._timeout = timeout
        self._check_argv = check_argv  # None: open them without asking
        self._waiting: Optional[List[_PipeSocket]] = None  # started, not handed out

    def open(self) -> "ExtensionAwareSFTPClient":
        if self._waiting is None:
            self._waiting = []
            if self._check_argv is not None and not master_running(self._check_argv):
                raise TransportError(f"no ssh ControlMaster for {self._host}: one sftp session")
            try:
                for _ in range(self._count):
                    self._waiting.append(_start_pipe(self._argv))
            except BaseException:
                self.close()
                raise
        if not self._waiting:
            raise TransportError("no more sftp sessions")
        pipe = self._waiting.pop(0)
        try:
            return _sftp_client(pipe, self._host, self._timeout)
        except BaseException:
            self.close()  # the others would most likely fail alike
            raise

    def close(self) -> None:
        """End the ssh processes nobody took (those handed out close with their client)."""
        waiting, self._waiting = self._waiting or [], []
        for pipe in waiting:
            pipe.kill()


def master_running(argv: List[str]) -> bool:
    """Whether ``ssh -O check`` finds a multiplexing master (the user's) for the destination."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=_CHECK_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _spawn(argv: List[str]) -> "subprocess.Popen[bytes]":
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as err:
        raise TransportError(f"cannot run {argv[0]}: {err.strerror or err}") from err


class OpenSshExecChannel(SubprocessExecChannel):
    """``ssh host -- command``: the command's stdio is ssh's stdio; ssh errors exit 255."""


class OpenSshConnection(SshConnection):
    """Not one connection but a recipe: every sftp session and exec is its own ssh process.

    ``extra_sessions_need_master``: open extra sftp sessions only through a running
    ControlMaster (see the module docstring); False opens them in any case."""

    extra_sessions_need_master = True

    def __init__(self, dest: Destination, opts: SshOptions, ssh_binary: str = "ssh") -> None:
        if dest.host is None:
            raise TransportError("ssh destination has no host")
        self._host = dest.host
        self._base = ssh_base_argv(dest, opts, ssh_binary)
        self._closers: List[FileTransport] = []

    def open_files(self, root: str) -> FileTransport:
        from .sftp import _SESSIONS, SftpFileTransport

        argv = self._base + ["-s", "--", self._host, "sftp"]
        client = _sftp_client(_start_pipe(argv), self._host, None)
        check = self._base + ["-O", "check", "--", self._host] if self.extra_sessions_need_master else None
        extra = _ExtraSessions(argv, self._host, _SESSIONS - 1, check_argv=check)
        files = SftpFileTransport(client, root, on_close=extra.close, open_session=extra.open)
        self._closers.append(files)
        return files

    def exec(self, argv: List[str]) -> ExecChannel:
        if not argv:
            raise TransportError("cannot run an empty command")
        # ssh joins its arguments with spaces for the remote shell: quote each word.
        return OpenSshExecChannel(_spawn(self._base + ["--", self._host, shlex.join(argv)]))

    def close(self) -> None:
        closers, self._closers = self._closers, []
        for files in closers:
            files.close()


def connect_openssh(dest: Destination, opts: SshOptions) -> OpenSshConnection:
    """Prepare the ssh command line; nothing connects until open_files/exec."""
    return OpenSshConnection(dest, opts)
