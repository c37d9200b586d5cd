"""Push benchmark: pyostree push (sftp and receive modes, paramiko and OpenSSH clients) vs
``rsync -a`` of the repository, over the same loopback OpenSSH sshd.

Synthetic tree: 2,000 files, about 20 MB (half random, half text), committed by ``ostree``
into an archive repo. Three pushes per tool into a fresh archive remote: full, 1%
incremental (20 files changed), and no-op. Every run is a CLI subprocess, so start-up is
counted for everyone. Prints wall times and the ratio pyostree / rsync.

    python benchmarks/bench_push.py [--files N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


def _run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr.decode()[-2000:]}")
    return elapsed


def _make_tree(root: Path, files: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(500)]
    for index in range(files):
        directory = root / f"d{index % 40:02}" / f"e{index % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(2_000, 18_000)
        if index % 2:
            data = rng.randbytes(size)
        else:
            data = " ".join(rng.choice(words) for _ in range(size // 6)).encode()[:size]
        (directory / f"f{index:05}.dat").write_bytes(data)


def _touch_one_percent(root: Path, files: int) -> None:
    rng = random.Random(7)
    for index in rng.sample(range(files), max(1, files // 100)):
        path = root / f"d{index % 40:02}" / f"e{index % 7}" / f"f{index:05}.dat"
        path.write_bytes(path.read_bytes()[::-1] + b"changed")


class Sshd:
    """A throwaway OpenSSH sshd on 127.0.0.1 with its own keys."""

    def __init__(self, work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / key)], check=True)
        (work / "authorized_keys").write_text((work / "client.pub").read_text())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        (work / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {work / 'host'}",
            "PidFile none", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", f"AuthorizedKeysFile {work / 'authorized_keys'}",
            "Subsystem sftp internal-sftp", "",
        ]))
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(work / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host = (work / "host.pub").read_text().split()
        self.known_hosts = work / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host[0]} {host[1]}\n")
        self.key = work / "client"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("sshd did not start")

    def ssh_command(self) -> str:
        return (f"ssh -p {self.port} -i {self.key} -F /dev/null -o IdentitiesOnly=yes "
                f"-o UserKnownHostsFile={self.known_hosts} -o BatchMode=yes")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    for tool in ("ostree", "rsync", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} not installed")
            return 0
    base = Path(tempfile.mkdtemp(prefix="bench-push-"))
    server: Optional[Sshd] = None
    try:
        tree = base / "tree"
        _make_tree(tree, args.files)
        size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        src1, src2 = base / "src1", base / "src2"
        subprocess.run(["ostree", "init", "--mode=archive", f"--repo={src1}"], check=True)
        subprocess.run(["ostree", "commit", f"--repo={src1}", "-b", "main", f"--tree=dir={tree}",
                        "--owner-uid=0", "--owner-gid=0"], check=True, capture_output=True)
        shutil.copytree(src1, src2, symlinks=True)
        _touch_one_percent(tree, args.files)
        subprocess.run(["ostree", "commit", f"--repo={src2}", "-b", "main", f"--tree=dir={tree}",
                        "--owner-uid=0", "--owner-gid=0"], check=True, capture_output=True)
        print(f"tree: {args.files} files, {size / 1e6:.1f} MB; sshd on 127.0.0.1, archive -> archive")
        server = Sshd(base / "sshd")
        user = os.environ.get("USER", "root")
        pyostree = [sys.executable, "-m", "pyostree"]
        receive = f"{sys.executable} -m pyostree receive"

        def pyostree_push(via: str, vendor: str) -> Tuple[List[str], List[str]]:
            common = ["push", "-q", f"--via={via}", f"--ssh={vendor}", "-p", str(server.port),
                      "-i", str(server.key), "-o", f"UserKnownHostsFile={server.known_hosts}",
                      "-o", "IdentitiesOnly=yes", f"--receive-command={receive}"]
            return ([*pyostree, f"--repo={src1}", *common], [*pyostree, f"--repo={src2}", *common])

        tools: Dict[str, Tuple[List[str], List[str]]] = {
            "pyostree sftp (paramiko)": pyostree_push("sftp", "paramiko"),
            "pyostree receive (paramiko)": pyostree_push("receive", "paramiko"),
            "pyostree sftp (openssh)": pyostree_push("sftp", "openssh"),
            "pyostree receive (openssh)": pyostree_push("receive", "openssh"),
            "rsync -a": (["rsync", "-a", "-e", server.ssh_command(), f"{src1}/"],
                         ["rsync", "-a", "-e", server.ssh_command(), f"{src2}/"]),
        }
        results: Dict[str, Dict[str, float]] = {}
        for name, (first, second) in tools.items():
            samples: Dict[str, List[float]] = {"full": [], "1% incremental": [], "no-op": []}
            for attempt in range(args.repeat):
                remote = base / f"remote-{len(results)}-{attempt}"
                subprocess.run(["ostree", "init", "--mode=archive", f"--repo={remote}"], check=True)
                dest = f"{user}@127.0.0.1:{remote}" + ("/" if name.startswith("rsync") else "")
                samples["full"].append(_run([*first, dest]))
                samples["1% incremental"].append(_run([*second, dest]))
                samples["no-op"].append(_run([*second, dest]))
                check = subprocess.run(["ostree", "fsck", f"--repo={remote}"], capture_output=True)
                if check.returncode != 0:
                    raise SystemExit(f"{name}: remote fails ostree fsck")
            results[name] = {k: statistics.median(v) for k, v in samples.items()}
        rsync = results["rsync -a"]
        print(f"{'tool':30} {'full':>8} {'1% incr':>8} {'no-op':>8}   ratios vs rsync")
        for name, times in results.items():
            ratio = " ".join(f"{times[k] / rsync[k]:.2f}x" for k in times)
            print(f"{name:30} " + " ".join(f"{times[k]:7.2f}s" for k in times) + f"   {ratio}")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
