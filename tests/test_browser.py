"""The built book in a real browser: Playwright driving Debian's Chromium against 127.0.0.1.

Build the site first (``scripts/build_book.sh``). Without ``_build/html`` these tests skip,
except in CI (``CI=true``), where a missing site or browser is a failure. Every page is loaded
from a local server with all requests outside it blocked and recorded; screenshots go to
``artifacts/screenshots/`` for a person to look at.

Checked for every page in ``_toc.yml``: it loads, every piece of maths is typeset by MathJax
(no TeX errors), every image has loaded (``naturalWidth > 0``), no script throws, no request
fails and no request leaves 127.0.0.1. Every widget (``winolab.widgets.WIDGETS``): each control,
moved by keyboard or menu to two other values, changes the figure and the numbers to exactly
what ``widgets.render`` (``compute_*`` + ``viz.plot_*``) gives for that setting.
``book/live.html``: the JupyterLite console starts Pyodide, installs winolab from the bundled
wheel and prints the exactly derived F(2, 3).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
IN_CI = os.environ.get("CI", "").lower() == "true"
# Readers' browsers load numpy & co. from Pyodide's CDN (the lock file points there); nothing
# else may leave the site. Offline, such a request is blocked and must not break a page.
ALLOWED_EXTERNAL = ("https://cdn.jsdelivr.net/pyodide/",)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LIVE_TIMEOUT_MS = 240_000
FIGURE = re.compile(r"^`{3,}\{(?:figure|glue:figure)\}", re.M)


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (in CI the browser tests must run)")
    pytest.skip(reason)


def _pages() -> list[str]:
    """Site-relative HTML paths of the pages in ``_toc.yml``."""
    text = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", text, flags=re.M)
    return [str(Path(f).with_suffix(".html")) for f in files]


PAGES = _pages()


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".json": "application/json",
    }

    def log_message(self, format, *args):  # noqa: A002 - quiet server
        pass


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").is_file():
        _unavailable(f"no built site at {SITE}: run scripts/build_book.sh")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(SITE))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -r requirements-book.txt)")
    chromium = os.environ.get("WINOLAB_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        _unavailable("no chromium binary (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class Traffic:
    """Requests a page made, with everything outside the site blocked and remembered."""

    def __init__(self, site_url: str, root: Path = SITE):
        self.site, self.root = site_url, root
        self.external: list[str] = []
        self.failed: list[str] = []
        self.aborted: list[str] = []
        self.errors: list[str] = []

    def route(self, route):
        url = route.request.url
        if url.startswith(self.site) or urlsplit(url).scheme in ("data", "blob"):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def on_response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def on_failed(self, request):
        if not request.url.startswith(self.site):
            return
        # the browser aborts a load it no longer needs (an image whose src changed again
        # before it arrived, on a slow machine); a missing file answers 404 (on_response), so
        # an aborted request fails only when the site does not have the file it asked for
        path = self.root / unquote(urlsplit(request.url).path).lstrip("/")
        if request.failure == "net::ERR_ABORTED" and path.is_file():
            self.aborted.append(request.url)
        else:
            self.failed.append(f"{request.failure} {request.url}")

    def forbidden(self) -> list[str]:
        return sorted({u for u in self.external if not u.startswith(ALLOWED_EXTERNAL)})


def test_traffic_forgives_only_superseded_loads_of_files_the_site_has(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "a b.png").write_bytes(b"png")
    t = Traffic("http://127.0.0.1:1/", root=tmp_path)

    class Request:
        def __init__(self, path, failure):
            self.url, self.failure = "http://127.0.0.1:1/" + path, failure

    t.on_failed(Request("_static/a%20b.png", "net::ERR_ABORTED"))  # superseded: forgiven
    t.on_failed(Request("_static/missing.png", "net::ERR_ABORTED"))
    t.on_failed(Request("_static/a%20b.png", "net::ERR_CONNECTION_RESET"))
    t.on_failed(type("R", (), {"url": "https://cdn.example/x.js", "failure": "x"})())
    assert t.aborted == ["http://127.0.0.1:1/_static/a%20b.png"]
    assert t.failed == ["net::ERR_ABORTED http://127.0.0.1:1/_static/missing.png",
                        "net::ERR_CONNECTION_RESET http://127.0.0.1:1/_static/a%20b.png"]


@pytest.fixture
def page(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    traffic = Traffic(site_url)
    context.route("**/*", traffic.route)
    context.on("response", traffic.on_response)
    context.on("requestfailed", traffic.on_failed)
    pg = context.new_page()
    pg.on("pageerror", lambda exc: traffic.errors.append(str(exc)))
    pg.traffic = traffic
    yield pg
    context.close()


def _screenshot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _wait_for_mathjax(pg) -> None:
    """Wait until MathJax has typeset the page (Sphinx loads it only on pages with maths)."""
    if not pg.locator("script[src*='mathjax']").count():
        return
    pg.wait_for_function(
        "() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=30_000
    )
    pg.evaluate("() => MathJax.startup.promise.then(() => true)")


def _open(pg, site_url: str, rel: str) -> None:
    pg.goto(site_url + rel, wait_until="load", timeout=60_000)
    _wait_for_mathjax(pg)


def test_site_lists_pages():
    assert PAGES and PAGES[0].endswith("intro.html")


@pytest.mark.parametrize("rel", PAGES, ids=[Path(p).stem for p in PAGES])
def test_page_renders_maths_and_figures_offline(page, site_url, rel):
    assert (SITE / rel).is_file(), f"{rel} was not built"
    _open(page, site_url, rel)
    # every math element typeset, none with a TeX error
    maths = page.evaluate(
        """() => [...document.querySelectorAll('article .math')].map(
            el => el.querySelector('mjx-container') !== null)"""
    )
    source = ROOT / Path(rel).with_suffix(".md")
    if source.is_file() and "$" in source.read_text():
        assert maths, f"{rel}: its source has maths but the page has no math element"
    assert all(maths), f"{rel}: {maths.count(False)} of {len(maths)} math elements not typeset"
    assert page.locator("mjx-merror").count() == 0, f"{rel}: MathJax reports a TeX error"
    # every image (figures, plots, static widget figures) has loaded
    page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=30_000)
    broken = page.evaluate(
        """() => [...document.querySelectorAll('article img')]
            .filter(img => !(img.naturalWidth > 0)).map(img => img.src)"""
    )
    assert not broken, f"{rel}: images that did not load: {broken}"
    # every numbered figure of the source is on the page, with a loaded image
    if source.is_file():
        wanted = len(FIGURE.findall(source.read_text()))
        shown = page.evaluate(
            """() => [...document.querySelectorAll('article figure')]
                .filter(f => [...f.querySelectorAll('img')].some(i => i.naturalWidth > 0)).length"""
        )
        assert shown >= wanted, f"{rel}: {wanted} figures in the source, {shown} shown"
    _screenshot(page, Path(rel).stem)
    t = page.traffic
    assert not t.forbidden(), f"{rel}: requests left the site: {t.forbidden()}"
    assert not t.failed, f"{rel}: failed requests: {t.failed}"
    assert not t.errors, f"{rel}: script errors: {t.errors}"


def _widget_page(name: str) -> str | None:
    """The page whose widget cell holds the widget ``name`` (its static placeholder)."""
    for p in PAGES:
        if (SITE / p).is_file() and f'data-widget="{name}"' in (SITE / p).read_text():
            return p
    return None


def _widget_names() -> list[str]:
    from winolab import widgets

    return sorted(widgets.WIDGETS)


def _expected(spec, settings: dict):
    """What the widget must show for ``settings``: ``(png bytes or message, numbers)``."""
    from winolab import widgets

    result, png, nums = widgets.render(spec, settings)
    return png, [(name, value, text) for name, value, text in nums]


def _shown(pg, root) -> tuple:
    """What the page's widget shows now: ``(png bytes or message, numbers)``."""
    figure = root.locator("img.winolab-explore-figure")
    if figure.is_hidden():
        return root.locator(".winolab-explore-numbers").inner_text(), []
    pg.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=figure.element_handle(), timeout=10_000
    )
    full = figure.evaluate("img => new URL(img.src).pathname")
    png = (SITE / full.lstrip("/")).read_bytes()
    nums = [
        (e["field"], json.loads(e["value"]), e["text"].split(" = ", 1)[1])
        for e in root.locator(".winolab-explore-number").evaluate_all(
            "els => els.map(e => ({field: e.dataset.field, value: e.dataset.value,"
            " text: e.textContent}))"
        )
    ]
    return png, nums


