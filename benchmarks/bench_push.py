"""Push benchmark: pyostree push (sftp and receive modes, paramiko and OpenSSH clients) vs
ostree-push 1.2.0 and ``rsync -a`` of the repository, over the same loopback OpenSSH sshd;
also ``rsync -a --fsync`` where rsync has it, the peer that, like a push, leaves the
files durable (plain rsync leaves them to the kernel's write-back, after its clock stops).

Trees: a synthetic one (2,000 files, about 20 MB, half random, half text) and the machine's
``/usr/share/doc``, each committed by ``ostree`` into an archive repo. Three pushes per tool
into a fresh archive remote: full, 1% incremental (1% of the files changed), and no-op;
each case runs for every tool back to back. Every run is a CLI subprocess, so start-up is
counted for everyone. Prints wall times, ratios vs rsync and ostree-push, and peak RSS of
the client (``wait4``) and of the receiver (``/usr/bin/time`` around it) where there is one.

Fairness: file creation on an ext4 disk costs more for a while after many deletions, and a
receiver that syncs flushes whatever the previous tool left dirty. So the disk is synced
(untimed) before every timed command, the tool order rotates on each repeat, and no remote
is deleted until the whole run is over. ``--cases`` times only some cases; the earlier
cases a later one needs (the full push before a no-op) still run, untimed.

ostree-push runs from a venv with ``--system-site-packages`` (it needs the system ``gi``
with OSTree) cached in ``benchmarks/.work/``; its ``ostree-receive`` is started on the
"remote" through a wrapper script given to ``--command``.

pyostree runs as users install it: this checkout is installed (pip, a wheel) into a venv
made afresh in ``benchmarks/.work/pyostree-installed`` that borrows this interpreter's
dependencies, and its ``pyostree`` script is both the client and the receive command.
The checkout's own editable install loads setuptools' import hook (pathlib, re, ...) in
every process, about 6 ms each; where the install fails, that is what runs instead.

    python benchmarks/bench_push.py [--files N] [--repeat N] [--trees synthetic,doc]
                                    [--tools WORDS] [--cases full,incr,no-op]
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
from typing import Callable, Dict, List, Optional, Sequence, Tuple


HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
OSTREE_PUSH_VERSION = "1.2.0"


#: Timed commands start as installed ones do, from cached bytecode: with
#: PYTHONDONTWRITEBYTECODE set, every source edited since its .pyc was written would be
#: compiled again on each run (the receiver, started by sshd, never sees the variable).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: Sequence[str]) -> Tuple[float, int]:
    """Wall time and peak RSS (KiB, from wait4) of one command, which must succeed.

    The disk is synced first, outside the timing, so nobody pays for another's dirty pages."""
    with tempfile.TemporaryFile() as err:
        os.sync()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_ENV)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"failed: {' '.join(cmd)}\n{err.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss


def _peak_rss(path: Path) -> int:
    """The %M figure /usr/bin/time wrote (KiB), 0 if none."""
    try:
        lines = path.read_text().split()
    except OSError:
        return 0
    numbers = [int(word) for word in lines if word.isdigit()]
    return max(numbers, default=0)


def _setup_ostree_push() -> Tuple[Optional[Path], str]:
    """(wrapper dir with ostree-push and the receive wrapper, '') or (None, why not)."""
    venv = WORK / f"ostree-push-{OSTREE_PUSH_VERSION}"
    python3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    if not (venv / "bin" / "ostree-push").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        made = subprocess.run([python3, "-m", "venv", "--system-site-packages", str(venv)],
                              capture_output=True)
        if made.returncode != 0:
            return None, f"cannot create a venv: {made.stderr.decode().strip()[-200:]}"
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps",
                              f"ostree-push=={OSTREE_PUSH_VERSION}"], capture_output=True)
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            return None, f"pip install failed: {pip.stderr.decode().strip()[-200:]}"
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import gi; gi.require_version('OSTree', '1.0'); "
                            "from gi.repository import OSTree; import yaml"], capture_output=True)
    if probe.returncode != 0:
        last = (probe.stderr.decode().strip().splitlines() or ["?"])[-1]
        return None, ("the system python3 lacks gi with OSTree 1.0 or yaml (python3-gi, "
                      f"gir1.2-ostree-1.0, python3-yaml): {last}")
    conf = WORK / "ostree-receive.conf"
    conf.write_text("update: true\n")  # isolated from ~/.config and /etc
    wrapper = WORK / "ostree-receive-bench"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'OSTREE_RECEIVE_CONF="{conf}" exec "{venv / "bin" / "ostree-receive"}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return venv, ""


def _install_pyostree() -> Tuple[List[str], str]:
    """(the command that runs the installed ``pyostree``, '') or (this interpreter's
    ``-m pyostree``, why not)."""
    import sysconfig

    venv = WORK / "pyostree-installed"
    shutil.rmtree(venv, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True)
    fallback = [sys.executable, "-m", "pyostree"]
    if made.returncode != 0:
        return fallback, f"cannot create a venv: {made.stderr.decode().strip()[-200:]}"
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_bench_dependencies.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                          "--no-deps", str(HERE.parent)], capture_output=True)
    if pip.returncode != 0:
        return fallback, f"pip install failed: {pip.stderr.decode().strip()[-200:]}"
    return [str(venv / "bin" / "pyostree")], ""


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


