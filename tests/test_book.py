"""Static checks of the book's sources (no build needed): toc, literalincludes, imports, citations.

The book must show the library's code, never a copy of it: a chapter that ``def``s a name the
package exports has drifted from the code the tests check, and a ``literalinclude`` whose file or
``:pyobject:`` is gone would show nothing (or break the build late).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PACKAGE = ROOT / "winolab"
# Pages that document rather than compute: they need no code cell importing winolab.
REFERENCE_PAGES = {"api": "automodule", "bibliography": "bibliography"}

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
DIRECTIVE = re.compile(r"^(`{3,})\{([\w:-]+)\}[ \t]*([^\n]*)\n(.*?)^\1[ \t]*$", re.S | re.M)
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
IMPORTS_WINOLAB = re.compile(r"^\s*(import winolab\b|from winolab(\.[\w.]+)? import )", re.M)


def _toc_files() -> list[str]:
    """Files named in ``_toc.yml`` (``root`` and every ``file:``), without extension."""
    text = (ROOT / "_toc.yml").read_text()
    return re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", text, flags=re.M)


def _chapters() -> list[Path]:
    return sorted(BOOK.glob("*.md"))


def _cell_options_and_body(body: str) -> tuple[dict[str, str], str]:
    """Split a directive body into its ``:key: value`` options and the rest."""
    options, lines = {}, body.splitlines()
    while lines and (m := re.match(r"^:([\w-]+):\s*(.*)$", lines[0])):
        options[m.group(1)] = m.group(2).strip()
        lines.pop(0)
    return options, "\n".join(lines)


def _code_cells(text: str) -> list[str]:
    cells = []
    for body in CODE_CELL.findall(text):
        _, code = _cell_options_and_body(body)
        # IPython magics and shell escapes are not Python syntax
        cells.append(
            "\n".join(
                "" if line.lstrip()[:1] in "%!" and line.strip() else line
                for line in code.splitlines()
            )
        )
    return cells


def _literalincludes(path: Path) -> list[tuple[str, dict[str, str]]]:
    return [
        (arg.strip(), _cell_options_and_body(body)[0])
        for _, name, arg, body in DIRECTIVE.findall(path.read_text())
        if name == "literalinclude"
    ]


def _public_names() -> dict[str, str]:
    """Every name a winolab module exports (its ``__all__``), read from source without importing.

    A module without ``__all__`` exports its top-level functions and classes not starting with
    an underscore.
    """
    names: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        exported = None
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                    try:
                        exported = [n for n in ast.literal_eval(node.value) if isinstance(n, str)]
                    except ValueError:  # e.g. ["__version__", *_SUBMODULES]: list the literals
                        exported = [
                            e.value
                            for e in node.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        ]
        if exported is None:
            if path.name.startswith("_") and path.name != "__init__.py":
                continue
            exported = [
                n.name
                for n in tree.body
                if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")
            ]
        for name in exported:
            names.setdefault(name, str(path.relative_to(ROOT)))
    return names


def _pyobject_exists(source: Path, dotted: str) -> bool:
    """Whether ``Class.method`` / ``function`` / ``Class`` is defined in ``source``."""
    body = ast.parse(source.read_text()).body
    for part in dotted.split("."):
        found = [
            n
            for n in body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and n.name == part
        ]
        if not found:
            return False
        body = found[0].body
    return True


CHAPTERS = _chapters()
IDS = [p.stem for p in CHAPTERS]


def test_book_has_chapters():
    assert CHAPTERS, f"no chapters in {BOOK}"
    assert (ROOT / "_config.yml").is_file() and (ROOT / "_toc.yml").is_file()


def test_toc_lists_every_chapter_and_nothing_else():
    toc = [str(Path(f).with_suffix("")) for f in _toc_files()]
    assert len(toc) == len(set(toc)), f"duplicate toc entries: {toc}"
    chapters = {f"book/{p.stem}" for p in CHAPTERS}
    missing = sorted(chapters - set(toc))
    assert not missing, f"chapters not in _toc.yml (add them): {missing}"
    dangling = sorted(set(toc) - chapters)
    assert not dangling, f"_toc.yml entries without a book/*.md file: {dangling}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_literalinclude_targets_exist(chapter):
    for target, options in _literalincludes(chapter):
        source = (chapter.parent / target).resolve()
        assert source.is_file(), f"{chapter.name}: literalinclude {target} does not exist"
        if "pyobject" in options:
            assert _pyobject_exists(source, options["pyobject"]), (
                f"{chapter.name}: {options['pyobject']} is not defined in {target}"
            )
        text = source.read_text()
        for key in ("start-after", "end-before", "start-at", "end-at"):
            if key in options:
                assert options[key] in text, (
                    f"{chapter.name}: {key} {options[key]!r} not in {target}"
                )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_chapter_code_parses_and_redefines_no_public_name(chapter):
    public = _public_names()
    for code in _code_cells(chapter.read_text()):
        tree = ast.parse(code, filename=chapter.name)  # a syntax error fails here, clearly
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                assert node.name not in public, (
                    f"{chapter.name} defines {node.name}, which {public[node.name]} exports: "
                    "import it and show it with literalinclude instead of copying it"
                )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_every_chapter_imports_winolab(chapter):
    text = chapter.read_text()
    if chapter.stem in REFERENCE_PAGES:
        assert REFERENCE_PAGES[chapter.stem] in text
        return
    # code cells, or the body of a live-code directive (book/live.md's replite)
    bodies = _code_cells(text) + [
        body for _, name, _, body in DIRECTIVE.findall(text) if name in ("replite", "code-cell")
    ]
    assert any(IMPORTS_WINOLAB.search(b) for b in bodies), (
        f"{chapter.name} has no code cell importing winolab"
    )


def test_api_page_documents_every_public_module():
    api = (BOOK / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (winolab[\w.]*)\s*$", api, flags=re.M))
    modules = {
        "winolab." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in PACKAGE.rglob("*.py")
        if not any(part.startswith("_") for part in p.relative_to(PACKAGE).parts)
    }
    # a subpackage is documented by its submodules
    missing = sorted(m for m in modules if m not in documented)
    assert not missing, f"book/api.md has no automodule for {missing}"
    packages = {
        "winolab." + ".".join(p.parent.relative_to(PACKAGE).parts)
        for p in PACKAGE.rglob("__init__.py")
    } | {"winolab"}
    stale = sorted(documented - modules - {p.rstrip(".") for p in packages})
    assert not stale, f"book/api.md documents modules that do not exist: {stale}"


def test_every_citation_is_in_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text(), re.M))
    for chapter in CHAPTERS:
        for group in CITE.findall(chapter.read_text()):
            for key in (k.strip() for k in group.split(",")):
                assert key in keys, f"{chapter.name} cites {key!r}, not in book/references.bib"


def test_solutions_are_tagged_for_removal():
    """Exercise solutions carry the ``solution`` tag (removed from notebooks/) and are hidden."""
    for chapter in CHAPTERS:
        for body in CODE_CELL.findall(chapter.read_text()):
            options, _ = _cell_options_and_body(body)
            tags = options.get("tags", "")
            if "solution" in tags:
                assert re.search(r"hide-(input|cell)|remove-(input|cell)", tags), (
                    f"{chapter.name}: a solution cell is shown in the book (tags {tags})"
                )
