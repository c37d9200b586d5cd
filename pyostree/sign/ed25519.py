"""libostree's ed25519 sign engine (spec §7.2): RFC 8032 signatures in ``ostree.sign.ed25519``.

Keys are standard base64: public keys 32 bytes, secret keys 64 bytes (seed || public, the
libsodium layout). Key files hold one key per line. ``cryptography`` is imported on first use,
so the core imports without it.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple

from pyostree.errors import SignError
from pyostree.objects.commitmeta import ED25519_SIGNATURES_KEY
from pyostree.sign.engine import bounded

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "ED25519_SIGNATURES_KEY",
    "PUBLIC_KEY_SIZE",
    "SECRET_KEY_SIZE",
    "SIGNATURE_SIZE",
    "Ed25519Signer",
    "Ed25519Verifier",
    "decode_key",
    "load_verifier",
    "parse_key_file",
    "public_key_of_seed",
    "read_key_file",
    "read_secret_keys",
]

PUBLIC_KEY_SIZE = 32
SECRET_KEY_SIZE = 64
SIGNATURE_SIZE = 64
#: A key file is a list of 45-byte lines; a megabyte is 23,000 keys.
MAX_KEY_FILE_SIZE = 1 << 20
#: libostree's default key locations (``$datadir`` is /usr/share on distributions).
SYSTEM_KEY_DIRS = ("/etc/ostree", "/usr/share/ostree")


def _crypto() -> object:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SignError("ed25519: the 'cryptography' package is not installed") from None
    return ed25519


def decode_key(text: str, size: int, what: str) -> bytes:
    """One base64 key of exactly SIZE bytes; libostree's "Incorrect ed25519 ... key" otherwise."""
    stripped = text.strip()
    try:
        raw = base64.b64decode(stripped.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != size:
        raise SignError(f"Incorrect ed25519 {what} key")
    return raw


def parse_key_file(data: bytes, size: int, what: str, source: str) -> List[bytes]:
    """The keys of a key file: one base64 key per line; a bad line is an error naming it."""
    if len(data) > MAX_KEY_FILE_SIZE:
        raise SignError(f"ed25519: key file '{source}' is larger than {MAX_KEY_FILE_SIZE} bytes")
    keys: List[bytes] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = "\0"
        try:
            key = decode_key(text, size, what)
        except SignError:
            raise SignError(f"Incorrect ed25519 {what} key in '{source}' line {number}") from None
        if key not in keys:
            keys.append(key)
    if not keys:
        raise SignError(f"signature: ed25519: no valid keys in file '{source}'")
    return keys


def public_key_of_seed(seed: bytes) -> bytes:
    """The public key libsodium derives from a 32-byte seed."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)  # type: ignore[attr-defined]
    return bytes(private.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw))


class Ed25519Signer:
    """A 64-byte secret key (seed || public). A public half that is not the seed's is refused:
    libsodium would sign with it and every signature would fail to verify."""

    metadata_key = ED25519_SIGNATURES_KEY

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_KEY_SIZE:
            raise SignError("Incorrect ed25519 secret key")
        seed, public = secret[:32], secret[32:]
        if public_key_of_seed(seed) != public:
            raise SignError("Incorrect ed25519 secret key: its public half does not match its seed")
        ed25519 = _crypto()
        self._private: Ed25519PrivateKey = ed25519.Ed25519PrivateKey.from_private_bytes(seed)  # type: ignore[attr-defined]
        self.public_key = public

    @classmethod
    def from_base64(cls, text: str) -> Ed25519Signer:
        return cls(decode_key(text, SECRET_KEY_SIZE, "secret"))

    @property
    def key_id(self) -> str:
        return self.public_key.hex()

    def sign(self, data: bytes) -> bytes:
        return bytes(self._private.sign(data))

    def already_signed(self, signatures: Sequence[bytes]) -> Optional[str]:
        # Signatures are deterministic: the same key over the same bytes gives the same 64 bytes.
        return None

    def signs_identically(self, data: bytes, signatures: Sequence[bytes]) -> bool:
        return self.sign(data) in signatures


@dataclass(frozen=True)
class Ed25519Verifier:
    """Trusted public keys minus revoked ones, checked as libostree checks them."""

    trusted: Tuple[bytes, ...]
    revoked: Tuple[bytes, ...] = ()

    def verify(self, data: bytes, signatures: Sequence[bytes]) -> str:
        """libostree's success message, or SignError with its failure message."""
        ed25519 = _crypto()
        from cryptography.exceptions import InvalidSignature

        sigs = bounded(list(signatures), "ed25519")
        if not sigs:
            raise SignError("ed25519: commit have no signatures of my type")
        keys = [key for key in self.trusted if key not in self.revoked]
        if self.trusted and not keys:
            raise SignError("ed25519: every trusted key is revoked")
        loaded = [ed25519.Ed25519PublicKey.from_public_bytes(key) for key in keys]  # type: ignore[attr-defined]
        failed: List[str] = []
        for signature in sigs:
            if len(signature) != SIGNATURE_SIZE:
                raise SignError(f"Invalid signature length of {len(signature)} bytes, expected {SIGNATURE_SIZE}")
            for key, public in zip(keys, loaded):
                try:
                    public.verify(signature, data)
                except InvalidSignature:
                    failed.append(f"key '{key.hex()}'")
                    continue
                return f"ed25519: Signature verified successfully with key '{key.hex()}'"
        if not failed:
            raise SignError("ed25519: no signatures found")
        if len(failed) > 3:
            raise SignError(f"ed25519: Signature couldn't be verified; tried {len(failed)} keys")
        raise SignError(f"ed25519: Signature couldn't be verified with: {'; '.join(failed)}")


def read_key_file(path: str, size: int, what: str) -> List[bytes]:
    if not os.path.isfile(path):
        raise SignError(f"File object '{path}' is not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as err:
        raise SignError(f"cannot read '{path}': {err.strerror}") from None
    return parse_key_file(data, size, what, path)


def _dir_files(base: str, name: str) -> List[str]:
    """``BASE/NAME`` and the files of ``BASE/NAME.d``, libostree's key locations."""
    files = [os.path.join(base, name)]
    try:
        entries = sorted(os.listdir(os.path.join(base, name + ".d")))
    except OSError:
        entries = []
    files.extend(os.path.join(base, name + ".d", entry) for entry in entries)
    return files


def _collect(bases: Iterable[str], name: str) -> List[bytes]:
    """Keys of every readable key file; files that fail are skipped, as libostree skips them."""
    keys: List[bytes] = []
    for base in bases:
        for path in _dir_files(base, name):
            if not os.path.isfile(path):
                continue
            try:
                found = read_key_file(path, PUBLIC_KEY_SIZE, "public" if name.startswith("trusted") else "revoked")
            except SignError:
                continue
            keys.extend(key for key in found if key not in keys)
    return keys


def load_verifier(
    *,
    keys: Sequence[str] = (),
    keys_file: Optional[str] = None,
    keys_dir: Optional[str] = None,
    system_dirs: Sequence[str] = SYSTEM_KEY_DIRS,
) -> Ed25519Verifier:
    """Public keys as ``ostree sign --verify`` finds them: KEYS given inline, else the one
    ``--keys-file``, else ``trusted.ed25519[.d]`` (minus ``revoked.ed25519[.d]``) under
    ``--keys-dir`` or the system directories."""
    if keys:
        return Ed25519Verifier(tuple(decode_key(text, PUBLIC_KEY_SIZE, "public") for text in keys))
    if keys_file is not None:
        return Ed25519Verifier(tuple(read_key_file(keys_file, PUBLIC_KEY_SIZE, "public")))
    bases = (keys_dir,) if keys_dir is not None else tuple(system_dirs)
    trusted = _collect(bases, "trusted.ed25519")
    if not trusted:
        raise SignError("signature: ed25519: no keys loaded")
    return Ed25519Verifier(tuple(trusted), tuple(_collect(bases, "revoked.ed25519")))


def read_secret_keys(path: str) -> List[Ed25519Signer]:
    """``--keys-file`` when signing: one base64 secret key per line."""
    return [Ed25519Signer(key) for key in read_key_file(path, SECRET_KEY_SIZE, "secret")]
