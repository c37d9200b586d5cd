"""ed25519 signing in libostree's sign-engine format (spec §7.2).

Debian's ostree has no ed25519 engine, so the oracles are RFC 8032's test vectors, the byte
layout of the spec, ostree reading the commitmeta and summary.sig we write, and the round
trip sign -> ``sign --verify``.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sign_support import ours, repo  # noqa: F401  (repo: the fixture)
from ostree_tool import needs_ostree, run_ostree
from pyostree import gvariant
from pyostree.errors import SignError
from pyostree.objects import ObjectType
from pyostree.repo import Repo
from pyostree.sign.ed25519 import (
    Ed25519Signer,
    Ed25519Verifier,
    load_verifier,
    parse_key_file,
    public_key_of_seed,
)

pytestmark = needs_ostree

# RFC 8032 §7.1, TEST 1-3: (seed, public key, message, signature), hex.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def keypair(seed: bytes) -> Tuple[str, str]:
    """(base64 secret key seed||public, base64 public key), as ``ostree sign`` takes them."""
    public = public_key_of_seed(seed)
    return base64.b64encode(seed + public).decode(), base64.b64encode(public).decode()


SK1, PK1 = keypair(bytes(range(32)))
SK2, PK2 = keypair(bytes(range(1, 33)))


def commitmeta_path(path: Path, checksum: str) -> Path:
    return path / "objects" / checksum[:2] / f"{checksum[2:]}.commitmeta"


def commit_bytes(path: Path, checksum: str) -> bytes:
    return Repo.open(path).read_metadata_bytes(checksum, ObjectType.COMMIT)


@pytest.mark.parametrize("seed,public,message,signature", RFC8032)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    raw_seed = bytes.fromhex(seed)
    assert public_key_of_seed(raw_seed).hex() == public
    signer = Ed25519Signer(raw_seed + bytes.fromhex(public))
    assert signer.sign(bytes.fromhex(message)).hex() == signature
    verifier = Ed25519Verifier((bytes.fromhex(public),))
    assert public in verifier.verify(bytes.fromhex(message), [bytes.fromhex(signature)])
    with pytest.raises(SignError, match="couldn't be verified"):
        verifier.verify(bytes.fromhex(message) + b"x", [bytes.fromhex(signature)])


def test_spec_example_key() -> None:
    assert PK1 == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="


def test_commitmeta_layout_is_the_spec_bytes(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    assert ours(capsys, f"--repo={path}", "sign", checksum, SK1) == (0, "", "")
    data = commitmeta_path(path, checksum).read_bytes()
    signature = Ed25519Signer.from_base64(SK1).sign(commit_bytes(path, checksum))
    # {"ostree.sign.ed25519": <[sig]>}: key + NUL, pad to 8, 64-byte ay + its end offset,
    # NUL + "aay", the key's end offset, the entry's end offset.
    want = b"ostree.sign.ed25519\0" + bytes(4) + signature + bytes([64]) + b"\0aay" + bytes([20, 94])
    assert data == want and len(data) == 95
    printed = run_ostree("show", "--print-detached-metadata-key=ostree.sign.ed25519", checksum, repo=path)
    assert ours(capsys, f"--repo={path}", "show", "--print-detached-metadata-key=ostree.sign.ed25519",
                checksum) == (0, printed, "")


def test_sign_then_verify_round_trip(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    assert ours(capsys, f"--repo={path}", "sign", "main", SK1)[0] == 0
    status, out, _ = ours(capsys, f"--repo={path}", "sign", "--verify", "main", PK1)
    key_hex = base64.b64decode(PK1).hex()
    assert (status, out) == (0, f"ed25519: Signature verified successfully with key '{key_hex}'\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", "main", PK2) == (
        1, "", "error: No valid signatures found\n")


def test_commit_sign_signs_before_the_ref(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str],
                                          tmp_path: Path) -> None:
    path, _ = repo
    tree = tmp_path / "tree"
    status, out, _ = ours(capsys, f"--repo={path}", "commit", "-b", "signed", f"--tree=dir={tree}",
                          f"--sign={SK1}", f"--sign={SK2}", "--sign-type=ed25519")
    assert status == 0
    checksum = out.strip()
    assert run_ostree("rev-parse", "signed", repo=path).strip() == checksum
    keys = tmp_path / "keys"
    keys.write_text(f"{PK2}\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-file={keys}", checksum)[0] == 0
    meta = Repo.open(path).load_commitmeta(checksum)
    assert meta is not None and len(meta["ostree.sign.ed25519"][1]) == 2  # type: ignore[arg-type]
    run_ostree("fsck", repo=path)


def test_merge_keeps_other_signatures_and_does_not_duplicate(capsys: pytest.CaptureFixture[str],
                                                              repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    other = gvariant.encode("a{sv}", {"ostree.gpgsigs": ("aay", [b"\x89not-really"]), "x": ("s", "kept")})
    commitmeta_path(path, checksum).write_bytes(other)
    for key in (SK1, SK2, SK1):
        assert ours(capsys, f"--repo={path}", "sign", checksum, key)[0] == 0
    meta = Repo.open(path).load_commitmeta(checksum)
    assert meta is not None
    assert meta["x"] == ("s", "kept") and meta["ostree.gpgsigs"] == ("aay", [b"\x89not-really"])
    sigs = meta["ostree.sign.ed25519"][1]
    assert isinstance(sigs, list) and len(sigs) == 2
    status, out, _ = ours(capsys, f"--repo={path}", "sign", "--delete", checksum, PK1)
    assert (status, out) == (0, "Signatures deleted: 1\n")
    meta = Repo.open(path).load_commitmeta(checksum)
    assert meta is not None and meta["ostree.sign.ed25519"][1] == [
        Ed25519Signer.from_base64(SK2).sign(commit_bytes(path, checksum))]
    assert ours(capsys, f"--repo={path}", "sign", "--verify", checksum, PK1)[0] == 1


def test_keys_dir_trusted_and_revoked(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str],
                                      tmp_path: Path) -> None:
    path, checksum = repo
    assert ours(capsys, f"--repo={path}", "sign", checksum, SK1)[0] == 0
    keys = tmp_path / "etc-ostree"
    (keys / "trusted.ed25519.d").mkdir(parents=True)
    (keys / "trusted.ed25519").write_text(f"{PK2}\n")
    (keys / "trusted.ed25519.d" / "vendor").write_text(f"{PK1}\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-dir={keys}", checksum)[0] == 0
    (keys / "revoked.ed25519").write_text(f"{PK1}\n")
    status, _, err = ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-dir={keys}", checksum)
    assert status == 1 and err == f"error: ed25519: Signature couldn't be verified with: key '{base64.b64decode(PK2).hex()}'\n"


def test_summary_sig(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str]) -> None:
    path, _ = repo
    assert ours(capsys, f"--repo={path}", "summary", "-u", f"--sign={SK1}", "--sign-type=ed25519") == (0, "", "")
    summary = (path / "summary").read_bytes()
    sig = gvariant.decode("a{sv}", (path / "summary.sig").read_bytes())
    assert isinstance(sig, dict) and list(sig) == ["ostree.sign.ed25519"]
    assert gvariant.is_normal("a{sv}", (path / "summary.sig").read_bytes())
    load_verifier(keys=[PK1]).verify(summary, sig["ostree.sign.ed25519"][1])
    run_ostree("summary", "--view", repo=path)
    # an unsigned update drops the summary.sig that no longer matches, as ostree does
    assert ours(capsys, f"--repo={path}", "summary", "-u")[0] == 0
    assert not (path / "summary.sig").exists()


@pytest.mark.parametrize("argv,message", [
    (["sign", "main", "AAAA"], "Incorrect ed25519 secret key"),
    (["sign", "main", base64.b64encode(bytes(range(32)) + bytes(32)).decode()], "Incorrect ed25519 secret key: its public half does not match its seed"),
    (["sign", "-s", "rsa", "main", SK1], "Requested signature type is not implemented"),
    (["sign", "main"], "Need at least one KEY-ID to sign with"),
    (["sign"], "Need a COMMIT to sign or verify"),
    (["commit", "-b", "main", "--sign=xyz", "--tree=dir=."], "Incorrect ed25519 secret key"),
    (["commit", "-b", "main", f"--sign={SK1}", "--sign-type=dummy2", "--tree=dir=."],
     "Requested signature type is not implemented"),
    (["summary", "-u", "--sign=AAAA"], "Incorrect ed25519 secret key"),
])
def test_bad_input_writes_nothing(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str],
                                  argv: List[str], message: str) -> None:
    path, checksum = repo
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    status, out, err = ours(capsys, f"--repo={path}", *argv)
    assert (status, out, err) == (1, "", f"error: {message}\n")
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before


def test_corrupt_signature_and_bad_key_files(capsys: pytest.CaptureFixture[str], repo: Tuple[Path, str],
                                             tmp_path: Path) -> None:
    path, checksum = repo
    commitmeta_path(path, checksum).write_bytes(gvariant.encode("a{sv}", {"ostree.sign.ed25519": ("aay", [b"short"])}))
    assert ours(capsys, f"--repo={path}", "sign", "--verify", checksum, PK1) == (
        1, "", "error: No valid signatures found\n")
    keys = tmp_path / "keys"
    keys.write_text(f"{PK1}\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-file={keys}", checksum) == (
        1, "", "error: Invalid signature length of 5 bytes, expected 64\n")
    keys.write_text(f"{PK1}\n\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-file={keys}", checksum) == (
        1, "", f"error: Incorrect ed25519 public key in '{keys}' line 2\n")
    assert ours(capsys, f"--repo={path}", "sign", "--verify", f"--keys-file={tmp_path}", checksum) == (
        1, "", f"error: File object '{tmp_path}' is not a regular file\n")
    secret = tmp_path / "secret"
    secret.write_text(f"{SK1}\n{PK1}\n")
    before = commitmeta_path(path, checksum).read_bytes()
    assert ours(capsys, f"--repo={path}", "sign", f"--keys-file={secret}", checksum) == (
        1, "", f"error: Incorrect ed25519 secret key in '{secret}' line 2\n")
    assert commitmeta_path(path, checksum).read_bytes() == before


def test_core_imports_without_cryptography(tmp_path: Path) -> None:
    """The core, and the sign package itself, import with ``cryptography`` unavailable."""
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import pyostree.gvariant, pyostree.objects, pyostree.repo, pyostree.sign, pyostree.sign.ed25519\n"
        "import pyostree.sign.gpg, pyostree.sign.commitmeta\n"
        "from pyostree.errors import SignError\n"
        "try:\n"
        "    pyostree.sign.ed25519.Ed25519Signer(bytes(64))\n"
        "except SignError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "ed25519: the 'cryptography' package is not installed\n"


KEYS = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(KEYS)
def test_key_file_round_trip(keys: List[bytes]) -> None:
    data = b"".join(base64.b64encode(key) + b"\n" for key in keys)
    assert parse_key_file(data, 32, "public", "f") == list(dict.fromkeys(keys))
    assert parse_key_file(data.rstrip(b"\n"), 32, "public", "f") == list(dict.fromkeys(keys))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_key_file_parser_only_raises_sign_error(data: bytes) -> None:
    try:
        keys = parse_key_file(data, 32, "public", "f")
    except SignError:
        return
    assert keys and all(len(key) == 32 for key in keys)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=5), st.binary(max_size=64))
def test_verifier_never_raises_anything_but_sign_error(signatures: List[bytes], data: bytes) -> None:
    try:
        Ed25519Verifier((base64.b64decode(PK1),)).verify(data, signatures)
    except SignError:
        pass
    else:
        raise AssertionError("a random signature verified")


def test_remote_settings(repo: Tuple[Path, str], tmp_path: Path) -> None:
    from pyostree.sign.remote import remote_ed25519_verifier, sign_verify_engines

    path, checksum = repo
    keys = tmp_path / "remote.ed25519"
    keys.write_text(f"{PK1}\n")
    run_ostree("remote", "add", "--no-gpg-verify", "--set=sign-verify=true", f"--set=verification-ed25519-file={keys}",
               f"--set=verification-ed25519-key={PK2}", "--set=sign-verify-summary=ed25519", "origin",
               "http://127.0.0.1:1/", repo=path)
    run_ostree("remote", "add", "--no-gpg-verify", "--set=sign-verify=rsa", "plain", "http://127.0.0.1:1/", repo=path)
    r = Repo.open(path)
    verifier = remote_ed25519_verifier(r, "origin")
    assert verifier is not None and verifier.trusted == (base64.b64decode(PK1), base64.b64decode(PK2))
    data = commit_bytes(path, checksum)
    assert "verified" in verifier.verify(data, [Ed25519Signer.from_base64(SK2).sign(data)])
    assert sign_verify_engines(r, "origin") == ("ed25519",)
    assert sign_verify_engines(r, "origin", "sign-verify-summary") == ("ed25519",)
    assert remote_ed25519_verifier(r, "plain") is None
    with pytest.raises(SignError, match="^No keys found for required signapi type ed25519$"):
        remote_ed25519_verifier(r, "plain", required=True)
    with pytest.raises(SignError, match="^Requested signature type is not implemented$"):
        sign_verify_engines(r, "plain")
    with pytest.raises(SignError, match='^Remote "nowhere" not found$'):
        sign_verify_engines(r, "nowhere")
    keys.write_text("garbage\n")
    with pytest.raises(SignError, match=f"^Failed loading 'ed25519' keys from '{keys}'$"):
        remote_ed25519_verifier(Repo.open(path), "origin")
