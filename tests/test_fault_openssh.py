"""kill -9 of the push client or of the receiver, and a connection cut, against a real
OpenSSH sshd (tests/sshd.py) with the OpenSSH client: the receiver runs under sshd's
session and the user's shell, the client's ``ssh`` outlives a killed client, and sftp is
OpenSSH's ``internal-sftp``. After each fault the same checks as tests/test_fault_kill.py,
plus ``pyostree fsck`` (benchmarks/bench_faults.py runs them for many iterations)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Tuple

import pytest

import test_fault_support as F
from ostree_tool import needs_ostree
from sshd import Sshd, real_sshd  # noqa: F401

pytestmark = needs_ostree
FRACTIONS = (0.1, 0.4, 0.8)
"""Kill and cut points, as fractions of an undisturbed push (or of its receiver's life, or
of the bytes it moves)."""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> F.Source:
    return F.build_source(tmp_path_factory.mktemp("openssh-src"), files=40, big=256 << 10)


@pytest.fixture(scope="module")
def proxy(real_sshd: Sshd) -> Iterator[F.CuttingProxy]:  # noqa: F811
    cutting = F.CuttingProxy(real_sshd.port)
    yield cutting
    cutting.close()


@pytest.fixture(scope="module")
def lengths(real_sshd: Sshd, source: F.Source, proxy: F.CuttingProxy,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory) -> Tuple[float, float, int]:
    """(push seconds, receiver seconds, bytes through the proxy) of an undisturbed push."""
    base = tmp_path_factory.mktemp("openssh-calibrate")
    push, receiver = F.calibrate(source, F.openssh_target(real_sshd, F.fresh_remote(source, base / "a"),
                                                          base / "home"))
    proxy.forwarded = 0
    F.calibrate(source, F.openssh_target(real_sshd, F.fresh_remote(source, base / "b"), base / "home",
                                         port=proxy.port))
    return push, receiver, proxy.forwarded


def check(outcome: F.Outcome) -> None:
    assert not outcome.data_lost, outcome
    assert outcome.resent_staged == 0 and outcome.resent_published == 0, outcome
    if outcome.push_status not in (None, 0):
        assert outcome.message.startswith("error: ")


@pytest.mark.parametrize("victim,via", [("client", "receive"), ("client", "sftp"), ("receiver", "receive")])
def test_kill_over_openssh_sshd(real_sshd: Sshd, source: F.Source, lengths: Tuple[float, float, int],  # noqa: F811
                                tmp_path: Path, victim: str, via: str) -> None:
    push, receiver, _bytes = lengths
    hits = 0
    for index, fraction in enumerate(FRACTIONS):
        target = F.openssh_target(real_sshd, F.fresh_remote(source, tmp_path / f"r{index}"), tmp_path / "home")
        outcome = F.kill_case(f"kill-{victim}-openssh", source, target, via,
                              fraction * (receiver if victim == "receiver" else push), victim)
        check(outcome)
        if outcome.fault_hit:
            hits += 1
            if victim == "receiver":
                assert outcome.push_status == 1
    assert hits, "no kill landed mid-push"


@pytest.mark.parametrize("via", ["receive", "sftp"])
def test_connection_cut_over_openssh_sshd(real_sshd: Sshd, source: F.Source, proxy: F.CuttingProxy,  # noqa: F811
                                          lengths: Tuple[float, float, int], tmp_path: Path, via: str) -> None:
    hits = 0
    for index, fraction in enumerate(FRACTIONS):
        target = F.openssh_target(real_sshd, F.fresh_remote(source, tmp_path / f"r{index}"), tmp_path / "home",
                                  port=proxy.port)
        outcome = F.cut_case("cut-openssh", source, target, proxy, via, int(fraction * lengths[2]))
        check(outcome)
        if outcome.fault_hit:
            hits += 1
            assert outcome.push_status == 1
    assert hits, "no cut landed mid-transfer"
