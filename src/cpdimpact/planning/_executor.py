"""Running simulations on an executor, in chunks, with progress and a checkpoint file.

Any :class:`concurrent.futures.Executor` runs the chunks: a local process pool (the default), a
Dask cluster through ``distributed.Client(...).get_executor()``, or none at all (serial). Each
chunk is a tuple of simulation indices; because every simulation draws from its own seed stream
(child ``index`` of one :class:`numpy.random.SeedSequence`), the rows do not depend on which
worker ran which chunk, and they are sorted by index before anything is computed from them.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InvalidValueError
from ._diagnose_sim import ROW_COLUMNS, SimTask, run_chunk

__all__ = ["Checkpoint", "resolve_executor", "execute", "SERIAL_BELOW"]

#: With ``executor=None``, fewer simulations than this run serially (a pool costs more).
SERIAL_BELOW = 20

#: Largest chunk of simulations submitted as one task.
MAX_CHUNK = 25


def resolve_executor(executor, n_todo: int) -> tuple[str, cf.Executor | None, bool]:
    """``(description, executor or None for serial, whether we own and must shut it down)``."""
    if executor is None:
        workers = os.cpu_count() or 1
        if n_todo < SERIAL_BELOW or workers < 2:
            return "serial (in this process)", None, False
        pool = cf.ProcessPoolExecutor(max_workers=workers)
        return f"local process pool ({workers} workers)", pool, True
    if isinstance(executor, str):
        if executor == "serial":
            return "serial (in this process)", None, False
        raise InvalidValueError(
            f"executor must be a concurrent.futures.Executor, None (a local process pool) or "
            f"'serial'; got the string {executor!r}"
        )
    if not isinstance(executor, cf.Executor):
        hint = (
            "; for Dask pass client.get_executor(), not the Client itself"
            if type(executor).__name__ == "Client"
            else ""
        )
        raise InvalidValueError(
            f"executor must be a concurrent.futures.Executor (e.g. ProcessPoolExecutor, or a "
            f"Dask client's get_executor()), None or 'serial'; got {type(executor).__name__}"
            f"{hint}"
        )
    return _describe(executor), executor, False


def _describe(executor: cf.Executor) -> str:
    name = type(executor).__name__
    workers = getattr(executor, "_max_workers", None)
    if name == "ClientExecutor":
        return "Dask distributed (client executor)"
    return f"{name} ({workers} workers)" if workers else name


def chunks(indices: Sequence[int], size: int | None, n_workers_hint: int) -> list[tuple[int, ...]]:
    """Consecutive chunks of ``indices``; by default about eight per worker, at most 25 each."""
    if not indices:
        return []
    if size is None:
        size = max(1, min(MAX_CHUNK, math.ceil(len(indices) / (8 * max(1, n_workers_hint)))))
    return [tuple(indices[i : i + size]) for i in range(0, len(indices), size)]


def execute(
    task: SimTask,
    todo: Sequence[int],
    executor: cf.Executor | None,
    *,
    chunk_size: int | None,
    progress,
    on_chunk: Callable[[list[tuple]], None],
) -> None:
    """Run every index in ``todo``; ``on_chunk`` receives each finished chunk's rows and
    ``progress`` (a :func:`cpdimpact._progress.progress_bar`) is advanced by each chunk."""
    workers = 1
    if executor is not None:
        workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
    parts = chunks(list(todo), chunk_size, workers)
    if executor is None:
        for part in parts:
            on_chunk(run_chunk(task, part))
            progress.update(len(part))
        return
    futures = {executor.submit(run_chunk, task, part): part for part in parts}
    try:
        for future in cf.as_completed(futures):
            on_chunk(future.result())
            progress.update(len(futures[future]))
    except BaseException:
        for future in futures:
            future.cancel()
        raise


# ---------------------------------------------------------------------- checkpoint
_CSV_MARK = "# cpdimpact diagnose checkpoint "


class Checkpoint:
    """Finished simulations on disk (CSV or JSON), rewritten atomically after every chunk.

    The file starts with a fingerprint of the design, estimators, seed and package version; a
    rerun with the same fingerprint skips the simulations already in the file, and one with a
    different fingerprint is refused (it would mix two designs).
    """

    def __init__(self, path: str | os.PathLike, fingerprint: dict[str, Any]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise InvalidValueError(
                f"checkpoint {str(self.path)!r}: use a .csv or .json file (Parquet would need "
                f"pyarrow, which cpdimpact does not depend on); got suffix {suffix or 'none'!r}"
            )
        self.format = suffix[1:]
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        self.rows: list[tuple] = []

    def load(self) -> list[tuple]:
        """Rows already in the file (none if it does not exist); checks the fingerprint."""
        if not self.path.exists():
            return []
        try:
            if self.format == "json":
                payload = json.loads(self.path.read_text(encoding="utf-8"))
                found = payload["fingerprint"]
                columns = payload["columns"]
                rows = [tuple(_from_json(v) for v in row) for row in payload["rows"]]
            else:
                with self.path.open(encoding="utf-8") as handle:
                    first = handle.readline()
                if not first.startswith(_CSV_MARK):
                    raise ValueError("the first line is not a cpdimpact checkpoint header")
                found = json.loads(first[len(_CSV_MARK) :])
                frame = pd.read_csv(
                    self.path, skiprows=1, keep_default_na=False,
                    na_values={c: ["nan", "NaN", ""] for c in ROW_COLUMNS if c not in
                               ("estimator", "group", "error")},
                    dtype={"estimator": str, "group": str, "error": str},
                )  # fmt: skip
                columns = list(frame.columns)
                rows = [_csv_row(r) for r in frame.itertuples(index=False, name=None)]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InvalidValueError(
                f"checkpoint {str(self.path)!r} cannot be read as a diagnosis checkpoint "
                f"({type(err).__name__}: {err}); delete it or choose another file"
            ) from err
        if tuple(columns) != ROW_COLUMNS:
            raise InvalidValueError(
                f"checkpoint {str(self.path)!r} has columns {columns}, not those of this version "
                f"of cpdimpact; delete it or choose another file"
            )
        if found != self.fingerprint:
            differ = sorted(
                k
                for k in set(found) | set(self.fingerprint)
                if found.get(k) != self.fingerprint.get(k)
            )
            raise InvalidValueError(
                f"checkpoint {str(self.path)!r} was written for a different diagnosis (it "
                f"differs in: {', '.join(differ)}); resuming would mix two designs. Rerun with "
                f"the same design, estimators and seed, or delete the file / choose another path"
            )
        self.rows = rows
        return rows

    def add(self, rows: list[tuple]) -> None:
        """Append ``rows`` and rewrite the file atomically."""
        self.rows.extend(rows)
        tmp = self.path.with_name(self.path.name + ".tmp")
        if self.format == "json":
            payload = {
                "fingerprint": self.fingerprint,
                "columns": list(ROW_COLUMNS),
                "rows": [[_to_json(v) for v in row] for row in self.rows],
            }
            tmp.write_text(json.dumps(payload, allow_nan=False) + "\n", encoding="utf-8")
        else:
            frame = pd.DataFrame(self.rows, columns=list(ROW_COLUMNS))
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                handle.write(_CSV_MARK + json.dumps(self.fingerprint, sort_keys=True) + "\n")
                frame.to_csv(handle, index=False, float_format="%.17g", na_rep="nan")
        os.replace(tmp, self.path)


def _to_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if hasattr(value, "item"):
        return value.item()
    return value


def _from_json(value):
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value


def _csv_row(row: tuple) -> tuple:
    out = []
    for name, value in zip(ROW_COLUMNS, row, strict=True):
        if name == "sim":
            out.append(int(value))
        elif name == "ok":
            out.append(value in (True, "True", "true", 1))
        elif name in ("estimator", "group", "error"):
            out.append("" if value is None or (isinstance(value, float)) else str(value))
        else:
            out.append(float(value))
    return tuple(out)
