"""HTML from mail: sanitized for display (nh3) and turned into readable plain text.

The admin page shows customer HTML to operators, so it is hostile input: no scripts,
no event handlers, no forms or frames, links only to http(s)/mailto/tel, and images
only from the mail itself (`cid:`). Remote images are dropped with their tag: they are
tracking pixels that would tell the sender when, and from which IP, an operator read it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

_TAGS = (set(nh3.ALLOWED_TAGS) - {"area", "map"}) | {"font", "center", "tfoot"}
_COMMON_ATTRIBUTES = {
    "align", "valign", "width", "height", "bgcolor", "color", "dir", "lang", "title",
    "style", "border", "cellpadding", "cellspacing", "colspan", "rowspan",
}  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON_ATTRIBUTES,
    "a": {"href"},
    "img": {"src", "alt"},
    "font": {"face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
# CSS properties that lay text out but cannot fetch anything (no url(), no positioning
# over the admin page).
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "text-align", "text-decoration", "text-indent", "text-transform",
    "line-height", "letter-spacing", "white-space", "vertical-align", "width", "height",
    "max-width", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-collapse", "border-spacing", "direction",
}  # fmt: skip
_LINK_SCHEMES = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)
# Browsers ignore ASCII whitespace and controls inside a scheme ("java\tscript:").
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]+")
# After nh3 every attribute value is double-quoted, so this cannot stop inside one.
_IMG_TAG = re.compile(r"<img\b(?:[^>\"]|\"[^\"]*\")*>", re.IGNORECASE)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href" or attribute == "src":
        compact = _IGNORED_IN_URL.sub("", value)
        if tag == "img":
            return value if compact.lower().startswith("cid:") else None
        return value if _LINK_SCHEMES.match(compact) else None
    return value


# Nesting kept: real mail nests a few dozen levels (Outlook tables in quotes in quotes);
# deeper markup is flattened, its text kept. The HTML parsers after this (nh3 builds a
# tree the browser's way, html_to_text tracks blockquote depth) get slower with depth:
# 60,000 nested <div>s held one mail's 250 (and every other mail's) for 25 s.
MAX_HTML_DEPTH = 100
# Void elements never hold content, so they never open a level.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr"})
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")


def bound_html(html: str, max_depth: int = MAX_HTML_DEPTH) -> str:
    """`html` with tags nested deeper than `max_depth` removed (their text stays).

    One pass over the tags, no tree: linear in the input whatever its shape. Closing
    tags are paired by count, not by name, which is what a flattening needs."""
    if html.count("<") <= max_depth:
        return html  # too few tags to be too deep: the common case, no copy
    pieces: list[str] = []
    kept_from = depth = excess = 0
    for tag in _TAG.finditer(html):
        closing, name = tag.group(1), tag.group(2).lower()
        if name in _VOID or tag.group(0).endswith("/>"):
            continue
        if not closing:
            if depth < max_depth:
                depth += 1
                continue
            excess += 1
        elif excess:
            excess -= 1
        elif depth:
            depth -= 1
            continue
        # A tag too deep (or a stray close): cut it out, keep what surrounds it.
        pieces.append(html[kept_from:tag.start()])
        kept_from = tag.end()
    if not pieces:
        return html
    pieces.append(html[kept_from:])
    return "".join(pieces)


# Stored with each message's sanitized HTML. Raise it whenever sanitize_html's rules
# change: HTML made by an older version is then sanitized again when next shown.
SANITIZER_VERSION = 3
# The shown HTML is cut here: nh3 takes ~0.35 s a megabyte of plain markup, so a mail
# near the 25 MB message limit would hold a parse worker past its deadline. Beyond this
# the operator reads the text or downloads the original, both kept whole.
MAX_SANITIZED_HTML_CHARS = 2_000_000
_CUT_NOTE = "<p>[…]</p>"


def sanitize_html(html: str) -> str:
    """Safe HTML for the admin page: see the module comment for what goes."""
    if len(html) > MAX_SANITIZED_HTML_CHARS:
        # Cut before a tag, not inside one, so the note after it stays a paragraph.
        cut = html.rfind("<", 0, MAX_SANITIZED_HTML_CHARS)
        html = html[:cut if cut > 0 else MAX_SANITIZED_HTML_CHARS] + _CUT_NOTE
    cleaned = nh3.clean(
        bound_html(html),
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "noscript", "template"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer",
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )
    if "<img" not in cleaned:
        return cleaned
    return _IMG_TAG.sub(_keep_cid_image, cleaned)


def _keep_cid_image(match: re.Match[str]) -> str:
    tag = match.group(0)
    return tag if ' src="cid:' in tag.lower() else ""


_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "details", "div", "dl",
    "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "tfoot", "thead", "tr", "ul",
})  # fmt: skip
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre"})
_INVISIBLE = frozenset({"script", "style", "head", "title", "noscript", "template", "xml"})
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")
_TEXT_LINK = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)


class _TextWriter(HTMLParser):
    """Collect text; block boundaries become newlines, blockquotes become "> " lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._breaks = 0          # newlines asked for before the next text
        self._invisible = 0
        self._pre = 0
        self._quote = 0
        self._line_quote = 0      # quote depth of the last line started
        self._links: list[tuple[str, int]] = []  # (href, length of text when opened)
        self._link_text: list[str] = []

    # -- structure -------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._invisible += 1
        elif tag == "br":
            self._break(1, add=True)
        elif tag == "li":
            self._break(1)
            self._write("- ", raw=True)
        elif tag in ("td", "th"):
            if self._line and not self._breaks:
                self._write("\t", raw=True)
        elif tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            self._links.append((href.strip(), len(self._link_text)))
        elif tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._invisible = max(0, self._invisible - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            self._close_link(href, "".join(self._link_text[start:]))
        elif tag in _BLOCKS:
            self._break(2 if tag in _PARAGRAPHS else 1)
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._invisible:
            return
        if self._pre:
            for index, piece in enumerate(data.split("\n")):
                if index:
                    self._break(1, add=True)
                self._write(piece, raw=True)
            return
        text = _SPACES.sub(" ", data)
        if not self._line or self._breaks or self._line[-1].endswith(" "):
            text = text.lstrip(" ")
        if text:
            self._write(text)

    # -- output ----------------------------------------------------------------------
    def _close_link(self, href: str, text: str) -> None:
        shown = href[7:] if href.lower().startswith("mailto:") else href
        if not _TEXT_LINK.match(href) or not shown:
            return
        if shown.rstrip("/") != text.strip().rstrip("/"):
            self._write(f" ({shown})", raw=True) if text.strip() else self._write(shown, raw=True)

    def _break(self, count: int, *, add: bool = False) -> None:
        if not self._line and not self.lines:
            return  # nothing written yet: no leading blank lines
        self._breaks = min(self._breaks + 1, 3) if add else max(self._breaks, count)

    def _write(self, text: str, *, raw: bool = False) -> None:
        if self._breaks:
            self._flush()
            # A blank line inside a quote stays quoted; one between levels does not.
            blank = ("> " * min(self._quote, self._line_quote)).rstrip()
            self.lines.extend([blank] * (self._breaks - 1))
            self._breaks = 0
        if not self._line:
            self._line_quote = self._quote
            self._line.append("> " * self._quote)
        self._line.append(text)
        if self._links:
            self._link_text.append(text)

    def _flush(self) -> None:
        if self._line:
            self.lines.append("".join(self._line).rstrip())
            self._line = []

    def text(self) -> str:
        self._flush()
        joined = "\n".join(self.lines)
        return re.sub(r"\n(?:[> ]*\n){2,}", "\n\n", joined).strip("\n")


def html_to_text(html: str) -> str:
    """Readable plain text from mail HTML (the description of an HTML-only mail)."""
    writer = _TextWriter()
    writer.feed(bound_html(html))
    writer.close()
    return writer.text()
