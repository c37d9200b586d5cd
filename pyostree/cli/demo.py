"""``pyostree demo``: a self-contained push over real ssh on 127.0.0.1, then verification.

Needs no set-up: everything (repos, keys, an embedded ssh server) lives in a temporary
directory that is removed at the end. It shows both push modes: sftp for the first
commit, ``pyostree receive`` for the second, which it signs (ed25519, a throwaway key)
and whose signature it verifies on the destination.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Tuple

if TYPE_CHECKING:
    from pyostree.sshserver import EmbeddedSshServer

NAME = "demo"
SUMMARY = ("Push a sample tree over ssh on 127.0.0.1 in both modes, one commit signed, and verify it "
           "(self-contained)")

BRANCH = "demo/main"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def _say(message: str) -> None:
    print(message, flush=True)


def _make_tree(root: Path, generation: int) -> None:
    """A small tree with nested dirs, an executable and a symlink; changes per generation."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "share" / "doc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "motd").write_text(f"Welcome to pyostree demo, generation {generation}\n")
    tool = root / "usr" / "bin" / "hello"
    tool.write_text("#!/bin/sh\necho hello from pyostree\n")
    os.chmod(tool, 0o755)
    for index in range(20):
        (root / "usr" / "share" / "doc" / f"page{index:02}.txt").write_text(
            f"page {index}\n" * (50 + index)
        )
    link = root / "usr" / "bin" / "hi"
    if not link.is_symlink():
        os.symlink("hello", link)
    if generation > 1:
        (root / "etc" / "release").write_text(f"release {generation}\n")


def _commit(repo_path: Path, tree: Path, subject: str) -> str:
    from pyostree.repo import Repo
    from pyostree.repo.commitwrite import CommitRequest, write_commit
    from pyostree.repo.treebuilder import TreeBuilder, TreeOptions

    repo = Repo.open(repo_path)
    with repo.transaction() as txn:
        with TreeBuilder(txn, TreeOptions(owner_uid=0, owner_gid=0), workers=0) as builder:
            builder.add_directory(tree)
            root_tree, root_meta = builder.finish()
        result = write_commit(txn, root_tree, root_meta, CommitRequest(branch=BRANCH, subject=subject))
    return result.checksum


def _verify(remote_path: Path, local_commit: str) -> List[str]:
    """Problems found on the remote (empty when everything checks out)."""
    from pyostree.fsck import fsck
    from pyostree.repo import Repo

    problems: List[str] = []
    remote = Repo.open(remote_path)
    result = fsck(remote)
    _say(f"  pyostree fsck: {result.commits_checked} commits, {result.objects_checked} objects, "
         f"{'OK' if result.ok else 'PROBLEMS'}")
    problems.extend(str(p) for p in result.problems)
    ostree = shutil.which("ostree")
    if ostree is not None:
        done = subprocess.run([ostree, "fsck", f"--repo={remote_path}"], capture_output=True, text=True)
        last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
        _say(f"  ostree fsck:   {last}")
        if done.returncode != 0:
            problems.append(f"ostree fsck failed: {done.stderr.strip()}")
    else:
        _say("  ostree fsck:   skipped (ostree is not installed)")
    remote_commit = remote.read_ref(BRANCH)
    if remote_commit is not None:
        landed = remote.load_commit(remote_commit)
        _say(f"  landed: {BRANCH} = {remote_commit[:12]} \"{landed.subject}\" "
             f"(parent {landed.parent[:12] if landed.parent else 'none'})")
    same = remote_commit == local_commit
    _say(f"  {BRANCH}: local  {local_commit}")
    _say(f"  {BRANCH}: remote {remote_commit}  {'(equal)' if same else '(DIFFERENT)'}")
    if not same:
        problems.append("remote ref differs from the local commit")
    return problems


def _sign(repo_path: Path, commit: str) -> bytes:
    """Sign COMMIT with a throwaway ed25519 key, as ``commit --sign`` does; its public key."""
    from pyostree.repo import Repo
    from pyostree.sign.commitmeta import sign_commit
    from pyostree.sign.ed25519 import Ed25519Signer, public_key_of_seed

    seed = os.urandom(32)
    signer = Ed25519Signer(seed + public_key_of_seed(seed))
    sign_commit(Repo.open(repo_path), commit, [signer])
    return signer.public_key


