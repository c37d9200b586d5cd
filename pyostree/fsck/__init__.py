"""fsck: re-hash and validate everything reachable from the repository's commits and refs.

Like ``ostree fsck`` (2022.7): every ref must point at a present commit; every commit
object that is not partial is walked (its own tree, not its parents); metadata is
re-hashed and structurally validated, content is re-hashed from its logical header and
payload. Stricter than libostree: dirtree names must be sorted and unique across files and
directories. Problems are collected, never raised, so one run names every bad object.
"""

from __future__ import annotations

from pyostree.fsck.check import (
    FsckProblem,
    FsckProgress,
    FsckResult,
    ProblemKind,
    ProgressCallback,
    fsck,
)

__all__ = ["FsckProblem", "FsckProgress", "FsckResult", "ProblemKind", "ProgressCallback", "fsck"]
