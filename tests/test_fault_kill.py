"""kill -9 of the push client or of the receiver at random points, and a connection cut
mid-transfer, to a local path and over the embedded ssh server. After each fault the
remote passes ``ostree fsck``, ``main`` is old or new, nothing partial is visible, and a
re-push completes without re-sending what was staged or published (benchmarks/bench_faults.py
runs the same cases for many iterations). The ``early`` variants run the receiver with a
1 KiB early-publishing threshold (``F.EARLY_RECEIVE_ARGV``), so leaves move into objects/
about ten times during each push and the faults land between those publishes."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

pytest.importorskip("paramiko")

import test_fault_support as F  # noqa: E402
from ostree_tool import needs_ostree  # noqa: E402
from sshd import EmbeddedSetup, embedded  # noqa: E402,F401,F811

pytestmark = needs_ostree
ITERATIONS = 3


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> F.Source:
    return F.build_source(tmp_path_factory.mktemp("fault-src"))


@pytest.fixture(scope="module")
def push_seconds(source: F.Source, tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long an undisturbed push takes here: kill points are drawn from [0, that]."""
    import time

    remote = F.fresh_remote(source, tmp_path_factory.mktemp("calibrate") / "remote")
    started = time.monotonic()
    status, _out, err = F.finish(F.start(F.push_argv(source, str(remote), "receive")))
    assert status == 0, err
    return time.monotonic() - started


def check(outcome: F.Outcome) -> None:
    assert not outcome.data_lost
    assert outcome.resent_staged == 0, outcome
    assert outcome.resent_published == 0, outcome  # an object in objects/ is never sent again
    if outcome.push_status not in (None, 0):
        assert outcome.message.startswith("error: ")


@pytest.mark.parametrize("via,receiver", [("receive", "default"), ("sftp", "default"), ("receive", "early")])
def test_kill_client_local(source: F.Source, push_seconds: float, tmp_path: Path, via: str,
                           receiver: str) -> None:
    rng = random.Random(11)
    for index in range(ITERATIONS):
        remote = F.fresh_remote(source, tmp_path / f"r{index}")
        delay = rng.uniform(0.1, push_seconds)
        check(F.kill_case("kill-client-local", source, F.local_target(remote, F.RECEIVERS[receiver]), via,
                          delay, "client"))


@pytest.mark.parametrize("receiver", ["default", "early"])
def test_kill_receiver_local(source: F.Source, push_seconds: float, tmp_path: Path, receiver: str) -> None:
    rng = random.Random(12)
    hits = 0
    for index in range(ITERATIONS):
        remote = F.fresh_remote(source, tmp_path / f"r{index}")
        outcome = F.kill_case("kill-receiver-local", source, F.local_target(remote, F.RECEIVERS[receiver]),
                              "receive", rng.uniform(0.0, push_seconds / 2), "receiver")
        check(outcome)
        if outcome.fault_hit:
            hits += 1
            assert outcome.push_status == 1
            assert any(w in outcome.message for w in ("receive", "remote", "connection")), outcome.message
    assert hits, "no kill landed while the receiver ran"


@pytest.fixture
def served(embedded: EmbeddedSetup, source: F.Source) -> Iterator[str]:
    name = f"fault-{uuid.uuid4().hex[:8]}"
    F.fresh_remote(source, embedded.served / name)
    yield name


@pytest.mark.parametrize("victim,via,receiver", [("client", "receive", "default"), ("client", "sftp", "default"),
                                                  ("receiver", "receive", "default"), ("receiver", "receive", "early")])
def test_kill_over_embedded_ssh(embedded: EmbeddedSetup, source: F.Source, push_seconds: float,
                                victim: str, via: str, receiver: str) -> None:
    rng = random.Random(13)
    # A client kill must land within the push: over the embedded server (no remote shell)
    # it is about as short as a local one, so time one.
    F.fresh_remote(source, embedded.served / "calibrate")
    calibrate = F.ssh_target(embedded, "calibrate")
    started = time.monotonic()
    status, _out, err = F.finish(F.start(
        F.push_argv(source, calibrate.dest, "receive", *calibrate.cli_extra,
                    receive_argv=calibrate.receive_argv), env=calibrate.env))
    assert status == 0, err
    ssh_push_seconds = time.monotonic() - started
    for _ in range(ITERATIONS):
        name = f"fault-{uuid.uuid4().hex[:8]}"
        F.fresh_remote(source, embedded.served / name)
        target = F.ssh_target(embedded, name, receive_argv=F.RECEIVERS[receiver])
        delay = rng.uniform(0.0, push_seconds / 2) if victim == "receiver" else rng.uniform(0.05, ssh_push_seconds)
        outcome = F.kill_case(f"kill-{victim}-ssh", source, target, via, delay, victim)
        check(outcome)


