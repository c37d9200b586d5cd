"""The per-directory name check (all names at once, each bad one worded by check_entry_name)."""

from __future__ import annotations

import pytest

from pyostree.checkout.materialize import _check_names
from pyostree.errors import CheckoutError


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/", "a\0b", "\0", "\udcff", "x\ud800"])
def test_any_bad_name_among_good_ones_is_refused(bad: str) -> None:
    for position in range(3):
        names = ["a", "b.txt", "ünïcödé"]
        names.insert(position, bad)
        with pytest.raises(CheckoutError, match="refusing to check out"):
            _check_names(names, "/dir")


def test_duplicates_are_refused_and_good_names_pass() -> None:
    _check_names([], "/")
    _check_names(["a", "...", ".a", "a.", " ", "ünïcödé", "x" * 255], "/")
    with pytest.raises(CheckoutError, match="appears twice"):
        _check_names(["a", "b", "a"], "/dir")
