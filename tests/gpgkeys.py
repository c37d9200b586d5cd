"""Throwaway GPG keys in temporary homedirs, made with the real ``gpg`` for the signing tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class GpgKeyHome:
    homedir: Path        # GNUPGHOME with the secret key (pubring.kbx)
    keyring_dir: Path    # a dir with the public key as trusted.gpg: what ostree's --gpg-homedir reads
    keyring: Path        # that keyring file (binary export)
    fingerprint: str
    key_id: str          # last 16 hex digits
    uid: str


def gpg_bin() -> str:
    path = shutil.which("gpg")
    if path is None or shutil.which("gpgv") is None:
        pytest.skip("gpg/gpgv not installed")
    return path


def make_key(base: Path, name: str = "Test Signer", email: str = "signer@example.com",
             expire: str = "never") -> GpgKeyHome:
    """A fresh ed25519 signing key without a passphrase in BASE/home."""
    gpg = gpg_bin()
    home = base / "home"
    home.mkdir(mode=0o700, parents=True)
    uid = f"{name} <{email}>"
    subprocess.run([gpg, "--batch", "--no-tty", "--homedir", str(home), "--passphrase", "",
                    "--quick-gen-key", uid, "ed25519", "sign", expire], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listing = subprocess.run([gpg, "--batch", "--homedir", str(home), "--with-colons", "--list-keys", email],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    keyring_dir = base / "keyring"
    keyring_dir.mkdir()
    keyring = keyring_dir / "trusted.gpg"
    keyring.write_bytes(subprocess.run([gpg, "--batch", "--homedir", str(home), "--export", fingerprint],
                                       check=True, stdout=subprocess.PIPE).stdout)
    return GpgKeyHome(home, keyring_dir, keyring, fingerprint, fingerprint[-16:], uid)


def kill_agent(home: GpgKeyHome) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home.homedir), "--kill", "all"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def revoke(home: GpgKeyHome) -> None:
    """Import the key's revocation certificate (made by --quick-gen-key) and re-export it."""
    gpg = gpg_bin()
    cert = (home.homedir / "openpgp-revocs.d" / f"{home.fingerprint}.rev").read_text()
    cert = cert.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
    subprocess.run([gpg, "--batch", "--homedir", str(home.homedir), "--import"], input=cert.encode(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    home.keyring.write_bytes(subprocess.run([gpg, "--batch", "--homedir", str(home.homedir), "--export",
                                             home.fingerprint], check=True, stdout=subprocess.PIPE).stdout)
