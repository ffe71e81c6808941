"""Incoming HTML made safe to show (nh3), with remote images hidden on request, and read as text."""
import re
from html.parser import HTMLParser

import nh3

# Formatting a mail needs; everything else is dropped and its text kept. No forms, inputs,
# buttons, frames, objects, embeds, meta, base, link, svg or math.
TAGS = (set(nh3.ALLOWED_TAGS) - {"data", "time"}) | {
    "address", "big", "font", "main", "section", "tfoot",
}

# Tags whose content goes too: code, styles, and things that are not the message's text.
CLEAN_CONTENT_TAGS = {
    "script", "style", "title", "template", "noscript", "noframes", "noembed", "xmp",
    "iframe", "frame", "object", "embed", "applet", "svg", "math", "textarea", "select",
}

# Presentational attributes only. No id, class or name (they could collide with the page's own
# ids, classes and htmx targets), no data-* or hx-* (htmx would act on them), no event handlers.
_TABLE = {"align", "valign", "width", "height", "bgcolor", "border", "cellpadding",
          "cellspacing", "colspan", "rowspan", "nowrap", "span", "scope", "headers"}
ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border", "align"},
    "font": {"color", "face", "size"},
    "table": _TABLE, "thead": _TABLE, "tbody": _TABLE, "tfoot": _TABLE, "tr": _TABLE,
    "td": _TABLE, "th": _TABLE, "col": _TABLE, "colgroup": _TABLE,
    "ol": {"start", "type"}, "ul": {"type"}, "li": {"value", "type"},
    "hr": {"width", "size", "noshade"},
    "blockquote": {"cite", "type"}, "q": {"cite"}, "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"}, "bdo": {"dir"},
}

# Links and images: web addresses, mail addresses, and cid: for images inside the mail. data:
# is checked further below (images only). Relative addresses would point into the helpdesk
# itself, so they are dropped.
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}

# CSS that formats text and boxes inside the message. Nothing that positions, transforms,
# layers or loads anything: no position, top/left/right/bottom, z-index, transform, float,
# display, content, cursor, background images, filters, behaviours.
STYLE_PROPERTIES = {
    "color", "background-color",
    "font", "font-family", "font-size", "font-style", "font-variant", "font-weight",
    "line-height", "letter-spacing", "word-spacing", "white-space", "word-break",
    "word-wrap", "overflow-wrap", "text-align", "text-decoration", "text-decoration-color",
    "text-decoration-line", "text-decoration-style", "text-indent", "text-transform",
    "vertical-align", "direction",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
    "border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
    "border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
    "border-radius",
    "width", "height", "min-width", "max-width", "min-height", "max-height",
    "list-style-type", "table-layout", "caption-side", "empty-cells",
}

# Values that load, run or escape even inside an allowed property: url(), IE's expression()
# and behaviours, CSS escapes that hide them, imports, and negative lengths (a negative margin
# pulls the text out of the message's box).
_BAD_STYLE_VALUE = re.compile(
    r"url\s*\(|image-set|expression|javascript:|vbscript:|behavior|binding|@import|\\|"
    r"(?<![\w-])-\s*\.?\d", re.IGNORECASE)

# Images embedded as data: URLs: common raster types only (never SVG, which can carry script),
# and only small ones; larger images come as attachments.
MAX_DATA_IMAGE = 200_000
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|jpg|webp|bmp);base64,[a-z0-9+/=\s]*$",
                         re.IGNORECASE)
_REMOTE = re.compile(r"^\s*https?:", re.IGNORECASE)


def _safe_style(value: str) -> str | None:
    kept = [rule for rule in value.split(";") if rule.strip() and not _BAD_STYLE_VALUE.search(rule)]
    return "; ".join(part.strip() for part in kept) or None


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return _safe_style(value)
    if value.lstrip()[:5].lower() == "data:":
        if tag == "img" and attribute == "src" and len(value) <= MAX_DATA_IMAGE \
                and _DATA_IMAGE.match(value):
            return value
        return None
    return value


def _clean(html: str, attribute_filter) -> str:
    return nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=CLEAN_CONTENT_TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=URL_SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
        url_relative="deny",
    )


