"""The one interface both push modes implement: ask, send, then publish or abort."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from pyostree.push.plan import ObjectName, RefUpdate
from pyostree.push.progress import ProgressTracker
from pyostree.repo.config import RepoMode

if TYPE_CHECKING:
    from pyostree.repo import Repo

__all__ = ["Publisher", "RemoteInfo"]


@dataclass(frozen=True)
class RemoteInfo:
    """What the remote repo looks like before the push: its mode, the heads known so far
    (every one from a receiver before protocol v3; else only those asked for) and
    whether it has a summary."""

    mode: RepoMode
    refs: Dict[str, str]
    has_summary: bool


class Publisher(abc.ABC):
    """A remote repository being pushed to; nothing is visible before :meth:`publish`."""

    info: RemoteInfo

    def remote_refs(self, names: Sequence[str]) -> Dict[str, str]:
        """The remote heads among ``names`` (absent ones left out): what the push checks
        fast-forwards against and expects in its compare-and-swap."""
        return {name: self.info.refs[name] for name in names if name in self.info.refs}

    @abc.abstractmethod
    def have(self, names: Sequence[ObjectName]) -> List[bool]:
        """For each object: already in the remote (published or staged by an earlier try)."""

    @abc.abstractmethod
    def send_objects(self, repo: Repo, names: Sequence[ObjectName], tracker: ProgressTracker) -> None:
        """Stage ``names`` (children first) remotely; invisible to readers until publish."""

    @abc.abstractmethod
    def publish(self, updates: Sequence[RefUpdate], update_summary: Optional[bool]) -> bool:
        """Make staged objects visible, move refs by compare-and-swap, then the summary;
        returns whether the summary was rewritten."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Give up: leave the remote as it was (staged objects may stay for a resume)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""