def _move(pg, root, control, values: list, target) -> None:
    """Move ``control`` to ``target`` the way a reader does: arrow keys, or the menu."""
    handle = root.locator(f'[data-control="{control.name}"]')
    if control.kind == "menu":
        handle.select_option(control.label(target))
        return
    now = int(handle.input_value())
    want = values.index(target)
    handle.focus()
    for _ in range(abs(want - now)):
        pg.keyboard.press("ArrowRight" if want > now else "ArrowLeft")


@pytest.mark.parametrize("name", _widget_names())
def test_static_widget_recomputes_every_control(page, site_url, name):
    """Each control, moved to two other values, shows what ``compute_*`` gives for them."""
    from winolab import widgets

    spec = widgets.WIDGETS[name]
    rel = _widget_page(name)
    if rel is None:
        if not SITE.is_dir():
            _unavailable(f"no built site at {SITE}")
        pytest.fail(f"no page of the built book holds the {name} widget")
    _open(page, site_url, rel)
    page.wait_for_selector(f'.winolab-explore-ready[data-widget="{name}"]', timeout=30_000)
    root = page.locator(f'.winolab-explore[data-widget="{name}"]').first
    root.scroll_into_view_if_needed()
    settings = {c.name: c.value for c in spec.controls}
    shown = _shown(page, root)
    assert shown == _expected(spec, settings), f"{name}: the default state is not compute_*'s"
    SHOTS.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(SHOTS / f"widget-{name}-before.png"))
    checked = 0
    for c in spec.controls:
        values = list(c.static or c.values)
        others = [v for v in values if v != c.value]
        # two other values: the neighbours of the default where there are some, else the ends
        i = values.index(c.value)
        picks = sorted(others, key=lambda v: (abs(values.index(v) - i), values.index(v)))[:2]
        for target in picks:
            before = shown
            _move(page, root, c, values, target)
            settings[c.name] = target
            key = spec.key(settings)
            page.wait_for_function(
                "([el, key]) => el.getAttribute('data-state') === key",
                arg=[root.element_handle(), key], timeout=10_000,
            )
            shown = _shown(page, root)
            assert shown != before, f"{name}: moving {c.name} to {target!r} changed nothing"
            assert shown == _expected(spec, settings), f"{name} at {key}: not compute_*'s result"
            checked += 1
        root.screenshot(path=str(SHOTS / f"widget-{name}-{c.name}.png"))
        _move(page, root, c, values, c.value)
        settings[c.name] = c.value
    assert checked >= len(spec.controls)
    t = page.traffic
    assert not t.forbidden(), f"{rel}: requests left the site: {t.forbidden()}"
    assert not t.external, f"{rel}: the widget needed something outside the site: {t.external}"
    assert not t.failed, f"{rel}: failed requests: {t.failed}"
    assert not t.errors, f"{rel}: script errors: {t.errors}"


