"""kill -9 of the push client or of the receiver at random points, and a connection cut
mid-transfer, to a local path and over the embedded ssh server. After each fault the
remote passes ``ostree fsck``, ``main`` is old or new, nothing partial is visible, and a
re-push completes without re-sending what was staged (benchmarks/bench_faults.py runs
the same cases for many iterations)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Iterator

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
    if outcome.push_status not in (None, 0):
        assert outcome.message.startswith("error: ")


@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_kill_client_local(source: F.Source, push_seconds: float, tmp_path: Path, via: str) -> None:
    rng = random.Random(11)
    for index in range(ITERATIONS):
        remote = F.fresh_remote(source, tmp_path / f"r{index}")
        delay = rng.uniform(0.1, push_seconds)
        check(F.kill_case("kill-client-local", source, F.local_target(remote), via, delay, "client"))


def test_kill_receiver_local(source: F.Source, push_seconds: float, tmp_path: Path) -> None:
    rng = random.Random(12)
    hits = 0
    for index in range(ITERATIONS):
        remote = F.fresh_remote(source, tmp_path / f"r{index}")
        outcome = F.kill_case("kill-receiver-local", source, F.local_target(remote), "receive",
                              rng.uniform(0.0, push_seconds / 2), "receiver")
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


@pytest.mark.parametrize("victim,via", [("client", "receive"), ("client", "sftp"), ("receiver", "receive")])
def test_kill_over_embedded_ssh(embedded: EmbeddedSetup, source: F.Source, push_seconds: float,
                                victim: str, via: str) -> None:
    rng = random.Random(13)
    for _ in range(ITERATIONS):
        name = f"fault-{uuid.uuid4().hex[:8]}"
        F.fresh_remote(source, embedded.served / name)
        target = F.ssh_target(embedded, name)
        delay = rng.uniform(0.0, push_seconds / 2) if victim == "receiver" else rng.uniform(0.2, push_seconds + 0.4)
        outcome = F.kill_case(f"kill-{victim}-ssh", source, target, via, delay, victim)
        check(outcome)


@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_connection_cut_mid_transfer(embedded: EmbeddedSetup, source: F.Source, via: str) -> None:
    proxy = F.CuttingProxy(embedded.server.port)
    try:
        rng = random.Random(14)
        hits = 0
        for _ in range(ITERATIONS):
            name = f"cut-{uuid.uuid4().hex[:8]}"
            F.fresh_remote(source, embedded.served / name)
            target = F.ssh_target(embedded, name, port=proxy.port)
            outcome = F.cut_case("cut", source, target, proxy, via, rng.randint(20_000, 3_000_000))
            check(outcome)
            if outcome.fault_hit:
                hits += 1
                assert outcome.push_status == 1
        assert hits, "no cut landed mid-transfer"
    finally:
        proxy.close()
