"""The paramiko ssh vendor: ~/.ssh/config, known_hosts, agent and key files, all in-process."""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import logging
import os
import pwd
import re
import shlex
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from . import _paramiko  # noqa: F401,I001  # first: paramiko without invoke
import paramiko  # type: ignore[import-untyped]


from ..errors import TransportError
from ._alive import ServerAlive
from ._streams import CallableReader, ViewWriter
from .base import ExecChannel, FileTransport
from .destination import Destination
from .hostkeys import HostKeyPolicy, KnownHosts, known_hosts_name, parse_strict
from .sftp import ExtensionAwareSFTPClient, SftpFileTransport
from .connection import SshConnection
from .ssh_options import NeedsOpenSsh, SshOptions, parse_ssh_option, unsupported_option

__all__ = [
    "ParamikoConnection", "ParamikoExecChannel", "ResolvedSsh", "resolve", "connect_paramiko",
    "openssh_equivalent",
]

#: paramiko logs under this name for our connections; a NullHandler keeps logging's
#: last-resort handler from printing its errors (library code never prints).
LOG_CHANNEL = "pyostree.transport.ssh"
logging.getLogger(LOG_CHANNEL).addHandler(logging.NullHandler())

DEFAULT_CONNECT_TIMEOUT = 30.0
#: How long close() waits for paramiko's transport thread once its socket is shut down.
_THREAD_EXIT_SECONDS = 2.0
#: Read (never written) after the user's known_hosts files, as OpenSSH does.
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts",)
_DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
#: Tried first, when the server offers them: AES-GCM needs no separate MAC and costs about
#: half the CPU of paramiko's default aes128-ctr + hmac-sha2-256 per byte (110 MB over
#: loopback: 0.15 s against 0.3 s), on the server as well. The rest keep paramiko's order.
_CHEAPEST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: Offered only when the user's Ciphers asks for them, as OpenSSH has done since 7.x:
#: CBC modes (and 3DES, a 64-bit block) are open to known attacks; every server we meet
#: offers CTR or GCM.
_LEGACY_CIPHERS = ("*-cbc", "3des-*")
#: Largest packet the peer takes, for a channel that does not say (OpenSSH's).
_PACKET_GUESS = 32768
#: ProxyJump hops followed at most (each a connection of its own), and nested jumps.
_MAX_JUMPS = 8
_TRUE = ("yes", "true")
_FALSE = ("no", "false")


@dataclass(frozen=True)
class ResolvedSsh:
    """Every setting after merging destination, command line and ~/.ssh/config."""

    hostname: str
    port: int
    user: str
    identity_files: Tuple[str, ...]  # explicit (-i, -o, config): missing ones are errors if from -i
    explicit_identities: Tuple[str, ...]
    identities_only: bool
    agent_socket: Optional[str]
    host_key_name: str  # name looked up in known_hosts
    host_key_policy: HostKeyPolicy
    connect_timeout: float
    ciphers: Tuple[str, ...] = ()  # in preference order; () = paramiko's own
    compression: bool = False
    server_alive_interval: int = 0  # seconds; 0 = off
    server_alive_count_max: int = 3
    tcp_keepalive: bool = True
    connection_attempts: int = 1
    host_key_types: Optional[Tuple[str, ...]] = None  # HostKeyAlgorithms; None = ours
    pubkey_algorithms: Optional[Tuple[str, ...]] = None  # PubkeyAcceptedAlgorithms; None = all
    certificate_files: Tuple[str, ...] = ()
    proxy_jump: Tuple[str, ...] = ()  # hops, first first
    proxy_command: Optional[str] = None  # tokens expanded
    control_path: Optional[str] = None  # as given: ssh -O check expands it
    #: For a non-22 port without HostKeyAlias: the bare host, whose listed key OpenSSH also takes.
    portless_name: Optional[str] = None


def _expand(path: str, home: Optional[str]) -> str:
    if home is not None and (path == "~" or path.startswith("~/")):
        return home + path[1:]
    return path


