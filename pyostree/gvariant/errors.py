"""The one error the GVariant codec raises."""

from __future__ import annotations

from pyostree.errors import PyOstreeError


class GVariantError(PyOstreeError, ValueError):
    """A type string is not valid, or a value does not fit its type.

    Never raised for serialised data: decoding is total, as in GLib.
    """
