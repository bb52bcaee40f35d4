"""Old names that still work, with a ``DeprecationWarning`` that names the new one.

dclab 1 called the bits per sparse gap ``index_bits`` (the papers' "index bits"); "index" also
names a codebook index (``bits``), so the gap width is ``gap_bits`` now. Code written against the
old name keeps running and is told what to change.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RENAMED = {"index_bits": "gap_bits", "conv_index_bits": "conv_gap_bits", "fc_index_bits": "fc_gap_bits"}
"""Old keyword -> new keyword."""


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` is now called ``new``."""
    warnings.warn(f"{old!r} is now called {new!r}; {old!r} will be removed in a later version",
                  DeprecationWarning, stacklevel=stacklevel)


def renamed_keywords(function: F) -> F:
    """Accept the old keywords of ``RENAMED`` for ``function``'s new ones, with a warning."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old, new in RENAMED.items():
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{function.__name__}() got both {old!r} and {new!r}; give only {new!r}")
                warn_renamed(old, new)
                kwargs[new] = kwargs.pop(old)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def renamed_attribute(old: str, new: str) -> property:
    """A read-only ``old`` attribute that returns ``new``, with a warning (for records' old field names)."""

    def get(self: Any) -> Any:
        warn_renamed(old, new)
        return getattr(self, new)

    return property(get, doc=f"Deprecated: ``{new}``.")
