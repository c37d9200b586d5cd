"""An embedded paramiko SSH server for the demo and the tests.

Public-key auth only (any user name; the key is what counts), an sftp subsystem jailed to
``root_dir`` (``/`` and the home directory both map to it; paths that resolve outside are
refused), and exec requests run as subprocesses in ``root_dir`` — optionally limited to an
allow-list of argv prefixes. No shell, no pty, no forwarding, no chown.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shlex
import socket
import subprocess
import threading
from typing import IO, Any, List, Mapping, Optional, Sequence, Set, Tuple, cast

import paramiko  # type: ignore[import-untyped]

from .errors import TransportError

__all__ = [
    "EmbeddedSshServer",
    "RECEIVE_ALLOW_LIST",
    "generate_key",
    "public_key_line",
    "known_hosts_line",
    "write_private_key",
]

#: argv prefixes the demo lets clients exec: only ``pyostree receive``.
RECEIVE_ALLOW_LIST: Tuple[Tuple[str, ...], ...] = (
    ("pyostree", "receive"),
    ("python", "-m", "pyostree", "receive"),
    ("python3", "-m", "pyostree", "receive"),
)

_CHUNK = 32768
#: paramiko logs server connections here; the NullHandler keeps them off stderr by default.
LOG_CHANNEL = "pyostree.sshserver"
logging.getLogger(LOG_CHANNEL).addHandler(logging.NullHandler())
#: How long (in 50 ms polls) an exec channel waits for the client to close it: 10 s.
_CLOSE_GRACE_POLLS = 200


def generate_key() -> paramiko.PKey:
    """A throwaway ECDSA P-256 key (paramiko cannot generate ed25519)."""
    return paramiko.ECDSAKey.generate()


def write_private_key(key: paramiko.PKey, path: str) -> None:
    """Write ``key`` unencrypted with mode 0600 (usable by ``ssh -i`` and paramiko)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        key.write_private_key(f)


def public_key_line(key: paramiko.PKey, comment: str = "") -> str:
    """``"TYPE BASE64 [comment]"`` as in authorized_keys / .pub files."""
    line = f"{key.get_name()} {key.get_base64()}"
    return f"{line} {comment}" if comment else line


def known_hosts_line(host: str, port: int, key: paramiko.PKey) -> str:
    """A known_hosts line for ``host:port`` (``[host]:port`` unless port is 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.get_name()} {key.get_base64()}"


class _Jail:
    """Maps sftp paths into ``root``; both ``/`` and relative paths start at the root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def virtual(self, path: str) -> str:
        return posixpath.normpath(posixpath.join("/", path))

    def real(self, path: str, *, follow: bool) -> str:
        virtual = self.virtual(path)
        if virtual == "/":
            return self.root
        full = os.path.join(self.root, virtual.lstrip("/"))
        parent = os.path.realpath(os.path.dirname(full))
        checked = os.path.realpath(full) if follow else os.path.join(parent, os.path.basename(full))
        if not self._inside(parent) or not self._inside(checked):
            raise PermissionError(errno.EACCES, "path leaves the served directory")
        return full

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)


class _Handle(paramiko.SFTPHandle):  # type: ignore[misc]
    def __init__(self, fd: int, flags: int, path: str) -> None:
        super().__init__(flags)
        self._path = path
        mode = "rb"
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        stream = os.fdopen(fd, mode)
        self.filename = path
        self.readfile = stream
        self.writefile = stream

    def stat(self) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as err:
            return paramiko.SFTPServer.convert_errno(err.errno)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            _apply_attrs(self._path, attr)
        except OSError as err:
            return int(paramiko.SFTPServer.convert_errno(err.errno))
        return int(paramiko.SFTP_OK)


def _apply_attrs(path: str, attr: paramiko.SFTPAttributes) -> None:
    # Permissions, times and size only: a client never gets to chown on this server.
    if attr._flags & attr.FLAG_PERMISSIONS:
        os.chmod(path, attr.st_mode & 0o7777)
    if attr._flags & attr.FLAG_AMTIME:
        os.utime(path, (attr.st_atime, attr.st_mtime))
    if attr._flags & attr.FLAG_SIZE:
        os.truncate(path, attr.st_size)


