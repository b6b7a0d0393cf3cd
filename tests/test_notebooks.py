"""notebooks/ is generated from book/ by scripts/make_notebooks.py, with solutions removed."""

from __future__ import annotations

import doctest
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("jupytext", reason="the book extras are not installed")


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "scripts" / "make_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mk = _load_script()
CHAPTERS = mk.chapters()


def test_make_notebooks_doctests():
    result = doctest.testmod(mk)
    assert result.attempted > 0 and result.failed == 0


def test_notebooks_are_up_to_date():
    bad = mk.stale()
    assert not bad, f"notebooks/ is out of date ({bad}): run python scripts/make_notebooks.py"


def test_one_notebook_per_chapter():
    assert CHAPTERS, "no MyST notebook chapters in book/"
    names = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert names == sorted(f"{p.stem}.ipynb" for p in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_solutions_removed_everything_else_kept(chapter):
    import jupytext

    book = jupytext.read(chapter, fmt="md:myst")
    nb = json.loads((ROOT / "notebooks" / f"{chapter.stem}.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    for cell in nb["cells"]:
        assert "solution" not in cell.get("metadata", {}).get("tags", [])
        assert not cell.get("outputs"), "coursework notebooks carry no outputs"
    solutions = [c.source for c in book.cells if "solution" in c.metadata.get("tags", [])]
    kept = [c.source for c in book.cells if "solution" not in c.metadata.get("tags", [])]
    for s in solutions:
        assert s not in sources, f"{chapter.name}: a solution is still in the notebook"
    assert sources[1:] == kept, f"{chapter.name}: cells other than solutions changed"
    # the exercises themselves stay: a chapter with solutions keeps its "Exercises" section
    if solutions:
        assert any(re.search(r"^#+ .*Exercise", s, re.M) for s in sources), chapter.name
