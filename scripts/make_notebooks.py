"""Generate the coursework notebooks ``notebooks/*.ipynb`` from the book's chapters (jupytext).

Every MyST notebook in ``book/`` (a ``.md`` file with a ``kernelspec``) becomes one ``.ipynb``
without outputs, with every cell tagged ``solution`` removed (code cells and markdown cells
alike: ``:tags: [solution, hide-input]`` on a code cell, ``+++ {"tags": ["solution"]}`` before
a markdown cell). The first cell says where the notebook came from. The output is
deterministic (cell ids are derived from the chapter and position), so ``--check`` can tell
whether ``notebooks/`` is up to date; never edit the notebooks by hand.

    python scripts/make_notebooks.py           # (re)write notebooks/
    python scripts/make_notebooks.py --check   # exit 1 if notebooks/ is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
OUT = ROOT / "notebooks"
SOLUTION_TAG = "solution"


def _is_notebook(path: Path) -> bool:
    head = path.read_text().split("\n---", 1)[0]
    return path.read_text().startswith("---") and "kernelspec:" in head


def chapters(book: Path = BOOK) -> list[Path]:
    """The chapters that are MyST notebooks (have a ``kernelspec``), in file order."""
    return sorted(p for p in book.glob("*.md") if _is_notebook(p))


def to_notebook(chapter: Path) -> str:
    """The coursework notebook of one chapter, as ``.ipynb`` JSON text.

    >>> import tempfile
    >>> md = chr(10).join(["---", "kernelspec:", "  name: python3", "  display_name: Python 3",
    ...     "  language: python", "---", "# T", "", "```{code-cell} ipython3", "x = 1",
    ...     "```", "", "```{code-cell} ipython3", ":tags: [solution]", "x = 2", "```"])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "ch.md"
    ...     _ = p.write_text(md)
    ...     text = to_notebook(p)
    >>> '"x = 1"' in text, '"x = 2"' in text
    (True, False)
    """
    import jupytext
    import nbformat

    nb = jupytext.read(chapter, fmt="md:myst")
    cells = [c for c in nb.cells if SOLUTION_TAG not in c.metadata.get("tags", [])]
    try:
        source = chapter.relative_to(ROOT)
    except ValueError:
        source = chapter.name
    header = nbformat.v4.new_markdown_cell(
        f"*Coursework notebook generated from `{source}` by `scripts/make_notebooks.py`; "
        "exercise solutions are removed. Do not edit: change the chapter and regenerate.*"
    )
    nb.cells = [header, *cells]
    for i, cell in enumerate(nb.cells):
        # ids from the chapter name and position: reruns give identical files
        cell.id = hashlib.sha1(f"{chapter.stem}:{i}".encode()).hexdigest()[:12]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    # keep the kernel; drop jupytext's pairing metadata so the notebook stands alone
    nb.metadata.pop("jupytext", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def expected(book: Path = BOOK) -> dict[str, str]:
    """File name -> content of every notebook that ``notebooks/`` should hold."""
    return {f"{p.stem}.ipynb": to_notebook(p) for p in chapters(book)}


def _same(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


def stale(out: Path = OUT, book: Path = BOOK) -> list[str]:
    """Notebooks that are missing, differ from their chapter, or have no chapter any more."""
    want = expected(book)
    have = {p.name for p in out.glob("*.ipynb")} if out.is_dir() else set()
    bad = [
        n for n, text in want.items() if not (out / n).is_file() or (out / n).read_text() != text
    ]
    return sorted(bad + sorted(have - set(want)))


def write(out: Path = OUT, book: Path = BOOK) -> list[Path]:
    """(Re)write ``notebooks/``: one notebook per chapter, stale ones removed."""
    want = expected(book)
    out.mkdir(exist_ok=True)
    for old in out.glob("*.ipynb"):
        if old.name not in want:
            old.unlink()
    written = []
    for name, text in want.items():
        path = out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate notebooks/ from the book's chapters.")
    parser.add_argument("--check", action="store_true", help="exit 1 if notebooks/ is out of date")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        if bad:
            print(f"notebooks/ is out of date: {', '.join(bad)}; run scripts/make_notebooks.py")
            return 1
        print(f"notebooks/ is up to date ({len(chapters())} notebooks)")
        return 0
    written = write()
    print(f"make_notebooks: {len(written)} written, {len(chapters())} notebooks in notebooks/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
