"""Run the optimiser's many small linear-algebra calls with the BLAS on one thread.

An evaluation of the multilevel likelihood makes a handful of BLAS calls on arrays of a few
thousand rows, and scipy's L-BFGS-B makes several per iteration on vectors of 2-5 entries.
OpenBLAS (bundled with the numpy and scipy wheels) hands each of them to its worker threads;
on a machine whose cores are busy with other processes, waking those threads costs far more
than the arithmetic: measured on a shared 2-core machine, a 20,000-pupil fit took 207 ms with
the default threads and 39 ms with one (500,000 pupils: 419 and 236 ms).

:func:`single_threaded_blas` sets the bundled OpenBLAS libraries to one thread for the block
and restores their setting after it, as ``threadpoolctl`` does, through the libraries' own
``openblas_set_num_threads`` entry points. Where no OpenBLAS is found (another BLAS, another
platform's wheel layout) it does nothing: results never depend on it, only the time.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import scipy

__all__ = ["single_threaded_blas"]

#: (get, set) entry points of the OpenBLAS builds bundled with numpy and scipy wheels.
_ENTRY_POINTS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_LOCK = threading.Lock()
_DEPTH = [0]
_SAVED: list[int] = []


@cache
def _openblas_controls() -> tuple:
    """(get, set) functions of each OpenBLAS library in the numpy and scipy wheels."""
    controls = []
    for package in (np, scipy):
        root = Path(package.__file__).resolve().parent
        folders = (root.parent / f"{root.name}.libs", root / ".dylibs")
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*openblas*")):
                try:
                    library = ctypes.CDLL(str(path))
                except OSError:
                    continue
                for get, set_ in _ENTRY_POINTS:
                    if hasattr(library, get) and hasattr(library, set_):
                        getter, setter = getattr(library, get), getattr(library, set_)
                        getter.restype = ctypes.c_int
                        setter.argtypes = [ctypes.c_int]
                        controls.append((getter, setter))
                        break
    return tuple(controls)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, the bundled OpenBLAS libraries use one thread (re-entrant)."""
    controls = _openblas_controls()
    with _LOCK:
        if _DEPTH[0] == 0:
            _SAVED[:] = [int(get()) for get, _ in controls]
            for _, set_ in controls:
                set_(1)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for (_, set_), threads in zip(controls, _SAVED, strict=True):
                    set_(threads)