class _JailedSftp(paramiko.SFTPServerInterface):  # type: ignore[misc]
    """sftp over the real filesystem under the jail root."""

    def __init__(self, server: Any, *args: Any, root: str, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self._jail = _Jail(root)

    def _fail(self, err: OSError) -> int:
        return int(paramiko.SFTPServer.convert_errno(err.errno))

    def canonicalize(self, path: str) -> str:
        return self._jail.virtual(path)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> Any:
        try:
            real = self._jail.real(path, follow=True)
            mode = 0o666
            if attr is not None and attr._flags & attr.FLAG_PERMISSIONS:
                mode = attr.st_mode & 0o7777
            fd = os.open(real, flags | os.O_CLOEXEC, mode)
        except OSError as err:
            return self._fail(err)
        return _Handle(fd, flags, real)

    def list_folder(self, path: str) -> Any:
        try:
            real = self._jail.real(path, follow=True)
            entries = []
            for name in os.listdir(real):
                attrs = paramiko.SFTPAttributes.from_stat(os.lstat(os.path.join(real, name)))
                attrs.filename = name
                entries.append(attrs)
            return entries
        except OSError as err:
            return self._fail(err)

    def stat(self, path: str) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self._jail.real(path, follow=True)))
        except OSError as err:
            return self._fail(err)

    def lstat(self, path: str) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.lstat(self._jail.real(path, follow=False)))
        except OSError as err:
            return self._fail(err)

    def remove(self, path: str) -> int:
        return self._do(lambda: os.unlink(self._jail.real(path, follow=False)))

    def rename(self, oldpath: str, newpath: str) -> int:
        # SFTPv3 RENAME must not replace: link() refuses an existing target atomically.
        def run() -> None:
            src = self._jail.real(oldpath, follow=False)
            dst = self._jail.real(newpath, follow=False)
            if os.path.isdir(src) and not os.path.islink(src):
                if os.path.lexists(dst):
                    raise FileExistsError(errno.EEXIST, "File exists")
                os.rename(src, dst)
            else:
                os.link(src, dst, follow_symlinks=False)
                os.unlink(src)

        return self._do(run)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._do(
            lambda: os.replace(
                self._jail.real(oldpath, follow=False), self._jail.real(newpath, follow=False)
            )
        )

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        mode = 0o777
        if attr is not None and attr._flags & attr.FLAG_PERMISSIONS:
            mode = attr.st_mode & 0o7777
        return self._do(lambda: os.mkdir(self._jail.real(path, follow=False), mode))

    def rmdir(self, path: str) -> int:
        return self._do(lambda: os.rmdir(self._jail.real(path, follow=False)))

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._do(lambda: _apply_attrs(self._jail.real(path, follow=True), attr))

    def symlink(self, target_path: str, path: str) -> int:
        return self._do(lambda: os.symlink(target_path, self._jail.real(path, follow=False)))

    def readlink(self, path: str) -> Any:
        try:
            return os.readlink(self._jail.real(path, follow=False))
        except OSError as err:
            return self._fail(err)

    def _do(self, action: Any) -> int:
        try:
            action()
        except OSError as err:
            return self._fail(err)
        return int(paramiko.SFTP_OK)


