"""GPG signatures through the ``gpg`` and ``gpgv`` binaries (spec §7.1).

Signing runs ``gpg --detach-sign`` with the user's own homedir, agent and smart card; the
signature is binary (gpgme's default, what libostree stores). Verification runs ``gpgv``
against a keyring assembled from ``*.gpg`` files, as libostree assembles one, and maps its
status lines to the fields ``ostree show`` prints.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from pyostree.errors import SignError
from pyostree.objects.commitmeta import GPG_SIGNATURES_KEY
from pyostree.sign.engine import bounded
from pyostree.sign.openpgp import PUBKEY_ALGO_NAMES, SignaturePacket, parse_signatures

__all__ = [
    "GPG_SIGNATURES_KEY",
    "GLOBAL_KEYRING_DIR",
    "GpgKey",
    "GpgSigner",
    "GpgVerifier",
    "SignatureResult",
    "describe",
    "find_key",
    "keyring_files",
    "remote_keyrings",
    "require_valid",
]

#: libostree's ``$datadir/ostree/trusted.gpg.d/`` (``OSTREE_GPG_HOME`` overrides it in the CLI).
GLOBAL_KEYRING_DIR = "/usr/share/ostree/trusted.gpg.d"
#: A keyring file bigger than this is not a set of publisher keys.
MAX_KEYRING_SIZE = 64 << 20
_BATCH = ("--batch", "--no-tty")
#: What libostree prints when gpgme names no public-key algorithm.
_UNKNOWN_ALGO = "[unknown name]"


def _run(argv: List[str], data: Optional[bytes] = None) -> "subprocess.CompletedProcess[bytes]":
    try:
        return subprocess.run(argv, input=data if data is not None else b"", stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    except FileNotFoundError:
        raise SignError(f"GPG: '{argv[0]}' is not installed (not found in PATH)") from None
    except OSError as err:
        raise SignError(f"GPG: cannot run '{argv[0]}': {err.strerror}") from None


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    text = lines[-1] if lines else "no message"
    return text[5:] if text.startswith("gpg: ") else text


def _home_args(homedir: Optional[str]) -> List[str]:
    if homedir is None:
        return []
    if not os.path.isdir(homedir):
        raise SignError(f"GPG: homedir '{homedir}' is not a directory")
    return ["--homedir", homedir]


@dataclass(frozen=True)
class GpgKey:
    """A key as ``gpg --with-colons`` lists it: the primary fingerprint first, then subkeys'."""

    fingerprints: Tuple[str, ...]
    user_id: str

    @property
    def fingerprint(self) -> str:
        return self.fingerprints[0]


def _parse_colons(text: str) -> List[GpgKey]:
    keys: List[GpgKey] = []
    fprs: List[str] = []
    uid = ""
    in_key = False
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            if in_key and fprs:
                keys.append(GpgKey(tuple(fprs), uid))
            fprs, uid, in_key = [], "", True
        elif fields[0] == "fpr" and in_key and len(fields) > 9:
            fprs.append(fields[9].upper())
        elif fields[0] == "uid" and in_key and not uid and len(fields) > 9:
            uid = fields[9]
    if in_key and fprs:
        keys.append(GpgKey(tuple(fprs), uid))
    return keys


def _list_argv(key_id: str, homedir: Optional[str], secret: bool, gpg: str) -> List[str]:
    listing = "--list-secret-keys" if secret else "--list-keys"
    return [gpg, *_BATCH, *_home_args(homedir), "--with-colons", "--fixed-list-mode", listing, "--", key_id]


def _one_key(key_id: str, homedir: Optional[str], returncode: int, stdout: bytes) -> GpgKey:
    keys = _parse_colons(stdout.decode("utf-8", "replace")) if returncode == 0 else []
    where = homedir if homedir is not None else "<default>"
    if not keys:
        raise SignError(f"No gpg key found with ID {key_id} (homedir: {where})")
    if len(keys) > 1:
        raise SignError(f"gpg key id {key_id} ambiguous (homedir: {where}). Try the fingerprint instead")
    return keys[0]


def find_key(key_id: str, homedir: Optional[str] = None, *, secret: bool = True,
             gpg: str = "gpg") -> GpgKey:
    """The one key KEY_ID names, with libostree's messages when none or several match."""
    result = _run(_list_argv(key_id, homedir, secret, gpg))
    return _one_key(key_id, homedir, result.returncode, result.stdout)


