"""Copy the browser assets the book serves itself from ``node_modules/`` into ``_build/static``.

The static HTML must make no request outside its own host, so the widget manager (with
RequireJS) and MathJax come from npm copies instead of the CDNs jupyter-book uses by default.
``_config.yml`` points ``nb_ipywidgets_js`` and ``mathjax_path`` at the files copied here. The
folder sits outside ``_static`` on purpose: JB1 adds every ``.js`` under ``_static`` to every page,
which loads the widget manager twice and draws each widget three times.

Run ``npm ci`` first; ``scripts/build_book.sh`` does both.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "node_modules"
TARGET = ROOT / "_build" / "static"

# (source under node_modules, destination under TARGET, glob patterns to leave out)
COPIES = [
    ("requirejs/require.js", "widgets/require.js", ()),
    # embed-amd.js plus the font files its CSS names; not the CommonJS bundles or source maps
    ("@jupyter-widgets/html-manager/dist", "widgets", ("*.map", "embed.js*", "libembed-amd.js")),
    # MathJax 3 (es5 build): the tex-mml-chtml entry point and the components it loads on demand
    ("mathjax/es5", "mathjax", ("*-svg*.js", "*-full*.js", "mml-*.js", "node-main.js", "svg")),
]


def copy_assets(node_modules: Path = NODE, target: Path = TARGET) -> list[Path]:
    """Copy the npm assets; return the files written.

    Raises
    ------
    FileNotFoundError
        When a package is missing from ``node_modules`` (run ``npm ci``).
    """
    if target.exists():
        shutil.rmtree(target)
    written = []
    for src_rel, dst_rel, skip in COPIES:
        src = node_modules / src_rel
        dst = target / dst_rel
        if not src.exists():
            raise FileNotFoundError(f"{src} is missing: run `npm ci` in {ROOT} first")
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*skip), dirs_exist_ok=True)
            written += [p for p in dst.rglob("*") if p.is_file()]
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            written.append(dst)
    return written


def main() -> int:
    files = copy_assets()
    size = sum(p.stat().st_size for p in files) / 2**20
    print(f"prepare_static: {len(files)} files, {size:.1f} MiB in {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
