"""Prepare the JupyterLite folder ``_build/lite``: a local Pyodide core and winolab's wheel.

JupyterLite (through ``jupyterlite-sphinx``) copies ``<lite dir>/static/pyodide`` into the site
and then loads Pyodide from there instead of the CDN, and it indexes every wheel in
``<lite dir>/pypi`` for ``%pip install``/``piplite``. This script fills both:

* ``static/pyodide``: the npm ``pyodide`` core (interpreter, standard library, lock file), plus
  the pure-Python wheels the kernel and a sympy cell need, downloaded from PyPI at the exact
  versions of Pyodide's lock file. Their sha256 values in ``pyodide-lock.json`` are rewritten,
  because Pyodide's own builds of these wheels differ byte for byte from PyPI's.
* Every other lock entry (numpy, matplotlib, ... which PyPI has no wasm build of) points at
  Pyodide's CDN, ``https://cdn.jsdelivr.net/pyodide/v<version>/full/``, with its original hash.
  Readers' browsers fetch numpy from there; an offline test can only run numpy-free code.
* ``pypi``: winolab's own wheel, built from the working tree.

Run ``npm ci`` first; ``scripts/build_book.sh`` does both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "node_modules" / "pyodide"
LITE = ROOT / "_build" / "lite"
WHEEL_CACHE = ROOT / "_build" / "pyodide_wheels"
CORE_FILES = [
    "pyodide.mjs",
    "pyodide.js",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "package.json",
]
# What the kernel loads at start (micropip, then ipython and jedi for the pyodide-kernel wheel)
# and what the numpy-free live cell imports (sympy). Their dependencies come from the lock file.
LOCAL_ROOTS = ["micropip", "packaging", "ipython", "jedi", "sympy"]
# Pure wheels that are not in Pyodide at all; piplite serves them from ``lite/pypi`` so that the
# kernel (comm) and ipywidgets never fall back to pypi.org. Versions as the build machine has them.
PIPLITE_EXTRA = ["comm", "ipywidgets", "jupyterlab_widgets"]


def closure(packages: dict, roots: list[str]) -> list[str]:
    """Names of ``roots`` and everything they depend on in the Pyodide lock file.

    >>> lock = {"a": {"depends": ["b"]}, "b": {"depends": []}, "c": {"depends": []}}
    >>> closure(lock, ["a"])
    ['a', 'b']
    """
    # lock keys and "depends" spell names differently (prompt-toolkit vs prompt_toolkit)
    keys = {canonicalize_name(k): k for k in packages}
    seen: list[str] = []
    todo = list(roots)
    while todo:
        name = keys.get(canonicalize_name(todo.pop()))
        if name is None:
            raise KeyError(f"{name!r} is not in Pyodide's lock file")
        if name in seen:
            continue
        seen.append(name)
        todo += packages[name]["depends"]
    return sorted(seen)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_pure_wheels(entries: dict, cache: Path) -> dict[str, Path]:
    """pip-download ``name==version`` of each pure lock entry; map name -> wheel file."""
    cache.mkdir(parents=True, exist_ok=True)
    for name, entry in entries.items():
        if not entry["file_name"].endswith("-none-any.whl"):
            raise ValueError(f"{name} {entry['file_name']} is not a pure-Python wheel")
    python = ".".join(LOCK_PYTHON.split(".")[:2])
    specs = [f"{name}=={entry['version']}" for name, entry in entries.items()]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--dest",
            str(cache),
            *specs,
        ],
        check=True,
    )
    on_disk = {}
    for path in cache.glob("*.whl"):
        dist, version, *_ = parse_wheel_filename(path.name)
        on_disk[(dist, str(version))] = path
    found = {}
    for name, entry in entries.items():
        key = (canonicalize_name(name), entry["version"])
        if key not in on_disk:
            raise FileNotFoundError(f"pip did not download {name}=={entry['version']} into {cache}")
        found[name] = on_disk[key]
    return found


LOCK_PYTHON = "3.14"


def prepare(lite: Path = LITE, core: Path = CORE, cache: Path = WHEEL_CACHE) -> dict:
    """Fill ``lite/static/pyodide`` and ``lite/pypi``; return a summary."""
    global LOCK_PYTHON
    if not (core / "pyodide-lock.json").exists():
        raise FileNotFoundError(f"{core} is missing: run `npm ci` in {ROOT} first")
    target = lite / "static" / "pyodide"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in CORE_FILES:
        shutil.copy2(core / name, target / name)

    lock = json.loads((core / "pyodide-lock.json").read_text())
    LOCK_PYTHON = lock["info"]["python"]
    version = json.loads((core / "package.json").read_text())["version"]
    cdn = f"https://cdn.jsdelivr.net/pyodide/v{version}/full/"
    packages = lock["packages"]

    local = closure(packages, LOCAL_ROOTS)
    wheels = download_pure_wheels({n: packages[n] for n in local}, cache)
    for name, wheel in wheels.items():
        shutil.copy2(wheel, target / packages[name]["file_name"])
        packages[name]["sha256"] = _sha256(wheel)
    for name, entry in packages.items():
        if name not in wheels:
            entry["file_name"] = cdn + entry["file_name"]
    (target / "pyodide-lock.json").write_text(json.dumps(lock, indent=1))

    # winolab's own wheel, indexed by JupyterLite's piplite add-on
    pypi = lite / "pypi"
    if pypi.exists():
        shutil.rmtree(pypi)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(pypi),
            str(ROOT),
        ],
        check=True,
    )
    extras = [f"{name}=={installed_version(name)}" for name in PIPLITE_EXTRA]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(pypi),
            *extras,
        ],
        check=True,
    )
    # pip wheel leaves a build/ folder and egg-info next to the sources
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return {
        "pyodide": version,
        "local": local,
        "cdn": cdn,
        "wheels": sorted(p.name for p in pypi.glob("*.whl")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    summary = prepare()
    print(
        f"prepare_pyodide: Pyodide {summary['pyodide']}, local wheels: "
        f"{', '.join(summary['local'])}; other packages from {summary['cdn']}; "
        f"piplite: {', '.join(summary['wheels'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