class _KeyLookup:
    """``find_key`` started now and read when first needed: the lookup's process runs while
    the caller builds what it will sign (the summary of a thousand refs, say)."""

    def __init__(self, key_id: str, homedir: Optional[str], gpg: str) -> None:
        self.key_id, self.homedir = key_id, homedir
        argv = _list_argv(key_id, homedir, True, gpg)
        try:
            self._proc: Optional["subprocess.Popen[bytes]"] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            raise SignError(f"GPG: '{gpg}' is not installed (not found in PATH)") from None
        except OSError as err:
            raise SignError(f"GPG: cannot run '{gpg}': {err.strerror}") from None
        self._key: Optional[GpgKey] = None

    def result(self) -> GpgKey:
        if self._key is None:
            assert self._proc is not None
            stdout, _ = self._proc.communicate()
            proc, self._proc = self._proc, None
            self._key = _one_key(self.key_id, self.homedir, proc.returncode, stdout)
        return self._key


class GpgSigner:
    """One GPG key (resolved up front: a bad key id fails before anything is written)."""

    metadata_key = GPG_SIGNATURES_KEY

    def __init__(self, key_id: str, homedir: Optional[str] = None, *, gpg: str = "gpg",
                 key: Optional[GpgKey] = None) -> None:
        self.key_id = key_id
        self.homedir = homedir
        self.gpg = gpg
        self._lookup = _KeyLookup(key_id, homedir, gpg) if key is None else None
        self._key = key

    @property
    def key(self) -> GpgKey:
        """The key, once its lookup has answered (SignError if it names none or several)."""
        if self._key is None:
            assert self._lookup is not None
            self._key = self._lookup.result()
        return self._key

    def check(self) -> GpgSigner:
        """Wait for the key lookup: a bad key id fails here, before anything is written."""
        self.key  # noqa: B018 - the property raises
        return self

    def sign(self, data: bytes) -> bytes:
        result = _run([self.gpg, *_BATCH, *_home_args(self.homedir), "--no-armor",
                       "--local-user", self.key.fingerprint, "--detach-sign"], data)
        if result.returncode != 0 or not result.stdout:
            raise SignError(f"Failure signing commit file: {_last_line(result.stderr)}")
        parse_signatures(result.stdout)  # gpg wrote a signature, not armor or noise
        return result.stdout

    def already_signed(self, signatures: Sequence[bytes]) -> Optional[str]:
        for signature in signatures:
            try:
                packets = parse_signatures(signature)
            except SignError:
                continue
            if any(packet.issued_by(self.key.fingerprints) for packet in packets):
                return f"Commit is already signed with GPG key {self.key_id}"
        return None


def _dearmor(data: bytes) -> bytes:
    """Binary OpenPGP from an ASCII-armored block (gpgv reads only binary keyrings)."""
    lines = data.decode("ascii", "replace").splitlines()
    out: List[bytes] = []
    state = 0
    for line in lines:
        line = line.strip()
        if state == 0 and line.startswith("-----BEGIN PGP"):
            state, body = 1, []
        elif state == 1 and line == "":
            state = 2
        elif state == 1 and ":" not in line:
            state = 2
            body.append(line)
        elif state == 2 and line.startswith("-----END PGP"):
            try:
                out.append(base64.b64decode("".join(b for b in body if not b.startswith("="))))
            except (binascii.Error, ValueError):
                raise SignError("GPG: corrupt ASCII-armored key") from None
            state = 0
        elif state == 2:
            body.append(line)
    return b"".join(out)


def _read_keyring(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEYRING_SIZE + 1)
    except OSError as err:
        raise SignError(f"GPG: cannot read keyring '{path}': {err.strerror}") from None
    if len(data) > MAX_KEYRING_SIZE:
        raise SignError(f"GPG: keyring '{path}' is larger than {MAX_KEYRING_SIZE} bytes")
    return _dearmor(data) if data.lstrip().startswith(b"-----BEGIN PGP") else data


