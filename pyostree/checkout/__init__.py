"""Checkout: materialise a commit's tree on disk like ``ostree checkout``, refusing hostile trees.

``tree`` addresses entries of a commit by path (shared with ``ls``/``cat``);
``materialize`` writes them out through directory file descriptors only. The names of
``materialize`` are loaded on first use, so ``ls``/``cat`` start without its imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pyostree.checkout.tree import TreeEntry, child_path, commit_root, find_child, resolve_path

if TYPE_CHECKING:
    from pyostree.checkout.materialize import (
        CheckoutOptions,
        CheckoutProgress,
        CheckoutStats,
        ProgressCallback,
        check_entry_name,
        checkout,
        checkout_tree,
    )

_LAZY = frozenset({"CheckoutOptions", "CheckoutProgress", "CheckoutStats", "ProgressCallback",
                   "check_entry_name", "checkout", "checkout_tree"})

__all__ = [
    "CheckoutOptions",
    "CheckoutProgress",
    "CheckoutStats",
    "ProgressCallback",
    "TreeEntry",
    "check_entry_name",
    "checkout",
    "checkout_tree",
    "child_path",
    "commit_root",
    "find_child",
    "resolve_path",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("pyostree.checkout.materialize"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
