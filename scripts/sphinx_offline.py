"""Sphinx extension: keep every page's stylesheets and scripts on the site itself.

jupyterlite-sphinx adds a Google Fonts stylesheet (``fonts.googleapis.com``, a display font for
its "try it" buttons) to every page; a page of this book must make no request outside its own
host, so it is dropped here. Any other stylesheet or script with an absolute URL is reported as
a warning, which ``jupyter-book build -W`` turns into a failed build.
"""

from __future__ import annotations

from sphinx.util import logging

logger = logging.getLogger(__name__)

# external assets we remove on purpose (cosmetic only)
DROPPED = ("https://fonts.googleapis.com/",)


def _url(asset) -> str:
    return str(getattr(asset, "filename", asset))


def _offline_assets(app, pagename, templatename, context, doctree) -> None:
    for key in ("css_files", "script_files"):
        assets = context.get(key)
        if not assets:
            continue
        kept = [a for a in assets if not _url(a).startswith(DROPPED)]
        for asset in kept:
            if "://" in _url(asset):
                logger.warning(
                    "page %s loads %s from outside the site", pagename, _url(asset),
                    type="offline", subtype="external",
                )
        context[key] = kept


def setup(app):
    app.connect("html-page-context", _offline_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
