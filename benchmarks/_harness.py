"""What the multilevel benchmarks share: cases in fresh processes, Rscript peers, machine facts.

Each case runs in a fresh interpreter (the benchmark re-invoked with ``--case``) and reports
one ``RESULT {json}`` line, so peak memory (``ru_maxrss``) belongs to that case alone; an R
peer runs in a Python wrapper process around Rscript, whose ``RUSAGE_CHILDREN`` is then R's
peak memory alone. Used by ``benchmarks/multilevel.py`` and ``benchmarks/multilevel_binary.py``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import subprocess
import tempfile
import time

import numpy as np

__all__ = [
    "emit",
    "machine_lines",
    "max_rel",
    "peak_mb",
    "r_record",
    "row_note",
    "run_case",
    "run_rscript",
]

_PREFIX = "RESULT "


def peak_mb(who=resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or its children), in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def emit(record: dict) -> None:
    """Report a case's record to the driver."""
    print(_PREFIX + json.dumps(record), flush=True)


def run_case(cmd: list[str], *, timeout: float) -> dict:
    """Run one case's command in a fresh process; its record plus ``total_seconds`` (the
    wall time of the whole process), or ``error``."""
    t0 = time.perf_counter()
    # its own process group, so that a timeout also stops what the case started (Rscript)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
        return {"error": f"timed out after {timeout:.0f} s (killed)", "total_seconds": wall}
    wall = time.perf_counter() - t0
    lines = [ln for ln in stdout.splitlines() if ln.startswith(_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        why = "out of memory (killed)" if proc.returncode in (-9, 137) else " / ".join(tail)
        return {"error": f"failed (exit {proc.returncode}): {why}", "total_seconds": wall}
    record = json.loads(lines[-1][len(_PREFIX) :])
    record["total_seconds"] = wall
    return record


def run_rscript(script: str, arguments: list[str]) -> tuple[dict[str, str], float] | None:
    """Run an R script that prints ``key value`` lines; its fields and wall time, or ``None``
    after emitting the error (the R process's peak memory is then this process's
    ``peak_mb(resource.RUSAGE_CHILDREN)``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(script)
    t0 = time.perf_counter()
    out = subprocess.run(["Rscript", fh.name, *arguments], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    os.unlink(fh.name)
    if out.returncode != 0:
        emit({"error": out.stderr.strip()[-500:] or f"Rscript exit {out.returncode}"})
        return None
    fields = {}
    for line in out.stdout.splitlines():
        key, _, value = line.strip().partition(" ")
        fields[key] = value.strip()
    return fields, wall


def r_record(fields: dict[str, str], wall: float) -> dict:
    """The fields every Rscript peer reports, read from its ``key value`` lines."""
    return {
        "fit_seconds": float(fields["fit_seconds"]),
        "read_seconds": float(fields["read_seconds"]),
        "rscript_seconds": wall,
        "peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
        "n": int(fields["n"]),
        "fixed": [float(v) for v in fields["fixed"].split(",")],
        "vc": [float(v) for v in fields["vc"].split(",")],
        "r_version": fields["r_version"],
        "reader": fields["reader"],
        "warnings": [fields.get("warnings", "")] if fields.get("warnings") else [],
    }


def row_note(record: dict, *, warning_width: int) -> str:
    """A results table's note for one case: R's CSV reading time, non-convergence, warnings
    (each cut to ``warning_width`` characters)."""
    note = []
    if "read_seconds" in record:
        note.append(f"reading the CSV in R: {record['read_seconds']:.2f} s")
    if not record.get("converged", True):
        note.append("not converged")
    if record.get("warnings"):
        note.append("warning: " + "; ".join(w[:warning_width] for w in record["warnings"]))
    return " ".join(note)


def machine_lines() -> list[str]:
    """CPU, cores, memory and operating system, in one line (a list, to extend)."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem_gib = int(line.split()[1]) / 1024**2
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; RAM {mem_gib:.1f} GiB; {platform.system()} "
        f"{platform.release()}"
    ]


def max_rel(a, b) -> float:
    """Largest relative difference of ``a`` from ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
