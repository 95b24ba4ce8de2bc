"""The report as HTML (Jinja2, SVG plots inline) and as PDF (WeasyPrint, from the same HTML).

`render_report(store, inspection_id, lang, fmt)` is what the command line and
the HTTP API call: the bytes and their content type. It raises the store's
`NotFound` for an unknown inspection. WeasyPrint is imported only when a PDF
is asked for: it loads Pango and fonts, which an HTML report does not need.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, tzinfo
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from markupsafe import Markup

from linectl import __version__
from linectl.i18n import DEFAULT_LANG, HTML_LANG, LOCALES, UnknownLanguage, install, translator
from linectl.report.fields import (
    FUELS,
    INSPECTION_TYPES,
    STATES,
    VERDICT_SYMBOLS,
    VERDICT_WORDS,
    Msg,
)
from linectl.report.model import Report, build_report
from linectl.report.plots import plot_svg

if TYPE_CHECKING:
    from linectl.config import SiteConfig
    from linectl.stations.limits import Limits
    from linectl.store.repo import AsyncStore, Store

Format = Literal["html", "pdf"]
CONTENT_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def translate(text: Any, lang: str) -> str:
    """A `Msg` translated and formatted (its arguments translated too); anything else as is."""
    if isinstance(text, Msg):
        s = translator(lang).gettext(text.msgid)
        if text.args:
            return s % {k: translate(v, lang) for k, v in text.args.items()}
        return s
    return "" if text is None else str(text)


@cache
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("linectl.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    install(env, lang)
    env.filters["tr"] = lambda text: translate(text, lang)
    # A msgid held in a variable: translated, never %-formatted (newstyle _() would).
    env.filters["msg"] = lambda msgid: translator(lang).gettext(msgid)
    env.filters["plot"] = lambda p: Markup(plot_svg(p, translator(lang).gettext))
    return env


def render_html(
    report: Report, lang: str = DEFAULT_LANG, tz: tzinfo | None = None, now: datetime | None = None
) -> str:
    """The report as one self-contained HTML page (styles and plots inline)."""
    if lang not in LOCALES:
        raise UnknownLanguage(lang)
    local = tz or datetime.now().astimezone().tzinfo
    printed = (now or datetime.now(local)).astimezone(local)

    def when(dt: datetime | None) -> str:
        return "-" if dt is None else dt.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")

    offset = printed.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return (
        _environment(lang)
        .get_template("report.html")
        .render(
            r=report,
            v=report.vehicle,
            lang=lang,
            html_lang=HTML_LANG[lang],
            when=when,
            zone=zone,
            printed=when(printed),
            verdict_words=VERDICT_WORDS,
            verdict_symbols=VERDICT_SYMBOLS,
            fuels=FUELS,
            inspection_types=INSPECTION_TYPES,
            states=STATES,
            version=__version__,
        )
    )


def render_pdf(html: str) -> bytes:
    """The HTML report as an A4 PDF."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()


def render_report(
    store: Store,
    inspection_id: str,
    lang: str = DEFAULT_LANG,
    fmt: Format = "html",
    *,
    config: SiteConfig | None = None,
    limits: Limits | None = None,
    tz: tzinfo | None = None,
) -> tuple[bytes, str]:
    """The report of one inspection as (bytes, content type); `fmt` "html" or "pdf".

    `config` gives the site's name, time zone and limits folder (the sources
    printed beside the limits); `limits` and `tz`, when given, take precedence.
    Raises `NotFound` for an unknown inspection and `UnknownLanguage` for a
    language other than "zh" and "en". Rendering a PDF takes a fraction of a
    second to seconds: an event loop calls this in a worker thread.
    """
    if lang not in LOCALES:
        raise UnknownLanguage(lang)
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown report format {fmt!r}: use html or pdf")
    if limits is None:
        limits = _limits_of(config)
    if tz is None and config is not None:
        tz = config.tz()
    site_name = getattr(config, "site_name", None) if config is not None else None
    report = build_report(store, inspection_id, limits=limits, site_name=site_name)
    html = render_html(report, lang, tz)
    if fmt == "pdf":
        return render_pdf(html), CONTENT_TYPES["pdf"]
    return html.encode("utf-8"), CONTENT_TYPES["html"]


def _limits_of(config: SiteConfig | None) -> Limits:
    from linectl.config import DEFAULT_LIMITS_DIR
    from linectl.stations.limits import load_limits

    return load_limits(config.limits.dir if config is not None else DEFAULT_LIMITS_DIR)


async def render_report_async(
    store: AsyncStore,
    inspection_id: str,
    lang: str = DEFAULT_LANG,
    fmt: Format = "html",
    *,
    config: SiteConfig | None = None,
) -> tuple[bytes, str]:
    """`render_report` for the daemon's event loop: in a worker thread of its own,
    so neither the loop nor the store's single worker waits on a PDF."""
    return await asyncio.to_thread(
        render_report, store.store, inspection_id, lang, fmt, config=config
    )
