"""The library's base error for bad input, defined once: every data and spec check raises it or a subclass."""

from __future__ import annotations


class DataError(RuntimeError):
    """Bad or unexpected input data or dataset spec; the message names the problem and the fix."""
