"""Precompute every state of the book's widgets for the static site (no kernel in the page).

For each widget in :data:`winolab.widgets.WIDGETS` and every combination of its controls' static
values, :func:`winolab.widgets.render` (the same ``compute_*`` and ``viz.plot_*`` calls the
Jupyter widget makes) gives the figure and the numbers. They are written to
``_build/widget_states/explore/``: ``<widget>/<i>.png`` per state, and ``<widget>.js``, which
registers the controls and, per state, the figure's file and the numbers with
``scripts/explore/winolab-explore.js``. ``_config.yml`` serves the folder as ``_static/``.

The states are kept between builds while the package, matplotlib and this script are
unchanged (a stamp over their sources); ``--force`` renders them again.

    python scripts/precompute_widgets.py [--force] [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "_build" / "widget_states" / "explore"


def _stamp() -> str:
    import matplotlib

    h = hashlib.sha256(matplotlib.__version__.encode())
    for p in sorted((ROOT / "winolab").rglob("*.py")) + [Path(__file__)]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _render_one(job: tuple[str, int, dict]) -> tuple[str, int, dict]:
    from winolab import widgets

    name, i, settings = job
    spec = widgets.WIDGETS[name]
    result, png, nums = widgets.render(spec, settings)
    key = spec.key(settings)
    if result is None:
        return name, i, {"key": key, "error": png}
    (TARGET / name / f"{i}.png").write_bytes(png)
    return name, i, {"key": key, "image": f"{name}/{i}.png", "numbers": nums}


def _note(spec) -> str:
    cut = [c for c in spec.controls if c.static]
    if not cut:
        return ""
    parts = [f"{c.description} in {', '.join(c.label(v) for v in c.static)}" for c in cut]
    return (
        "This page holds the states precomputed when the book was built, for "
        + "; ".join(parts)
        + ". Every other value runs in Jupyter, or in your browser in the live console below."
    )


def precompute(jobs: int, force: bool = False) -> dict[str, int]:
    """Render every static state; return the number of states per widget."""
    from winolab import widgets

    stamp = _stamp()
    stamp_file = TARGET / ".stamp"
    if not force and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return {n: len(list(s.settings())) for n, s in widgets.WIDGETS.items()}
    if TARGET.exists():
        shutil.rmtree(TARGET)
    work = []
    for name, spec in widgets.WIDGETS.items():
        (TARGET / name).mkdir(parents=True)
        work += [(name, i, s) for i, s in enumerate(spec.settings())]
    states: dict[str, dict] = {name: {} for name in widgets.WIDGETS}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for name, _, state in pool.map(_render_one, work, chunksize=4):
            states[name][state.pop("key")] = state
    for name, spec in widgets.WIDGETS.items():
        data = {
            "name": name,
            "controls": [
                {
                    "name": c.name,
                    "description": c.description,
                    "kind": c.kind,
                    "labels": [c.label(v) for v in (c.static or c.values)],
                    "default": c.label(c.value),
                }
                for c in spec.controls
            ],
            "note": _note(spec),
            "states": states[name],
        }
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        (TARGET / f"{name}.js").write_text(f"window.winolabExplore.register({text});\n")
    stamp_file.write_text(stamp)
    return {n: len(s) for n, s in states.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="render even if up to date")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    start = time.perf_counter()
    counts = precompute(args.jobs, args.force)
    size = sum(p.stat().st_size for p in TARGET.rglob("*") if p.is_file()) / 2**20
    print(
        f"precompute_widgets: {sum(counts.values())} states ({counts}), {size:.1f} MiB, "
        f"{time.perf_counter() - start:.1f} s with {args.jobs} jobs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