class _Interface(paramiko.ServerInterface):  # type: ignore[misc]
    """Authentication and channel policy for one connection."""

    def __init__(self, owner: "EmbeddedSshServer") -> None:
        self._owner = owner

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self._owner._note_auth_attempt()
        if key.asbytes() in self._owner._authorized:
            return int(paramiko.AUTH_SUCCESSFUL)
        return int(paramiko.AUTH_FAILED)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return int(paramiko.OPEN_SUCCEEDED)
        return int(paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self._owner._start_exec(channel, command)
        return True


class EmbeddedSshServer:
    """Serve ``root_dir`` over ssh on 127.0.0.1, an ephemeral port, one thread per connection.

    ``exec_allow``: None allows any command; otherwise argv (parsed with shlex) must start
    with one of the prefixes. ``exec_env``: environment for exec'd commands (None: inherit).
    """

    def __init__(
        self,
        root_dir: str,
        authorized_keys: Sequence[paramiko.PKey],
        host_key: Optional[paramiko.PKey] = None,
        *,
        exec_allow: Optional[Sequence[Sequence[str]]] = None,
        exec_env: Optional[Mapping[str, str]] = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not authorized_keys:
            raise TransportError("embedded ssh server needs at least one authorized key")
        self.root_dir = os.path.realpath(root_dir)
        self.host = host
        self.port = port
        self.host_key = host_key if host_key is not None else generate_key()
        self._authorized: Set[bytes] = {key.asbytes() for key in authorized_keys}
        self._exec_allow = None if exec_allow is None else [tuple(p) for p in exec_allow]
        self._exec_env = None if exec_env is None else dict(exec_env)
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._threads: List[threading.Thread] = []
        self._transports: List[paramiko.Transport] = []
        self._processes: List["subprocess.Popen[bytes]"] = []
        self._stopping = threading.Event()
        self.auth_attempts = 0
        self.exec_requests: List[List[str]] = []

    def _note_auth_attempt(self) -> None:
        with self._lock:
            self.auth_attempts += 1

    def start(self) -> None:
        """Bind and start accepting (called by ``__enter__``)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(16)
        except OSError as err:
            listener.close()
            raise TransportError(f"cannot listen on {self.host}:{self.port}: {err.strerror}") from err
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "sshserver-accept")

    def _spawn(self, target: Any, name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._spawn(self._serve, "sshserver-conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.set_log_channel(LOG_CHANNEL)
        with self._lock:
            if self._stopping.is_set():
                transport.close()
                return
            self._transports.append(transport)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler(
            "sftp", paramiko.SFTPServer, sftp_si=_JailedSftp, root=self.root_dir
        )
        try:
            transport.start_server(server=_Interface(self))
        except (paramiko.SSHException, OSError, EOFError):
            transport.close()

    def _start_exec(self, channel: paramiko.Channel, command: bytes) -> None:
        self._spawn(self._run_exec, "sshserver-exec", channel, command)

    def _allowed(self, argv: List[str]) -> bool:
        if self._exec_allow is None:
            return True
        return any(tuple(argv[: len(prefix)]) == prefix for prefix in self._exec_allow)

    def _run_exec(self, channel: paramiko.Channel, command: bytes) -> None:
        try:
            status = self._exec(channel, command)
            channel.send_exit_status(status)
            channel.shutdown_write()
            # paramiko answers the exec request only after check_channel_exec_request
            # returns; closing first would make the client see "Channel closed". So let
            # the client close (it does once it has read EOF), and only then give up.
            deadline = _CLOSE_GRACE_POLLS
            while not channel.closed and deadline > 0 and not self._stopping.is_set():
                self._stopping.wait(0.05)
                deadline -= 1
        except (paramiko.SSHException, OSError, EOFError):
            pass
        finally:
            try:
                channel.close()
            except (paramiko.SSHException, OSError, EOFError):
                pass  # the client is gone already (its transport died first)

    def _exec(self, channel: paramiko.Channel, command: bytes) -> int:
        try:
            argv = shlex.split(command.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            channel.sendall_stderr(b"sshserver: cannot parse command\n")
            return 2
        with self._lock:
            self.exec_requests.append(argv)
        if not argv or not self._allowed(argv):
            channel.sendall_stderr(b"sshserver: command not allowed on this server\n")
            return 126
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.root_dir,
                env=self._exec_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as err:
            channel.sendall_stderr(f"sshserver: {argv[0]}: {err.strerror}\n".encode())
            return 127
        with self._lock:
            self._processes.append(proc)
        feeder = threading.Thread(target=_feed_stdin, args=(channel, proc), daemon=True)
        feeder.start()
        err_pump = threading.Thread(
            target=_pump, args=(cast(IO[bytes], proc.stderr), channel.sendall_stderr), daemon=True
        )
        err_pump.start()
        _pump(cast(IO[bytes], proc.stdout), channel.sendall)
        err_pump.join()
        status = proc.wait()
        return status if status >= 0 else 128 - status

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            transports = list(self._transports)
            processes = list(self._processes)
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
        for transport in transports:
            transport.close()
        for proc in processes:
            proc.wait()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)

    def known_hosts_line(self) -> str:
        """The known_hosts line clients need to trust this server."""
        return known_hosts_line(self.host, self.port, self.host_key)

    def __enter__(self) -> "EmbeddedSshServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(source: IO[bytes], send: Any) -> None:
    while True:
        chunk = os.read(source.fileno(), _CHUNK)
        if not chunk:
            return
        try:
            send(chunk)
        except (OSError, paramiko.SSHException, EOFError):
            return


def _feed_stdin(channel: paramiko.Channel, proc: "subprocess.Popen[bytes]") -> None:
    stdin = cast(IO[bytes], proc.stdin)
    alive = True
    try:
        while True:
            data = channel.recv(_CHUNK)
            if not data:
                break
            if not alive:
                continue  # the command is gone: discard, so the client never waits on a full window
            try:
                stdin.write(data)
                stdin.flush()
            except OSError:
                alive = False
    except (OSError, paramiko.SSHException, EOFError):
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass
