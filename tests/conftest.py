"""Shared fixtures: repositories built once per session by the real ``ostree`` binary."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Dict

import pytest

from ostree_tool import (
    ALL_MODES,
    SampleRepo,
    build_sample_repo,
    build_upstream_repo,
    copy_repo,
    make_sample_tree,
    require_ostree,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (``PYOSTREE_FORBID_SKIPS=1``) a skipped test is a failure: CI installs ostree, sshd and
    GLib, so a compat test that skips there has silently stopped testing anything."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("PYOSTREE_FORBID_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, where every dependency is installed: {reason}"


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree of :func:`ostree_tool.make_sample_tree`; read-only for tests."""
    root = tmp_path_factory.mktemp("sample") / "tree"
    make_sample_tree(root)
    return root


@pytest.fixture(scope="session")
def ostree_repos(tmp_path_factory: pytest.TempPathFactory, sample_tree: Path) -> Dict[str, SampleRepo]:
    """One repo per mode (archive, bare, bare-user, bare-user-only), built once per session.

    Tests must not modify them: copy one into ``tmp_path`` first (``shutil.copytree`` with
    ``symlinks=True``) when a test needs to write or corrupt something.
    """
    require_ostree()
    base = tmp_path_factory.mktemp("repos")
    upstream_tree = base / "upstream-tree"
    upstream_tree.mkdir()
    (upstream_tree / "from-upstream.txt").write_bytes(b"upstream\n")
    upstream = base / "upstream"
    build_upstream_repo(upstream, upstream_tree)
    repos: Dict[str, SampleRepo] = {}
    for mode in ALL_MODES:
        repos[mode] = build_sample_repo(base / mode, mode, sample_tree, upstream)
    return repos


@pytest.fixture(params=ALL_MODES)
def sample_repo(request: pytest.FixtureRequest, ostree_repos: Dict[str, SampleRepo]) -> SampleRepo:
    """Each session repo in turn (parametrized over the four modes)."""
    return ostree_repos[request.param]


@pytest.fixture
def archive_copy(tmp_path: Path, ostree_repos: Dict[str, SampleRepo]) -> SampleRepo:
    """A private copy of the archive session repo that a test may modify or corrupt."""
    return _copied(ostree_repos["archive"], tmp_path / "archive-copy")


@pytest.fixture
def sample_repo_copy(tmp_path: Path, sample_repo: SampleRepo) -> SampleRepo:
    """A private copy of each session repo in turn (parametrized over the four modes)."""
    return _copied(sample_repo, tmp_path / f"{sample_repo.mode}-copy")


def _copied(original: SampleRepo, dst: Path) -> SampleRepo:
    copy_repo(original.path, dst)
    return dataclasses.replace(original, path=dst)