def _yes_no(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise TransportError(f"bad {key} value {value!r} (expected yes or no)")


def _local_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


_TILDE = re.compile(r'(?<=[\s="])~(?=[/"\s]|$)')


def _pin_home(text: str, home: str) -> str:
    """Expand ``~`` in config values to ``home`` ourselves: paramiko would use $HOME."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            lines.append(line)
            continue
        lines.append(_TILDE.sub(lambda _match: home, line))
    return "\n".join(lines) + "\n"


def _config_path(opts: SshOptions) -> Optional[str]:
    path = opts.config_file
    if path is None and opts.home is not None:
        path = os.path.join(opts.home, ".ssh", "config")
    return path


def _load_config(opts: SshOptions, host: str) -> Dict[str, Any]:
    path = _config_path(opts)
    if path is None or not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if opts.home is not None:
            text = _pin_home(text, opts.home)
        if "exec" in text.lower():  # perhaps a Match exec: paramiko needs invoke for it
            _paramiko.enable_match_exec()
        config = paramiko.SSHConfig.from_text(text)
        return dict(config.lookup(host))
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError, paramiko.SSHException) as err:
        raise TransportError(f"cannot read ssh config {path}: {err}") from err


def _quoted(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def openssh_equivalent(dest: Destination, opts: SshOptions) -> SshOptions:
    """``opts`` for the openssh vendor, reading what the paramiko vendor reads.

    ssh finds ``~/.ssh`` through the passwd entry, the paramiko vendor through ``home``: the
    config file it read (or none: ``-F /dev/null``), its default known_hosts file and its
    default keys are passed explicitly, each only where neither -o nor the config names one.
    """
    config: Dict[str, Any] = _load_config(opts, dest.host) if dest.host is not None else {}
    given = {key.lower() for key, _ in opts.options}
    extra: List[Tuple[str, str]] = []
    identities = opts.identity_files
    if opts.home is not None:
        ssh_dir = os.path.join(opts.home, ".ssh")
        if "userknownhostsfile" not in given and "userknownhostsfile" not in config:
            extra.append(("UserKnownHostsFile", _quoted(os.path.join(ssh_dir, "known_hosts"))))
        if not identities and "identityfile" not in given and "identityfile" not in config:
            identities = tuple(path for path in (os.path.join(ssh_dir, name) for name in _DEFAULT_KEY_NAMES)
                               if os.path.isfile(path))
    path = _config_path(opts)
    return dataclasses.replace(
        opts, vendor="openssh", options=opts.options + tuple(extra), identity_files=identities,
        config_file=path if path is not None and os.path.isfile(path) else os.devnull,
    )


def resolve(dest: Destination, opts: SshOptions) -> ResolvedSsh:
    """Merge settings; the first value obtained wins, as in OpenSSH."""
    if dest.host is None:
        raise TransportError("ssh destination has no host")
    cli: Dict[str, List[str]] = {}
    for raw_key, value in opts.options:
        key, _ = parse_ssh_option(f"{raw_key}={value}", vendor="paramiko")
        refusal = unsupported_option(key, value)
        if refusal is not None:
            raise refusal
        cli.setdefault(key, []).append(value)

    def first(key: str) -> Optional[str]:
        values = cli.get(key)
        return values[0] if values else None

    config = _load_config(opts, dest.host)
    hostname = first("HostName") or config.get("hostname") or dest.host

    port_text: Optional[str] = None
    if dest.port is not None:
        port_text = str(dest.port)
    elif opts.port is not None:
        port_text = str(opts.port)
    else:
        port_text = first("Port") or config.get("port")
    port = 22
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise TransportError(f"bad ssh port {port_text!r}")
        port = int(port_text)

    user = dest.user or opts.user or first("User") or config.get("user") or _local_user()

    explicit = tuple(_expand(p, opts.home) for p in opts.identity_files + tuple(cli.get("IdentityFile", ())))
    configured = tuple(_expand(p, opts.home) for p in config.get("identityfile", ()))
    identities = explicit + tuple(p for p in configured if p not in explicit)
    if not identities and opts.home is not None:
        identities = tuple(os.path.join(opts.home, ".ssh", name) for name in _DEFAULT_KEY_NAMES)

    only_text = first("IdentitiesOnly") or config.get("identitiesonly")
    identities_only = _yes_no("IdentitiesOnly", only_text) if only_text else False

    agent_text = first("IdentityAgent") or config.get("identityagent")
    agent_socket = opts.agent_socket
    if agent_text is not None:
        agent_socket = None if agent_text.lower() == "none" else _expand(agent_text, opts.home)

    known_text = first("UserKnownHostsFile") or config.get("userknownhostsfile")
    if known_text is not None:
        known_files = tuple(_expand(p, opts.home) for p in known_text.split() if p.lower() != "none")
    elif opts.home is not None:
        known_files = (os.path.join(opts.home, ".ssh", "known_hosts"),)
    else:
        known_files = ()
    global_text = first("GlobalKnownHostsFile") or config.get("globalknownhostsfile")
    global_files: Tuple[str, ...] = GLOBAL_KNOWN_HOSTS
    if global_text is not None:
        global_files = tuple(_expand(p, opts.home) for p in global_text.split() if p.lower() != "none")
    strict = parse_strict(first("StrictHostKeyChecking") or config.get("stricthostkeychecking") or "yes")

    batch_text = first("BatchMode") or config.get("batchmode")
    if batch_text is not None:
        _yes_no("BatchMode", batch_text)  # we never prompt: validated, nothing else to do

    timeout = DEFAULT_CONNECT_TIMEOUT
    timeout_text = first("ConnectTimeout") or config.get("connecttimeout")
    if timeout_text is not None:
        if not timeout_text.isdigit() or int(timeout_text) == 0:
            raise TransportError(f"bad ConnectTimeout value {timeout_text!r} (expected seconds > 0)")
        timeout = float(timeout_text)

    alias = first("HostKeyAlias") or config.get("hostkeyalias")
    ciphers = cipher_order(first("Ciphers") or config.get("ciphers"), paramiko.Transport._preferred_ciphers)

    def setting(key: str) -> Optional[str]:
        value = first(key) or config.get(key.lower())
        return None if value is None else str(value)

    def flag(key: str, default: bool) -> bool:
        text = setting(key)
        return default if text is None else _yes_no(key, text)

    host_key_types: Optional[Tuple[str, ...]] = None
    host_key_text = setting("HostKeyAlgorithms")
    if host_key_text is not None:
        host_key_types = algorithm_list("HostKeyAlgorithms", host_key_text,
                                        paramiko.Transport._preferred_keys)
    pubkey_text = setting("PubkeyAcceptedAlgorithms") or setting("PubkeyAcceptedKeyTypes")
    pubkey_algorithms: Optional[Tuple[str, ...]] = None
    if pubkey_text is not None:
        pubkey_algorithms = algorithm_list("PubkeyAcceptedAlgorithms", pubkey_text,
                                           paramiko.Transport._preferred_pubkeys)
    certificates = tuple(_expand(p, opts.home) for p in cli.get("CertificateFile", ()))
    configured_certs = config.get("certificatefile", ())
    if isinstance(configured_certs, str):
        configured_certs = (configured_certs,)
    certificates += tuple(_expand(p, opts.home) for p in configured_certs if _expand(p, opts.home) not in certificates)

    # From -o only: a config's AddKeysToAgent (often under ``Host *``) is for interactive
    # ssh; the push loads the key either way, and handing every push to ssh for it is not
    # what the user asked.
    add_keys = first("AddKeysToAgent")
    if add_keys is not None and add_keys.strip().lower() != "no":
        raise NeedsOpenSsh(f"AddKeysToAgent {add_keys}",
                           f"the paramiko vendor cannot add keys to the agent (AddKeysToAgent {add_keys}); "
                           "use --ssh=openssh")
    control_path = setting("ControlPath")
    if control_path is not None and control_path.strip().lower() == "none":
        control_path = None

    proxy_jump, proxy_command = _proxy_settings(first, config, hostname, port, user, dest.host)
    return ResolvedSsh(
        hostname=hostname,
        port=port,
        user=user,
        identity_files=identities,
        explicit_identities=explicit,
        identities_only=identities_only,
        agent_socket=agent_socket,
        host_key_name=alias.lower() if alias else known_hosts_name(hostname, port),
        host_key_policy=HostKeyPolicy(
            known_hosts_files=known_files, strict=strict, global_files=global_files,
            hash_names=flag("HashKnownHosts", False),
        ),
        connect_timeout=timeout,
        ciphers=ciphers,
        portless_name=hostname.lower() if alias is None and port != 22 else None,
        compression=flag("Compression", False),
        server_alive_interval=_count("ServerAliveInterval", setting("ServerAliveInterval"), 0),
        server_alive_count_max=_count("ServerAliveCountMax", setting("ServerAliveCountMax"), 3),
        tcp_keepalive=flag("TCPKeepAlive", True),
        connection_attempts=max(_count("ConnectionAttempts", setting("ConnectionAttempts"), 1), 1),
        host_key_types=host_key_types,
        pubkey_algorithms=pubkey_algorithms,
        certificate_files=certificates,
        proxy_jump=proxy_jump,
        proxy_command=proxy_command,
        control_path=control_path,
    )


def _count(key: str, text: Optional[str], default: int) -> int:
    if text is None:
        return default
    if not text.strip().isdigit() or len(text.strip()) > 9:
        raise TransportError(f"bad {key} value {text!r} (expected a whole number)")
    return int(text)


def _proxy_settings(first: Callable[[str], Optional[str]], config: Dict[str, Any], hostname: str,
                    port: int, user: str, original: str) -> Tuple[Tuple[str, ...], Optional[str]]:
    """(ProxyJump hops, ProxyCommand with its %-tokens expanded); the command line's one
    beats the config's, and ProxyJump beats ProxyCommand, "none" meaning neither."""
    jump, command = first("ProxyJump"), first("ProxyCommand")
    if jump is None and command is None:
        jump, command = config.get("proxyjump"), config.get("proxycommand")  # paramiko expands its tokens
    elif command is not None:
        command = _expand_tokens(command, hostname, port, user, original)
    if jump is not None:
        if jump.strip().lower() == "none":
            return (), None
        hops = tuple(hop.strip() for hop in jump.split(","))
        if not all(hops) or len(hops) > _MAX_JUMPS:
            raise TransportError(f"bad ProxyJump value {jump!r}")
        return hops, None
    if command is None or command.strip().lower() == "none":
        return (), None
    return (), command


def _expand_tokens(text: str, hostname: str, port: int, user: str, original: str) -> str:
    values = {"h": hostname, "p": str(port), "r": user, "n": original, "%": "%"}

    def one(match: "re.Match[str]") -> str:
        token = match.group(1)
        if token not in values:
            raise TransportError(f"unknown token %{token} in {text!r} (the paramiko vendor knows %h %p %r %n %%)")
        return values[token]

    return re.sub(r"%(.)", one, text)


def algorithm_list(key: str, spec: str, supported: Sequence[str]) -> Tuple[str, ...]:
    """The algorithms an OpenSSH list (``a,b``, ``+a``, ``-a*``, ``^a``) leaves of ``supported``
    (paramiko's, in its order of preference), best first. Names paramiko does not know are
    skipped; none left means only ssh could do it."""
    text = spec.strip()
    prefix = text[:1] if text[:1] in "+-^" else ""
    names = [n.strip() for n in text[len(prefix):].split(",") if n.strip()]
    if not names or any(not n.isascii() or any(ch.isspace() for ch in n) for n in names):
        raise TransportError(f"bad {key} value {spec!r}")

    def named(algorithm: str) -> bool:
        return any(fnmatch.fnmatchcase(algorithm, n) for n in names)

    default = tuple(supported)
    if prefix == "-":
        chosen = tuple(a for a in default if not named(a))
    elif prefix == "+":
        chosen = default
    elif prefix == "^":
        head = tuple(a for a in default if named(a))
        chosen = head + tuple(a for a in default if a not in head)
    else:
        chosen = tuple(dict.fromkeys(a for n in names for a in default if fnmatch.fnmatchcase(a, n)))
    if not chosen:
        raise NeedsOpenSsh(f"{key} {spec}", f"no algorithm that paramiko supports is left in {key} {spec!r} "
                                            f"(it knows: {', '.join(supported)}); use --ssh=openssh")
    return chosen


def cipher_order(spec: Optional[str], supported: Sequence[str]) -> Tuple[str, ...]:
    """The ciphers to offer, best first, from an OpenSSH ``Ciphers`` value (or None).

    Without one: the cheapest first, then the rest of ``supported`` but CBC and 3DES (as
    OpenSSH). A plain list is used as given, ``+list`` appends to that default, ``-list``
    removes from it (patterns allowed), ``^list`` puts at its head; names paramiko does not
    know are skipped, as long as one is left. Only a list that names them brings CBC or 3DES.
    """
    default = tuple(c for c in _CHEAPEST_CIPHERS if c in supported)
    default += tuple(c for c in supported if c not in default and not _is_legacy(c))
    if spec is None:
        if not default:
            raise TransportError(f"paramiko supports no cipher but CBC or 3DES ({', '.join(supported)})")
        return default
    text = spec.strip()
    prefix = text[:1] if text[:1] in "+-^" else ""
    names = [n.strip() for n in text[len(prefix):].split(",") if n.strip()]
    if not names or any(not n.isascii() or any(ch.isspace() for ch in n) for n in names):
        raise TransportError(f"bad Ciphers value {spec!r}")
    if prefix == "-":
        chosen = tuple(c for c in default if not any(fnmatch.fnmatchcase(c, n) for n in names))
    elif prefix == "+":
        chosen = default + tuple(n for n in names if n in supported and n not in default)
    elif prefix == "^":
        head = tuple(n for n in names if n in supported)
        chosen = head + tuple(c for c in default if c not in head)
    else:
        chosen = tuple(dict.fromkeys(n for n in names if n in supported))
    if not chosen:
        raise TransportError(f"no cipher left that paramiko supports in Ciphers {spec!r} "
                             f"(it knows: {', '.join(supported)})")
    return chosen


def _is_legacy(cipher: str) -> bool:
    return any(fnmatch.fnmatchcase(cipher, pattern) for pattern in _LEGACY_CIPHERS)


class _SocketAgent(paramiko.agent.AgentSSH):  # type: ignore[misc]
    """An ssh-agent client for an explicit socket path (paramiko's own reads the environment)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            self._connect(conn)
        except (OSError, paramiko.SSHException):
            conn.close()
            self._conn = None
            self._keys = ()

    def close(self) -> None:
        self._close()


def _read_key(path: str) -> paramiko.PKey:
    if hasattr(paramiko.PKey, "from_path"):  # paramiko >= 3.2 detects the key type itself
        return paramiko.PKey.from_path(path)
    last: Exception = ValueError(f"{path}: unsupported key type")
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key_file(path)
        except paramiko.PasswordRequiredException:
            raise
        except paramiko.SSHException as err:
            last = err
    raise last


def _load_key_file(path: str, explicit: bool, notes: List[str]) -> Optional[paramiko.PKey]:
    if not os.path.isfile(path):
        if explicit:
            raise TransportError(f"identity file {path} not found")
        return None
    try:
        return _read_key(path)
    except (paramiko.PasswordRequiredException, TypeError):
        # paramiko raises TypeError for an encrypted PEM key read without a password.
        notes.append(f"{path} is passphrase-protected (use ssh-agent)")
    except (OSError, ValueError, paramiko.SSHException) as err:
        if explicit:
            raise TransportError(f"cannot load identity file {path}: {err}") from err
        notes.append(f"{path} unreadable")
    return None


def _file_keys(resolved: ResolvedSsh, notes: List[str]) -> Iterator[Tuple[str, paramiko.PKey]]:
    """The identity files' keys in order. Explicit ones (-i, -o IdentityFile) are loaded
    at once, so a bad one is an error before anything is tried; the others only when it
    is their turn: loading an RSA key costs about 0.25 s (cryptography checks it), wasted
    when an id_ed25519 before it is accepted."""
    explicit = {path: _load_key_file(path, True, notes)
                for path in resolved.identity_files if path in resolved.explicit_identities}

    def keys() -> Iterator[Tuple[str, paramiko.PKey]]:
        for path in resolved.identity_files:
            key = explicit[path] if path in explicit else _load_key_file(path, False, notes)
            if key is not None:
                yield path, key

    return keys()


def _candidate_keys(resolved: ResolvedSsh, agent: Optional[_SocketAgent],
                    files: Iterator[Tuple[str, paramiko.PKey]]) -> Iterator[Tuple[str, paramiko.PKey]]:
    """File keys, then the agent's (with IdentitiesOnly, only those also in a file)."""
    wanted: Optional[Set[bytes]] = None
    if agent is not None and resolved.identities_only:
        loaded = list(files)  # the agent's keys are matched against all of them
        wanted = {key.asbytes() for _, key in loaded}
        files = iter(loaded)
    yield from files
    if agent is None:
        return
    for agent_key in agent.get_keys():
        if wanted is not None and agent_key.asbytes() not in wanted:
            continue
        yield f"agent key {agent_key.get_fingerprint().hex()[:16]}", agent_key


def _order_host_key_types(transport: paramiko.Transport, known: Sequence[str]) -> None:
    # Ask for a key type known_hosts already has, as OpenSSH does, so a rotated
    # preference order on the server does not look like an unknown host.
    if not known:
        return
    options = transport.get_security_options()

    def base_type(algo: str) -> str:
        algo = algo.replace("-cert-v01@openssh.com", "")
        return "ssh-rsa" if algo.startswith("rsa-sha2-") else algo

    current = list(options.key_types)
    preferred = [a for a in current if base_type(a) in known]
    options.key_types = preferred + [a for a in current if a not in preferred]


def _no_delay(sock: socket.socket) -> None:
    """Send small packets at once, as OpenSSH does for sessions: with Nagle's algorithm a
    request written while an earlier one is unacknowledged waits for the peer's delayed
    ACK (up to 40 ms, several times per push; a no-op push took 0.25 s instead of 0.18)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (a unix socket, say): nothing to tune


_TCP_QUICKACK: Optional[int] = getattr(socket, "TCP_QUICKACK", None)


class _QuickAckSocket(socket.socket):
    """A TCP socket that acknowledges every segment at once (Linux ``TCP_QUICKACK``,
    which the kernel clears again by itself, hence a set per ``recv``).

    sshd leaves Nagle's algorithm on until a session starts. When it answers a request
    with two writes, the second waits for our ACK of the first, and our kernel delays
    that ACK, having nothing to send back: 40 ms. That hit every push once, at the
    channel open (43 ms of a 0.7 s push, measured). paramiko reads with ``recv`` only."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if _TCP_QUICKACK is not None:
            try:
                self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                pass
        return super().recv(bufsize, flags)


def _quick_ack(sock: socket.socket) -> socket.socket:
    """``sock`` as a :class:`_QuickAckSocket` (same descriptor and timeout)."""
    if _TCP_QUICKACK is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    timeout = sock.gettimeout()
    quick = _QuickAckSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    quick.settimeout(timeout)
    return quick


def connect_paramiko(dest: Destination, opts: SshOptions) -> "ParamikoConnection":
    """Connect, check the host key before sending anything, then authenticate by public key.

    Raises NeedsOpenSsh (before connecting, but for a host vouched for by a certificate
    authority) when a setting needs OpenSSH's ssh.
    """
    resolved = resolve(dest, opts)
    if resolved.control_path is not None and _master_running(dest, opts):
        raise NeedsOpenSsh("a ControlMaster is running at ControlPath",
                           "a ControlMaster is running at ControlPath; use --ssh=openssh")
    jumps: List[paramiko.Transport] = []
    try:
        sock = _reach(resolved, opts, jumps, depth=0)
        transport = _session(resolved, sock)
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise
    return ParamikoConnection(transport, resolved.connect_timeout, jumps=jumps,
                              server_alive=(resolved.server_alive_interval, resolved.server_alive_count_max))


def _master_running(dest: Destination, opts: SshOptions) -> bool:
    """Whether ``ssh -O check`` finds a master at the ControlPath (ssh expands its tokens)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return False  # nobody but ssh could have started one
    from .openssh_vendor import master_running, ssh_base_argv

    argv = ssh_base_argv(dest, openssh_equivalent(dest, opts), ssh)
    assert dest.host is not None
    return master_running(argv + ["-O", "check", "--", dest.host])


def _reach(resolved: ResolvedSsh, opts: SshOptions, jumps: List[paramiko.Transport], depth: int) -> Any:
    """A socket to ``resolved``'s host: TCP, a ProxyCommand's stdio, or a direct-tcpip
    channel through the ProxyJump hops (each connected, checked and authenticated in turn,
    from its own config; the transports are appended to ``jumps``)."""
    shown = f"{resolved.hostname}:{resolved.port}"
    if resolved.proxy_command is not None:
        try:
            proxy = paramiko.ProxyCommand(f"/bin/sh -c {shlex.quote('exec ' + resolved.proxy_command)}")
        except (paramiko.SSHException, OSError) as err:
            raise TransportError(f"cannot start ProxyCommand for {shown}: {err}") from err
        proxy.settimeout(resolved.connect_timeout)
        return proxy
    if resolved.proxy_jump:
        if depth >= _MAX_JUMPS:
            raise TransportError(f"ProxyJump nests deeper than {_MAX_JUMPS} hops (a loop?) reaching {shown}")
        hop_opts = SshOptions(home=opts.home, agent_socket=opts.agent_socket, config_file=opts.config_file)
        previous: Optional[paramiko.Transport] = None
        for hop in resolved.proxy_jump:
            hop_resolved = resolve(_jump_destination(hop), hop_opts)
            if previous is None:
                sock = _reach(hop_resolved, hop_opts, jumps, depth + 1)  # the first hop's own proxies count
            else:
                sock = _forward(previous, hop_resolved)
            previous = _session(hop_resolved, sock)
            jumps.append(previous)
        assert previous is not None
        return _forward(previous, resolved)
    last: Optional[OSError] = None
    for attempt in range(resolved.connection_attempts):
        if attempt:
            time.sleep(1.0)  # as ssh waits between its ConnectionAttempts
        try:
            tcp = socket.create_connection((resolved.hostname, resolved.port), timeout=resolved.connect_timeout)
            break
        except OSError as err:
            last = err
    else:
        assert last is not None
        raise TransportError(f"cannot connect to {shown}: {last.strerror or last}") from last
    _no_delay(tcp)
    if resolved.tcp_keepalive:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return _quick_ack(tcp)


def _jump_destination(hop: str) -> Destination:
    """``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` of a ProxyJump hop."""
    text = hop[len("ssh://"):] if hop.startswith("ssh://") else hop
    user, _, rest = text.rpartition("@")
    port: Optional[int] = None
    host = rest
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail:
            if not tail.startswith(":") or not tail[1:].isdigit():
                raise TransportError(f"bad ProxyJump hop {hop!r}")
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        if not port_text.isdigit():
            raise TransportError(f"bad ProxyJump hop {hop!r}")
        port = int(port_text)
    if not host or (port is not None and not 1 <= port <= 65535) or any(c.isspace() for c in hop):
        raise TransportError(f"bad ProxyJump hop {hop!r}")
    return Destination("ssh", "", host=host, user=user or None, port=port)


def _forward(transport: paramiko.Transport, target: ResolvedSsh) -> paramiko.Channel:
    try:
        return transport.open_channel("direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                                      timeout=target.connect_timeout)
    except (paramiko.SSHException, OSError, EOFError) as err:
        raise TransportError(f"jump host cannot reach {target.hostname}:{target.port}: {err}") from err


def _session(resolved: ResolvedSsh, sock: Any) -> paramiko.Transport:
    """Handshake over ``sock``, check the host key, authenticate: an ssh session."""
    shown = f"{resolved.hostname}:{resolved.port}"
    names = (resolved.host_key_name,) + ((resolved.portless_name,) if resolved.portless_name else ())
    known = KnownHosts(resolved.host_key_policy.all_files, names=names)
    disabled: Dict[str, List[str]] = {}
    if resolved.pubkey_algorithms is not None:
        disabled["pubkeys"] = [a for a in paramiko.Transport._preferred_pubkeys
                               if a not in resolved.pubkey_algorithms]
    try:
        transport = paramiko.Transport(sock, disabled_algorithms=disabled or None)
    except BaseException:
        sock.close()
        raise
    transport.set_log_channel(LOG_CHANNEL)
    try:
        options = transport.get_security_options()
        if resolved.ciphers:
            options.ciphers = resolved.ciphers
        if resolved.host_key_types is not None:
            options.key_types = resolved.host_key_types
        else:
            _order_host_key_types(transport, known.key_types(resolved.host_key_name))
        if resolved.compression:
            transport.use_compression(True)
        transport.banner_timeout = resolved.connect_timeout
        transport.auth_timeout = resolved.connect_timeout
        try:
            transport.start_client(timeout=resolved.connect_timeout)
            server_key = transport.get_remote_server_key()
        except (paramiko.SSHException, OSError, EOFError) as err:
            detail = str(err) if transport.is_active() else f"connection closed ({err})"
            if resolved.proxy_command is not None:
                detail += " through ProxyCommand"
            raise TransportError(f"ssh handshake with {shown} failed: {detail}") from err
        known.verify(resolved.host_key_name, shown, server_key, resolved.host_key_policy,
                     portless_name=resolved.portless_name)
        _authenticate(transport, resolved, shown)
    except BaseException:
        transport.close()
        raise
    return transport


def _key_algorithms(key: paramiko.PKey) -> Tuple[str, ...]:
    """The signature algorithms a key (or its certificate) would be offered with."""
    blob = getattr(key, "public_blob", None)
    name = blob.key_type if blob is not None else key.get_name()
    if name == "ssh-rsa":
        return ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
    if name == "ssh-rsa-cert-v01@openssh.com":
        return ("rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com", name)
    return (name,)


def _certifies(blob: "paramiko.PublicBlob", key: paramiko.PKey) -> bool:
    """Whether an OpenSSH certificate is for ``key``: after its type and nonce it holds
    the key's public fields, as the plain key blob holds them after its type."""
    try:
        cert = paramiko.Message(blob.key_blob)
        cert.get_text()
        cert.get_binary()
        plain = paramiko.Message(key.asbytes())
        plain.get_text()
        fields = key.asbytes()[plain.packet.tell():]
        return bool(blob.key_blob[cert.packet.tell():].startswith(fields))
    except (paramiko.SSHException, ValueError, IndexError, TypeError):
        return False


def _with_certificates(resolved: ResolvedSsh, keys: Iterator[Tuple[str, paramiko.PKey]]
                       ) -> Iterator[Tuple[str, paramiko.PKey]]:
    """Each key, first with each certificate made for it (CertificateFile, or the
    identity's ``-cert.pub`` beside it, as ssh does), then plain."""
    explicit: List["paramiko.PublicBlob"] = []
    for path in resolved.certificate_files:
        try:
            explicit.append(paramiko.PublicBlob.from_file(path))
        except (OSError, ValueError, paramiko.SSHException) as err:
            raise TransportError(f"cannot load certificate file {path}: {err}") from err
    for label, key in keys:
        blobs = list(explicit)
        beside = f"{label}-cert.pub"
        if os.path.isfile(beside):
            try:
                blobs.append(paramiko.PublicBlob.from_file(beside))
            except (OSError, ValueError, paramiko.SSHException):
                pass  # ssh skips an unreadable one too
        for blob in blobs:
            if blob.key_type.endswith("-cert-v01@openssh.com") and _certifies(blob, key):
                key.public_blob = blob
                yield f"{label} (certificate)", key
        key.public_blob = None
        yield label, key


def _authenticate(transport: paramiko.Transport, resolved: ResolvedSsh, shown: str) -> None:
    notes: List[str] = []
    files = _file_keys(resolved, notes)
    agent = _SocketAgent(resolved.agent_socket) if resolved.agent_socket is not None else None
    accepted = resolved.pubkey_algorithms
    tried = 0
    try:
        for _label, key in _with_certificates(resolved, _candidate_keys(resolved, agent, files)):
            if accepted is not None and not any(a in accepted for a in _key_algorithms(key)):
                notes.append(f"{_label} skipped (PubkeyAcceptedAlgorithms)")
                continue
            tried += 1
            try:
                transport.auth_publickey(resolved.user, key)
            except paramiko.BadAuthenticationType as err:
                allowed = ",".join(err.allowed_types) or "none"
                raise TransportError(
                    f"authentication to {resolved.user}@{shown} failed: server does not accept "
                    f"public keys (allows: {allowed})"
                ) from err
            except paramiko.AuthenticationException:
                continue
            except (paramiko.SSHException, OSError, EOFError) as err:
                raise TransportError(f"authentication to {resolved.user}@{shown} failed: {err}") from err
            if transport.is_authenticated():
                return
    finally:
        if agent is not None:
            agent.close()
    detail = f"tried {tried} key(s)" if tried else "no keys to offer (no -i, agent or default key)"
    if notes:
        detail += "; " + "; ".join(notes)
    raise TransportError(f"authentication to {resolved.user}@{shown} failed: {detail}")


class ParamikoExecChannel(ExecChannel):
    """An exec request on a paramiko channel; closing stdin sends EOF."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel
        self.stdin = io.BufferedWriter(ViewWriter(self._send, self._shutdown_write))
        self.stdout = io.BufferedReader(CallableReader(self._recv))
        self.stderr = io.BufferedReader(CallableReader(self._recv_stderr))

    def _send(self, data: memoryview) -> None:
        """Send in packet-sized bytes pieces: ``Channel.send`` takes at most
        ``out_max_packet_size - 64`` bytes a packet, and a bytes piece that size goes into
        the packet as is, where a view costs paramiko two caught exceptions a packet
        (``asbytes``) and whole bytes would be re-sliced, copying the rest, every packet.
        A wrong size only costs speed: ``sendall`` sends whatever it is given."""
        channel = self._channel
        step = max(int(getattr(channel, "out_max_packet_size", _PACKET_GUESS)) - 64, 1024)
        try:
            for start in range(0, len(data), step):
                channel.sendall(bytes(data[start:start + step]))
        except (OSError, paramiko.SSHException, EOFError) as err:
            detail = str(err) or "connection closed"  # paramiko raises a bare EOFError
            raise TransportError(f"cannot write to remote command: {detail}") from err

    def _shutdown_write(self) -> None:
        try:
            self._channel.shutdown_write()
        except (OSError, paramiko.SSHException, EOFError):
            pass

    def _recv(self, n: int) -> bytes:
        data: bytes = self._channel.recv(n)
        return data

    def _recv_stderr(self, n: int) -> bytes:
        data: bytes = self._channel.recv_stderr(n)
        return data

    def wait(self) -> int:
        status: int = self._channel.recv_exit_status()
        return status

    def close(self) -> None:
        """stdin first (what it buffers goes out, then EOF), then the channel: that ends
        reads blocked on it in other threads, whose streams could not be closed before
        (a thread draining stderr holds that stream's lock until its read returns)."""
        try:
            self.stdin.close()
        except (OSError, TransportError):
            pass
        self._channel.close()
        for stream in (self.stdout, self.stderr):
            try:
                stream.close()
            except (OSError, TransportError):
                pass

    def finish(self) -> None:
        """Close now: sshd ends the session when the command exits, whether or not we wait."""
        self.close()


class ParamikoConnection(SshConnection):
    """An authenticated paramiko Transport; sftp and exec each get their own channel.

    ``jumps``: the ProxyJump hops' transports the session runs through, closed after it.
    ``server_alive``: (ServerAliveInterval, ServerAliveCountMax); an interval of 0 is off."""

    def __init__(self, transport: paramiko.Transport, timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 jumps: Sequence[paramiko.Transport] = (), server_alive: Tuple[int, int] = (0, 3)) -> None:
        self._transport = transport
        self._timeout = timeout
        self._jumps = list(jumps)
        self._alive: Optional[ServerAlive] = None
        if server_alive[0] > 0:
            self._alive = ServerAlive(transport, float(server_alive[0]), server_alive[1])
            self._alive.start()

    @property
    def dead_reason(self) -> Optional[str]:
        """Why ServerAlive closed the session, if it did."""
        return self._alive.dead_reason if self._alive is not None else None

    def _open_channel(self) -> paramiko.Channel:
        try:
            return self._transport.open_session(timeout=self._timeout)
        except (paramiko.SSHException, OSError, EOFError) as err:
            raise TransportError(f"cannot open ssh channel: {err}") from err

    def open_files(self, root: str) -> FileTransport:
        channel = self._open_channel()
        try:
            channel.invoke_subsystem("sftp")
            client = ExtensionAwareSFTPClient(channel)
        except (paramiko.SSHException, OSError, EOFError) as err:
            channel.close()
            raise TransportError(f"cannot start sftp: {err}") from err
        return SftpFileTransport(client, root)

    def exec(self, argv: List[str]) -> ExecChannel:
        if not argv:
            raise TransportError("cannot run an empty command")
        channel = self._open_channel()
        try:
            channel.exec_command(shlex.join(argv))
        except (paramiko.SSHException, OSError, EOFError) as err:
            channel.close()
            raise TransportError(f"remote refused to run {argv[0]}: {err}") from err
        return ParamikoExecChannel(channel)

    def close(self) -> None:
        """Close the session (then the jump hops') and wait for paramiko's threads to end.

        Shutting the socket down first wakes that thread at once (a plain close leaves it
        in recv until its 0.1 s poll); once it is gone, a command may end with ``os._exit``."""
        if self._alive is not None:
            self._alive.stop()
        for transport in [self._transport] + self._jumps[::-1]:
            try:
                transport.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass
            transport.close()
            if transport.is_alive() and transport is not threading.current_thread():
                transport.join(_THREAD_EXIT_SECONDS)
