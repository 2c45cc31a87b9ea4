"""File paths: whether two name the same file."""

from __future__ import annotations

import os

__all__ = ["same_file"]


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file (links and relative paths resolved; also for files not yet made)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
