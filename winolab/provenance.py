"""Where and on what a number was measured: the git commit, the CPU, the load, the date.

Every recorded result and benchmark carries one :func:`environment` record, so that a wall time
or an accuracy can be traced to the code and the machine that produced it::

    >>> env = environment()
    >>> sorted(env)[:4]
    ['commit', 'cores', 'cpu', 'date']

Only the standard library and numpy are needed; callers add the versions of what they used
(torch, numba) as keyword arguments.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

__all__ = ["ISA_FLAGS", "cpu_info", "environment", "git_commit", "load_1m", "load_average",
           "same_cpu", "utc_now", "vector_isa"]

REPO = Path(__file__).resolve().parents[1]

#: The ISA flags that decide float32 and bfloat16 speed on x86 (``/proc/cpuinfo`` names).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16",
             "amx_int8")  # fmt: skip


def git_commit(root: str | os.PathLike | None = None) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``root``.

    ``root`` defaults to the checkout this package was imported from; ``None`` values mean
    that it is not a git checkout (an installed wheel) or that git is missing. ``dirty`` counts
    tracked files only: an untracked run log does not make a commit dirty.
    """
    root = str(REPO if root is None else root)
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()  # fmt: skip
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "-uno"],
                                capture_output=True, text=True, timeout=10).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(status.strip())}


def _proc_cpuinfo() -> tuple[str, set[str]]:
    """The CPU model and the flags of the first processor in ``/proc/cpuinfo`` (Linux; else
    the platform's processor name and no flags)."""
    model, flags = platform.processor() or platform.machine() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return model, flags


def cpu_info(flags: tuple[str, ...] = ISA_FLAGS) -> dict:
    """``{"model": str, "isa": {flag: bool}}`` for ``flags`` (``/proc/cpuinfo`` on Linux; else
    the platform's processor name and every flag ``False``)."""
    model, have = _proc_cpuinfo()
    return {"model": model, "isa": {f: f in have for f in flags}}


def vector_isa() -> list[str]:
    """Every vector-ISA flag of this CPU, sorted: the AVX and AVX-512 families, FMA, AMX and
    the bfloat16 extensions (the ``"isa"`` list of the kernel benchmarks' records)."""
    return sorted(f for f in _proc_cpuinfo()[1] if f.startswith(("avx", "fma", "amx"))
                  or "bf16" in f)  # fmt: skip


def same_cpu(a: dict, b: dict) -> bool:
    """Whether two :func:`cpu_info` records describe the same CPU: the same model, and the same
    value of every ISA flag that both record (at least one).

    Records written when the flag list was shorter (without ``"fma"``, say) still match the
    machine they were measured on; a flag that only one of them lists is not compared.
    """
    try:
        isa_a, isa_b = a["isa"], b["isa"]
        if a["model"] != b["model"] or not isinstance(isa_a, dict) or not isinstance(isa_b, dict):
            return False
        common = isa_a.keys() & isa_b.keys()
        return bool(common) and all(isa_a[f] == isa_b[f] for f in common)
    except (KeyError, TypeError):
        return False


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``None`` where the OS has none): the machines are
    shared, and a wall time means little without them."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def load_1m() -> float | None:
    """The 1-minute load average alone (``None`` where the OS has none)."""
    load = load_average()
    return load[0] if load else None


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def environment(root: str | os.PathLike | None = None, **extra) -> dict:
    """One provenance record: commit, dirty flag, date, CPU model and ISA, cores, load average,
    Python, numpy and the machine; ``extra`` adds (or overrides) fields such as
    ``torch=torch.__version__`` or ``threads=...``."""
    info = cpu_info()
    return {
        **git_commit(root),
        "date": utc_now(),
        "cpu": info["model"],
        "isa": info["isa"],
        "cores": os.cpu_count(),
        "load_average_1_5_15": load_average(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        **extra,
    }
