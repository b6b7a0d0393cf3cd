"""Copy the browser assets the book serves itself from ``node_modules/`` into ``_build/static``.

The static HTML must make no request outside its own host, so MathJax and the widget manager
(with RequireJS) come from npm copies instead of the CDNs jupyter-book uses by default, next to
the book's own widget script (``scripts/explore/``, which shows the states that
``scripts/precompute_widgets.py`` renders). ``_config.yml`` points ``mathjax_path`` and
``html_js_files`` at the files copied here. The folder sits outside ``_static`` on purpose: JB1
adds every ``.js`` under ``_static`` to every page.

Run ``npm ci`` first; ``scripts/build_book.sh`` does both.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "node_modules"
TARGET = ROOT / "_build" / "static"
# html_extra_path: copied as is to the site's root
EXTRA = ROOT / "_build" / "static_extra"
# the widget manager's own font files (Font Awesome), which it requests relative to the page as
# @jupyter-widgets/html-manager/dist/<hash>.woff2; every chapter lives in book/
FONTS_AT = "book/@jupyter-widgets/html-manager/dist"
FONT_SUFFIXES = {".woff2", ".woff", ".ttf", ".eot", ".svg"}

# (source under node_modules, destination under TARGET, glob patterns to leave out)
COPIES = [
    ("requirejs/require.js", "widgets/require.js", ()),
    # not an npm file: MathJax 2's Hub.Queue, which the widget manager calls, over MathJax 3
    (ROOT / "scripts" / "mathjax2_hub_shim.js", "widgets/mathjax2_hub_shim.js", ()),
    # embed-amd.js plus the font files its CSS names; not the CommonJS bundles or source maps
    ("@jupyter-widgets/html-manager/dist", "widgets", ("*.map", "embed.js*", "libembed-amd.js")),
    # not an npm file: the script and style that switch the precomputed widget states
    (ROOT / "scripts" / "explore", "explore", ()),
    # MathJax 3 (es5 build): the tex-mml-chtml entry point and the components it loads on demand
    ("mathjax/es5", "mathjax", ("*-svg*.js", "*-full*.js", "mml-*.js", "node-main.js", "svg")),
]


def copy_assets(
    node_modules: Path = NODE, target: Path = TARGET, extra: Path = EXTRA
) -> list[Path]:
    """Copy the npm assets; return the files written.

    Raises
    ------
    FileNotFoundError
        When a package is missing from ``node_modules`` (run ``npm ci``).
    """
    for folder in (target, extra):
        if folder.exists():
            shutil.rmtree(folder)
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
    fonts = extra / FONTS_AT
    fonts.mkdir(parents=True)
    for font in (target / "widgets").iterdir():
        if font.suffix in FONT_SUFFIXES:
            shutil.copy2(font, fonts / font.name)
            written.append(fonts / font.name)
    return written


def main() -> int:
    files = copy_assets()
    size = sum(p.stat().st_size for p in files) / 2**20
    print(f"prepare_static: {len(files)} files, {size:.1f} MiB in {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
