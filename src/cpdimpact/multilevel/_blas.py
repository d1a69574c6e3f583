"""Run the optimiser's many small linear-algebra calls with the BLAS on one thread.

An evaluation of the multilevel likelihood makes a handful of BLAS calls on arrays of a few
thousand rows, and scipy's L-BFGS-B makes several per iteration on vectors of 2-5 entries.
OpenBLAS (bundled with the numpy and scipy wheels) hands each of them to its worker threads;
on a machine whose cores are busy with other processes, waking those threads costs far more
than the arithmetic: measured on a shared 2-core machine, a 20,000-pupil fit took 207 ms with
the default threads and 39 ms with one (500,000 pupils: 419 and 236 ms).

:func:`single_threaded_blas` limits the BLAS libraries loaded in the process to one thread for
the block and restores their settings after it, through ``threadpoolctl`` (the scikit-learn
developers' library for exactly this). Results never depend on it, only the time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded_blas"]


@cache
def _controller() -> ThreadpoolController:
    # Built on first use, after numpy's and scipy's BLAS libraries are loaded (scanning the
    # process's libraries takes milliseconds, so once).
    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, the BLAS libraries use one thread (nested blocks are fine)."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
