"""Fault-injection benchmark: the cases of tests/test_fault_*.py and
tests/test_concurrency_push.py, run for many iterations, summarised as the table in
docs/RELIABILITY.md.

    .venv/bin/python benchmarks/bench_faults.py --iterations 50
    .venv/bin/python benchmarks/bench_faults.py --iterations 5 --cases kill-receiver-local,race-receive-receive
    .venv/bin/python benchmarks/bench_faults.py --iterations 50 --cases issue13   # OpenSSH, bare-user, power loss

Every iteration applies the same checks as the tests (tests/test_fault_support.py):
``ostree fsck`` clean after the fault, ``main`` old or new, nothing partial in objects/,
re-push completes without re-sending staged objects nor objects already in objects/,
one-line error messages; for races exactly one winner; for HTTP pulls no 404 on a needed
object. The ``openssh`` cases go through a real OpenSSH sshd (tests/sshd.py) with the
OpenSSH client; ``bare-user`` cases push into bare-user and bare-user-only remotes;
``power-loss`` cases shut the remote's ext4 (a loop device) down without a log flush at a
random point and remount it (``F.power_loss_case``): the ref must be old or new, and new
if the push had reported success. The ``-early`` cases run the receiver with a 1 KiB early-publishing threshold
(``F.EARLY_RECEIVE_ARGV``); ``-at-early-publish`` kills the receiver as soon as an object
of the push appears in objects/. A failed check counts the
iteration as not survived and is listed; "data lost" counts accepted updates or pushed
commits the remote cannot serve whole afterwards (must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import shlex
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_fault_support as F  # noqa: E402


@dataclass
class Tally:
    case: str
    iterations: int = 0
    faults: int = 0          # iterations where the fault struck mid-operation
    survived: int = 0        # iterations where every check passed
    data_lost: int = 0
    seconds: float = 0.0
    notes: Dict[str, int] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)

    def note(self, key: str) -> None:
        self.notes[key] = self.notes.get(key, 0) + 1


Runner = Callable[[int, random.Random], "Optional[bool]"]
"""One iteration: returns whether the fault struck (None: not applicable); raises
AssertionError (a failed check) or DataLost."""


class DataLost(AssertionError):
    pass


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.source = F.build_source(work / "src")
        self.big = F.build_source(work / "big", files=60, big=6 << 20)
        self.small = F.build_source(work / "small", files=30, big=256 << 10)
        from sshd import EmbeddedSetup

        (work / "ssh").mkdir()
        self.ssh = EmbeddedSetup(work / "ssh")
        self.ssh.server.start()
        self.proxy = F.CuttingProxy(self.ssh.server.port)
        remote = F.fresh_remote(self.source, work / "calibrate")
        started = time.monotonic()
        status, _o, err = F.finish(F.start(F.push_argv(self.source, str(remote), "receive")))
        assert status == 0, err
        self.push_seconds = time.monotonic() - started
        self.counter = itertools.count()
        # Over ssh too: a client kill must land within the push, which the embedded server
        # (no remote shell) makes about as short as a local one.
        F.fresh_remote(self.source, self.ssh.served / "calibrate")
        target = F.ssh_target(self.ssh, "calibrate")
        started = time.monotonic()
        status, _o, err = F.finish(F.start(
            F.push_argv(self.source, target.dest, "receive", *target.cli_extra,
                        receive_argv=target.receive_argv), env=target.env))
        assert status == 0, err
        self.ssh_push_seconds = time.monotonic() - started

        self._stack = contextlib.ExitStack()
        self._new: Dict[str, object] = {}

    def close(self) -> None:
        self.proxy.close()
        self.ssh.server.stop()
        self._stack.close()

    # -- the cases of issue 13: OpenSSH sshd, bare-user remotes, power loss --------------
    # They push a smaller tree (40 small files and 256 KiB, 72 objects) so that 50
    # iterations of each fit in minutes, and also run ``pyostree fsck`` after the fault.

    def small_source(self, remote_mode: str = "archive", summary: bool = True) -> F.Source:
        """With SUMMARY false the remote template has no summary file, so a push does not
        rewrite (and fsync) one after moving the ref."""
        key = f"source-{remote_mode}{'' if summary else '-no-summary'}"
        if key not in self._new:
            source = F.build_source(self.work / key, files=40, big=256 << 10, remote_mode=remote_mode)
            if not summary:
                (source.template / "summary").unlink()
            self._new[key] = source
        return self._new[key]  # type: ignore[return-value]

    def openssh(self) -> object:
        """A real OpenSSH sshd (tests/sshd.py), a cutting proxy before it, and how long a
        push (and its receiver) lasts through it, started on first use."""
        if "sshd" not in self._new:
            from sshd import running_sshd

            server = self._stack.enter_context(running_sshd(self.work / "openssh"))
            proxy = F.CuttingProxy(server.port)
            self._stack.callback(proxy.close)
            source = self.small_source()
            target = F.openssh_target(server, F.fresh_remote(source, self.work / "openssh-calibrate"),
                                      self.work / "openssh-home")
            push, receiver = F.calibrate(source, target)
            proxy.forwarded = 0
            F.fresh_remote(source, target.remote)
            F.calibrate(source, F.openssh_target(server, target.remote, self.work / "openssh-home",
                                                 port=proxy.port))
            self._new.update(sshd=server, openssh_proxy=proxy, openssh_push=push, openssh_receiver=receiver,
                             openssh_bytes=proxy.forwarded)
            print(f"[OpenSSH sshd: push {push:.2f} s, receiver {receiver:.2f} s, {proxy.forwarded} bytes] ",
                  end="", flush=True)
        return self._new["sshd"]

    def kill_openssh(self, via: str, victim: str, tally: Tally, rng: random.Random) -> bool:
        server = self.openssh()
        source = self.small_source()
        remote = F.fresh_remote(source, self._path("openssh-kill"))
        target = F.openssh_target(server, remote, self.work / "openssh-home")
        delay = (rng.uniform(0.0, self._new["openssh_receiver"]) if victim == "receiver"  # type: ignore[arg-type]
                 else rng.uniform(0.05, self._new["openssh_push"]))  # type: ignore[arg-type]
        try:
            return self._judge(F.kill_case(tally.case, source, target, via, delay, victim), tally)
        finally:
            shutil.rmtree(remote, ignore_errors=True)

    def cut_openssh(self, via: str, tally: Tally, rng: random.Random) -> bool:
        server = self.openssh()
        source = self.small_source()
        proxy: F.CuttingProxy = self._new["openssh_proxy"]  # type: ignore[assignment]
        remote = F.fresh_remote(source, self._path("openssh-cut"))
        target = F.openssh_target(server, remote, self.work / "openssh-home", port=proxy.port)
        budget = rng.randint(3_000, int(self._new["openssh_bytes"]))  # type: ignore[call-overload]
        try:
            return self._judge(F.cut_case(tally.case, source, target, proxy, via, budget), tally)
        finally:
            shutil.rmtree(remote, ignore_errors=True)

    def kill_bare(self, mode: str, via: str, victim: str, tally: Tally, rng: random.Random) -> bool:
        source = self.small_source(mode)
        key = f"bare-seconds-{mode}-{via}"
        if key not in self._new:
            self._new[key] = F.calibrate(source, F.local_target(F.fresh_remote(source, self._path("bare-cal"))), via)
        push, receiver = self._new[key]  # type: ignore[misc]
        remote = F.fresh_remote(source, self._path(f"kill-{mode}"))
        delay = rng.uniform(0.0, receiver) if victim == "receiver" else rng.uniform(0.05, push)
        try:
            return self._judge(F.kill_case(tally.case, source, F.local_target(remote, our_fsck=True), via, delay,
                                           victim), tally)
        finally:
            shutil.rmtree(remote, ignore_errors=True)

    def power_loss(self, mode: str, receiver: str, tally: Tally, rng: random.Random, summary: bool = True,
                   via: str = "receive") -> bool:
        source = self.small_source(mode, summary)
        key = f"power-{mode}-{receiver}-{summary}-{via}"
        if key not in self._new:
            image = F.power_loss_image(source, self.work / f"{key}.img")
            seconds = F.power_loss_push_seconds(source, image, self._path("power-cal"), F.RECEIVERS[receiver], via)
            self._new[key] = (image, seconds)
        image, seconds = self._new[key]  # type: ignore[misc]
        work = self._path("power")
        try:
            # a fifth of the cuts land after the push reported success: the ack must hold
            outcome = F.power_loss_case(source, image, work, via, rng.uniform(0.0, 1.25 * seconds),
                                        F.RECEIVERS[receiver])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if outcome.data_lost:
            raise DataLost(f"main is {outcome.ref_after_fault} after the power loss, acknowledged: "
                           f"{outcome.push_status == 0}: {outcome}")
        if outcome.note:
            tally.note(outcome.note)
        tally.note("cut mid-push" if outcome.fault_hit else "cut after the push had reported success")
        if outcome.fault_hit:
            tally.note(f"main {'new' if outcome.ref_after_fault == source.c2 else 'old'} after a cut mid-push")
        return outcome.fault_hit

    def _path(self, name: str) -> Path:
        path = self.work / "runs" / f"{name}-{next(self.counter)}"
        path.mkdir(parents=True)
        return path

    @staticmethod
    def _judge(outcome: F.Outcome, tally: Tally) -> bool:
        if outcome.data_lost:
            raise DataLost(f"main is not c2 after the re-push: {outcome}")
        assert outcome.resent_staged == 0, f"re-push re-sent {outcome.resent_staged} staged objects"
        assert outcome.resent_published == 0, f"re-push re-sent {outcome.resent_published} objects already in objects/"
        if outcome.push_status not in (None, 0):
            assert outcome.message.startswith("error: ")
            tally.note(outcome.message[:60])
        if outcome.fault_hit:
            tally.note(f"staged {'>0' if outcome.staged else '0'} at fault")
        if outcome.published_early:
            tally.note("published early at fault (objects in objects/, others not yet received)")
        return outcome.fault_hit

    # -- cases ---------------------------------------------------------------------------

    def kill_local(self, via: str, victim: str, tally: Tally, rng: random.Random,
                   receiver: str = "default", at_early_publish: bool = False) -> bool:
        remote = F.fresh_remote(self.source, self._path("kill"))
        delay = rng.uniform(0.0, self.push_seconds / 2) if victim == "receiver" else rng.uniform(0.05, self.push_seconds)
        trigger = F.early_published(self.source, remote) if at_early_publish else None
        outcome = F.kill_case(tally.case, self.source, F.local_target(remote, F.RECEIVERS[receiver]), via,
                              F.WAIT if trigger else delay, victim, trigger=trigger)
        try:
            return self._judge(outcome, tally)
        finally:
            shutil.rmtree(remote, ignore_errors=True)

    def kill_ssh(self, via: str, victim: str, tally: Tally, rng: random.Random,
                 receiver: str = "default", at_early_publish: bool = False) -> bool:
        name = f"kill-{uuid.uuid4().hex[:8]}"
        remote = F.fresh_remote(self.source, self.ssh.served / name)
        target = F.ssh_target(self.ssh, name, receive_argv=F.RECEIVERS[receiver])
        trigger = F.early_published(self.source, remote) if at_early_publish else None
        try:
            delay = (rng.uniform(0.0, self.push_seconds / 2) if victim == "receiver"
                     else rng.uniform(0.05, self.ssh_push_seconds))
            outcome = F.kill_case(tally.case, self.source, target, via, F.WAIT if trigger else delay, victim,
                                  trigger=trigger)
            return self._judge(outcome, tally)
        finally:
            shutil.rmtree(self.ssh.served / name, ignore_errors=True)

    def cut(self, via: str, tally: Tally, rng: random.Random, receiver: str = "default") -> bool:
        name = f"cut-{uuid.uuid4().hex[:8]}"
        F.fresh_remote(self.source, self.ssh.served / name)
        target = F.ssh_target(self.ssh, name, port=self.proxy.port, receive_argv=F.RECEIVERS[receiver])
        try:
            outcome = F.cut_case(tally.case, self.source, target, self.proxy, via, rng.randint(5_000, 3_500_000))
            return self._judge(outcome, tally)
        finally:
            shutil.rmtree(self.ssh.served / name, ignore_errors=True)

    def disk_full(self, via: str, tally: Tally, rng: random.Random, receiver: str = "default") -> bool:
        outcome = F.disk_full_case(self.big, self._path("mnt"), via, receive_argv=F.RECEIVERS[receiver])
        assert outcome.push_status == 1 and "No space left on device" in outcome.message, outcome.message
        return self._judge(outcome, tally)

    def permission(self, via: str, spot: str, tally: Tally, rng: random.Random) -> bool:
        remote = F.fresh_remote(self.small, self._path("perm"))
        try:
            outcome = F.permission_case(self.small, remote, via, spot)
            assert outcome.push_status == 1 and "Permission denied" in outcome.message, outcome.message
            return self._judge(outcome, tally)
        finally:
            shutil.rmtree(remote, ignore_errors=True)

    def race(self, vias: List[str], tally: Tally, rng: random.Random, state: Dict[str, object],
             receiver: str = "default") -> bool:
        if "remote" not in state:
            base = self._path("race")
            remote = base / "remote"
            F.ostree("init", "--mode=archive", f"--repo={remote}")
            F.ostree("pull-local", f"--repo={remote}", str(self.source.path), self.source.c1)
            F.ostree("refs", f"--repo={remote}", "--create=main", self.source.c1)
            sides = []
            for k, via in enumerate(vias):
                repo = base / f"side{k}"
                F.ostree("init", "--mode=archive", f"--repo={repo}")
                tree = base / f"tree{k}"
                tree.mkdir()
                sides.append((repo, tree, via))
            state.update(remote=remote, sides=sides, history=[])
        round_ = F.race_round(state["sides"], state["remote"], tally.iterations,  # type: ignore[arg-type]
                              receive_argv=F.RECEIVERS[receiver])
        if round_.winners != 1:
            raise DataLost(f"{round_.winners} winners in one round: {round_}")
        F.check_race(round_)
        loser = round_.messages[1 - round_.statuses.index(0)]
        tally.note("lost the compare-and-swap" if "moved" in loser else "refused as non-fast-forward")
        state["history"].append(round_.remote_ref)  # type: ignore[union-attr]
        return True

    def race_final(self, state: Dict[str, object]) -> None:
        remote = state["remote"]
        F.ostree("fsck", f"--repo={remote}")
        log = F.ostree("log", f"--repo={remote}", "main").stdout
        missing = [c for c in state["history"] if c not in log]  # type: ignore[union-attr]
        if missing:
            raise DataLost(f"{len(missing)} accepted updates are not in the remote's history")

    def with_ostree_commit(self, iterations: int, tally: Tally) -> None:
        """ITERATIONS pushes (alternating modes) while ``ostree commit`` loops on the remote."""
        base = self._path("ostree-commit")
        remote, ours, theirs, our_tree = base / "remote", base / "ours", base / "their-tree", base / "our-tree"
        for repo in (remote, ours):
            F.ostree("init", "--mode=archive", f"--repo={repo}")
        for tree in (theirs, our_tree):
            tree.mkdir(parents=True)
            for index in range(60):
                (tree / f"f{index}").write_bytes(os.urandom(3000))
        stop = threading.Event()
        theirs_done: List[str] = []
        failures: List[str] = []

        def writer() -> None:
            for index in itertools.count():
                if stop.is_set():
                    return
                (theirs / "n").write_text(str(index))
                done = F.ostree("commit", f"--repo={remote}", "--branch=other", f"--tree=dir={theirs}", check=False)
                (failures if done.returncode else theirs_done).append(done.stderr or done.stdout.strip())

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        last = ""
        try:
            for index, via in zip(range(iterations), itertools.cycle(["receive", "sftp"])):
                started = time.monotonic()
                tally.iterations += 1
                (our_tree / "n").write_text(str(index))
                last = F.ostree("commit", f"--repo={ours}", "--branch=main", f"--tree=dir={our_tree}",
                                "--owner-uid=0", "--owner-gid=0").stdout.strip()
                status, _o, err = F.finish(F.start([F.PY, "-m", "pyostree", "push", f"--repo={ours}",
                                                    f"--via={via}", "-q", str(remote), "main"]))
                tally.seconds += time.monotonic() - started
                if status:
                    tally.failures.append(F.error_line(err))
                else:
                    tally.survived += 1
                    tally.faults += 1 if thread.is_alive() else 0
        finally:
            stop.set()
            thread.join(F.WAIT)
        F.ostree("fsck", f"--repo={remote}")
        if F.ostree("rev-parse", f"--repo={remote}", "main").stdout.strip() != last:
            tally.data_lost += 1
        if theirs_done and F.ostree("rev-parse", f"--repo={remote}", "other").stdout.strip() != theirs_done[-1]:
            tally.data_lost += 1
        tally.failures.extend(f"ostree commit: {f.strip()[-100:]}" for f in failures)
        tally.note(f"{len(theirs_done)} concurrent ostree commits")

    def with_http_pulls(self, iterations: int, tally: Tally, receiver: str = "default") -> None:
        base = self._path("http")
        remote, source, client, tree = base / "remote", base / "source", base / "client", base / "tree"
        for repo, mode in ((remote, "archive"), (source, "archive"), (client, "bare-user")):
            F.ostree("init", f"--mode={mode}", f"--repo={repo}")
        tree.mkdir()
        stop = threading.Event()
        pulls: List[int] = []
        log = base / "http.log"
        with F.logged_http_server(remote, log) as url:
            F.ostree("remote", "add", f"--repo={client}", "--no-gpg-verify", "origin", url)

            def puller() -> None:
                while not stop.is_set():
                    pulls.append(F.ostree("pull", f"--repo={client}", "origin", "main", check=False).returncode)

            thread = threading.Thread(target=puller, daemon=True)
            thread.start()
            try:
                for index, via in zip(range(iterations), itertools.cycle(["receive", "sftp"])):
                    started = time.monotonic()
                    tally.iterations += 1
                    (tree / f"new{index}.bin").write_bytes(os.urandom(100_000))
                    F.ostree("commit", f"--repo={source}", "--branch=main", f"--tree=dir={tree}",
                             "--owner-uid=0", "--owner-gid=0")
                    status, _o, err = F.finish(F.start([F.PY, "-m", "pyostree", "push", f"--repo={source}",
                                                        f"--via={via}", "-q", "--update-summary",
                                                        "--receive-command", shlex.join(F.RECEIVERS[receiver]),
                                                        str(remote), "main"]))
                    tally.seconds += time.monotonic() - started
                    if status:
                        tally.failures.append(F.error_line(err))
                    else:
                        tally.survived += 1
                        tally.faults += 1
            finally:
                stop.set()
                thread.join(F.WAIT)
            final = F.ostree("pull", f"--repo={client}", "origin", "main", check=False)
        missing = F.missing_objects_served(log)
        tally.data_lost += len(missing) + (1 if final.returncode else 0)
        tally.failures.extend(missing[:3])
        tally.note(f"{len(pulls)} pulls, {sum(1 for p in pulls if p == 0)} complete")


def run(bench: Bench, cases: List[str], iterations: int, seed: int) -> List[Tally]:
    simple: Dict[str, Callable[[Tally, random.Random], bool]] = {
        "kill-client-local-receive": lambda t, r: bench.kill_local("receive", "client", t, r),
        "kill-client-local-sftp": lambda t, r: bench.kill_local("sftp", "client", t, r),
        "kill-receiver-local": lambda t, r: bench.kill_local("receive", "receiver", t, r),
        "kill-client-ssh-receive": lambda t, r: bench.kill_ssh("receive", "client", t, r),
        "kill-client-ssh-sftp": lambda t, r: bench.kill_ssh("sftp", "client", t, r),
        "kill-receiver-ssh": lambda t, r: bench.kill_ssh("receive", "receiver", t, r),
        "cut-ssh-receive": lambda t, r: bench.cut("receive", t, r),
        "cut-ssh-sftp": lambda t, r: bench.cut("sftp", t, r),
        # the receiver publishes early every 1 KiB staged (F.EARLY_RECEIVE_ARGV)
        "kill-client-local-receive-early": lambda t, r: bench.kill_local("receive", "client", t, r, "early"),
        "kill-receiver-local-early": lambda t, r: bench.kill_local("receive", "receiver", t, r, "early"),
        "kill-receiver-ssh-early": lambda t, r: bench.kill_ssh("receive", "receiver", t, r, "early"),
        "kill-receiver-local-at-early-publish":
            lambda t, r: bench.kill_local("receive", "receiver", t, r, "early", at_early_publish=True),
        "kill-receiver-ssh-at-early-publish":
            lambda t, r: bench.kill_ssh("receive", "receiver", t, r, "early", at_early_publish=True),
        "cut-ssh-receive-early": lambda t, r: bench.cut("receive", t, r, "early"),
    }
    issue13: Dict[str, Callable[[Tally, random.Random], bool]] = {
        "kill-client-openssh-receive": lambda t, r: bench.kill_openssh("receive", "client", t, r),
        "kill-client-openssh-sftp": lambda t, r: bench.kill_openssh("sftp", "client", t, r),
        "kill-receiver-openssh": lambda t, r: bench.kill_openssh("receive", "receiver", t, r),
        "cut-openssh-receive": lambda t, r: bench.cut_openssh("receive", t, r),
        "cut-openssh-sftp": lambda t, r: bench.cut_openssh("sftp", t, r),
        "kill-receiver-local-bare-user": lambda t, r: bench.kill_bare("bare-user", "receive", "receiver", t, r),
        "kill-receiver-local-bare-user-only":
            lambda t, r: bench.kill_bare("bare-user-only", "receive", "receiver", t, r),
        "kill-client-local-bare-user-only-sftp":
            lambda t, r: bench.kill_bare("bare-user-only", "sftp", "client", t, r),
    }
    if F.power_loss_available():
        issue13["power-loss-receive"] = lambda t, r: bench.power_loss("archive", "default", t, r)
        issue13["power-loss-receive-early"] = lambda t, r: bench.power_loss("archive", "early", t, r)
        issue13["power-loss-receive-bare-user"] = lambda t, r: bench.power_loss("bare-user", "default", t, r)
        # no summary to rewrite: nothing syncs after the ref's rename before DONE
        issue13["power-loss-receive-no-summary"] = lambda t, r: bench.power_loss("archive", "default", t, r, False)
        # sftp mode to a local path: the client writes the remote itself (no receiver)
        issue13["power-loss-sftp"] = lambda t, r: bench.power_loss("archive", "default", t, r, True, "sftp")
        issue13["power-loss-sftp-no-summary"] = lambda t, r: bench.power_loss("archive", "default", t, r, False, "sftp")
    simple.update(issue13)
    if F.unshare_available():
        simple["disk-full-receive"] = lambda t, r: bench.disk_full("receive", t, r)
        simple["disk-full-receive-early"] = lambda t, r: bench.disk_full("receive", t, r, "early")
        simple["disk-full-sftp"] = lambda t, r: bench.disk_full("sftp", t, r)
        if shutil.which("setpriv"):
            for spot in F.READ_ONLY_SPOTS:
                for via in ("receive", "sftp"):
                    simple[f"permission-{spot}-{via}"] = (lambda s, v: lambda t, r: bench.permission(v, s, t, r))(spot, via)
    races = {"race-receive-receive": ["receive", "receive"], "race-sftp-sftp": ["sftp", "sftp"],
             "race-receive-sftp": ["receive", "sftp"], "race-receive-receive-early": ["receive", "receive"]}
    wanted = cases or [*simple, *races, "push-during-ostree-commit", "http-pull-during-push",
                       "http-pull-during-push-early"]
    wanted = [name for case in wanted for name in (issue13 if case == "issue13" else [case])]
    tallies = []
    for case in wanted:
        tally = Tally(case)
        rng = random.Random(f"{seed}-{case}")
        print(f"{case}: ", end="", flush=True)
        if case in simple or case in races:
            state: Dict[str, object] = {}
            for _ in range(iterations):
                started = time.monotonic()
                tally.iterations += 1
                try:
                    hit = (simple[case](tally, rng) if case in simple else
                           bench.race(races[case], tally, rng, state, "early" if case.endswith("-early") else "default"))
                    tally.survived += 1
                    tally.faults += 1 if hit else 0
                    print(".", end="", flush=True)
                except DataLost as err:
                    tally.data_lost += 1
                    tally.failures.append(f"DATA LOST: {err}")
                    print("L", end="", flush=True)
                except (AssertionError, TimeoutError, OSError) as err:
                    tally.failures.append(f"{type(err).__name__}: {str(err)[:300]}")
                    print("F", end="", flush=True)
                except Exception as err:  # noqa: BLE001 -- a harness or library surprise is a finding
                    tally.failures.append(f"{type(err).__name__}: {str(err)[:300]} {traceback.format_exc()[-300:]}")
                    print("E", end="", flush=True)
                tally.seconds += time.monotonic() - started
            if case in races and state:
                try:
                    bench.race_final(state)
                except DataLost as err:
                    tally.data_lost += 1
                    tally.failures.append(f"DATA LOST: {err}")
        elif case == "push-during-ostree-commit":
            bench.with_ostree_commit(iterations, tally)
        elif case in ("http-pull-during-push", "http-pull-during-push-early"):
            bench.with_http_pulls(iterations, tally, "early" if case.endswith("-early") else "default")
        else:
            raise SystemExit(f"unknown case {case}")
        print(f" {tally.survived}/{tally.iterations} survived, {tally.data_lost} lost, {tally.seconds:.0f} s", flush=True)
        tallies.append(tally)
    return tallies


def table(tallies: List[Tally]) -> str:
    lines = ["| case | iterations | fault struck | survived | data lost | time (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for t in tallies:
        lines.append(f"| {t.case} | {t.iterations} | {t.faults} | {t.survived} | {t.data_lost} | {t.seconds:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    bench = Bench(work)
    try:
        tallies = run(bench, [c for c in args.cases.split(",") if c], args.iterations, args.seed)
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(tallies))
    for t in tallies:
        for note, count in sorted(t.notes.items(), key=lambda kv: -kv[1])[:4]:
            print(f"  {t.case}: {count} x {note}")
        for failure in t.failures[:5]:
            print(f"  {t.case} FAILED: {failure}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([t.__dict__ for t in tallies], handle, indent=1)
    return 0 if all(t.survived == t.iterations and t.data_lost == 0 for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
