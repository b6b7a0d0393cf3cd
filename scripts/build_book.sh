#!/usr/bin/env bash
# Build the book: npm assets, the JupyterLite folder, then jupyter-book with warnings as errors.
#
#   scripts/build_book.sh           incremental build (notebook cache kept until winolab/ or
#                                   results/ change)
#   scripts/build_book.sh --clean   from an empty cache, as CI does
#
# The HTML lands in _build/html (open _build/html/index.html, or serve it with
# `python -m http.server 8000 --bind 127.0.0.1 --directory _build/html`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--clean" ]]; then
    rm -rf _build
fi

# jupyter-cache keys executed notebooks on their own text only: when the library or the
# recorded results change, drop the cache so no chapter shows numbers from older code.
stamp=$(cat $(git ls-files -co --exclude-standard winolab results | sort) 2>/dev/null | sha256sum | cut -c1-16)
if [[ -f _build/.library_stamp && "$(cat _build/.library_stamp)" != "$stamp" ]]; then
    echo "build_book: winolab/ or results/ changed: executing every chapter again"
    rm -rf _build/.jupyter_cache _build/.doctrees _build/html
fi
mkdir -p _build && echo "$stamp" > _build/.library_stamp

# npm assets: MathJax, the widget manager, RequireJS, the Pyodide core (package-lock.json pins them)
if [[ ! -d node_modules/pyodide || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --ignore-scripts --no-audit --no-fund
fi
python scripts/prepare_static.py
python scripts/prepare_pyodide.py

export MPLBACKEND=Agg
# every state of every widget, for the static pages (kept while winolab/ is unchanged)
nice python scripts/precompute_widgets.py
start=$(date +%s)
# -W: warnings are errors (a failing cell is a warning); -n: nitpicky cross-references
jupyter-book build . -W -n --keep-going
echo "build_book: jupyter-book build took $(( $(date +%s) - start )) s; HTML in _build/html"