def test_live_console_derives_f23_offline(page, site_url):
    rel = "book/live.html"
    if not (SITE / rel).is_file():
        _unavailable(f"{rel} was not built")
    _open(page, site_url, rel)
    page.click(".jupyterlite_sphinx_iframe_container")
    frame = page.frame_locator("iframe")
    done = frame.get_by_text("LIVE residual is zero: True")
    done.wait_for(timeout=LIVE_TIMEOUT_MS)
    out = frame.locator(".jp-OutputArea-output").all_inner_texts()
    text = " ".join(" ".join(out).split())
    _screenshot(page, "live")
    # the matrices sympy derived in the browser (Python 3.14, Pyodide) are the ones derived
    # here, exactly: [[1, 1, 1, 0], [0, 1, -1, 1]], ...
    from winolab.derive import cook_toom

    ct = cook_toom(2, 3)
    for name in ("AT", "G", "BT"):
        assert f"{name} = {getattr(ct, name).tolist()}" in text, (name, text)
    t = page.traffic
    assert not t.forbidden(), f"requests left the site: {t.forbidden()}"
    # nothing the numpy-free cell needs may be missing locally: no CDN request was even tried
    assert not t.external, f"the live cell needed the CDN: {t.external}"
    assert not t.failed, f"failed requests: {t.failed}"


def test_chapter_live_cell_reaches_only_pyodide_cdn(page, site_url):
    """A chapter's live cell imports numpy: offline, the only thing it may ask for is the CDN.

    Readers' browsers get numpy, matplotlib and their dependencies from Pyodide's CDN; here the
    request is blocked, so this checks the wiring (winolab and ipywidgets come from the site,
    numpy's wheel from ``cdn.jsdelivr.net/pyodide/``), not that the widget runs.
    """
    rels = [
        p
        for p in PAGES
        if p != "book/live.html"
        and (SITE / p).is_file()
        and "jupyterlite_sphinx_iframe_container" in (SITE / p).read_text()
    ]
    if not rels:
        pytest.skip("no chapter has a live cell")
    rel = rels[0]
    _open(page, site_url, rel)
    with page.context.expect_event(
        "request",
        predicate=lambda r: r.url.startswith(ALLOWED_EXTERNAL) and "/numpy-" in r.url,
        timeout=LIVE_TIMEOUT_MS,
    ):
        page.locator(".jupyterlite_sphinx_iframe_container").first.click()
    t = page.traffic
    assert not t.forbidden(), f"{rel}: requests left the site: {t.forbidden()}"
    assert not t.failed, f"{rel}: failed requests on the site: {t.failed}"
