"""GPG signatures through the real ``gpg``: ostree accepts ours, we accept ostree's.

A throwaway ed25519 key is made per module in a temporary homedir; its public key is also
exported as ``trusted.gpg`` into a directory, which is what ostree's ``--gpg-homedir`` reads
(``*.gpg`` files) when it verifies.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpgkeys import GpgKeyHome, gpg_bin, kill_agent, make_key, revoke
from sign_support import ours, repo  # noqa: F401  (repo: the fixture)
from ostree_tool import needs_ostree, run_ostree, run_ostree_fail
from pyostree import gvariant
from pyostree.errors import SignError
from pyostree.objects import ObjectType
from pyostree.repo import Repo
from pyostree.sign.gpg import GpgVerifier, require_valid
from pyostree.sign.openpgp import parse_signatures

pytestmark = needs_ostree


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeyHome]:
    home = make_key(tmp_path_factory.mktemp("gpg"))
    yield home
    kill_agent(home)


@pytest.fixture(scope="module")
def key2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeyHome]:
    home = make_key(tmp_path_factory.mktemp("gpg2"), "Second Signer", "second@example.com")
    yield home
    kill_agent(home)


def signatures(path: Path, checksum: str) -> List[bytes]:
    meta = Repo.open(path).load_commitmeta(checksum) or {}
    item = meta.get("ostree.gpgsigs")
    return list(item[1]) if item else []  # type: ignore[call-overload]


def commit_bytes(path: Path, checksum: str) -> bytes:
    return Repo.open(path).read_metadata_bytes(checksum, ObjectType.COMMIT)


def test_ostree_verifies_our_commit_signature(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                              repo: Tuple[Path, str], tmp_path: Path) -> None:
    path, _ = repo
    status, out, err = ours(capsys, f"--repo={path}", "commit", "-b", "signed", f"--tree=dir={tmp_path / 'tree'}",
                            f"--gpg-sign={key.key_id}", f"--gpg-homedir={key.homedir}")
    assert (status, err) == (0, "")
    checksum = out.strip()
    shown = run_ostree("show", f"--gpg-homedir={key.keyring_dir}", checksum, repo=path)
    assert "Found 1 signature:\n" in shown and f'Good signature from "{key.uid}"\n' in shown
    assert f"key ID {key.key_id}\n" in shown
    # our show prints what ostree prints
    assert ours(capsys, f"--repo={path}", "show", f"--gpg-homedir={key.keyring_dir}", checksum) == (0, shown, "")
    (sig,) = signatures(path, checksum)
    assert sig[0] & 0x80 and not sig.startswith(b"-----")  # binary, not armored
    # gpg-sign: ostree's own duplicate check finds our signature
    err_text = run_ostree_fail("gpg-sign", f"--gpg-homedir={key.keyring_dir}", checksum, key.key_id, repo=path)
    assert f"Commit is already signed with GPG key {key.key_id}" in err_text


def test_we_verify_ostree_gpg_sign(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                   repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    run_ostree("gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.fingerprint, repo=path)
    results = GpgVerifier([str(key.keyring)]).verify(commit_bytes(path, checksum), signatures(path, checksum))
    good = require_valid(results, f"Commit {checksum}")
    assert good.fingerprint == key.fingerprint and good.user_email == "signer@example.com"
    want = run_ostree("show", f"--gpg-homedir={key.keyring_dir}", checksum, repo=path)
    assert ours(capsys, f"--repo={path}", "show", f"--gpg-homedir={key.keyring_dir}", checksum) == (0, want, "")
    # without the key: "public key not found", as ostree says it
    want = run_ostree("show", checksum, repo=path)
    assert "Can't check signature: public key not found" in want
    assert ours(capsys, f"--repo={path}", "show", checksum) == (0, want, "")
    status, _, err = ours(capsys, f"--repo={path}", "gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id)
    assert (status, err) == (1, f"error: Commit is already signed with GPG key {key.key_id}\n")


def test_two_keys_merge_and_delete(capsys: pytest.CaptureFixture[str], key: GpgKeyHome, key2: GpgKeyHome,
                                   repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    run_ostree("gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id, repo=path)
    assert ours(capsys, f"--repo={path}", "gpg-sign", f"--gpg-homedir={key2.homedir}", checksum, key2.key_id)[0] == 0
    keyrings = path / "keyrings"
    keyrings.mkdir()
    (keyrings / "a.gpg").write_bytes(key.keyring.read_bytes())
    (keyrings / "b.gpg").write_bytes(key2.keyring.read_bytes())
    shown = run_ostree("show", f"--gpg-homedir={keyrings}", checksum, repo=path)
    assert "Found 2 signatures:" in shown and shown.count("Good signature") == 2
    status, out, _ = ours(capsys, f"--repo={path}", "gpg-sign", "--delete", f"--gpg-homedir={key.homedir}",
                          checksum, key.key_id)
    assert (status, out) == (0, "Signatures deleted: 1\n")
    shown = run_ostree("show", f"--gpg-homedir={keyrings}", checksum, repo=path)
    assert "Found 1 signature:" in shown and f'Good signature from "{key2.uid}"' in shown
    # a key id we hold no key for still matches the signature's issuer
    status, out, _ = ours(capsys, f"--repo={path}", "gpg-sign", "--delete", checksum, key2.fingerprint)
    assert (status, out) == (0, "Signatures deleted: 1\n")
    assert signatures(path, checksum) == []
    run_ostree("fsck", repo=path)


def test_we_verify_ostree_summary_sig(key: GpgKeyHome, repo: Tuple[Path, str]) -> None:
    path, _ = repo
    run_ostree("summary", "-u", f"--gpg-sign={key.key_id}", f"--gpg-homedir={key.homedir}", repo=path)
    sig = gvariant.decode("a{sv}", (path / "summary.sig").read_bytes())
    assert isinstance(sig, dict)
    results = GpgVerifier([str(key.keyring)]).verify((path / "summary").read_bytes(), sig["ostree.gpgsigs"][1])
    require_valid(results, "summary")
    with pytest.raises(SignError, match="BAD signature"):
        require_valid(GpgVerifier([str(key.keyring)]).verify(b"other", sig["ostree.gpgsigs"][1]), "summary")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Tuple[Path, str]]:
    """An archive repo served over HTTP on 127.0.0.1 (a port the kernel picks)."""
    root = tmp_path / "served"
    run_ostree("init", "--mode=archive", repo=root)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_ostree_pull_verifies_our_commit_and_summary(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                                     served: Tuple[Path, str], tmp_path: Path) -> None:
    root, url = served
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    gpg = (f"--gpg-sign={key.key_id}", f"--gpg-homedir={key.homedir}")
    assert ours(capsys, f"--repo={root}", "commit", "-b", "main", f"--tree=dir={tree}", *gpg)[0] == 0
    assert ours(capsys, f"--repo={root}", "summary", "-u", *gpg) == (0, "", "")
    client = tmp_path / "client"
    run_ostree("init", "--mode=archive", repo=client)
    run_ostree("remote", "add", f"--gpg-import={key.keyring}", "--set=gpg-verify=true",
               "--set=gpg-verify-summary=true", "origin", url, repo=client)
    run_ostree("pull", "origin", "main", repo=client)
    assert run_ostree("rev-parse", "origin:main", repo=client) == run_ostree("rev-parse", "main", repo=root)
    # a summary.sig that does not match the summary makes the pull fail (a fresh client: ostree
    # caches summaries by their summary.sig)
    sig = (root / "summary.sig").read_bytes()
    assert ours(capsys, f"--repo={root}", "commit", "-b", "main", f"--tree=dir={tree}", "-s", "2", *gpg)[0] == 0
    run_ostree("summary", "-u", repo=root)
    (root / "summary.sig").write_bytes(sig)
    fresh = tmp_path / "fresh"
    run_ostree("init", "--mode=archive", repo=fresh)
    run_ostree("remote", "add", f"--gpg-import={key.keyring}", "--set=gpg-verify-summary=true", "origin", url,
               repo=fresh)
    assert "BAD signature" in run_ostree_fail("pull", "origin", "main", repo=fresh)


def test_unknown_key_and_missing_homedir_write_nothing(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                                       repo: Tuple[Path, str], tmp_path: Path) -> None:
    path, checksum = repo
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    cases = [
        (["gpg-sign", f"--gpg-homedir={key.homedir}", checksum, "DEADBEEF"],
         f"No gpg key found with ID DEADBEEF (homedir: {key.homedir})"),
        (["gpg-sign", f"--gpg-homedir={tmp_path / 'nowhere'}", checksum, key.key_id],
         f"GPG: homedir '{tmp_path / 'nowhere'}' is not a directory"),
        (["gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id, key.key_id],
         f"Commit is already signed with GPG key {key.key_id}"),
        (["commit", "-b", "main", f"--tree=dir={tmp_path / 'tree'}", "--gpg-sign=nobody@example.com",
          f"--gpg-homedir={key.homedir}"], f"No gpg key found with ID nobody@example.com (homedir: {key.homedir})"),
        (["summary", "-u", "--gpg-sign=DEADBEEF", f"--gpg-homedir={key.homedir}"],
         f"No gpg key found with ID DEADBEEF (homedir: {key.homedir})"),
        (["gpg-sign", checksum], "Need at least one GPG KEY-ID to sign with"),
    ]
    for argv, message in cases:
        assert ours(capsys, f"--repo={path}", *argv) == (1, "", f"error: {message}\n"), argv
        assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before, argv


def test_gpg_not_installed(key: GpgKeyHome, repo: Tuple[Path, str], tmp_path: Path) -> None:
    path, checksum = repo
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = dict(os.environ, PATH=str(bindir))
    done = subprocess.run([sys.executable, "-m", "pyostree", f"--repo={path}", "gpg-sign",
                           f"--gpg-homedir={key.homedir}", checksum, key.key_id],
                          capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "error: GPG: 'gpg' is not installed (not found in PATH)\n")
    assert signatures(path, checksum) == []


def test_corrupt_signature(capsys: pytest.CaptureFixture[str], key: GpgKeyHome, repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    assert ours(capsys, f"--repo={path}", "gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id)[0] == 0
    (sig,) = signatures(path, checksum)
    data = commit_bytes(path, checksum)
    flipped = sig[:-3] + bytes([sig[-3] ^ 1]) + sig[-2:]
    results = GpgVerifier([str(key.keyring)]).verify(data, [flipped])
    assert not results[0].valid
    with pytest.raises(SignError, match="BAD signature"):
        require_valid(results, "commit")
    with pytest.raises(SignError, match="not an OpenPGP packet"):
        GpgVerifier([str(key.keyring)]).verify(data, [b"garbage"])
    with pytest.raises(SignError, match="truncated"):
        GpgVerifier([str(key.keyring)]).verify(data, [sig[:-10]])
    meta = path / "objects" / checksum[:2] / f"{checksum[2:]}.commitmeta"
    meta.write_bytes(gvariant.encode("a{sv}", {"ostree.gpgsigs": ("aay", [flipped])}))
    status, out, _ = ours(capsys, f"--repo={path}", "show", f"--gpg-homedir={key.keyring_dir}", checksum)
    assert status == 0 and out == run_ostree("show", f"--gpg-homedir={key.keyring_dir}", checksum, repo=path)
    assert f'BAD signature from "{key.uid}"' in out


def test_signature_packet_fields(key: GpgKeyHome, repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    run_ostree("gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id, repo=path)
    (packet,) = parse_signatures(signatures(path, checksum)[0])
    assert packet.issuer_fingerprint == key.fingerprint and packet.issuer_key_id == key.key_id
    assert packet.pubkey_algo_name == "EdDSA" and packet.sig_type == 0 and packet.created > 0


def test_revoked_and_expired_keys_as_ostree_reports_them(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path, repo: Tuple[Path, str]) -> None:
    path, checksum = repo
    data = commit_bytes(path, checksum)
    meta = path / "objects" / checksum[:2] / f"{checksum[2:]}.commitmeta"
    # a key that expired in 2020 (made and used at a faked time)
    old_base = tmp_path / "old"
    old_base.mkdir()
    home = old_base / "home"
    home.mkdir(mode=0o700)
    faked = ["--faked-system-time", "20200101T000000"]
    subprocess.run([gpg_bin(), "--batch", "--homedir", str(home), *faked, "--passphrase", "", "--quick-gen-key",
                    "Old Key <old@example.com>", "ed25519", "sign", "1d"], check=True, capture_output=True)
    try:
        sig = subprocess.run([gpg_bin(), "--batch", "--homedir", str(home), *faked, "--detach-sign"], input=data,
                             check=True, capture_output=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)
    keyrings = tmp_path / "keyrings"
    keyrings.mkdir()
    (keyrings / "old.gpg").write_bytes(subprocess.run([gpg_bin(), "--batch", "--homedir", str(home), "--export"],
                                                      check=True, capture_output=True).stdout)
    meta.write_bytes(gvariant.encode("a{sv}", {"ostree.gpgsigs": ("aay", [sig])}))
    want = run_ostree("show", f"--gpg-homedir={keyrings}", checksum, repo=path)
    assert "Key expired Thu Jan \u20072 00:00:00 2020" in want
    assert ours(capsys, f"--repo={path}", "show", f"--gpg-homedir={keyrings}", checksum) == (0, want, "")
    (result,) = GpgVerifier([str(keyrings / "old.gpg")]).verify(data, [sig])
    assert result.key_expired and not result.valid
    # a revoked key
    key = make_key(tmp_path / "revoked", "Revoked Key", "revoked@example.com")
    try:
        assert ours(capsys, f"--repo={path}", "gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id)[0] == 0
        revoke(key)
        (keyrings / "revoked.gpg").write_bytes(key.keyring.read_bytes())
        want = run_ostree("show", f"--gpg-homedir={keyrings}", checksum, repo=path)
        assert "Key revoked\n" in want
        assert ours(capsys, f"--repo={path}", "show", f"--gpg-homedir={keyrings}", checksum) == (0, want, "")
        results = GpgVerifier([str(key.keyring)]).verify(data, signatures(path, checksum))
        with pytest.raises(SignError, match="Key revoked"):
            require_valid(results, "commit")
    finally:
        kill_agent(key)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_packet_parser_only_raises_sign_error(data: bytes) -> None:
    try:
        packets = parse_signatures(data)
    except SignError:
        return
    assert packets


def test_failed_summary_signing_keeps_the_old_pair(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                                   repo: Tuple[Path, str]) -> None:
    path, _ = repo
    gpg = (f"--gpg-sign={key.key_id}", f"--gpg-homedir={key.homedir}")
    assert ours(capsys, f"--repo={path}", "summary", "-u", *gpg) == (0, "", "")
    pair = ((path / "summary").read_bytes(), (path / "summary.sig").read_bytes())
    status, _, err = ours(capsys, f"--repo={path}", "summary", "-u", "--gpg-sign=DEADBEEF",
                          f"--gpg-homedir={key.homedir}")
    assert (status, err) == (1, f"error: No gpg key found with ID DEADBEEF (homedir: {key.homedir})\n")
    assert ((path / "summary").read_bytes(), (path / "summary.sig").read_bytes()) == pair
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".summary")) == []


def test_collection_repo_metadata_commit_is_signed(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "collection"
    run_ostree("init", "--mode=archive", "--collection-id=org.example.Os", repo=path)
    assert ours(capsys, f"--repo={path}", "summary", "-u", f"--gpg-sign={key.key_id}",
                f"--gpg-homedir={key.homedir}") == (0, "", "")
    shown = run_ostree("show", f"--gpg-homedir={key.keyring_dir}", "ostree-metadata", repo=path)
    assert f'Good signature from "{key.uid}"' in shown
    sig = gvariant.decode("a{sv}", (path / "summary.sig").read_bytes())
    assert isinstance(sig, dict)
    require_valid(GpgVerifier([str(key.keyring)]).verify((path / "summary").read_bytes(),
                                                         sig["ostree.gpgsigs"][1]), "summary")
    run_ostree("fsck", repo=path)


def test_too_many_signatures_is_refused(capsys: pytest.CaptureFixture[str], key: GpgKeyHome,
                                        repo: Tuple[Path, str]) -> None:
    """A hostile commitmeta with thousands of signatures is refused, not fed to gpgv."""
    path, checksum = repo
    assert ours(capsys, f"--repo={path}", "gpg-sign", f"--gpg-homedir={key.homedir}", checksum, key.key_id)[0] == 0
    (sig,) = signatures(path, checksum)
    meta = path / "objects" / checksum[:2] / f"{checksum[2:]}.commitmeta"
    meta.write_bytes(gvariant.encode("a{sv}", {"ostree.gpgsigs": ("aay", [sig] * 2000)}))
    status, out, err = ours(capsys, f"--repo={path}", "show", checksum)
    # the commit is printed first, as ostree prints it before verifying
    assert (status, err) == (1, "error: GPG: 2000 signatures, more than 1024\n") and out.startswith("commit ")
