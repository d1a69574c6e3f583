"""Progress bars for long work: simulations in a design diagnosis, bootstrap and permutation
refits of a trial.

One rule for all of them (:func:`progress_bar`): a :mod:`tqdm.auto` bar, which is a widget in
Jupyter and a line on stderr in a terminal; nothing in a log file or CI (stderr not a
terminal), nothing for work that ends within ``delay`` seconds, and nothing when the caller
turns it off (``diagnose``'s ``progress=False``) or the environment sets
``TQDM_DISABLE=1`` (tqdm's own switch, for every bar at once).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["progress_bar"]


def _disabled_by_environment() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def progress_bar(
    total: int,
    *,
    desc: str,
    unit: str,
    initial: int = 0,
    enabled: bool = True,
    delay: float = 1.0,
    file: Any = None,
):
    """A :mod:`tqdm.auto` progress bar for ``total`` steps (``initial`` already done).

    Parameters
    ----------
    total, initial
        Steps in all, and steps done before the bar starts (a resumed checkpoint).
    desc, unit
        What is running and what one step is, in words ("diagnose", "simulation").
    enabled
        ``False``: no bar.
    delay
        Seconds before the bar appears: short work shows nothing.
    file
        Where a text bar is written (default stderr); a stream that is not a terminal
        shows no bar.

    Returns
    -------
    tqdm.tqdm
        Call ``update(n)`` per ``n`` steps and ``close()`` at the end (or use it as a context
        manager).
    """
    from tqdm.auto import tqdm  # lazy: importing cpdimpact stays cheap

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        # None: tqdm's rule, no bar where the stream is not a terminal (logs, CI); in Jupyter
        # the widget shows regardless. tqdm reads TQDM_DISABLE only for an argument not
        # given, so it is honoured here.
        disable=None if enabled and not _disabled_by_environment() else True,
        delay=delay,
        file=file,
        leave=False,
        dynamic_ncols=True,
    )
