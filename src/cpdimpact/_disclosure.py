"""The small-count disclosure rule, stated once.

Every published count (report tables, paragraphs, figures and ``results.json``) passes
through :func:`published_count`: counts from 1 to ``threshold - 1`` become the marker
``"<{threshold}"``; zero is shown (it identifies nobody) unless ``suppress_zero``; a
``threshold`` of 0 publishes every count. :func:`cpdimpact.report.suppress_small_counts`
applies it to the columns of a table.
"""

from __future__ import annotations

import numbers

__all__ = ["is_suppressed", "marker", "published_count"]


def marker(threshold: int) -> str:
    """The text that replaces a suppressed count: ``"<{threshold}"``."""
    return f"<{threshold}"


def is_suppressed(count, threshold: int, *, suppress_zero: bool = False) -> bool:
    """Whether ``count`` is hidden when publishing with ``threshold`` (0: nothing is)."""
    if isinstance(count, bool) or not isinstance(count, numbers.Real):
        return False  # a missing value or a marker already
    lowest = 0 if suppress_zero else 1
    return bool(threshold) and lowest <= count < threshold


def published_count(count, threshold: int, *, replacement: str | None = None, suppress_zero=False):
    """``count`` as published: the marker if :func:`is_suppressed`, else ``count`` itself.

    Examples
    --------
    >>> from cpdimpact._disclosure import published_count
    >>> published_count(3, 10), published_count(0, 10), published_count(12, 10)
    ('<10', 0, 12)
    >>> published_count(3, 0)
    3
    """
    if is_suppressed(count, threshold, suppress_zero=suppress_zero):
        return marker(threshold) if replacement is None else replacement
    return count