def clean_html(html: str) -> str:
    """The mail's HTML with only safe formatting left: no scripts, styles, handlers, forms,
    frames, embedded objects, meta/base/link, data-* or hx-* attributes, ids or classes; links
    open in a new tab with rel="noopener noreferrer nofollow"; images from http(s), cid: and
    small data:image/* only; style attributes filtered to the CSS properties above."""
    if not html:
        return ""
    return _clean(html, _filter).strip()


def without_remote_images(clean: str) -> tuple[str, int]:
    """(html, count): the cleaned HTML with the address of each http(s) image removed, so the
    browser shows the image's alt text instead and nothing is fetched. For the default view;
    the page can offer "show images" with the html as cleaned."""
    removed = 0

    def hide(tag: str, attribute: str, value: str) -> str | None:
        nonlocal removed
        if tag == "img" and attribute == "src" and _REMOTE.match(value):
            removed += 1
            return None
        return _filter(tag, attribute, value)

    if not clean:
        return "", 0
    return _clean(clean, hide).strip(), removed


# --- HTML read as plain text -----------------------------------------------------------------

# Blocks set apart by a blank line, and blocks that only start a new line (Gmail writes one
# <div> per line).
_PARAGRAPH = {"address", "article", "aside", "blockquote", "center", "dl", "figure", "h1", "h2",
              "h3", "h4", "h5", "h6", "ol", "p", "pre", "section", "table", "ul"}
_LINE = {"caption", "dd", "details", "div", "dt", "figcaption", "footer", "header", "li",
         "main", "nav", "summary", "tbody", "tfoot", "thead", "tr"}
_SKIP = CLEAN_CONTENT_TAGS | {"head"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "base", "col", "area", "wbr", "source",
         "embed", "param", "track"}
_SPACE = re.compile(r"[ \t\r\n\f\u00a0]+")


class _TextReader(HTMLParser):
    """Collects the text of (cleaned) HTML: blocks become lines, list items get "- ", table cells
    are separated, quoted blocks get "> " so the reply splitter sees them, links keep their
    address in <...> when it is not their text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.quote = 0
        self.pre = 0
        self.skip = 0
        self.links: list[tuple[str | None, list[str]]] = []

    def _prefix(self) -> str:
        return "> " * self.quote

    def _break(self):
        """Ends the current line (an empty one too, as after <br>)."""
        text = "".join(self.line)
        parts = text.split("\n") if self.pre else [_SPACE.sub(" ", text).strip()]
        for part in parts:
            self.lines.append((self._prefix() + part).rstrip())
        self.line = []

    def _block(self, paragraph: bool):
        if "".join(self.line).strip():
            self._break()
        self.line = []
        if paragraph and self.lines and self.lines[-1].strip("> "):
            self.lines.append(self._prefix().rstrip())

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += tag not in _VOID
            return
        if self.skip:
            return
        if tag == "br":
            self._break()
        elif tag == "hr":
            self._block(True)
            self.lines.append(self._prefix() + "-" * 20)
        elif tag in _PARAGRAPH or tag in _LINE:
            self._block(tag in _PARAGRAPH)
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "li":
                self.line.append("- ")
        elif tag in ("td", "th"):
            self.line.append("  ")
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.line.append(f" {alt} ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), []))

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == "a" and self.links:
            href, words = self.links.pop()
            text = "".join(words).strip()
            if href and re.match(r"^(https?|mailto):", href, re.IGNORECASE):
                shown = href[7:] if href.lower().startswith("mailto:") else href
                if shown not in text:
                    self.line.append(f" <{shown}>")
        elif tag in _PARAGRAPH or tag in _LINE:
            if "".join(self.line).strip():
                self._break()  # inside the quote or <pre> it ends
            self.line = []
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._block(tag in _PARAGRAPH)

    def handle_data(self, data):
        if self.skip:
            return
        self.line.append(data)
        for _, words in self.links:
            words.append(data)

    def text(self) -> str:
        self._block(False)
        out: list[str] = []
        for line in self.lines:
            if not line.strip("> ") and (not out or not out[-1].strip("> ")):
                continue  # one blank line between paragraphs is enough
            out.append(line)
        return "\n".join(out).strip()


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (for HTML-only mail and for search)."""
    if not html:
        return ""
    reader = _TextReader()
    try:
        reader.feed(html)
        reader.close()
    except Exception:  # html.parser is lenient; this is a last guard against odd input
        return nh3.clean(html, tags=set()).strip()
    return reader.text()