@pytest.mark.parametrize("via,receiver", [("receive", "default"), ("sftp", "default"), ("receive", "early")])
def test_connection_cut_mid_transfer(embedded: EmbeddedSetup, source: F.Source, via: str, receiver: str) -> None:
    proxy = F.CuttingProxy(embedded.server.port)
    try:
        rng = random.Random(14)
        hits = 0
        for _ in range(ITERATIONS):
            name = f"cut-{uuid.uuid4().hex[:8]}"
            F.fresh_remote(source, embedded.served / name)
            target = F.ssh_target(embedded, name, port=proxy.port, receive_argv=F.RECEIVERS[receiver])
            outcome = F.cut_case("cut", source, target, proxy, via, rng.randint(20_000, 3_000_000))
            check(outcome)
            if outcome.fault_hit:
                hits += 1
                assert outcome.push_status == 1
        assert hits, "no cut landed mid-transfer"
    finally:
        proxy.close()


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_kill_receiver_at_the_first_early_publish(embedded: EmbeddedSetup, source: F.Source, tmp_path: Path,
                                                  where: str) -> None:
    """Kill the receiver as soon as early publishing has moved an object of the push into
    objects/: the push's ref stays old while part of it is visible, so the re-push must find
    those objects (HAVE: present) rather than send them again, and fsck covers their
    validity. (Not the client: killed then, it has usually written the whole push into the
    pipe already, and the receiver completes it.)"""
    victim = "receiver"
    outcomes: List[F.Outcome] = []
    marked: List[bool] = []
    for index in range(ITERATIONS):
        if where == "local":
            remote = F.fresh_remote(source, tmp_path / f"r{index}")
            target = F.local_target(remote, F.EARLY_RECEIVE_ARGV)
        else:
            name = f"early-{uuid.uuid4().hex[:8]}"
            remote = F.fresh_remote(source, embedded.served / name)
            target = F.ssh_target(embedded, name, receive_argv=F.EARLY_RECEIVE_ARGV)
        outcome = F.kill_case(f"kill-{victim}-{where}-at-early-publish", source, target, "receive", F.WAIT,
                              victim, trigger=F.early_published(source, remote))
        check(outcome)
        if outcome.fault_hit:
            assert outcome.published_new > 0, outcome  # what was published early stays published
        outcomes.append(outcome)
        marked.append((remote / "tmp" / F.EARLY_PUBLISH_MARK).exists())
    # early publishing, not the publish at commit, moved objects of the push into objects/
    # before a kill (the trigger fires on any published object, even at commit time)
    assert any(ok and o.fault_hit and o.published_new > 0 for ok, o in zip(marked, outcomes)), outcomes


@pytest.mark.parametrize("mode,via,victim", [("bare-user", "receive", "receiver"), ("bare-user", "receive", "client"),
                                             ("bare-user-only", "receive", "receiver"),
                                             ("bare-user-only", "sftp", "client")])
def test_kill_with_a_bare_user_remote(tmp_path: Path, mode: str, via: str, victim: str) -> None:
    """bare-user and bare-user-only remotes (staged ``.file`` objects are checked against
    their names too, and ``pyostree fsck`` runs after the fault)."""
    source = F.build_source(tmp_path / "src", files=40, big=256 << 10, remote_mode=mode)
    push, receiver = F.calibrate(source, F.local_target(F.fresh_remote(source, tmp_path / "calibrate")), via)
    hits = 0
    for index, fraction in enumerate((0.1, 0.4, 0.8)):
        remote = F.fresh_remote(source, tmp_path / f"r{index}")
        outcome = F.kill_case(f"kill-{victim}-{mode}", source, F.local_target(remote, our_fsck=True), via,
                              fraction * (receiver if victim == "receiver" else push), victim)
        check(outcome)
        hits += outcome.fault_hit
    assert hits, "no kill landed mid-push"