def _regular_files(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _touch_one_percent(root: Path) -> int:
    files = _regular_files(root)
    rng = random.Random(7)
    chosen = rng.sample(files, max(1, len(files) // 100))
    for path in chosen:
        path.write_bytes(path.read_bytes()[::-1] + b"changed")
    return len(chosen)


def _commit(repo: Path, tree: Path) -> None:
    subprocess.run(["ostree", "commit", f"--repo={repo}", "-b", "main", f"--tree=dir={tree}",
                    "--owner-uid=0", "--owner-gid=0"], check=True, capture_output=True)


def _prepare_tree(base: Path, kind: str, files: int) -> Tuple[Path, Path, str]:
    """Two source repos (before and after the 1% change) and a description."""
    tree = base / f"tree-{kind}"
    if kind == "synthetic":
        _make_tree(tree, files)
    else:
        subprocess.run(["cp", "-a", "/usr/share/doc", str(tree)], check=True)
        for path in tree.rglob("*"):  # the remote must be able to read everything
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    count = len(_regular_files(tree))
    size = sum(p.stat().st_size for p in _regular_files(tree))
    src1, src2 = base / f"src1-{kind}", base / f"src2-{kind}"
    subprocess.run(["ostree", "init", "--mode=archive", f"--repo={src1}"], check=True)
    _commit(src1, tree)
    shutil.copytree(src1, src2, symlinks=True)
    changed = _touch_one_percent(tree)
    _commit(src2, tree)
    name = "synthetic" if kind == "synthetic" else "/usr/share/doc"
    return src1, src2, f"{name}: {count} files, {size / 1e6:.1f} MB, {changed} changed for the 1% case"


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


CASES = ("full", "1% incr", "no-op")
_CASE_NAMES = {"full": "full", "incr": "1% incr", "1% incr": "1% incr", "no-op": "no-op", "noop": "no-op"}


def _parse_cases(text: str) -> Tuple[str, ...]:
    """The cases named in ``text`` (full, incr, no-op), in run order."""
    wanted = set()
    for word in text.split(","):
        case = _CASE_NAMES.get(word.strip().lower())
        if case is None:
            raise SystemExit(f"unknown case {word!r} (expected full, incr or no-op)")
        wanted.add(case)
    return tuple(c for c in CASES if c in wanted)


def _rotated(names: List[str], attempt: int) -> List[str]:
    """``names`` starting at a different tool on each repeat, so nobody always goes first."""
    shift = attempt % len(names) if names else 0
    return names[shift:] + names[:shift]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--trees", default="synthetic,doc", help="synthetic and/or doc")
    parser.add_argument("--tools", default="", help="only tools whose name contains one of "
                        "these comma-separated words")
    parser.add_argument("--cases", default="full,incr,no-op", type=_parse_cases,
                        help="cases to time, comma-separated: full, incr, no-op (earlier "
                        "cases still run untimed to set up later ones)")
    args = parser.parse_args(argv)
    for tool in ("ostree", "rsync", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} not installed")
            return 0
    timer = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    ostree_push, why_not = _setup_ostree_push()
    if ostree_push is None:
        print(f"ostree-push {OSTREE_PUSH_VERSION} left out: {why_not}")
    pyostree, why_not = _install_pyostree()
    if why_not:
        print(f"pyostree runs from this checkout's editable install: {why_not}")
    base = Path(tempfile.mkdtemp(prefix="bench-push-"))
    server: Optional[Sshd] = None
    try:
        server = Sshd(base / "sshd")
        user = os.environ.get("USER", "root")
        ssh_opts = ["-o", f"IdentityFile={server.key}", "-o", f"UserKnownHostsFile={server.known_hosts}",
                    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        print(f"sshd on 127.0.0.1, archive -> archive; load average {os.getloadavg()[0]:.1f}")
        for kind in args.trees.split(","):
            src1, src2, description = _prepare_tree(base, kind, args.files)
            print(f"\ntree {description}")
            _bench_tree(args, base / kind, src1, src2, server, user, ssh_opts, ostree_push, timer,
                        pyostree)
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


Command = Callable[[Path, str, Path], List[str]]


def _bench_tree(args: argparse.Namespace, work: Path, src1: Path, src2: Path, server: Sshd,
                user: str, ssh_opts: List[str], ostree_push: Optional[Path],
                timer: Optional[str], pyostree: List[str]) -> None:
    work.mkdir(parents=True, exist_ok=True)

    def pyostree_push(via: str, vendor: str) -> Command:
        def command(src: Path, dest: str, rss_file: Path) -> List[str]:
            receive = " ".join([*pyostree, "receive"])
            if timer is not None:
                receive = f"{timer} -o {rss_file} -f %M {receive}"
            return [*pyostree, f"--repo={src}", "push", "-q", f"--via={via}", f"--ssh={vendor}",
                    "-p", str(server.port), "-i", str(server.key), "-o",
                    f"UserKnownHostsFile={server.known_hosts}", "-o", "IdentitiesOnly=yes",
                    f"--receive-command={receive}", dest]
        return command

    def otpush(src: Path, dest: str, rss_file: Path) -> List[str]:
        assert ostree_push is not None
        return [str(ostree_push / "bin" / "ostree-push"), "-q", f"--repo={src}",
                "-p", str(server.port), *ssh_opts,
                f"--command={WORK / 'ostree-receive-bench'}", dest, "main"]

    def rsync(src: Path, dest: str, rss_file: Path) -> List[str]:
        return ["rsync", "-a", "-e", server.ssh_command(), f"{src}/", dest + "/"]

    def rsync_fsync(src: Path, dest: str, rss_file: Path) -> List[str]:
        return ["rsync", "-a", "--fsync", "-e", server.ssh_command(), f"{src}/", dest + "/"]

    tools: Dict[str, Command] = {
        "pyostree receive (openssh)": pyostree_push("receive", "openssh"),
        "pyostree receive (paramiko)": pyostree_push("receive", "paramiko"),
        "pyostree sftp (openssh)": pyostree_push("sftp", "openssh"),
        "pyostree sftp (paramiko)": pyostree_push("sftp", "paramiko"),
    }
    if ostree_push is not None:
        tools["ostree-push 1.2.0"] = otpush
    tools["rsync -a"] = rsync
    if _rsync_can_fsync():  # the durable peer: what a push must pay to survive a crash
        tools["rsync -a --fsync"] = rsync_fsync
    if args.tools:
        wanted = args.tools.split(",")
        tools = {n: c for n, c in tools.items()
                 if n == "rsync -a" or any(w in n for w in wanted)}
    timed: Tuple[str, ...] = args.cases
    samples: Dict[str, Dict[str, List[float]]] = {n: {c: [] for c in timed} for n in tools}
    rss: Dict[str, List[int]] = {n: [0, 0] for n in tools}  # client, receiver (KiB)
    # Remotes are only deleted with the whole run: deletions slow down later file creation.
    last = max(CASES.index(c) for c in timed)
    for attempt in range(args.repeat):
        order = _rotated(list(tools), attempt)
        remotes = {}
        for name in order:
            remote = work / f"remote-{list(tools).index(name)}-{attempt}"
            subprocess.run(["ostree", "init", "--mode=archive", f"--repo={remote}"], check=True)
            remotes[name] = remote
        for case, src in list(zip(CASES, (src1, src2, src2)))[: last + 1]:
            for name in order:
                rss_file = work / f"rss-{list(tools).index(name)}-{attempt}-{CASES.index(case)}"
                elapsed, client_rss = _run(tools[name](src, f"{user}@127.0.0.1:{remotes[name]}", rss_file))
                if case not in timed:
                    continue
                samples[name][case].append(elapsed)
                rss[name][0] = max(rss[name][0], client_rss)
                rss[name][1] = max(rss[name][1], _peak_rss(rss_file))
        for name, remote in remotes.items():
            check = subprocess.run(["ostree", "fsck", f"--repo={remote}"], capture_output=True)
            if check.returncode != 0:
                raise SystemExit(f"{name}: remote fails ostree fsck")
    _print_results(samples, rss, timed)


def _rsync_can_fsync() -> bool:
    """rsync >= 3.2.4 has ``--fsync`` (fsync every written file)."""
    done = subprocess.run(["rsync", "--help"], capture_output=True, text=True)
    return "--fsync" in done.stdout


def _print_results(samples: Dict[str, Dict[str, List[float]]], rss: Dict[str, List[int]],
                   timed: Tuple[str, ...]) -> None:
    results = {n: {c: statistics.median(v) for c, v in s.items()} for n, s in samples.items()}
    peer = results.get("ostree-push 1.2.0")
    base_rsync = results["rsync -a"]
    ratio_title = f"vs rsync ({'/'.join(c.replace('1% ', '') for c in timed)})"
    peer_cases = tuple(c for c in timed if c != "no-op")
    print(f"{'tool':28} " + " ".join(f"{c:>7}" for c in timed) + f"  {ratio_title:27}"
          f" {'vs ostree-push':>15}  peak RSS client/receiver")
    for name, times in results.items():
        ratio = "/".join(f"{times[c] / base_rsync[c]:.2f}x" for c in timed)
        versus = "/".join(f"{times[c] / peer[c]:.2f}x" for c in peer_cases) if peer and peer_cases else "-"
        client, receiver = rss[name]
        print(f"{name:28} " + " ".join(f"{times[c]:6.2f}s" for c in timed)
              + f"  {ratio:27} {versus:>15}  {client / 1024:.0f}/"
              + (f"{receiver / 1024:.0f} MB" if receiver else "- MB"))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
