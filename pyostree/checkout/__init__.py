"""Checkout: materialise a commit's tree on disk like ``ostree checkout``, refusing hostile trees.

``tree`` addresses entries of a commit by path (shared with ``ls``/``cat``);
``materialize`` writes them out through directory file descriptors only.
"""

from __future__ import annotations

from pyostree.checkout.materialize import (
    CheckoutOptions,
    CheckoutProgress,
    CheckoutStats,
    ProgressCallback,
    check_entry_name,
    checkout,
    checkout_tree,
)
from pyostree.checkout.tree import TreeEntry, child_path, commit_root, find_child, resolve_path

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
