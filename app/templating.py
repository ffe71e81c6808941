"""The one Jinja environment, shared by pages, fragments, server-sent events and emails."""
from datetime import datetime
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from app.models import utcnow

TEMPLATE_DIR = Path(__file__).parent / "templates"


def paragraphs(text: str) -> Markup:
    """Plain text as escaped HTML paragraphs, keeping line breaks."""
    blocks = [b for b in (text or "").replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("".join(
        "<p>" + str(escape(block)).replace("\n", "<br>\n") + "</p>" for block in blocks))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, briefly: 'now', '5m', '3h', '2d'."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - moment).total_seconds()))
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def timestamp(moment: datetime | None) -> str:
    # isoformat is several times cheaper than strftime, and queue pages call this 100 times.
    return moment.isoformat(" ", "minutes") + " UTC" if moment else ""


def isoformat(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") + "Z" if moment else ""


env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates change with the code, which needs a restart anyway; checking their files on
    # every render cost a few percent of each page.
    auto_reload=False,
)
env.filters.update(paragraphs=paragraphs, ago=ago, timestamp=timestamp, isoformat=isoformat)
env.globals.update(utcnow=utcnow)


def render(name: str, **context) -> str:
    return env.get_template(name).render(**context)