def keyring_files(directory: str) -> List[str]:
    """The ``*.gpg`` files of DIRECTORY but ``trustdb.gpg`` and ``secring.gpg``, as libostree."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names
            if name.endswith(".gpg") and name not in ("trustdb.gpg", "secring.gpg")
            and os.path.isfile(os.path.join(directory, name))]


def remote_keyrings(repo: object, remote: Optional[str] = None, *, global_dir: str = GLOBAL_KEYRING_DIR,
                    keyring_dir: Optional[str] = None) -> List[str]:
    """The keyrings libostree trusts for REMOTE (None: every remote's ``*.gpg`` in the repo):
    ``REPO/REMOTE.trustedkeys.gpg`` and ``gpgkeypath`` entries, the global directory only when
    the remote has no keyring of its own, plus ``*.gpg`` under KEYRING_DIR (``--gpg-homedir``)."""
    from pyostree.repo import Repo

    assert isinstance(repo, Repo)
    root = os.fspath(repo.path)
    files: List[str] = []
    use_global = True
    if remote is None:
        files.extend(keyring_files(root))
    else:
        group = f'remote "{remote}"'
        if repo.config.get(group, "url") is None and repo.config.get(group, "metalink") is None:
            raise SignError(f"Remote \"{remote}\" not found")
        own = os.path.join(root, f"{remote}.trustedkeys.gpg")
        if os.path.isfile(own):
            files.append(own)
            use_global = False
        paths = repo.config.get(group, "gpgkeypath") or ""
        for entry in (part.strip() for part in paths.replace(",", ";").split(";")):
            if not entry:
                continue
            if os.path.isdir(entry):
                files.extend(os.path.join(entry, name) for name in sorted(os.listdir(entry))
                             if os.path.isfile(os.path.join(entry, name)))
            else:
                files.append(entry)
    if use_global:
        files.extend(keyring_files(global_dir))
    if keyring_dir is not None:
        files.extend(keyring_files(keyring_dir))
    return files


@dataclass(frozen=True)
class SignatureResult:
    """One signature as gpgme reports it to libostree."""

    valid: bool
    sig_expired: bool
    key_expired: bool
    key_revoked: bool
    key_missing: bool
    fingerprint: str
    fingerprint_primary: str
    timestamp: int
    exp_timestamp: int
    pubkey_algo: str
    user_name: str
    user_email: str
    key_exp_timestamp: int = 0   # known only once the key has expired (gpgv's KEYEXPIRED)


def _split_uid(uid: str) -> Tuple[str, str]:
    """gpgme's name and email of a user id ``Name (comment) <email>``."""
    email = ""
    name = uid
    if uid.endswith(">") and "<" in uid:
        name, email = uid[:uid.rindex("<")].strip(), uid[uid.rindex("<") + 1:-1]
    if name.endswith(")") and " (" in name:
        name = name[:name.rindex(" (")]
    return name, email


def _results(status: str, packets: List[SignaturePacket]) -> List[SignatureResult]:
    blocks: List[Dict[str, List[str]]] = []
    for line in status.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        words = line[9:].split(" ")
        if words[0] == "NEWSIG":
            blocks.append({})
        elif blocks:
            blocks[-1].setdefault(words[0], words[1:])
    results: List[SignatureResult] = []
    for index, block in enumerate(blocks):
        packet = packets[index] if index < len(packets) else None
        verdict = next((word for word in ("GOODSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "BADSIG", "ERRSIG")
                        if word in block), "ERRSIG")
        words = block.get(verdict, [])
        uid = " ".join(words[1:]) if verdict != "ERRSIG" else ""
        name, email = _split_uid(uid)
        valid = block.get("VALIDSIG", [])
        considered = block.get("KEY_CONSIDERED", [])
        if verdict == "BADSIG":
            # gpgme reports a bad signature with only the key id: no time, no algorithm
            fingerprint = words[0] if words else ""
            primary = considered[0] if considered else fingerprint
            timestamp, exp, algo = 0, 0, _UNKNOWN_ALGO
        else:
            fingerprint = valid[0] if valid else (packet.issuer_fingerprint or packet.issuer_key_id if packet else "")
            if not fingerprint and words:
                fingerprint = words[0]
            primary = valid[9] if len(valid) > 9 else fingerprint
            timestamp = int(valid[2]) if len(valid) > 2 and valid[2].isdigit() else (packet.created if packet else 0)
            exp = int(valid[3]) if len(valid) > 3 and valid[3].isdigit() else 0
            if not exp and packet is not None and packet.expires:
                exp = packet.created + packet.expires
            if len(valid) > 6 and valid[6].isdigit():
                algo = PUBKEY_ALGO_NAMES.get(int(valid[6]), _UNKNOWN_ALGO)
            else:
                algo = PUBKEY_ALGO_NAMES.get(packet.pubkey_algo, _UNKNOWN_ALGO) if packet else _UNKNOWN_ALGO
        expired_at = block.get("KEYEXPIRED", [])
        key_exp = int(expired_at[0]) if expired_at and expired_at[0].isdigit() else 0
        missing = verdict == "ERRSIG" and len(words) > 5 and words[5] == "9"
        results.append(SignatureResult(
            valid=verdict == "GOODSIG", sig_expired=verdict == "EXPSIG", key_expired=verdict == "EXPKEYSIG",
            key_revoked=verdict == "REVKEYSIG", key_missing=missing, fingerprint=fingerprint,
            fingerprint_primary=primary, timestamp=timestamp, exp_timestamp=exp, pubkey_algo=algo,
            user_name=name, user_email=email, key_exp_timestamp=key_exp))
    return results


class GpgVerifier:
    """Trusted keys from keyring files (binary or armored), checked with ``gpgv``."""

    def __init__(self, keyrings: Sequence[str], *, gpgv: str = "gpgv") -> None:
        self.keyrings = list(keyrings)
        self.gpgv = gpgv

    def verify(self, data: bytes, signatures: Sequence[bytes]) -> List[SignatureResult]:
        """One result per signature, in order (libostree concatenates them and checks once)."""
        sigs = bounded(list(signatures), "GPG")
        if not sigs:
            raise SignError("GPG verification enabled, but no signatures found "
                            "(use gpg-verify=false in remote config to disable)")
        packets: List[SignaturePacket] = []
        for signature in sigs:
            packets.extend(parse_signatures(signature))
        with tempfile.TemporaryDirectory(prefix="pyostree-gpgv-") as tmp:
            keyring = os.path.join(tmp, "trusted.gpg")
            with open(keyring, "wb") as handle:
                for path in self.keyrings:
                    handle.write(_read_keyring(path))
            sig_path = os.path.join(tmp, "data.sig")
            with open(sig_path, "wb") as handle:
                handle.write(b"".join(sigs))
            data_path = os.path.join(tmp, "data")
            with open(data_path, "wb") as handle:
                handle.write(data)
            result = _run([self.gpgv, "--homedir", tmp, "--status-fd", "1", "--keyring", keyring,
                           sig_path, data_path])
        results = _results(result.stdout.decode("utf-8", "replace"), packets)
        if not results:
            raise SignError(f"GPG: Unable to complete signature verification: {_last_line(result.stderr)}")
        return results


def _glib_c_time(stamp: int) -> str:
    """g_date_time_format(local time, "%c") in the C locale: "%a %b %e %H:%M:%S %Y", where
    GLib pads a one-digit %e with a FIGURE SPACE (U+2007), not a space."""
    local = time.localtime(stamp)
    day = f"{local.tm_mday:d}".rjust(2, "\u2007")
    return time.strftime("%a %b ", local) + day + time.strftime(" %H:%M:%S %Y", local)


def describe(result: SignatureResult, prefix: str = "") -> str:
    """ostree_gpg_verify_result_describe() in its default format."""
    fpr = result.fingerprint
    key_id = fpr[-16:] if len(fpr) > 16 else fpr
    when = _glib_c_time(result.timestamp)
    lines = [f"{prefix}Signature made {when} using {result.pubkey_algo} key ID {key_id}\n"]
    who = f'"{result.user_name} <{result.user_email}>"'
    if result.key_missing:
        lines.append(f"{prefix}Can't check signature: public key not found\n")
    elif result.valid:
        lines.append(f"{prefix}Good signature from {who}\n")
    elif result.key_revoked:
        lines.append(f"{prefix}Key revoked\n")
    elif result.sig_expired:
        lines.append(f"{prefix}Expired signature from {who}\n")
    else:
        lines.append(f"{prefix}BAD signature from {who}\n")
    if not result.key_missing and result.fingerprint_primary != fpr:
        lines.append(f"{prefix}Primary key ID {result.fingerprint_primary[-16:]}\n")
    if result.exp_timestamp > 0:
        expired = result.sig_expired
        stamp = _glib_c_time(result.exp_timestamp)
        lines.append(f"{prefix}Signature {'expired' if expired else 'expires'} {stamp}\n")
    if result.key_exp_timestamp > 0:
        stamp = _glib_c_time(result.key_exp_timestamp)
        lines.append(f"{prefix}Key {'expired' if result.key_expired else 'expires'} {stamp}\n")
    return "".join(lines)


def require_valid(results: Sequence[SignatureResult], what: str) -> SignatureResult:
    """The first valid signature, or SignError describing the last one (libostree's choice)."""
    for result in results:
        if result.valid:
            return result
    if not results:
        raise SignError(f"{what}: No GPG signatures found")
    text = describe(results[-1]).strip().replace("\n", "; ")
    raise SignError(f"{what}: {text}")
