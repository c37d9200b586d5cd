"""Test servers: a real OpenSSH ``sshd`` and the embedded paramiko one, with throwaway keys.

Root may log in by key only; the sftp subsystem is ``internal-sftp``. Skips cleanly when
sshd or ssh-keygen is missing or sshd cannot run here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import pytest

from pyostree.sshserver import EmbeddedSshServer, generate_key, write_private_key
from pyostree.transport import SshOptions

_READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class Sshd:
    """A running sshd and what a client needs to reach it."""

    host: str
    port: int
    user: str
    client_key: str  # private key path (ed25519, no passphrase)
    known_hosts: str  # known_hosts file trusting this server's host key
    host_key_line: str  # "TYPE BASE64" of the host key
    workdir: str
    pid: int = 0  # the listening sshd (its sessions and their commands descend from it)


def _find(name: str, extra: List[str]) -> Optional[str]:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _keygen(keygen: str, path: Path) -> None:
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "pyostree-test", "-f", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _pub_line(path: Path) -> str:
    fields = Path(str(path) + ".pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: "subprocess.Popen[bytes]") -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
                if sock.recv(8).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def _privsep_prefix() -> Optional[List[str]]:
    """Ensure /run/sshd exists; if it cannot be created, run sshd in a mount namespace."""
    if os.path.isdir("/run/sshd") or os.geteuid() != 0:
        return []
    try:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        return []
    except OSError:
        unshare = shutil.which("unshare")
        if unshare is None:
            return None
        script = 'mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd && exec "$@"'
        return [unshare, "--mount", "--", "sh", "-c", script, "sh"]


@contextlib.contextmanager
def running_sshd(workdir: Path, extra_config: Sequence[str] = ()) -> Iterator[Sshd]:
    """Start sshd with keys under ``workdir``; kill it on exit. Skips if it cannot run.

    ``extra_config``: more sshd_config lines (before the defaults: sshd takes the first)."""
    sshd = _find("sshd", ["/usr/sbin", "/usr/local/sbin"])
    keygen = _find("ssh-keygen", ["/usr/bin"])
    if sshd is None or keygen is None:
        pytest.skip("OpenSSH sshd/ssh-keygen not installed")
    prefix = _privsep_prefix()
    if prefix is None:
        pytest.skip("cannot create /run/sshd and no unshare")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_ed25519"
    _keygen(keygen, host_key)
    _keygen(keygen, client_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text(_pub_line(client_key) + "\n")
    user = pwd.getpwuid(os.geteuid()).pw_name
    log = workdir / "sshd.log"
    for _attempt in range(3):
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                list(extra_config) + [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    "PidFile none",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    f"AuthorizedKeysFile {authorized}",
                    f"AllowUsers {user}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                prefix + [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        if _wait_ready(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.skip(f"sshd did not start: {log.read_text()[-300:]}")
    known_hosts = workdir / "known_hosts"
    host_line = _pub_line(host_key)
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_line}\n")
    try:
        yield Sshd(
            host="127.0.0.1",
            port=port,
            user=user,
            client_key=str(client_key),
            known_hosts=str(known_hosts),
            host_key_line=host_line,
            workdir=str(workdir),
            pid=proc.pid,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

class EmbeddedSetup:
    """An embedded server plus a client key and a known_hosts file trusting it."""

    def __init__(self, base: Path) -> None:
        self.served = base / "served"
        self.served.mkdir()
        self.home = base / "home"
        (self.home / ".ssh").mkdir(parents=True)
        self.client_key = generate_key()
        self.key_path = str(base / "client_key")
        write_private_key(self.client_key, self.key_path)
        self.server = EmbeddedSshServer(str(self.served), [self.client_key])
        self.known_hosts = str(base / "known_hosts")

    def options(self, *extra: Tuple[str, str], trusted: bool = True) -> SshOptions:
        if trusted:
            Path(self.known_hosts).write_text(self.server.known_hosts_line() + "\n")
        return SshOptions(
            port=self.server.port,
            identity_files=(self.key_path,),
            options=(("UserKnownHostsFile", self.known_hosts), ("IdentitiesOnly", "yes")) + extra,
            home=str(self.home),
        )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSetup]:
    setup = EmbeddedSetup(tmp_path_factory.mktemp("embedded"))
    with setup.server:
        yield setup


@pytest.fixture(scope="module")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def sshd_options(server: Sshd, vendor: str, home: Path, *extra: Tuple[str, str]) -> SshOptions:
    """Options that reach ``server`` without touching the real ~/.ssh."""
    os.makedirs(home / ".ssh", exist_ok=True)
    return SshOptions(
        port=server.port,
        user=server.user,
        identity_files=(server.client_key,),
        options=(("UserKnownHostsFile", server.known_hosts), ("IdentitiesOnly", "yes")) + extra,
        vendor=vendor,
        home=str(home),
        config_file=os.devnull if vendor == "openssh" else None,
    )


class TcpRelay:
    """A TCP forwarder on 127.0.0.1 to ``target_port`` that can be frozen: it then stops
    passing bytes either way but keeps both connections open, as a network that silently
    drops everything (a cable pulled somewhere between) looks to both ends."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = int(self._listener.getsockname()[1])
        self.frozen = threading.Event()
        self.connections = 0
        self._sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if self.frozen.is_set():
                continue  # dropped: neither end hears of it
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()