def _verify_signature(remote_path: Path, commit: str, public_key: bytes) -> List[str]:
    """The signature came along with the commit: check it on the destination."""
    from pyostree.errors import SignError
    from pyostree.objects.commitmeta import ED25519_SIGNATURES_KEY, CommitMeta
    from pyostree.objects.types import ObjectType
    from pyostree.repo import Repo
    from pyostree.sign.ed25519 import Ed25519Verifier

    remote = Repo.open(remote_path)
    signatures = CommitMeta(remote.load_commitmeta(commit) or {}).signatures(ED25519_SIGNATURES_KEY)
    try:
        message = Ed25519Verifier((public_key,)).verify(
            remote.read_metadata_bytes(commit, ObjectType.COMMIT), signatures)
    except SignError as err:
        return [f"signature on the remote: {err}"]
    _say(f"  signature:     {message}")
    return []


def _ssh_setup(base: Path) -> Tuple["EmbeddedSshServer", str]:
    """A throwaway client key (written to a file) and the embedded server (not started)."""
    from pyostree.sshserver import RECEIVE_ALLOW_LIST, EmbeddedSshServer, generate_key, write_private_key

    client_key = generate_key()
    key_file = base / "client_key"
    write_private_key(client_key, str(key_file))
    exec_env = dict(os.environ)
    # The receiver runs with this interpreter's environment, so `pyostree receive` resolves.
    exec_env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + exec_env.get("PATH", "")
    server = EmbeddedSshServer(
        str(base / "server-root"), [client_key], exec_allow=RECEIVE_ALLOW_LIST, exec_env=exec_env,
    )
    return server, str(key_file)


def run(args: argparse.Namespace) -> int:
    from pyostree.push import PushOptions, PushResult, push
    from pyostree.repo import Repo, RepoMode
    from pyostree.transport import SshOptions

    started = time.monotonic()
    # paramiko reports the server side seeing the client hang up as an error; not one here.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    base = Path(tempfile.mkdtemp(prefix="pyostree-demo-"))
    try:
        tree = base / "tree"
        src_path = base / "source-repo"
        (base / "server-root").mkdir()
        remote_path = base / "server-root" / "repo"
        Repo.init(src_path, RepoMode.BARE_USER)
        Repo.init(remote_path, RepoMode.ARCHIVE)
        _make_tree(tree, 1)
        first = _commit(src_path, tree, "First demo commit")
        _say(f"source repo (bare-user): committed {first[:12]} on {BRANCH}")
        _say("destination repo (archive) created, served by an embedded ssh server on 127.0.0.1")

        server, key_file = _ssh_setup(base)
        with server:
            known_hosts = base / "known_hosts"
            known_hosts.write_text(server.known_hosts_line() + "\n")
            port = server.port
            ssh = SshOptions(
                port=port,
                identity_files=(key_file,),
                options=(("UserKnownHostsFile", str(known_hosts)), ("StrictHostKeyChecking", "yes")),
                home=str(base),
            )
            destination = "demo@127.0.0.1:repo"
            source = Repo.open(src_path)

            def report(result: PushResult) -> None:
                for update in result.updates:
                    _say(f"  {update.ref}: {update.old[:12] if update.old else '(new)'} -> {update.new[:12]}")
                _say(f"  sent {result.objects_sent} objects, {result.bytes_sent} bytes, via {result.via}")

            _say(f"\n[1/2] push over ssh, sftp mode -> ssh://demo@127.0.0.1:{port}/repo")
            report(push(source, destination, (BRANCH,), PushOptions(via="sftp", ssh=ssh, update_summary=True)))
            problems = _verify(remote_path, first)

            _make_tree(tree, 2)
            second = _commit(src_path, tree, "Second demo commit")
            _say(f"\nsource repo: committed {second[:12]} (parent {first[:12]})")
            public_key = _sign(src_path, second)
            _say(f"  signed it with ed25519 key {base64.b64encode(public_key).decode()}")
            _say("[2/2] push over ssh, receive mode (pyostree receive on the server)")
            report(push(source, destination, (BRANCH,), PushOptions(via="receive", ssh=ssh)))
            problems += _verify(remote_path, second)
            problems += _verify_signature(remote_path, second, public_key)

        _say(f"  remote summary regenerated: {(remote_path / 'summary').exists()}")
        elapsed = time.monotonic() - started
        if problems:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return 1
        _say(f"\ndemo OK in {elapsed:.1f}s: both pushes landed, remote verified, refs equal, signature good")
        return 0
    finally:
        if args.keep:
            _say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
