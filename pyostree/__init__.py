"""pyostree: a pure-Python implementation of OSTree."""

from pyostree.errors import PyOstreeError

__version__ = "0.1.0"

__all__ = ["PyOstreeError", "__version__"]
