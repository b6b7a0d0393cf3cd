"""Sphinx extension: keep every page's stylesheets and scripts on the site itself.

jupyterlite-sphinx adds a Google Fonts stylesheet (``fonts.googleapis.com``, a display font for
its "try it" buttons) to every page; a page of this book must make no request outside its own
host, so it is dropped here. Any other stylesheet or script with an absolute URL is reported as
a warning, which ``jupyter-book build -W`` turns into a failed build.

It also drops repeated assets: JB1 registers sphinx-thebe's inline configuration script twice,
and the second copy throws ``Identifier 'THEBE_JS_URL' has already been declared``.
"""

from __future__ import annotations

from sphinx.util import logging

logger = logging.getLogger(__name__)

# external assets we remove on purpose (cosmetic only)
DROPPED = ("https://fonts.googleapis.com/",)


def _url(asset) -> str:
    # inline scripts have filename None or "" depending on who added them
    return str(getattr(asset, "filename", asset) or "")


def _offline_assets(app, pagename, templatename, context, doctree) -> None:
    for key in ("css_files", "script_files"):
        assets = context.get(key)
        if not assets:
            continue
        kept, seen = [], set()
        for asset in assets:
            ident = (_url(asset), str(getattr(asset, "attributes", {}).get("body", "")))
            if _url(asset).startswith(DROPPED) or ident in seen:
                continue
            seen.add(ident)
            kept.append(asset)
        for asset in kept:
            if "://" in _url(asset):
                logger.warning(
                    "page %s loads %s from outside the site",
                    pagename,
                    _url(asset),
                    type="offline",
                    subtype="external",
                )
        assets[:] = kept  # in place: the builder and other handlers hold this list


def setup(app):
    app.connect("html-page-context", _offline_assets, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
