"""The console's language per request, and its templates in each language.

The language is the account's preference when it has one (`Actor.locale`,
set on the console's language menu), else the best of the browser's
`Accept-Language` that the console speaks, else Simplified Chinese. Every
word in the templates is a catalogue msgid (`_()`, or `|msg` for one held in
a variable); `ConsoleTemplates` keeps one Jinja2 environment per language
with that language's translations, filters and the site's time zone, so the
board's fragments can be rendered without a request (linectl.http.board).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request

from linectl import __version__
from linectl.clock import utc_iso
from linectl.http import words
from linectl.i18n import DEFAULT_LANG, HTML_LANG, LOCALES, install, translator
from linectl.report.fields import FUELS, INSPECTION_TYPES, STATES
from linectl.report.plots import plot_svg
from linectl.report.render import translate


def negotiate(accept_language: str | None) -> str:
    """The console language the browser prefers most, by RFC 9110 quality values."""
    best, best_q = DEFAULT_LANG, -1.0
    for n, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        # Earlier tags win ties: the browser lists them in its order of preference.
        if primary in LOCALES and q > 0 and q - n * 1e-6 > best_q:
            best, best_q = primary, q - n * 1e-6
    return best


def request_lang(request: Request) -> str:
    actor = getattr(request.state, "actor", None)
    locale = getattr(actor, "locale", None)
    if locale in LOCALES:
        return str(locale)
    return negotiate(request.headers.get("accept-language"))


class ConsoleTemplates:
    """One Jinja2 environment per language over linectl/http/templates."""

    def __init__(self, directory: str, tz: tzinfo | None, time_scale: float = 1.0) -> None:
        self.tz = tz
        self.time_scale = time_scale
        self.envs = {lang: self._env(directory, lang) for lang in LOCALES}

    def local(self, dt: datetime | None) -> datetime | None:
        return None if dt is None else dt.astimezone(self.tz)

    def _env(self, directory: str, lang: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=jinja2.select_autoescape(),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        install(env, lang)
        gettext = translator(lang).gettext

        def when(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
            local = self.local(dt)
            return "–" if local is None else local.strftime(fmt)

        env.filters["msg"] = lambda msgid: gettext(msgid) if msgid else ""
        env.filters["tr"] = lambda text: translate(text, lang)
        env.filters["plot"] = lambda p: Markup(plot_svg(p, gettext))
        env.filters["when"] = when
        env.filters["hm"] = lambda dt: when(dt, "%H:%M")
        env.filters["hms"] = lambda dt: when(dt, "%H:%M:%S")
        env.filters["iso"] = lambda dt: "" if dt is None else utc_iso(dt)
        env.filters["epoch_ms"] = lambda dt: 0 if dt is None else int(dt.timestamp() * 1000)
        env.globals.update(
            lang=lang,
            html_lang=HTML_LANG[lang],
            langs=list(LOCALES),
            version=__version__,
            time_scale=time_scale_text(self.time_scale),
            w=words,
            fuels=FUELS,
            inspection_types=INSPECTION_TYPES,
            states=STATES,
        )
        return env

    def render(self, lang: str, template: str, **context: Any) -> str:
        env = self.envs.get(lang) or self.envs[DEFAULT_LANG]
        return env.get_template(template).render(**context)

    def warm(self) -> None:
        """Compile every template in every language now (a worker thread at start-up):
        compiling the board's takes a tenth of a second, which the event loop of a
        running line must not spend on a first request."""
        for env in self.envs.values():
            assert env.loader is not None
            for name in env.loader.list_templates():
                env.get_template(name)

    def macro(self, lang: str, template: str, name: str) -> Any:
        """A macro of a template (a board fragment), to call without a request."""
        env = self.envs.get(lang) or self.envs[DEFAULT_LANG]
        return getattr(env.get_template(template).module, name)


def time_scale_text(scale: float) -> str:
    return f"{scale:g}"
